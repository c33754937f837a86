//! The registry costs one Redis round trip per signed-in request (its
//! last-seen write, once per touch interval, aside), and the fast path
//! none: the same requests with and without them, counted by Redis itself
//! (`INFO commandstats`). A test binary of its own with one test, whose
//! applications and clean-ups live until its end, so that no other test
//! talks to Redis meanwhile.
//!
//! Needs `REDIS_URL` (e.g. `redis://127.0.0.1:6379`).

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{
    app, keys,
    registry_app::{registry_app, registry_routes},
    serve, service_url,
    services::{redis_pool, redis_store, unique_name, Tracker},
    Client, Users, SECRET_A,
};
use reqwest::StatusCode;
use tower_sessions::SessionManagerLayer;
use tower_sessions_auth::{
    fast_path::FastPath,
    live::{LiveSessions, RedisChannel},
    registry::{RedisRegistry, RegistryStore as _, SessionRegistry},
    AuthLayer,
};
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

const REQUESTS: u64 = 50;

#[tokio::test]
async fn round_trips_per_signed_in_request() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let pool = redis_pool(&url).await;
    the_registry_adds_exactly_one_round_trip_per_signed_in_request(&url, &pool).await;
    the_fast_path_sends_no_command_per_signed_in_request(&url, &pool).await;
}

async fn the_registry_adds_exactly_one_round_trip_per_signed_in_request(url: &str, pool: &Pool) {
    let tracker = Tracker::redis(url);
    let users = Users::with_defaults();

    let plain = serve(app(
        redis_store(url, &tracker).await,
        users.clone(),
        keys(SECRET_A, &[]),
    ))
    .await;
    let client = Client::new();
    client.post(&format!("{plain}/login/1"), "").await;
    let without = commands_during(pool, &client, &plain, REQUESTS).await;
    assert_eq!(
        without,
        HashMap::from([("get".to_owned(), REQUESTS)]),
        "one GET of the session"
    );

    let store = RedisRegistry::new(pool.clone()).with_key_prefix(format!("{}:", unique_name()));
    let with_registry = serve(registry_app(
        redis_store(url, &tracker).await,
        users,
        keys(SECRET_A, &[]),
        SessionRegistry::new(store.clone()),
        false,
    ))
    .await;
    let client = Client::new();
    client.post(&format!("{with_registry}/login/1"), "").await;
    let with = commands_during(pool, &client, &with_registry, REQUESTS).await;
    // One more command per request: the registry's HGET. Last-seen is
    // fresh (it is written once a minute at most), so nothing is written.
    assert_eq!(
        with,
        HashMap::from([("get".to_owned(), REQUESTS), ("hget".to_owned(), REQUESTS),]),
        "per request: the session's GET and the registry's HGET"
    );
    store.remove_all("1", None).await.unwrap();
}

async fn the_fast_path_sends_no_command_per_signed_in_request(url: &str, pool: &Pool) {
    let tracker = Tracker::redis(url);
    let name = unique_name();
    let store = RedisRegistry::new(pool.clone()).with_key_prefix(format!("{name}:"));
    let live =
        LiveSessions::new().with_channel(RedisChannel::new(pool.clone()).with_channel_name(&name));
    let users = Users::with_defaults();
    let app = registry_routes(users.clone())
        .layer(
            AuthLayer::new(users, keys(SECRET_A, &[]))
                .with_registry(SessionRegistry::new(store.clone()).with_live_sessions(live))
                // One process: no other clock to allow for, so a pass is
                // trusted from the millisecond after the heartbeat is heard.
                .with_fast_path(
                    FastPath::new()
                        .with_secure(false)
                        .with_clock_skew(std::time::Duration::ZERO),
                ),
        )
        .layer(SessionManagerLayer::new(redis_store(url, &tracker).await).with_secure(false));
    let base = serve(app).await;
    let client = Client::new();
    client.post(&format!("{base}/login/1"), "").await;
    // The first request after the sign-in fetches the pass, once the
    // process heard its heartbeat.
    // Until a request is served from its pass (no new one set): a pass
    // issued in the millisecond the first heartbeat came back is refused
    // once, as it may predate a notice missed before.
    let mut served_from_pass = false;
    for _ in 0..200 {
        let reply = client.get(&format!("{base}/me")).await;
        if reply.status == StatusCode::OK && reply.header("set-cookie").is_none() {
            served_from_pass = client.cookie_header(&base).contains("tsa_pass=");
            if served_from_pass {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(served_from_pass, "no request was served from a pass");
    let with = commands_during(pool, &client, &base, REQUESTS).await;
    // Only the heartbeat, once a second whatever the requests.
    assert!(
        with.keys().all(|command| command == "publish")
            && with.get("publish").copied().unwrap_or(0) <= 2,
        "no command per request: {with:?}"
    );
    store.remove_all("1", None).await.unwrap();
}
