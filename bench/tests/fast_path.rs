//! The benchmark's (f) server is what its report says it is: with the
//! cookies the driver gives wrk (the session's and the pass), a signed-in
//! `GET /me` does not reach the session store, where the same request
//! without the pass does; a sign-out refuses the pass; and the harness
//! notices a fast path that is off. Counted by a wrapper around
//! `MemoryStore`.
//!
//! `cargo test -p tower-sessions-auth-bench --test fast_path`

#[path = "../../tests/common/counted.rs"]
mod counted;

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
    Router,
};
use counted::Counted;
use tower::ServiceExt as _;
use tower_sessions_auth::registry::{MemoryRegistry, SessionRegistry};
use tower_sessions_auth_bench::{
    check_in_process, me_request, memory_registry, router, sign_in, Kind, Users, PASS_COOKIE,
};

const REQUESTS: usize = 1_000;

async fn me(app: &Router, cookie: &str) -> StatusCode {
    app.clone()
        .oneshot(me_request(Some(cookie)))
        .await
        .expect("the router is infallible")
        .status()
}

fn fast_app(store: Counted) -> Router {
    router(
        Kind::TsaFast,
        Users::generate(1),
        store,
        memory_registry(Kind::TsaFast),
    )
}

#[tokio::test]
async fn with_the_pass_no_request_loads_the_session() {
    let store = Counted::default();
    let app = fast_app(store.clone());
    let cookie = sign_in(Kind::TsaFast, &app, [1])
        .await
        .expect("sign-in and pass")
        .remove(0);
    assert!(cookie.starts_with("id=") && cookie.contains(&format!("; {PASS_COOKIE}=")));
    check_in_process(&app, &cookie)
        .await
        .expect("200 with the pass and no Set-Cookie, 401 without a cookie");

    let before = store.loads();
    for _ in 0..REQUESTS {
        assert_eq!(me(&app, &cookie).await, StatusCode::OK);
    }
    assert_eq!(
        store.loads() - before,
        0,
        "session loads over {REQUESTS} requests with the pass"
    );

    // The same requests without the pass take the full path: one load each.
    let session = cookie.split(';').next().expect("the session cookie");
    let before = store.loads();
    for _ in 0..100 {
        assert_eq!(me(&app, session).await, StatusCode::OK);
    }
    assert_eq!(store.loads() - before, 100, "without the pass");
}

#[tokio::test]
async fn a_sign_out_refuses_the_pass() {
    let app = fast_app(Counted::default());
    let cookie = sign_in(Kind::TsaFast, &app, [1])
        .await
        .expect("sign-in and pass")
        .remove(0);
    let logout = Request::post("/logout")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .expect("a valid request");
    let status = app
        .clone()
        .oneshot(logout)
        .await
        .expect("infallible")
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &cookie).await, StatusCode::UNAUTHORIZED);
}

/// Without live sessions the layer turns the fast path off: no pass, and
/// the harness says so (after waiting 10 s for one) rather than measuring
/// the full path as (f).
#[tokio::test]
async fn a_fast_path_that_is_off_is_noticed() {
    let app = router(
        Kind::TsaFast,
        Users::generate(1),
        Counted::default(),
        SessionRegistry::new(MemoryRegistry::default()),
    );
    let error = sign_in(Kind::TsaFast, &app, [1])
        .await
        .expect_err("no pass without live sessions");
    assert!(error.contains("set no tsa_pass cookie"), "{error}");

    // A stale pass with the session cookie: the full path answers, and
    // sets a cookie, which the check refuses.
    let app = fast_app(Counted::default());
    let fresh = sign_in(Kind::TsaFast, &app, [1])
        .await
        .expect("sign-in and pass")
        .remove(0);
    let session = fresh.split(';').next().expect("the session cookie");
    let forged = format!("{session}; {PASS_COOKIE}=not-a-pass");
    let error = check_in_process(&app, &forged)
        .await
        .expect_err("an unreadable pass does not sign in");
    assert!(error.contains("Set-Cookie"), "{error}");
}
