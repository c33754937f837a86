//! The registry suite on `MemoryRegistry`.

mod common;

use common::registry_suite::{registry_suite, Counter};
use tower_sessions_auth::registry::MemoryRegistry;

async fn fixture() -> Option<(MemoryRegistry, Counter, ())> {
    let store = MemoryRegistry::default();
    let counted = store.clone();
    let counter: Counter = Box::new(move || {
        let len = counted.len();
        Box::pin(async move { len })
    });
    Some((store, counter, ()))
}

registry_suite!(fixture);
