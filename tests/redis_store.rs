//! The shared suite on tower-sessions-redis-store's `RedisStore` (fred).
//! The session ids a test writes are deleted when it ends.
//!
//! Needs `REDIS_URL` (e.g. `redis://127.0.0.1:6379`).

mod common;

use common::{
    service_url,
    services::{redis_store, Tracked, Tracker},
    suite::store_suite,
    Users,
};
use tower_sessions_redis_store::{fred::prelude::Client, RedisStore};

async fn fixture() -> Option<(Tracked<RedisStore<Client>>, Users)> {
    let url = service_url("REDIS_URL")?;
    let store = redis_store(&url, &Tracker::redis(&url)).await;
    Some((store, Users::with_defaults()))
}

store_suite!(fixture);
