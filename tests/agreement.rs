//! The request path and the live check decide alike: each way a session
//! stops holding, made behind the layer's back (no notice, so each path
//! finds it by itself), ends an open watch and the next request for the
//! same reason; and a session that holds keeps both.
//!
//! Both paths call the one validity rule (`src/validity.rs`); this test
//! shows that what they hand it agrees.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Extension;
use common::{
    clock::TestClock,
    keys,
    live_app::{live_routes, Events, SocketLog},
    serve, Client, UserTable, Users, SECRET_A,
};
use serde_json::Value;
use tower_sessions::{MemoryStore, SessionManagerLayer};
use tower_sessions_auth::{
    live::LiveSessions,
    registry::{MemoryRegistry, RegistryStore as _, SessionRegistry},
    times::Lifetimes,
    AuthLayer,
};

const IDLE: u64 = 600;
const ABSOLUTE: u64 = 3600;
/// The registry's touch interval, and the layer's activity interval.
const INTERVAL: u64 = 60;

/// What changes behind the layer's back.
#[derive(Debug, Clone, Copy)]
enum Change {
    Nothing,
    Password,
    Epoch,
    UserDeleted,
    EntryRemoved,
    IdlePassed,
    LifetimePassed,
}

/// The reason the watch ended (`None`: still open after a few re-checks)
/// and the reason the next request gives (`none`: it is signed in).
async fn both_paths(change: Change) -> (Option<String>, String) {
    let (users, store, clock) = (
        Users::with_defaults(),
        MemoryRegistry::default(),
        TestClock::new(),
    );
    let live = LiveSessions::new().with_recheck_period(Duration::from_millis(200));
    let registry = SessionRegistry::new(store.clone())
        .with_touch_interval(Duration::from_secs(INTERVAL))
        .with_live_sessions(live);
    let layer = AuthLayer::new(users.clone(), keys(SECRET_A, &[]))
        .with_clock(clock.reader())
        .with_activity_interval(Duration::from_secs(INTERVAL))
        .with_lifetimes(Lifetimes::new(
            Duration::from_secs(IDLE),
            Duration::from_secs(ABSOLUTE),
        ))
        .with_registry(registry);
    let base = serve(
        live_routes(users.clone())
            .layer(Extension(SocketLog::default()))
            .layer(layer)
            .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false)),
    )
    .await;
    let browser = Client::new();
    browser.post(&format!("{base}/login/1"), "").await;
    let sessions: Value =
        serde_json::from_str(&browser.get(&format!("{base}/sessions")).await.body).unwrap();
    let handle = sessions[0]["handle"].as_str().unwrap().to_owned();
    let mut events = Events::open(browser.open(&format!("{base}/events")).await).await;

    match change {
        Change::Nothing => {}
        Change::Password => {
            users.set_password(1, "changed in the database").await;
        }
        Change::Epoch => {
            users.bump_epoch(1).await;
        }
        Change::UserDeleted => users.delete(1).await,
        Change::EntryRemoved => {
            assert!(store.remove("1", &handle).await.unwrap());
        }
        // Past the idle timeout and the touch interval the registry's
        // last-seen time allows for.
        Change::IdlePassed => clock.set(clock.now() + IDLE + INTERVAL),
        Change::LifetimePassed => {
            // Active all along: a request every interval keeps it from
            // idling, until its absolute lifetime passes.
            for _ in 1..ABSOLUTE / INTERVAL {
                clock.set(clock.now() + INTERVAL);
                let reply = browser.get(&format!("{base}/why")).await;
                assert_eq!(reply.body, "none", "{change:?}: still signed in");
            }
            clock.set(clock.now() + INTERVAL);
        }
    }
    let watch = events.ended(Duration::from_secs(3)).await;
    let request = browser.get(&format!("{base}/why")).await.body;
    (watch, request)
}

#[tokio::test]
async fn a_watch_and_a_request_end_a_session_for_the_same_reason() {
    let cases = [
        (Change::Password, "credential_changed"),
        (Change::Epoch, "epoch_changed"),
        (Change::UserDeleted, "user_gone"),
        (Change::EntryRemoved, "revoked"),
        (Change::IdlePassed, "expired"),
        (Change::LifetimePassed, "expired"),
    ];
    for (change, reason) in cases {
        let (watch, request) = both_paths(change).await;
        assert_eq!(watch.as_deref(), Some(reason), "{change:?}: the watch");
        assert_eq!(request, reason, "{change:?}: the request");
    }
}

#[tokio::test]
async fn a_session_that_holds_keeps_its_watch_and_its_requests() {
    let (watch, request) = both_paths(Change::Nothing).await;
    assert_eq!(watch, None, "the watch stays open");
    assert_eq!(request, "none", "the request is signed in");
}
