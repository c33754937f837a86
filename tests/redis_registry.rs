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
    keys,
    registry_app::{a_session_lists_the_factors_that_proved_it, registry_app},
    registry_suite::{
        entries_from_before_factors_read_as_a_password, handle, now, registry_suite, Counter,
    },
    serve, service_url,
    services::{delete_redis_keys_on_drop, redis_keys, redis_pool, unique_name, OnDrop},
    Users, SECRET_A,
};
use tower_sessions::MemoryStore;
use tower_sessions_auth::registry::{RedisRegistry, RegistryStore as _, SessionRegistry};
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

/// Entries as the previous version wrote them (no `factors`) read as
/// proved by a password; a name this version does not know is left out,
/// and so is a list Lua's cjson wrote back as `{}`.
#[tokio::test]
async fn an_entry_from_before_factors_reads_as_a_password() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let Some((store, _, _guard)) = fixture().await else {
        return;
    };
    let pool = redis_pool(&url).await;
    let (name, t) = (unique_name(), now());
    let key = store.key(&format!("\"{name}\""));
    let old = |n: u32, factors: &str| {
        format!(
            r#"{{"handle":"{}","created_at":{t},"last_seen_at":{t},"expires_at":{},"user_agent":null,"ip":null,"label":"password"{factors}}}"#,
            handle(n),
            t + 3_600_000
        )
    };
    let entries = [
        (handle(1), old(1, "")),
        (handle(2), old(2, r#","factors":["x-later","hwk"]"#)),
    ];
    let _: i64 = pool.hset(&key, entries.to_vec()).await.unwrap();
    let _: i64 = pool
        .hset(&key, (handle(9), old(9, r#","factors":{}"#)))
        .await
        .unwrap();
    let user = format!("\"{name}\"");
    let listed = store.list(&user, t).await.unwrap();
    let emptied = listed.iter().find(|entry| entry.handle == handle(9));
    assert_eq!(emptied.map(|entry| entry.factors.clone()), Some(Vec::new()));
    assert!(store.remove(&user, &handle(9)).await.unwrap());

    entries_from_before_factors_read_as_a_password(store.clone(), &name, t).await;
    // The step-up wrote the field into the old entry's JSON.
    let raw: String = pool.hget(&key, handle(1)).await.unwrap();
    assert!(raw.contains(r#""factors":["hwk","pwd"]"#), "{raw}");
}

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
