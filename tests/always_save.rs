//! `SessionManagerLayer::with_always_save(true)`: every response saves the
//! session. A cookie whose record is gone (expired, deleted, or from before
//! a restart of a volatile Redis) is anonymous, never a `500`, and a
//! signed-in session keeps working.
//!
//! Redis needs `REDIS_URL`: its store saves with `SET … XX`, which fails on
//! a record that no longer exists.

#![allow(clippy::unwrap_used)]

mod common;

use common::{
    keys, routes, serve, service_url,
    services::{redis_store, Tracker},
    Client, Users, SECRET_A,
};
use reqwest::StatusCode;
use tower_sessions::{MemoryStore, SessionManagerLayer, SessionStore};
use tower_sessions_auth::AuthLayer;

async fn start<S: SessionStore + Clone>(store: S) -> String {
    let users = Users::with_defaults();
    serve(
        routes(users.clone())
            .layer(AuthLayer::new(users, keys(SECRET_A, &[])))
            .layer(
                SessionManagerLayer::new(store)
                    .with_secure(false)
                    .with_always_save(true),
            ),
    )
    .await
}

async fn a_cookie_without_a_record_is_anonymous<S: SessionStore + Clone>(store: S) {
    let base = start(store.clone()).await;
    let browser = Client::new();
    let reply = browser.post(&format!("{base}/login/1"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    for _ in 0..3 {
        let reply = browser.get(&format!("{base}/identity")).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "authenticated:alice")
        );
    }

    // The record goes away behind the browser's back.
    let id = browser.session_id(&base).unwrap();
    store.delete(&id).await.unwrap();
    for _ in 0..3 {
        let reply = browser.get(&format!("{base}/identity")).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "a stale cookie is anonymous, not a failure"
        );
    }
    // And the browser can sign in again.
    let reply = browser.post(&format!("{base}/login/1"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = browser.get(&format!("{base}/identity")).await;
    assert_eq!(reply.body, "authenticated:alice");
}

#[tokio::test]
async fn always_save_answers_a_stale_cookie_as_anonymous_on_memory() {
    a_cookie_without_a_record_is_anonymous(MemoryStore::default()).await;
}

#[tokio::test]
async fn always_save_answers_a_stale_cookie_as_anonymous_on_redis() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let tracker = Tracker::redis(&url);
    a_cookie_without_a_record_is_anonymous(redis_store(&url, &tracker).await).await;
}
