//! The registry suite on `SqliteRegistry`, in an SQLite database in memory
//! per test.

#![cfg(feature = "sqlite")]

mod common;

use common::{
    keys,
    registry_app::{a_session_lists_the_factors_that_proved_it, registry_app},
    registry_suite::{
        entries_from_before_factors_read_as_a_password, handle, now, registry_suite, Counter,
        OLD_COLUMNS,
    },
    serve,
    services::sqlite_memory_pool,
    Users, SECRET_A,
};
use tower_sessions::MemoryStore;
use tower_sessions_auth::registry::{SessionRegistry, SqliteRegistry};

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
    let pool = sqlite_memory_pool(1).await;
    let table = "\"tsa_session_registry\"";
    let create = format!("CREATE TABLE {table} ({OLD_COLUMNS})");
    sqlx::query(&create).execute(&pool).await.unwrap();
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

    let store = SqliteRegistry::new(pool.clone());
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
