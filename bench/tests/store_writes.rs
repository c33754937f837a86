//! Store writes per request of the benchmark's own tower-sessions-auth
//! router (`tsa_router`, the one `per_request/tower-sessions-auth` runs),
//! counted by a wrapper around `MemoryStore`: issue #12's goal is no store
//! write per request beyond the throttled activity write (once per activity
//! interval, 60 s by default), so `per_request` measures reads only.
//!
//! `cargo test -p tower-sessions-auth-bench --test store_writes`

#[path = "../../tests/common/counted.rs"]
mod counted;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::http::StatusCode;
use counted::Counted;
use tower::ServiceExt as _;
use tower_sessions_auth_bench::{me_request, seed, tsa_router, Users};

/// The default activity interval (`TimeConfig::default`).
const INTERVAL: u64 = 60;
const REQUESTS: usize = 1_000;

async fn me_ok(app: &axum::Router, cookie: &str) {
    let response = app
        .clone()
        .oneshot(me_request(Some(cookie)))
        .await
        .expect("the router is infallible");
    assert_eq!(response.status(), StatusCode::OK);
}

/// Exactly the benchmark's setup (real clock): 1,000 requests right after
/// sign-in, well within the interval, write nothing.
#[tokio::test]
async fn the_benchmark_setup_writes_nothing_per_request() {
    let store = Counted::default();
    let app = tsa_router(Users::generate(1), store.clone(), |layer| layer);
    let cookie = seed(&app, [1]).await.expect("sign-in").remove(0);
    let after_login = store.writes();
    for _ in 0..REQUESTS {
        me_ok(&app, &cookie).await;
    }
    assert_eq!(
        store.writes() - after_login,
        0,
        "store writes over {REQUESTS} requests"
    );
}

/// With an injected clock: 1,000 requests spread over just under one
/// interval write nothing; one write per interval after that.
#[tokio::test]
async fn one_write_per_activity_interval() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let secs = Arc::new(AtomicU64::new(now));
    let clock = {
        let secs = secs.clone();
        move || UNIX_EPOCH + Duration::from_secs(secs.load(Ordering::SeqCst))
    };
    let store = Counted::default();
    let app = tsa_router(Users::generate(1), store.clone(), |layer| {
        layer.with_clock(clock)
    });
    let cookie = seed(&app, [1]).await.expect("sign-in").remove(0);
    let after_login = store.writes();
    for i in 0..REQUESTS as u64 {
        secs.store(now + i * (INTERVAL - 1) / REQUESTS as u64, Ordering::SeqCst);
        me_ok(&app, &cookie).await;
    }
    assert_eq!(store.writes() - after_login, 0, "within the interval");

    // Ten intervals, 100 requests in each: one write per interval.
    for interval in 1..=10u64 {
        for i in 0..100u64 {
            secs.store(
                now + interval * INTERVAL + i * (INTERVAL - 1) / 100,
                Ordering::SeqCst,
            );
            me_ok(&app, &cookie).await;
        }
        assert_eq!(
            store.writes() - after_login,
            usize::try_from(interval).unwrap(),
            "after {interval} intervals"
        );
    }
}
