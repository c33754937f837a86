//! The registry costs one Redis round trip per signed-in request (its
//! last-seen write, once per touch interval, aside): the same
//! requests with and without it, counted by Redis itself (`INFO
//! commandstats`). A test binary of its own, so that no other test talks to
//! Redis meanwhile.
//!
//! Needs `REDIS_URL` (e.g. `redis://127.0.0.1:6379`).

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{
    app, keys,
    registry_app::registry_app,
    serve, service_url,
    services::{redis_pool, redis_store, unique_name, Tracker},
    Client, Users, SECRET_A,
};
use reqwest::StatusCode;
use tower_sessions_auth::registry::{RedisRegistry, RegistryStore as _, SessionRegistry};
use tower_sessions_redis_store::fred::{
    prelude::{ClientLike, Pool},
    types::InfoKind,
};

/// Calls per command since the server started, from `INFO commandstats`.
async fn command_calls(pool: &Pool) -> HashMap<String, u64> {
    let info: String = pool.info(Some(InfoKind::CommandStats)).await.unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.trim().parse().ok()?))
        })
        .collect()
}

/// The commands (and how often each ran) while `requests` signed-in
/// `GET /me` were served, without the two `INFO` calls that measure.
async fn commands_during(
    pool: &Pool,
    client: &Client,
    base: &str,
    requests: u64,
) -> HashMap<String, u64> {
    let before = command_calls(pool).await;
    for _ in 0..requests {
        assert_eq!(
            client.get(&format!("{base}/me")).await.status,
            StatusCode::OK
        );
    }
    let after = command_calls(pool).await;
    after
        .into_iter()
        .filter_map(|(name, calls)| {
            let delta = calls - before.get(&name).copied().unwrap_or(0);
            let delta = if name == "info" { delta - 1 } else { delta };
            (delta > 0).then_some((name, delta))
        })
        .collect()
}

#[tokio::test]
async fn the_registry_adds_exactly_one_round_trip_per_signed_in_request() {
    const REQUESTS: u64 = 50;
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let pool = redis_pool(&url).await;
    let tracker = Tracker::redis(&url);
    let users = Users::with_defaults();

    let plain = serve(app(
        redis_store(&url, &tracker).await,
        users.clone(),
        keys(SECRET_A, &[]),
    ))
    .await;
    let client = Client::new();
    client.post(&format!("{plain}/login/1"), "").await;
    let without = commands_during(&pool, &client, &plain, REQUESTS).await;
    assert_eq!(
        without,
        HashMap::from([("get".to_owned(), REQUESTS)]),
        "one GET of the session"
    );

    let store = RedisRegistry::new(pool.clone()).with_key_prefix(format!("{}:", unique_name()));
    let with_registry = serve(registry_app(
        redis_store(&url, &tracker).await,
        users,
        keys(SECRET_A, &[]),
        SessionRegistry::new(store.clone()),
        false,
    ))
    .await;
    let client = Client::new();
    client.post(&format!("{with_registry}/login/1"), "").await;
    let with = commands_during(&pool, &client, &with_registry, REQUESTS).await;
    // One more command per request: the registry's HGET. Last-seen is
    // fresh (it is written once a minute at most), so nothing is written.
    assert_eq!(
        with,
        HashMap::from([("get".to_owned(), REQUESTS), ("hget".to_owned(), REQUESTS),]),
        "per request: the session's GET and the registry's HGET"
    );
    store.remove_all("1", None).await.unwrap();
}
