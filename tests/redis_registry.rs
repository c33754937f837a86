//! The registry suite on `RedisRegistry`, under a key prefix of its own per
//! test; the keys left are deleted when the test ends.
//!
//! Needs `REDIS_URL` (e.g. `redis://127.0.0.1:6379`).

#![cfg(feature = "redis")]

mod common;

use common::{
    registry_suite::{registry_suite, Counter},
    service_url,
    services::{redis_pool, unique_name, OnDrop},
};
use tower_sessions_auth::registry::RedisRegistry;
use tower_sessions_redis_store::fred::prelude::{HashesInterface, KeysInterface, Pool};

/// Every key under `prefix`.
async fn keys(pool: &Pool, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let (next, page): (String, Vec<String>) = pool
            .next()
            .scan_page(cursor, format!("{prefix}*"), Some(1000), None)
            .await
            .expect("scan the test keys");
        keys.extend(page);
        if next == "0" {
            return keys;
        }
        cursor = next;
    }
}

async fn fixture() -> Option<(RedisRegistry, Counter, OnDrop)> {
    let url = service_url("REDIS_URL")?;
    let pool = redis_pool(&url).await;
    let prefix = format!("{}:", unique_name());
    let store = RedisRegistry::new(pool.clone()).with_key_prefix(prefix.clone());
    let counter: Counter = {
        let (pool, prefix) = (pool, prefix.clone());
        Box::new(move || {
            let (pool, prefix) = (pool.clone(), prefix.clone());
            Box::pin(async move {
                let mut entries = 0;
                for key in keys(&pool, &prefix).await {
                    let len: usize = pool.hlen(key).await.expect("count a user's entries");
                    entries += len;
                }
                entries
            })
        })
    };
    // The clean-up runs on a runtime of its own, so with a pool of its own.
    let guard = OnDrop::new(move || async move {
        let pool = redis_pool(&url).await;
        for key in keys(&pool, &prefix).await {
            let _: Result<i64, _> = pool.del(key).await;
        }
    });
    Some((store, counter, guard))
}

registry_suite!(fixture);
