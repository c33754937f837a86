//! What the events hook costs the request path: the same requests through
//! the tower-sessions-auth router with and without
//! `AuthLayer::with_events`, in process over a `MemoryStore`.
//!
//! `cargo bench -p tower-sessions-auth-bench --bench events`
//!
//! `sign_in_out/events` minus `sign_in_out/no_events` is the cost of two
//! events (signed in, signed out: capturing the chosen request details,
//! queueing each, and the delivery task handing it to the hook). Each
//! iteration signs in and out again, so the store keeps its size. `me/*` is
//! a signed-in request, which emits no event: the difference should be nil.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
    Router,
};
use criterion::{criterion_group, criterion_main, Criterion};
use tower::ServiceExt as _;
use tower_sessions::MemoryStore;
use tower_sessions_auth::events::{AuthEvent, Events};
use tower_sessions_auth_bench::{check_in_process, login, me_request, tsa_router, Users};

/// Signs user 1 in and out again.
async fn sign_in_out(app: Router) {
    let cookie = login(app.clone(), 1).await.expect("signed in");
    let logout = Request::post("/logout")
        .header(header::COOKIE, cookie)
        .header(header::USER_AGENT, "criterion")
        .body(Body::empty())
        .expect("a valid request");
    let response = app.oneshot(logout).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

fn events(c: &mut Criterion) {
    // One thread: the delivery task runs between the requests, on the same
    // thread, so the time includes the whole work of an event. Two: the
    // delivery task sleeps on a worker thread of its own and each event
    // wakes it, as on an idle server.
    let current_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the benchmark");
    let multi_thread = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime for the benchmark");
    for (flavor, runtime) in [
        ("current_thread", current_thread),
        ("multi_thread", multi_thread),
    ] {
        let delivered = Arc::new(AtomicU64::new(0));
        let without = tsa_router(Users::generate(1), MemoryStore::default(), |layer| layer);
        let with = {
            let delivered = delivered.clone();
            tsa_router(Users::generate(1), MemoryStore::default(), move |layer| {
                layer.with_events(
                    Events::new(move |_: AuthEvent<u64>| {
                        delivered.fetch_add(1, Ordering::Relaxed);
                        async {}
                    })
                    .capture_header(header::USER_AGENT),
                )
            })
        };
        let apps = [("no_events", &without), ("events", &with)];

        let mut group = c.benchmark_group(format!("events_{flavor}"));
        for (name, app) in apps {
            let cookie = runtime
                .block_on(login(app.clone(), 1))
                .expect("signing the benchmark user in");
            runtime
                .block_on(check_in_process(app, &cookie))
                .expect("the router answers 200 with the cookie and 401 without");
            group.bench_function(format!("me/{name}"), |b| {
                b.to_async(&runtime)
                    .iter(|| app.clone().oneshot(me_request(Some(&cookie))));
            });
        }
        for (name, app) in apps {
            group.bench_function(format!("sign_in_out/{name}"), |b| {
                b.to_async(&runtime).iter(|| sign_in_out(app.clone()));
            });
        }
        group.finish();
        assert!(
            delivered.load(Ordering::Relaxed) > 0,
            "the hook received the events"
        );
    }
}

criterion_group!(benches, events);
criterion_main!(benches);
