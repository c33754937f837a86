//! A browser's parallel requests during its own password change never sign
//! it out; a password changed by another session still ends this one.
//!
//! The window: a request of the browser reads the session record (the old
//! hash) before `update_session_auth_hash` of the same browser rotates the
//! id, and loads the user after the new password hash was stored. The hash
//! no longer verifies, but the session was not ended: its browser moved on
//! to a new id. Deterministic: a gate in front of the user backend holds
//! that request's user lookup until the password change has returned.
//!
//! Run on the memory store and on Redis (`REDIS_URL`), each with and
//! without a session registry.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    keys, routes, serve, service_url,
    services::{redis_store, Tracker},
    Client, Reply, TestUser, UserTable, Users, COOKIE, SECRET_A,
};
use reqwest::StatusCode;
use tokio::sync::{mpsc, Semaphore};
use tower_sessions::{SessionManagerLayer, SessionStore};
use tower_sessions_auth::{
    registry::{MemoryRegistry, SessionRegistry},
    AuthLayer, UserBackend,
};

/// A bound on every wait, so that a broken gate fails the test instead of
/// hanging it. Nothing waits for it to pass.
const PATIENCE: Duration = Duration::from_secs(20);

/// Where a held lookup reports, and what lets it go on.
type Gate = (mpsc::UnboundedSender<()>, Arc<Semaphore>);

/// The user table behind a gate: once armed, the next lookup waits until
/// released, then reads the table as it is by then.
#[derive(Clone)]
struct GatedUsers {
    users: Users,
    gate: Arc<Mutex<Option<Gate>>>,
}

impl GatedUsers {
    /// Holds the next lookup; returns where it reports and what opens it.
    fn hold_next(&self) -> (mpsc::UnboundedReceiver<()>, Arc<Semaphore>) {
        let (parked, arrived) = mpsc::unbounded_channel();
        let open = Arc::new(Semaphore::new(0));
        *self.gate.lock().unwrap() = Some((parked, open.clone()));
        (arrived, open)
    }
}

impl UserBackend for GatedUsers {
    type User = TestUser;
    type Error = <Users as UserBackend>::Error;

    async fn get_user(&self, id: &u64) -> Result<Option<TestUser>, Self::Error> {
        let gate = self.gate.lock().unwrap().take();
        if let Some((parked, open)) = gate {
            let _ = parked.send(());
            open.acquire().await.unwrap().forget();
        }
        self.users.get_user(id).await
    }
}

impl UserTable for GatedUsers {
    async fn find(&self, id: u64) -> Option<TestUser> {
        self.users.find(id).await
    }
    async fn set_password(&self, id: u64, new_password: &str) -> Option<TestUser> {
        self.users.set_password(id, new_password).await
    }
    async fn bump_epoch(&self, id: u64) -> Option<TestUser> {
        self.users.bump_epoch(id).await
    }
    async fn delete(&self, id: u64) {
        self.users.delete(id).await;
    }
}

async fn patiently<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("the test waited too long: a request never reached the gate or never finished")
}

/// The Set-Cookie values of the session cookie in `reply`.
fn session_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .filter(|cookie| cookie.starts_with(&format!("{COOKIE}=")))
        .collect()
}

async fn start<S: SessionStore + Clone>(store: S, users: &GatedUsers, registry: bool) -> String {
    let mut layer = AuthLayer::new(users.clone(), keys(SECRET_A, &[]));
    if registry {
        layer = layer.with_registry(SessionRegistry::new(MemoryRegistry::default()));
    }
    serve(
        routes(users.clone())
            .layer(layer)
            .layer(SessionManagerLayer::new(store).with_secure(false)),
    )
    .await
}

/// Sends `GET /identity` from `browser` and returns once its user lookup
/// waits at the gate, with the reply to come.
async fn held_request(
    users: &GatedUsers,
    browser: &Client,
    base: &str,
) -> (tokio::task::JoinHandle<Reply>, Arc<Semaphore>) {
    let (mut arrived, open) = users.hold_next();
    let (browser, url) = (browser.clone(), format!("{base}/identity"));
    let reply = tokio::spawn(async move { browser.get(&url).await });
    patiently(arrived.recv()).await.unwrap();
    (reply, open)
}

/// The browser changes its own password while one of its requests is held
/// between its record read and its user lookup.
async fn own_change_keeps_the_browser<S: SessionStore + Clone>(store: S, registry: bool) {
    let users = GatedUsers {
        users: Users::with_defaults(),
        gate: Arc::default(),
    };
    let base = start(store, &users, registry).await;
    let browser = Client::new();
    browser.post(&format!("{base}/login/1"), "").await;
    let old_id = browser.session_id(&base).unwrap();

    let (late, open) = held_request(&users, &browser, &base).await;
    let reply = browser
        .post(&format!("{base}/password/1"), "new password")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let new_id = browser.session_id(&base).unwrap();
    assert_ne!(new_id, old_id, "the change rotated the id");

    open.add_permits(1);
    let late = patiently(late).await.unwrap();
    assert_eq!(
        (late.status, late.body.as_str()),
        (StatusCode::OK, "anonymous"),
        "registry {registry}: the rotated-away session is nobody"
    );
    assert!(
        session_cookies(&late).is_empty(),
        "registry {registry}: the late response touches the cookie: {:?}",
        session_cookies(&late)
    );
    // The browser keeps its new session, and its registry entry lives.
    assert_eq!(browser.session_id(&base), Some(new_id));
    let identity = browser.get(&format!("{base}/identity")).await;
    assert_eq!(identity.body, "authenticated:alice", "registry {registry}");
}

/// Another browser changes the password while this browser's request is
/// held: this session really ends, and its cookie is removed.
async fn change_elsewhere_still_ends<S: SessionStore + Clone>(store: S, registry: bool) {
    let users = GatedUsers {
        users: Users::with_defaults(),
        gate: Arc::default(),
    };
    let base = start(store, &users, registry).await;
    let (this, other) = (Client::new(), Client::new());
    this.post(&format!("{base}/login/1"), "").await;
    other.post(&format!("{base}/login/1"), "").await;

    let (late, open) = held_request(&users, &this, &base).await;
    let reply = other
        .post(&format!("{base}/password/1"), "new password")
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    open.add_permits(1);
    let late = patiently(late).await.unwrap();
    assert_eq!(late.body, "anonymous", "registry {registry}");
    let cookies = session_cookies(&late);
    assert!(
        cookies.iter().any(|cookie| cookie.contains("Max-Age=0")),
        "registry {registry}: the ended session's cookie is removed: {cookies:?}"
    );
    assert_eq!(this.session_id(&base), None);
    let identity = other.get(&format!("{base}/identity")).await;
    assert_eq!(identity.body, "authenticated:alice", "registry {registry}");
}

#[tokio::test]
async fn a_browser_changing_its_own_password_stays_signed_in_on_memory() {
    for registry in [false, true] {
        own_change_keeps_the_browser(tower_sessions::MemoryStore::default(), registry).await;
        change_elsewhere_still_ends(tower_sessions::MemoryStore::default(), registry).await;
    }
}

#[tokio::test]
async fn a_browser_changing_its_own_password_stays_signed_in_on_redis() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let tracker = Tracker::redis(&url);
    for registry in [false, true] {
        own_change_keeps_the_browser(redis_store(&url, &tracker).await, registry).await;
        change_elsewhere_still_ends(redis_store(&url, &tracker).await, registry).await;
    }
}
