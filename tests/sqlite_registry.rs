//! The registry suite on `SqliteRegistry`, in an SQLite database in memory
//! per test.

#![cfg(feature = "sqlite")]

mod common;

use common::registry_suite::{registry_suite, Counter};
use sqlx::sqlite::SqlitePoolOptions;
use tower_sessions_auth::SqliteRegistry;

async fn fixture() -> Option<(SqliteRegistry, Counter, ())> {
    // One connection that never closes: the database lives with it.
    let pool = SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .expect("open SQLite in memory");
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
