//! The shared suite on tower-sessions-sqlx-store's `PostgresStore`, with the
//! user table on Postgres too. Each test has a schema of its own (holding
//! the session table and the user table), dropped when it ends.
//!
//! Needs `DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`).

mod common;

use common::{pg_users::PgUsers, service_url, services::postgres_store, suite::store_suite};
use tower_sessions_sqlx_store::PostgresStore;

async fn fixture() -> Option<(PostgresStore, PgUsers)> {
    let url = service_url("DATABASE_URL")?;
    let users = PgUsers::create(&url).await;
    let store = postgres_store(&url, users.schema()).await;
    Some((store, users))
}

store_suite!(fixture);
