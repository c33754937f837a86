//! The registry suite on `RedisRegistry`, on one Redis server and on a
//! Redis Cluster, under a key prefix of its own per test; the keys left
//! are deleted when the test ends.
//!
//! Needs `REDIS_URL` (e.g. `redis://127.0.0.1:6379`) and, for the
//! `cluster` tests, `REDIS_CLUSTER_URL` (fred's form,
//! `redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001`; `.ci/redis-cluster`
//! starts one).

#![cfg(feature = "redis")]

mod common;

use common::{
    registry_suite::{registry_suite, Counter},
    service_url,
    services::{delete_redis_keys_on_drop, redis_keys, redis_pool, unique_name, OnDrop},
};
use tower_sessions_auth::registry::RedisRegistry;
use tower_sessions_redis_store::fred::prelude::HashesInterface;

/// The registry on the Redis that the environment variable `var` names.
async fn fixture_on(var: &str) -> Option<(RedisRegistry, Counter, OnDrop)> {
    let url = service_url(var)?;
    let pool = redis_pool(&url).await;
    let prefix = format!("{}:", unique_name());
    let store = RedisRegistry::new(pool.clone()).with_key_prefix(prefix.clone());
    let counter: Counter = {
        let (pool, prefix) = (pool, prefix.clone());
        Box::new(move || {
            let (pool, prefix) = (pool.clone(), prefix.clone());
            Box::pin(async move {
                let mut entries = 0;
                for key in redis_keys(&pool, &prefix).await {
                    let len: usize = pool.hlen(key).await.expect("count a user's entries");
                    entries += len;
                }
                entries
            })
        })
    };
    Some((store, counter, delete_redis_keys_on_drop(&url, &prefix)))
}

async fn fixture() -> Option<(RedisRegistry, Counter, OnDrop)> {
    fixture_on("REDIS_URL").await
}

registry_suite!(fixture);

/// The same suite on a Redis Cluster (3 masters, 3 replicas in CI): each
/// user's hash lives on the shard of its hash tag, and the users of one
/// test spread over the shards.
mod cluster {
    use super::{common::registry_suite::registry_suite, fixture_on, Counter, OnDrop};
    use tower_sessions_auth::registry::RedisRegistry;

    async fn fixture() -> Option<(RedisRegistry, Counter, OnDrop)> {
        fixture_on("REDIS_CLUSTER_URL").await
    }

    registry_suite!(fixture);
}
