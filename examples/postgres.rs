//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example postgres`,
//! then follow the `curl` commands it logs.
//!
//! Sessions in Postgres (tower-sessions-sqlx-store, in the schema
//! `tower_sessions`, created at start), users in memory with argon2 password
//! hashes. Optional settings: `PORT` (default 3003), `SESSION_SECRET` (32
//! bytes or more) and `SESSION_SECRET_OLD` (a fallback during a rotation).
//!
//! Several copies on different ports can share the Postgres sessions, as
//! instances behind a load balancer do, if they share the secret. Their
//! users live in memory here, so a password change is seen only by the
//! instance that made it: a real deployment shares its user table too.

// The application of the `basic` example; only the session store differs.
#[path = "basic.rs"]
#[allow(dead_code)]
mod basic;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tower_sessions::{session_store::ExpiredDeletion, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

#[tokio::main]
async fn main() -> Result<(), basic::BoxError> {
    let database_url = std::env::var("DATABASE_URL").map_err(|_| {
        "DATABASE_URL must be set, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
    })?;

    // A short `acquire_timeout`: when Postgres is out of reach, requests
    // with a session fail (500) within a second instead of queueing, and new
    // connections are opened by themselves when it is back.
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(1))
        .connect(&database_url)
        .await?;
    let store = PostgresStore::new(pool);
    store.migrate().await?;
    // Expired sessions stay in the table until deleted; one task per
    // deployment is enough, but several do no harm.
    tokio::spawn(
        store
            .clone()
            .continuously_delete_expired(Duration::from_secs(60)),
    );

    // `with_secure(false)` only because this example serves plain HTTP.
    let sessions = SessionManagerLayer::new(store).with_secure(false);
    basic::serve(basic::app()?.layer(sessions), basic::port(3003)?).await
}
