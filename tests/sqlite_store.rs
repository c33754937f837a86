//! The shared suite on tower-sessions-sqlx-store's `SqliteStore` (in memory).

mod common;

use common::{services::sqlite_store, suite::store_suite, Users};
use tower_sessions_sqlx_store::SqliteStore;

async fn fixture() -> Option<(SqliteStore, Users)> {
    Some((sqlite_store().await, Users::with_defaults()))
}

store_suite!(fixture);
