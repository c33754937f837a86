//! The registry suite on `PostgresRegistry`, in a schema of its own per
//! test, dropped when the test ends.
//!
//! Needs `DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`).

#![cfg(feature = "postgres")]

mod common;

use common::{
    registry_suite::{registry_suite, Counter},
    service_url,
    services::{drop_schema_on_drop, pg_pool, unique_name, OnDrop},
};
use tower_sessions_auth::registry::PostgresRegistry;

async fn fixture() -> Option<(PostgresRegistry, Counter, OnDrop)> {
    let url = service_url("DATABASE_URL")?;
    let schema = unique_name();
    let guard = drop_schema_on_drop(&url, &schema);
    let pool = pg_pool(&url, 8).await;
    let store = PostgresRegistry::new(pool.clone())
        .with_table_name(&format!("{schema}.registry"))
        .expect("a valid table name");
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
    Some((store, counter, guard))
}

registry_suite!(fixture);
