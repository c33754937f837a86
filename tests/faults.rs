//! Faults: the session store (Redis or Postgres) or the user table (Postgres) out of
//! reach, through a test-owned TCP proxy that is cut (connections closed,
//! new ones refused) or stalled (nothing answers), then restored.
//!
//! While a service is out, every request that needs it fails closed: a 500,
//! never signed in, never anonymous in a way that loses the session; the
//! handler does not run, so nothing is half done. Failures come within the
//! clients' timeouts rather than hanging. Once the service is back, the same
//! session works again without a restart, with its data, and nothing has
//! panicked.
//!
//! Needs `REDIS_URL` and `DATABASE_URL`.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use common::{
    app,
    cluster::{assert_anonymous, assert_signed_in_as, signed_in},
    keys,
    panics::{count_panics, panics},
    pg_users::PgUsers,
    proxy::{Mode, Proxy},
    record_exists, serve, service_url,
    services::{postgres_store, redis_store, Tracker},
    Client, Reply, UserTable, Users, SECRET_A,
};
use tokio::task::JoinSet;
use tower_sessions::{MemoryStore, SessionStore};

const ALICE: u64 = 1;
const BOB: u64 = 2;

/// A request to an unreachable service fails within this long: the clients'
/// timeout (1 s) and some slack for a loaded machine.
const FAIL_WITHIN: Duration = Duration::from_millis(2_500);

/// Service resumes within this long once the proxy is open again.
const RESUME_WITHIN: Duration = Duration::from_secs(10);

async fn timed(request: impl Future<Output = Reply>) -> Reply {
    tokio::time::timeout(FAIL_WITHIN, request)
        .await
        .unwrap_or_else(|_| panic!("no answer within {FAIL_WITHIN:?}"))
}

/// Asserts that every route that needs the session or the user fails closed
/// for `client`, quickly, and leaves its cookie alone. Each round sends one
/// request per route, all at once.
async fn assert_fails_closed(client: &Client, base: &str, rounds: usize) {
    let id = client.session_id(base);
    for _ in 0..rounds {
        let mut requests = JoinSet::new();
        for path in ["/me", "/maybe", "/identity", "/private", "/cart"] {
            let (client, url) = (client.clone(), format!("{base}{path}"));
            requests.spawn(async move { (format!("GET {path}"), timed(client.get(&url)).await) });
        }
        for path in ["/logout", "/logout-others", "/password/1", "/cart"] {
            let (client, url) = (client.clone(), format!("{base}{path}"));
            requests.spawn(async move {
                (
                    format!("POST {path}"),
                    timed(client.post(&url, "changed")).await,
                )
            });
        }
        while let Some(done) = requests.join_next().await {
            let (request, reply) = done.expect("a request task panicked");
            assert_eq!(
                reply.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{request} while out: {}",
                reply.body
            );
        }
    }
    assert_eq!(client.session_id(base), id, "the cookie is kept");
}

/// Polls `GET /me` until it is no longer a 5xx; on the way, no answer may be
/// anything but a 5xx or `name` signed in.
async fn assert_resumes_as(client: &Client, base: &str, name: &str) {
    let deadline = Instant::now() + RESUME_WITHIN;
    loop {
        let reply = client.get(&format!("{base}/me")).await;
        if !reply.status.is_server_error() {
            assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, name));
            return;
        }
        assert!(Instant::now() < deadline, "service did not resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The session store goes away under a signed-in session.
///
/// `store` reaches the service through `proxy`; `direct` does not.
async fn store_out_of_reach<S: SessionStore + Clone>(
    proxy: &Proxy,
    store: S,
    direct: S,
    mode: Mode,
    rounds: usize,
) {
    count_panics();
    let panics_before = panics();
    let users = Users::with_defaults();
    let base = serve(app(store, users.clone(), keys(SECRET_A, &[]))).await;

    let alice = signed_in(&base, ALICE).await;
    alice.post(&format!("{base}/cart"), "3 apples").await;
    let id = alice.session_id(&base).unwrap();
    let password_before = users.get(ALICE).unwrap().password_hash;

    proxy.set(mode);
    assert_fails_closed(&alice, &base, rounds).await;
    assert_eq!(
        users.get(ALICE).unwrap().password_hash,
        password_before,
        "no handler ran"
    );
    // A visitor without a session needs no store to read a public page; one
    // that writes session data fails, rather than losing it silently.
    let visitor = Client::new();
    let reply = timed(visitor.get(&format!("{base}/maybe"))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    let reply = timed(visitor.post(&format!("{base}/cart"), "1 plum")).await;
    assert!(reply.status.is_server_error(), "{reply:?}");

    proxy.set(Mode::Open);
    assert_resumes_as(&alice, &base, "alice").await;
    assert_eq!(alice.session_id(&base), Some(id), "the same session");
    assert!(record_exists(&direct, id).await);
    assert_eq!(alice.get(&format!("{base}/cart")).await.body, "3 apples");
    assert_eq!(panics(), panics_before, "nothing panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cut_fails_closed_and_recovers() {
    redis_out_of_reach(Mode::Cut, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stall_times_out_and_recovers() {
    redis_out_of_reach(Mode::Stall, 1).await;
}

async fn redis_out_of_reach(mode: Mode, rounds: usize) {
    let Some(redis) = service_url("REDIS_URL") else {
        return;
    };
    let proxy = Proxy::start(&redis).await;
    let tracker = Tracker::redis(&redis);
    let store = redis_store(&proxy.url(&redis), &tracker).await;
    let direct = redis_store(&redis, &tracker).await;
    store_out_of_reach(&proxy, store, direct, mode, rounds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_cut_fails_closed_and_recovers() {
    postgres_store_out_of_reach(Mode::Cut, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_stall_times_out_and_recovers() {
    postgres_store_out_of_reach(Mode::Stall, 1).await;
}

/// The Postgres session store (its schema shared with a user table that
/// this test does not use) behind the proxy.
async fn postgres_store_out_of_reach(mode: Mode, rounds: usize) {
    let Some(database) = service_url("DATABASE_URL") else {
        return;
    };
    let proxy = Proxy::start(&database).await;
    let schema = PgUsers::create(&database).await;
    let direct = postgres_store(&database, schema.schema()).await;
    let store = postgres_store(&proxy.url(&database), schema.schema()).await;
    store_out_of_reach(&proxy, store, direct, mode, rounds).await;
}

/// The user table goes away under two signed-in sessions; alice's password
/// changes (on the database, directly) while the instance cannot see it.
async fn postgres_users_out_of_reach(mode: Mode, rounds: usize) {
    let Some(database) = service_url("DATABASE_URL") else {
        return;
    };
    count_panics();
    let panics_before = panics();
    let proxy = Proxy::start(&database).await;
    let table = PgUsers::create(&database).await;
    let users = table.connect(&proxy.url(&database)).await;
    let store = MemoryStore::default();
    let base = serve(app(store.clone(), users, keys(SECRET_A, &[]))).await;

    let alice = signed_in(&base, ALICE).await;
    let bob = signed_in(&base, BOB).await;
    bob.post(&format!("{base}/cart"), "2 pears").await;
    let (alice_id, bob_id) = (
        alice.session_id(&base).unwrap(),
        bob.session_id(&base).unwrap(),
    );

    proxy.set(mode);
    assert_fails_closed(&bob, &base, rounds).await;
    table
        .set_password(ALICE, "changed during the outage")
        .await
        .unwrap();
    let reply = timed(alice.get(&format!("{base}/me"))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(record_exists(&store, alice_id).await, "nothing flushed");
    assert!(record_exists(&store, bob_id).await, "nothing flushed");

    proxy.set(Mode::Open);
    assert_resumes_as(&bob, &base, "bob").await;
    assert_eq!(bob.session_id(&base), Some(bob_id), "the same session");
    assert_eq!(bob.get(&format!("{base}/cart")).await.body, "2 pears");
    // The change made during the outage is seen at once: failing closed
    // kept no stale answer around.
    assert_anonymous(&alice, &base).await;
    assert!(!record_exists(&store, alice_id).await);
    assert_signed_in_as(&bob, &base, "bob").await;
    assert_eq!(panics(), panics_before, "nothing panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users_cut_fail_closed_and_recover() {
    postgres_users_out_of_reach(Mode::Cut, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users_stall_times_out_and_recovers() {
    postgres_users_out_of_reach(Mode::Stall, 1).await;
}
