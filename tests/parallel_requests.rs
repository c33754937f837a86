//! Parallel requests never sign a browser out.
//!
//! A browser sends several requests at once with the same cookie (a page and
//! its images, tabs restored together). When one of them re-signs the
//! session or changes its id, the others are already under way with the
//! cookie they started with. None of them may answer with a `Set-Cookie`
//! that removes the session cookie or sets another id: whichever response
//! reaches the browser last decides which cookie it keeps. And once a
//! rotation has returned, none carrying the old id is answered as the user.
//!
//! Deterministic: a gate in front of the session store holds the loads of the
//! browser's session id until the test releases them, so the 16 requests read
//! the store exactly when the test says (one before the others, all before
//! any writes, or all after the rotation). Run on the memory store and on
//! Redis.
//!
//! Redis needs `REDIS_URL` (e.g. `redis://127.0.0.1:6379`).

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use common::{
    app, keys, serve, service_url,
    services::{redis_store, Tracker},
    Client, Reply, Users, COOKIE, SECRET_A, SECRET_B,
};
use reqwest::StatusCode;
use tokio::sync::{mpsc, Semaphore};
use tower_sessions::{
    cookie::Cookie,
    session::{Id, Record},
    session_store, MemoryStore, SessionStore,
};

/// Requests of one browser in flight at once.
const IN_FLIGHT: usize = 16;

/// A bound on every wait, so that a broken gate fails the test instead of
/// hanging it. Nothing waits for it to pass.
const PATIENCE: Duration = Duration::from_secs(20);

/// A session store that holds loads of one id, once armed, until released,
/// and remembers the ids it created.
#[derive(Clone, Debug)]
struct Held<S> {
    inner: S,
    hold: Arc<Mutex<Option<Hold>>>,
    created: Arc<Mutex<Vec<Id>>>,
}

#[derive(Debug)]
struct Hold {
    id: Id,
    /// How many more loads of `id` to hold; later ones pass.
    left: usize,
    at: At,
    parked: mpsc::UnboundedSender<()>,
    open: Arc<Semaphore>,
}

/// Where a held load waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before it reads the store: it reads what the store holds once
    /// released.
    BeforeRead,
    /// After it read the store: it returns what the store held when it
    /// arrived.
    AfterRead,
}

/// The test's side of a [`Hold`].
struct Gate {
    parked: mpsc::UnboundedReceiver<()>,
    open: Arc<Semaphore>,
}

impl<S> Held<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            hold: Arc::default(),
            created: Arc::default(),
        }
    }

    /// Holds the next `count` loads of `id` at `at`.
    fn hold(&self, id: Id, count: usize, at: At) -> Gate {
        let (parked_tx, parked_rx) = mpsc::unbounded_channel();
        let open = Arc::new(Semaphore::new(0));
        *self.hold.lock().unwrap() = Some(Hold {
            id,
            left: count,
            at,
            parked: parked_tx,
            open: open.clone(),
        });
        Gate {
            parked: parked_rx,
            open,
        }
    }
}

impl Gate {
    /// Returns once `count` more loads wait at the gate.
    async fn parked(&mut self, count: usize) {
        for _ in 0..count {
            patiently(self.parked.recv()).await.unwrap();
        }
    }

    /// Lets `count` waiting loads through, in the order they arrived.
    fn release(&self, count: usize) {
        self.open.add_permits(count);
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for Held<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await?;
        self.created.lock().unwrap().push(record.id);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let held = match self.hold.lock().unwrap().as_mut() {
            Some(hold) if hold.id == *id && hold.left > 0 => {
                hold.left -= 1;
                Some((hold.at, hold.parked.clone(), hold.open.clone()))
            }
            _ => None,
        };
        let Some((at, parked, open)) = held else {
            return self.inner.load(id).await;
        };
        let read = match at {
            At::BeforeRead => None,
            At::AfterRead => Some(self.inner.load(id).await),
        };
        let _ = parked.send(());
        open.acquire().await.unwrap().forget();
        match read {
            Some(read) => read,
            None => self.inner.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await
    }
}

async fn patiently<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("the test waited too long: a request never reached the gate or never finished")
}

/// The session cookies a response sets (or removes).
fn session_cookies(reply: &Reply) -> Vec<Cookie<'static>> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| Cookie::parse(value.to_str().unwrap().to_owned()).unwrap())
        .filter(|cookie| cookie.name() == COOKIE)
        .collect()
}

fn show(cookies: &[Cookie<'_>]) -> Vec<String> {
    cookies.iter().map(ToString::to_string).collect()
}

fn is_removal(cookie: &Cookie<'_>) -> bool {
    cookie.value().is_empty() || cookie.max_age().is_some_and(|age| !age.is_positive())
}

/// Sends `IN_FLIGHT` times `GET {url}` from `browser`, all with the cookie
/// the browser holds now; each finished reply arrives on the receiver.
fn in_flight(browser: &Client, url: &str) -> mpsc::UnboundedReceiver<Reply> {
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    for _ in 0..IN_FLIGHT {
        let (browser, url, done) = (browser.clone(), url.to_owned(), done_tx.clone());
        tokio::spawn(async move {
            let _ = done.send(browser.get(&url).await);
        });
    }
    done_rx
}

async fn collect(done: &mut mpsc::UnboundedReceiver<Reply>, count: usize) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(count);
    for _ in 0..count {
        replies.push(patiently(done.recv()).await.unwrap());
    }
    replies
}

async fn identity(browser: &Client, base: &str) -> String {
    let reply = browser.get(&format!("{base}/identity")).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body
}

/// When the 16 requests of a fallback-signed session read it, relative to
/// one another.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// One request reads and re-signs the session; the 15 others read it
    /// afterwards.
    OneFirst,
    /// All 16 have read the fallback-signed session before any re-signs it.
    AllReadFirst,
}

/// A browser signed in under secret A sends 16 requests at once to an
/// instance that signs with B and keeps A as a fallback.
async fn lazy_resign<S: SessionStore + Clone>(store: Held<S>, order: Order) {
    let users = Users::with_defaults();
    let old = serve(app(store.clone(), users.clone(), keys(SECRET_A, &[]))).await;
    let rotating = serve(app(
        store.clone(),
        users.clone(),
        keys(SECRET_B, &[SECRET_A]),
    ))
    .await;
    let rotated = serve(app(store.clone(), users, keys(SECRET_B, &[]))).await;

    let browser = Client::new();
    browser.post(&format!("{old}/login/1"), "").await;
    let id = browser.session_id(&old).unwrap();

    let at = match order {
        Order::OneFirst => At::BeforeRead,
        Order::AllReadFirst => At::AfterRead,
    };
    let mut gate = store.hold(id, IN_FLIGHT, at);
    let mut done = in_flight(&browser, &format!("{rotating}/identity"));
    gate.parked(IN_FLIGHT).await;
    let replies = match order {
        Order::OneFirst => {
            gate.release(1);
            let mut replies = collect(&mut done, 1).await;
            gate.release(IN_FLIGHT - 1);
            replies.extend(collect(&mut done, IN_FLIGHT - 1).await);
            replies
        }
        Order::AllReadFirst => {
            gate.release(IN_FLIGHT);
            collect(&mut done, IN_FLIGHT).await
        }
    };

    for reply in &replies {
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "authenticated:alice"),
            "{order:?}: every request is answered as the user"
        );
    }
    for reply in &replies {
        for cookie in session_cookies(reply) {
            assert!(!is_removal(&cookie), "{order:?}: cookie removed: {cookie}");
            assert_eq!(
                cookie.value(),
                id.to_string(),
                "{order:?}: a response set another session id"
            );
        }
    }
    // The browser applied every response: it holds its session, now signed
    // with the current secret alone.
    assert_eq!(browser.session_id(&old), Some(id));
    assert_eq!(identity(&browser, &rotating).await, "authenticated:alice");
    assert_eq!(identity(&browser, &rotated).await, "authenticated:alice");
}

/// What changes the session id while the 16 requests are held.
#[derive(Debug, Clone, Copy)]
enum Rotation {
    /// An anonymous session with a cart signs in as alice.
    Login,
    /// Alice signs in again: only the id changes (ASVS 7.2.4).
    LoginAgain,
    /// Alice changes her password; her other sessions end.
    PasswordChange,
    /// The administrator resets bob's password: only the administrator's
    /// session id changes, nothing of theirs is revoked.
    AdminResetsAnother,
}

const ROTATIONS: [Rotation; 4] = [
    Rotation::Login,
    Rotation::LoginAgain,
    Rotation::PasswordChange,
    Rotation::AdminResetsAnother,
];

/// Holds 16 requests of a browser at their session load, rotates the
/// session's id with a 17th request, then lets the 16 through: they carry
/// the rotated-away id.
async fn rotation_under_way<S: SessionStore + Clone>(store: Held<S>, rotation: Rotation) {
    let base = serve(app(
        store.clone(),
        Users::with_defaults(),
        keys(SECRET_A, &[]),
    ))
    .await;
    let browser = Client::new();
    let (setup, user) = match rotation {
        Rotation::Login => ("/cart", "alice"),
        Rotation::LoginAgain | Rotation::PasswordChange => ("/login/1", "alice"),
        Rotation::AdminResetsAnother => ("/login/3", "admin"),
    };
    let reply = browser.post(&format!("{base}{setup}"), "3 apples").await;
    assert_eq!(reply.status, StatusCode::OK);
    let old_id = browser.session_id(&base).unwrap();

    let mut gate = store.hold(old_id, IN_FLIGHT, At::BeforeRead);
    let mut done = in_flight(&browser, &format!("{base}/identity"));
    gate.parked(IN_FLIGHT).await;

    let path = match rotation {
        Rotation::Login | Rotation::LoginAgain => "/login/1",
        Rotation::PasswordChange => "/password/1",
        Rotation::AdminResetsAnother => "/password/2",
    };
    let reply = browser.post(&format!("{base}{path}"), "new password").await;
    assert_eq!(reply.status, StatusCode::OK, "{rotation:?}");
    let new_id = browser.session_id(&base).unwrap();
    assert_ne!(new_id, old_id, "{rotation:?}: the id rotated");

    gate.release(IN_FLIGHT);
    for reply in collect(&mut done, IN_FLIGHT).await {
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "{rotation:?}: the rotated-away id is nobody"
        );
        let cookies = session_cookies(&reply);
        assert!(
            cookies.is_empty(),
            "{rotation:?}: a late response sets the session cookie: {:?}",
            show(&cookies)
        );
    }
    // The browser applied every response and still holds the new id.
    assert_eq!(browser.session_id(&base), Some(new_id), "{rotation:?}");
    // Of the records created, only the browser's is left.
    let created = store.created.lock().unwrap().clone();
    for id in created {
        let left = store.inner.load(&id).await.unwrap().is_some();
        assert_eq!(left, id == new_id, "{rotation:?}: a record was left behind");
    }
    assert_eq!(
        identity(&browser, &base).await,
        format!("authenticated:{user}"),
        "{rotation:?}"
    );
    if matches!(rotation, Rotation::Login) {
        let cart = browser.get(&format!("{base}/cart")).await;
        assert_eq!(cart.body, "3 apples", "the cart came along");
    }
}

#[tokio::test]
async fn lazy_resign_keeps_every_request_signed_in_on_memory() {
    for order in [Order::OneFirst, Order::AllReadFirst] {
        lazy_resign(Held::new(MemoryStore::default()), order).await;
    }
}

#[tokio::test]
async fn lazy_resign_keeps_every_request_signed_in_on_redis() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let tracker = Tracker::redis(&url);
    for order in [Order::OneFirst, Order::AllReadFirst] {
        lazy_resign(Held::new(redis_store(&url, &tracker).await), order).await;
    }
}

#[tokio::test]
async fn late_requests_of_a_rotated_id_keep_the_new_cookie_on_memory() {
    for rotation in ROTATIONS {
        rotation_under_way(Held::new(MemoryStore::default()), rotation).await;
    }
}

#[tokio::test]
async fn late_requests_of_a_rotated_id_keep_the_new_cookie_on_redis() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let tracker = Tracker::redis(&url);
    for rotation in ROTATIONS {
        rotation_under_way(Held::new(redis_store(&url, &tracker).await), rotation).await;
    }
}
