//! The demo's session-time contract: "Keep me signed in" and the cookie's
//! lifetime (`DEMO_REMEMBER_DAYS`), the idle timeout and the maximum age
//! (`DEMO_IDLE_SECS`, `DEMO_MAX_AGE_SECS`) with the device list, and the
//! re-authentication window of the `/sessions` actions (`DEMO_SUDO_SECS`)
//! with `/confirm`. How the binary reads `DEMO_IDLE_SECS` and
//! `DEMO_MAX_AGE_SECS` is tested on the binary itself. The idle timeout
//! and the maximum age hold on SQLite, and on two instances sharing Redis
//! or Postgres sessions, where the fast path is on.
//!
//! The demo has no injectable clock: these tests wait for real, a few
//! seconds, with lifetimes of a few seconds. They run in parallel, so the
//! file takes about as long as its longest test.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader},
    process::{Child, Command},
};
use tower_sessions_auth_demo::Config;

use crate::common::{
    client::{config, location, page, set_cookies, signed_in, signed_up, Browser, PASSWORD},
    services::{two_on_postgres_with, SessionsIn},
    Server, TempDir,
};

/// A demo on a fresh SQLite file, with `adjust` applied to its
/// configuration.
async fn demo(adjust: impl FnOnce(&mut Config)) -> (Server, TempDir) {
    let db = TempDir::new("demo_time");
    let mut config = config(&db.sqlite_url());
    adjust(&mut config);
    (Server::start(config).await, db)
}

/// The session cookie that `response` sets.
fn session_cookie(response: &reqwest::Response) -> String {
    let cookies = set_cookies(response);
    cookies
        .iter()
        .find(|cookie| cookie.starts_with("demo_session="))
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"))
        .clone()
}

/// The `Max-Age` of `cookie`, if any.
fn max_age(cookie: &str) -> Option<u64> {
    cookie
        .split("; ")
        .find_map(|attribute| attribute.strip_prefix("Max-Age="))
        .map(|age| age.parse().unwrap())
}

fn has_no_lifetime(cookie: &str) -> bool {
    !cookie.contains("Max-Age") && !cookie.contains("Expires")
}

/// `GET /api/sessions` as `browser`: the `sessions` array.
async fn api_sessions(browser: &Browser, server: &Server) -> Vec<Value> {
    let response = browser.get(&server.url("/api/sessions")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

/// The handles `browser` lists, its own first.
async fn handles(browser: &Browser, server: &Server) -> Vec<String> {
    let mut sessions = api_sessions(browser, server).await;
    sessions.sort_by_key(|session| session["current"] != true);
    sessions
        .iter()
        .map(|session| session["handle"].as_str().unwrap().to_owned())
        .collect()
}

/// Keeps `browsers` in use (a request each every 400 ms, on each of
/// `servers`) until `deadline`.
async fn keep_busy(browsers: &[&Browser], servers: &[&Server], deadline: Instant) {
    while Instant::now() < deadline {
        for browser in browsers {
            for server in servers {
                assert!(browser.me(server).await.is_some(), "a busy session ended");
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// Idle timeout 2 s, maximum age 4 s.
fn short_lifetimes(config: &mut Config) {
    config.idle_timeout = Duration::from_secs(2);
    config.max_age = Duration::from_secs(4);
}

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

// ---------------------------------------------------------------------------
// Keep me signed in: the cookie's lifetime

#[tokio::test]
async fn remember_gives_the_cookie_a_max_age_of_the_remembered_days() {
    let (server, _db) = demo(|_| {}).await;
    signed_up(&server, "alice").await;

    let form = page(&Browser::new(), &server, "/login").await;
    assert!(
        form.contains(r#"<input type="checkbox" name="remember" value="1">"#),
        "{form}"
    );
    assert!(form.contains("Keep me signed in"), "{form}");

    let plain = Browser::new();
    let response = plain.login(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&response);
    assert!(has_no_lifetime(&cookie), "{cookie}");

    let kept = Browser::new();
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("remember", "1"),
    ];
    let response = kept.post(&server.url("/login"), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&response);
    assert_eq!(max_age(&cookie), Some(30 * 86_400), "{cookie}");
    assert!(!cookie.contains("Expires"), "{cookie}");
    assert_eq!(kept.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn api_login_remembers_for_demo_remember_days() {
    let (server, _db) = demo(|config| config.remember_days = 2).await;
    signed_up(&server, "alice").await;

    let client = Browser::new();
    let login = |remember: Option<bool>| {
        let mut body = json!({ "username": "alice", "password": PASSWORD });
        if let Some(remember) = remember {
            body["remember"] = json!(remember);
        }
        client
            .http()
            .post(server.url("/api/login"))
            .json(&body)
            .send()
    };
    let response = login(Some(true)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(max_age(&session_cookie(&response)), Some(2 * 86_400));
    for remember in [None, Some(false)] {
        let response = login(remember).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = session_cookie(&response);
        assert!(has_no_lifetime(&cookie), "{remember:?}: {cookie}");
    }
}

#[tokio::test]
async fn device_list_says_when_each_session_ends_if_unused() {
    let (server, _db) = demo(|config| {
        config.idle_timeout = Duration::from_secs(600);
        config.max_age = Duration::from_secs(3600);
        config.remember_days = 2;
    })
    .await;
    let plain = signed_up(&server, "alice").await;
    let kept = Browser::new();
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("remember", "1"),
    ];
    kept.post(&server.url("/login"), &form).await;

    for session in api_sessions(&plain, &server).await {
        let seen = at(session["last_seen_at"].as_str().unwrap());
        let ends = at(session["expires_at"].as_str().unwrap());
        let remembered = session["remembered"] == true;
        // Idle timeouts: 600 s, and a week capped by the 2 remembered days
        // (counted from sign-in, a moment before the last use).
        let expected = if remembered { 2 * 86_400 } else { 600 };
        let left = (ends - seen).whole_seconds();
        assert!(
            (expected - 2..=expected).contains(&left),
            "{left} s left, not {expected}: {session}"
        );
        assert_eq!(remembered, session["current"] == false, "{session}");
    }
    let body = page(&plain, &server, "/sessions").await;
    assert_eq!(body.matches("Ends if unused <time").count(), 2, "{body}");
    assert_eq!(body.matches(">in 10 minutes</time>").count(), 1, "{body}");
    assert_eq!(body.matches(">in 2 days</time>").count(), 1, "{body}");
    assert_eq!(body.matches("Kept signed in").count(), 1, "{body}");
    assert!(body.contains(r#"id="ends-note""#), "{body}");
}

// ---------------------------------------------------------------------------
// Idle timeout and maximum age

/// With [`short_lifetimes`]: an unused session ends, while one in use,
/// on `a` and `b` alike, stays.
async fn an_unused_session_ends(a: &Server, b: &Server) -> Vec<Browser> {
    let busy = signed_up(a, "alice").await;
    let unused = signed_in(b, "alice", PASSWORD).await;
    let started = Instant::now();
    let unused_handle = handles(&unused, b).await[0].clone();
    assert!(handles(&busy, a).await.contains(&unused_handle));

    keep_busy(&[&busy], &[a, b], started + Duration::from_millis(2_300)).await;
    // Not listed from another session before its own next request...
    let listed = handles(&busy, b).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(!listed.contains(&unused_handle));
    // ... and signed out on that request.
    assert_eq!(
        unused.get(&b.url("/api/me")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(handles(&busy, a).await.len(), 1);
    assert_eq!(busy.me(a).await.as_deref(), Some("alice"));
    vec![busy, unused]
}

#[tokio::test]
async fn an_unused_session_ends_and_leaves_the_list() {
    let (server, _db) = demo(short_lifetimes).await;
    an_unused_session_ends(&server, &server).await;
}

/// The same on two instances, with Redis sessions and the fast path: a
/// pass records no activity, yet a session in use does not reach its
/// idle timeout.
#[tokio::test]
async fn an_unused_session_ends_and_leaves_the_list_on_redis() {
    two_on_postgres_with(SessionsIn::Redis, short_lifetimes, |a, b, _| async move {
        an_unused_session_ends(&a, &b).await
    })
    .await;
}

#[tokio::test]
async fn an_unused_session_ends_and_leaves_the_list_on_postgres() {
    two_on_postgres_with(
        SessionsIn::Postgres,
        short_lifetimes,
        |a, b, _| async move { an_unused_session_ends(&a, &b).await },
    )
    .await;
}

/// With [`short_lifetimes`]: a session in use, on `a` and `b` alike,
/// outlives its idle timeout and ends at its maximum age.
async fn ends_at_its_maximum_age(a: &Server, b: &Server) -> Vec<Browser> {
    let old = signed_up(a, "alice").await;
    let started = Instant::now();
    let old_handle = handles(&old, a).await[0].clone();

    keep_busy(&[&old], &[a, b], started + Duration::from_millis(1_500)).await;
    let young = signed_in(b, "alice", PASSWORD).await;
    keep_busy(
        &[&old, &young],
        &[a, b],
        started + Duration::from_millis(2_600),
    )
    .await;
    assert!(handles(&young, b).await.contains(&old_handle));
    keep_busy(&[&young], &[a, b], started + Duration::from_millis(4_200)).await;

    // Past 4 s since sign-in: gone from the list, then signed out.
    let listed = handles(&young, a).await;
    assert!(!listed.contains(&old_handle), "{listed:?}");
    assert_eq!(
        old.get(&b.url("/api/me")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(young.me(a).await.as_deref(), Some("alice"));
    vec![old, young]
}

#[tokio::test]
async fn a_session_ends_at_its_maximum_age_however_busy() {
    let (server, _db) = demo(short_lifetimes).await;
    ends_at_its_maximum_age(&server, &server).await;
}

#[tokio::test]
async fn a_session_ends_at_its_maximum_age_however_busy_on_redis() {
    two_on_postgres_with(SessionsIn::Redis, short_lifetimes, |a, b, _| async move {
        ends_at_its_maximum_age(&a, &b).await
    })
    .await;
}

#[tokio::test]
async fn a_session_ends_at_its_maximum_age_however_busy_on_postgres() {
    two_on_postgres_with(
        SessionsIn::Postgres,
        short_lifetimes,
        |a, b, _| async move { ends_at_its_maximum_age(&a, &b).await },
    )
    .await;
}

// ---------------------------------------------------------------------------
// The binary's DEMO_IDLE_SECS and DEMO_MAX_AGE_SECS

/// How long the binary may take to start or to give up: a bound so that a
/// broken start fails the test instead of hanging it.
const BINARY_START: Duration = Duration::from_secs(60);

/// The demo binary on a fresh SQLite file in `db` and a free loopback
/// port, with `vars` and none of the `DEMO_` and `SESSION_` variables of
/// the test's own environment.
fn binary(db: &TempDir, vars: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tower-sessions-auth-demo"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("DEMO_") || name.starts_with("SESSION_") {
            command.env_remove(&*name);
        }
    }
    command
        .current_dir(db.path())
        .env("DATABASE_URL", db.sqlite_url())
        .env("SESSION_SECRET", "binary test secret, 32 bytes or more!!")
        .env("DEMO_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The URL the binary announces ("Demo running at …").
async fn announced_url(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let announced = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Demo running at ") {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    };
    let url = tokio::time::timeout(BINARY_START, announced).await.unwrap();
    url.unwrap_or_else(|| panic!("the demo did not start"))
}

/// Waits for the binary to end: its exit status and what it wrote to
/// standard error.
async fn refusal(mut child: Child) -> (ExitStatus, String) {
    let status = tokio::time::timeout(BINARY_START, child.wait())
        .await
        .expect("the demo neither started nor ended")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    (status, stderr)
}

#[tokio::test]
async fn a_maximum_age_alone_shorter_than_the_default_idle_timeout_is_a_plain_setting() {
    let db = TempDir::new("demo_binary");
    let mut child = binary(&db, &[("DEMO_MAX_AGE_SECS", "5")]);
    let url = announced_url(&mut child).await;
    let response = Browser::new().get(&format!("{url}login")).await;
    assert_eq!(response.status(), StatusCode::OK);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn an_idle_timeout_set_longer_than_the_maximum_age_is_refused_naming_both() {
    let db = TempDir::new("demo_binary");
    let child = binary(&db, &[("DEMO_IDLE_SECS", "10"), ("DEMO_MAX_AGE_SECS", "5")]);
    let (status, stderr) = refusal(child).await;
    assert!(!status.success(), "{status}");
    assert!(
        stderr.contains("DEMO_IDLE_SECS (10 s) must not be longer than DEMO_MAX_AGE_SECS (5 s)"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// The re-authentication window and /confirm

#[tokio::test]
async fn signing_devices_out_needs_a_recent_sign_in_or_confirmation() {
    let (server, _db) = demo(|config| config.sudo_window = Duration::from_secs(2)).await;
    let laptop = signed_up(&server, "alice").await;
    let phone = signed_in(&server, "alice", PASSWORD).await;
    let phone_handle = handles(&phone, &server).await[0].clone();
    tokio::time::sleep(Duration::from_millis(2_200)).await;

    // Outside the window: nothing is revoked.
    let response = laptop
        .post(&server.url("/sessions/logout-others"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/confirm?next=%2Fsessions");
    let response = laptop
        .post(
            &server.url("/sessions/revoke"),
            &[("handle", phone_handle.as_str())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/confirm?next=%2Fsessions");
    let revoke = server.url(&format!("/api/sessions/{phone_handle}"));
    let response = laptop.delete(&revoke).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "error": "reauthentication required" }));
    assert_eq!(phone.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(api_sessions(&laptop, &server).await.len(), 2);

    // The confirmation page carries `next`.
    let response = laptop.get(&server.url("/confirm?next=%2Fsessions")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(
        body.contains(r#"<input type="hidden" name="next" value="/sessions">"#),
        "{body}"
    );
    assert!(body.contains(r#"name="password""#), "{body}");

    // A wrong password: 401 with the form, the window stays closed.
    let wrong = [("password", "not the password"), ("next", "/sessions")];
    let response = laptop.post(&server.url("/confirm"), &wrong).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"action="/confirm""#), "{body}");
    assert_eq!(laptop.delete(&revoke).await.status(), StatusCode::FORBIDDEN);

    // The right one: back to `next`, and the actions work.
    let right = [("password", PASSWORD), ("next", "/sessions")];
    let response = laptop.post(&server.url("/confirm"), &right).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/sessions");
    assert_eq!(
        laptop.delete(&revoke).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(phone.me(&server).await, None);
    let other = signed_in(&server, "alice", PASSWORD).await;
    let response = laptop
        .post(&server.url("/sessions/logout-others"), &[])
        .await;
    assert_eq!(location(&response), "/");
    assert_eq!(other.me(&server).await, None);
    assert_eq!(laptop.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn confirm_goes_only_to_local_paths_and_needs_a_sign_in() {
    let (server, _db) = demo(|_| {}).await;
    let anonymous = Browser::new();
    let response = anonymous
        .get(&server.url("/confirm?next=%2Fsessions"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login?next="));

    let browser = signed_up(&server, "alice").await;
    for foreign in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
    ] {
        let form = [("password", PASSWORD), ("next", foreign)];
        let response = browser.post(&server.url("/confirm"), &form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{foreign}");
        assert_eq!(location(&response), "/", "{foreign}");
        let shown = page(&browser, &server, &format!("/confirm?next={foreign}")).await;
        assert!(
            shown.contains(r#"<input type="hidden" name="next" value="">"#),
            "{foreign}: {shown}"
        );
    }
    let form = [("password", PASSWORD)];
    let response = browser.post(&server.url("/confirm"), &form).await;
    assert_eq!(location(&response), "/");

    // Through the origin check as every POST.
    let response = browser
        .http()
        .post(server.url("/confirm"))
        .header(header::ORIGIN, "http://evil.example")
        .form(&[("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
