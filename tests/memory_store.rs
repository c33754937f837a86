//! The shared suite on tower-sessions' `MemoryStore`.

mod common;

use common::{suite::store_suite, Users};
use tower_sessions::MemoryStore;

async fn fixture() -> Option<(MemoryStore, Users)> {
    Some((MemoryStore::default(), Users::with_defaults()))
}

store_suite!(fixture);
