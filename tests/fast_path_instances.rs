//! The fast path across instances: an ending on one instance refuses the
//! session's pass on the other once the notice arrives, over Redis pub/sub
//! and Postgres `LISTEN/NOTIFY`; a channel that goes quiet sends every
//! request down the full path, and what was issued before it came back is
//! refused.

#![cfg(any(feature = "redis", feature = "postgres"))]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
#[cfg(feature = "postgres")]
use tower_sessions_auth::live::PostgresChannel;
#[cfg(feature = "redis")]
use tower_sessions_auth::live::RedisChannel;
use tower_sessions_auth::{
    live::{LiveChannel, LiveSessions},
    registry::SessionRegistry,
};

#[cfg(feature = "postgres")]
use common::services::pg_pool;
use common::{
    fast_site::{removes_pass, sets_pass, Shared, Site},
    keys, service_url,
    services::unique_name,
    Client, SECRET_A,
};
#[cfg(feature = "redis")]
use common::{
    proxy::{Mode, Proxy},
    services::redis_pool,
};

/// Short, so that a quiet channel shows within a test.
const HEARTBEAT: Duration = Duration::from_millis(50);

/// How long a notice may take to reach the other instance here: far above
/// what it takes (milliseconds), far below the pass's lifetime.
const PROMPT: Duration = Duration::from_secs(3);

fn live(channel: impl LiveChannel) -> LiveSessions {
    LiveSessions::new()
        .with_recheck_period(Duration::from_secs(600))
        .with_heartbeat(HEARTBEAT)
        .with_channel(channel)
}

/// Polls `until` every few milliseconds for at most `wait`; how long it
/// took, or `None`.
async fn within<F, Fut>(wait: Duration, mut until: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < wait {
        if until().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Waits until both instances issue passes: each heard its own heartbeat.
async fn ready(a: &Site, b: &Site) {
    for site in [a, b] {
        let client = Client::new();
        client.post(&site.url("/login/1"), "").await;
        let issued = within(PROMPT, || async {
            sets_pass(&client.get(&site.url("/me")).await)
        })
        .await;
        assert!(
            issued.is_some(),
            "{} never issued a pass: its channel is unheard",
            site.base
        );
    }
}

/// A browser signed in on `a`, holding a pass from `a` that `b` admits
/// without the store.
async fn with_pass_on(a: &Site, b: &Site, user: u64) -> (Client, String) {
    let client = a.signed_in(user).await;
    let held = client.cookie_header(&b.base);
    let loads = b.store.loads();
    assert_eq!(b.me_with(&held).await.status, StatusCode::OK);
    assert_eq!(
        b.store.loads(),
        loads,
        "{} admitted it from its pass",
        b.base
    );
    (client, held)
}

/// `b` refuses `held` within [`PROMPT`].
async fn refused_soon(b: &Site, held: &str, what: &str) {
    let took = within(PROMPT, || async {
        b.me_with(held).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        took.is_some(),
        "{what}: the other instance still admits the pass"
    );
}

/// Two instances whose live sessions `make` gives: every ending on `a`
/// refuses the pass on `b`.
async fn endings_reach_the_other_instance(make: impl Fn() -> LiveSessions) {
    let shared = Shared::new();
    let a = shared.site_in_real_time(make(), keys(SECRET_A, &[])).await;
    let b = shared.site_in_real_time(make(), keys(SECRET_A, &[])).await;
    ready(&a, &b).await;

    let (tab, held) = with_pass_on(&a, &b, 1).await;
    let reply = tab.post(&a.url("/logout"), "").await;
    assert!(removes_pass(&reply));
    refused_soon(&b, &held, "sign-out").await;

    let (_, held) = with_pass_on(&a, &b, 1).await;
    let changer = a.signed_in(1).await;
    assert_eq!(
        changer.post(&a.url("/revoke-others"), "").await.status,
        StatusCode::OK
    );
    refused_soon(&b, &held, "revoke others").await;
    assert_eq!(
        changer.get(&b.url("/me")).await.body,
        "alice",
        "the changer stays"
    );

    let (_, held) = with_pass_on(&a, &b, 2).await;
    let (_, bystander) = with_pass_on(&a, &b, 3).await;
    let admin = SessionRegistry::new(shared.entries.clone()).with_live_sessions(make());
    assert!(admin.revoke_all(&2_u64).await.unwrap() >= 1);
    refused_soon(&b, &held, "an administrator's revoke_all").await;
    assert_eq!(
        b.me_with(&bystander).await.body,
        "admin",
        "another user stays"
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn endings_reach_the_other_instance_over_redis() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let pool = redis_pool(&url).await;
    let name = unique_name();
    endings_reach_the_other_instance(|| {
        live(RedisChannel::new(pool.clone()).with_channel_name(&name))
    })
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn endings_reach_the_other_instance_over_postgres() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let pool = pg_pool(&url, 4).await;
    let name = unique_name();
    endings_reach_the_other_instance(|| {
        live(PostgresChannel::new(pool.clone()).with_channel_name(&name))
    })
    .await;
}

/// `b` listens through a proxy the test cuts: while cut, `b` admits no
/// pass (every request reads the store); once restored, a pass issued
/// before is refused once, since a notice may have been lost meanwhile.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_quiet_channel_turns_the_fast_path_off_until_it_is_back() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let proxy = Proxy::start(&url).await;
    let name = unique_name();
    let shared = Shared::new();
    let direct = RedisChannel::new(redis_pool(&url).await).with_channel_name(&name);
    let cut_off = RedisChannel::new(redis_pool(&proxy.url(&url)).await).with_channel_name(&name);
    let a = shared
        .site_in_real_time(live(direct), keys(SECRET_A, &[]))
        .await;
    let b = shared
        .site_in_real_time(live(cut_off), keys(SECRET_A, &[]))
        .await;
    ready(&a, &b).await;
    let (client, held) = with_pass_on(&a, &b, 1).await;

    proxy.set(Mode::Cut);
    // Three heartbeats unheard, and a margin.
    tokio::time::sleep(HEARTBEAT * 6).await;
    for _ in 0..3 {
        let loads = b.store.loads();
        assert_eq!(b.me_with(&held).await.body, "alice");
        assert_eq!(
            b.store.loads(),
            loads + 1,
            "the full path while the channel is quiet"
        );
    }

    proxy.set(Mode::Open);
    let back = within(Duration::from_secs(10), || async {
        let loads = b.store.loads();
        let reply = client.get(&b.url("/me")).await;
        reply.status == StatusCode::OK && b.store.loads() == loads
    })
    .await;
    assert!(back.is_some(), "the fast path never came back");
    let loads = b.store.loads();
    assert_eq!(b.me_with(&held).await.body, "alice");
    assert_eq!(
        b.store.loads(),
        loads + 1,
        "a pass from before the outage takes the full path"
    );
}
