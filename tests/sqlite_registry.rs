//! The registry suite on `SqliteRegistry`, in an SQLite database in memory
//! per test.

#![cfg(feature = "sqlite")]

mod common;

use common::{
    registry_suite::{registry_suite, Counter},
    services::sqlite_memory_pool,
};
use tower_sessions_auth::registry::SqliteRegistry;

async fn fixture() -> Option<(SqliteRegistry, Counter, ())> {
    let pool = sqlite_memory_pool(1).await;
    let store = SqliteRegistry::new(pool.clone());
    store.migrate().await.expect("create the registry table");
    let table = store.table_name().to_owned();
    let counter: Counter = Box::new(move || {
        let (pool, table) = (pool.clone(), table.clone());
        Box::pin(async move {
            let (count,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .expect("count the entries");
            usize::try_from(count).expect("a count")
        })
    });
    Some((store, counter, ()))
}

registry_suite!(fixture);
