//! The registry suite on `PostgresRegistry`, in a schema of its own per
//! test, dropped when the test ends.
//!
//! Needs `DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`).

#![cfg(feature = "postgres")]

mod common;

use common::{
    keys,
    registry_app::{a_session_lists_the_factors_that_proved_it, registry_app},
    registry_suite::{
        entries_from_before_factors_read_as_a_password, handle, now, registry_suite, Counter,
        OLD_COLUMNS,
    },
    serve, service_url,
    services::{drop_schema_on_drop, pg_pool, unique_name, OnDrop},
    Users, SECRET_A,
};
use tower_sessions::MemoryStore;
use tower_sessions_auth::registry::{PostgresRegistry, SessionRegistry};

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

#[tokio::test]
async fn a_session_lists_its_factors() {
    let Some((store, _, _guard)) = fixture().await else {
        return;
    };
    let app = registry_app(
        MemoryStore::default(),
        Users::with_defaults(),
        keys(SECRET_A, &[]),
        SessionRegistry::new(store),
        false,
    );
    a_session_lists_the_factors_that_proved_it(&serve(app).await).await;
}

/// A table the previous version made: `migrate` adds the column, and its
/// rows read as proved by a password.
#[tokio::test]
async fn a_table_from_before_factors_is_upgraded() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let schema = unique_name();
    let _guard = drop_schema_on_drop(&url, &schema);
    let pool = pg_pool(&url, 4).await;
    let table = format!("\"{schema}\".\"registry\"");
    for statement in [
        format!("CREATE SCHEMA \"{schema}\""),
        format!("CREATE TABLE {table} ({OLD_COLUMNS})"),
    ] {
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    let t = now();
    let insert = format!(
        "INSERT INTO {table} (user_key, handle, created_at, last_seen_at, expires_at, label) \
         VALUES ('\"ana\"', $1, $2, $2, $3, 'password')"
    );
    sqlx::query(&insert)
        .bind(handle(1))
        .bind(t)
        .bind(t + 3_600_000)
        .execute(&pool)
        .await
        .unwrap();

    let store = PostgresRegistry::new(pool.clone())
        .with_table_name(&format!("{schema}.registry"))
        .expect("a valid table name");
    store.migrate().await.expect("upgrade the table");
    store.migrate().await.expect("a second run changes nothing");
    let insert = format!(
        "INSERT INTO {table} (user_key, handle, created_at, last_seen_at, expires_at, factors) \
         VALUES ('\"ana\"', $1, $2, $2, $3, 'hwk,x-later')"
    );
    sqlx::query(&insert)
        .bind(handle(2))
        .bind(t)
        .bind(t + 3_600_000)
        .execute(&pool)
        .await
        .unwrap();
    entries_from_before_factors_read_as_a_password(store, "ana", t).await;
}
