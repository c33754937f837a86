//! HTTP-level tests of the demo application (the `tower-sessions-auth-demo` package): every route
//! and status of its contract, over a real server on a loopback port, with
//! users and sessions in a temporary SQLite file (and, when `DATABASE_URL`
//! and `REDIS_URL` are set, in Postgres and Redis).

// The harness helpers below are test code too: a failed setup should panic.
// (Clippy's `allow-unwrap-in-tests` covers only the `#[test]` functions.)
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use reqwest::{header, redirect, Client, StatusCode};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tower_sessions_auth::{hash::Verification, AuthKeys, SessionUser};

use tower_sessions_auth_demo::{admin::Stores, secret};

use crate::common::{
    client::{
        cache_control, config, location, me_with_cookie, page, removes_pass, set_cookies, set_pass,
        signed_in, signed_up, sqlite_demo, touches_pass, Browser, NEW_PASSWORD, PASSWORD, SECRET,
    },
    passes::{
        admitted, admitted_on, assert_admitted, pass_issued, refused_within_notice, replay,
        NOTICE_WAIT,
    },
    services::{
        config_on, delete_redis_sessions, service_url, two_on_postgres, two_on_postgres_with,
        with_postgres_schema, SessionsIn,
    },
    unique, Server, TempDir,
};

// ---------------------------------------------------------------------------
// GET /

#[tokio::test]
async fn home_anonymous_links_to_sign_in() {
    let (server, _db) = sqlite_demo().await;
    let response = Browser::new().get(&server.url("/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), "no-store");
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"href="/login""#), "{body}");
    assert!(!body.contains("Signed in as"));
}

#[tokio::test]
async fn home_signed_in_names_the_user_and_is_not_cached() {
    let (server, _db) = sqlite_demo().await;
    let browser = signed_up(&server, "alice").await;
    let response = browser.get(&server.url("/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), "no-store");
    let body = response.text().await.unwrap();
    assert!(body.contains("Signed in as alice"), "{body}");
    assert!(body.contains(r#"action="/logout""#));
}

#[tokio::test]
async fn usernames_are_html_escaped() {
    let (server, _db) = sqlite_demo().await;
    let browser = signed_up(&server, "<b>mallory</b>").await;
    let body = browser.get(&server.url("/")).await.text().await.unwrap();
    assert!(
        body.contains("Signed in as &#60;b&#62;mallory&#60;/b&#62;"),
        "{body}"
    );
    assert!(!body.contains("<b>mallory"));
}

// ---------------------------------------------------------------------------
// /signup

#[tokio::test]
async fn signup_form_is_served() {
    let (server, _db) = sqlite_demo().await;
    let response = Browser::new().get(&server.url("/signup")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"action="/signup""#));
    assert!(body.contains(r#"name="password""#));
}

#[tokio::test]
async fn signup_creates_the_user_signs_in_and_redirects_home() {
    let (server, _db) = sqlite_demo().await;
    let browser = Browser::new();
    let response = browser.signup(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
    // The account exists: another browser can sign in with it.
    signed_in(&server, "alice", PASSWORD).await;
}

#[tokio::test]
async fn signup_with_a_taken_username_is_409_with_the_form() {
    let (server, _db) = sqlite_demo().await;
    signed_up(&server, "alice").await;
    let other = Browser::new();
    let response = other.signup(&server, "alice", "another password").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"action="/signup""#));
    assert!(body.contains("taken"), "{body}");
    assert_eq!(other.me(&server).await, None);
    // The first password still holds.
    signed_in(&server, "alice", PASSWORD).await;
}

#[tokio::test]
async fn signup_with_a_short_password_is_422() {
    let (server, _db) = sqlite_demo().await;
    let browser = Browser::new();
    let response = browser.signup(&server, "alice", "1234567").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.text().await.unwrap();
    assert!(body.contains("too short"), "{body}");
    assert_eq!(browser.me(&server).await, None);
    // Exactly eight characters is enough.
    let response = browser.signup(&server, "alice", "12345678").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signup_with_an_empty_username_is_422() {
    let (server, _db) = sqlite_demo().await;
    for username in ["", "   "] {
        let response = Browser::new().signup(&server, username, PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{username:?}"
        );
        assert!(response.text().await.unwrap().contains("Choose a username"));
    }
}

// ---------------------------------------------------------------------------
// /login

#[tokio::test]
async fn login_form_carries_a_local_next_through() {
    let (server, _db) = sqlite_demo().await;
    let browser = Browser::new();
    let response = browser.get(&server.url("/login?next=%2Fpassword")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"name="next" value="/password""#), "{body}");

    let body = browser
        .get(&server.url("/login?next=https%3A%2F%2Fevil.example%2F"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!body.contains("evil.example"), "{body}");
}

#[tokio::test]
async fn login_redirects_to_a_local_next_only() {
    let (server, _db) = sqlite_demo().await;
    signed_up(&server, "alice").await;
    let cases = [
        (Some("/password"), "/password"),
        (Some("/password?x=1"), "/password?x=1"),
        (Some("https://evil.example/"), "/"),
        (Some("//evil.example/"), "/"),
        (Some("/\\evil.example/"), "/"),
        (Some(""), "/"),
        (None, "/"),
    ];
    for (next, expected) in cases {
        let browser = Browser::new();
        let mut form = vec![("username", "alice"), ("password", PASSWORD)];
        if let Some(next) = next {
            form.push(("next", next));
        }
        let response = browser.post(&server.url("/login"), &form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&response), expected, "{next:?}");
        assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
    }
}

#[tokio::test]
async fn login_with_wrong_credentials_is_401_the_same_for_unknown_users() {
    let (server, _db) = sqlite_demo().await;
    signed_up(&server, "alice").await;

    let browser = Browser::new();
    let wrong_password = browser.login(&server, "alice", "not the password").await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    let wrong_password = wrong_password.text().await.unwrap();
    assert!(wrong_password.contains("Wrong username or password"));
    assert!(wrong_password.contains(r#"action="/login""#));

    let unknown_user = browser.login(&server, "zalice", "not the password").await;
    assert_eq!(unknown_user.status(), StatusCode::UNAUTHORIZED);
    let unknown_user = unknown_user.text().await.unwrap();
    // The form echoes the username typed; apart from it the pages are equal.
    assert_eq!(wrong_password, unknown_user.replace("zalice", "alice"));
    assert_eq!(browser.me(&server).await, None);
}

// ---------------------------------------------------------------------------
// POST /logout

#[tokio::test]
async fn logout_flushes_the_session_and_redirects_to_login() {
    let (server, _db) = sqlite_demo().await;
    let browser = signed_up(&server, "alice").await;
    let old_id = browser.session_id(&server).unwrap();

    let response = browser.post(&server.url("/logout"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    assert_eq!(cache_control(&response), "no-store");
    assert_eq!(browser.me(&server).await, None);

    // The old id is dead on the server, not just forgotten by the browser.
    assert_eq!(
        me_with_cookie(&server, &old_id).await,
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------------------
// /password

#[tokio::test]
async fn password_page_requires_sign_in() {
    let (server, _db) = sqlite_demo().await;
    let browser = Browser::new();
    let response = browser.get(&server.url("/password")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fpassword");

    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let response = browser.post(&server.url("/password"), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login?next="));

    let browser = signed_up(&server, "alice").await;
    let response = browser.get(&server.url("/password")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), "no-store");
    assert!(response
        .text()
        .await
        .unwrap()
        .contains(r#"name="current_password""#));
}

#[tokio::test]
async fn password_change_with_a_wrong_current_password_is_403() {
    let (server, _db) = sqlite_demo().await;
    let browser = signed_up(&server, "alice").await;
    let form = [
        ("current_password", "not it at all"),
        ("new_password", NEW_PASSWORD),
    ];
    let response = browser.post(&server.url("/password"), &form).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains(r#"action="/password""#));
    // Nothing changed.
    signed_in(&server, "alice", PASSWORD).await;
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn password_change_to_a_short_password_is_422() {
    let (server, _db) = sqlite_demo().await;
    let browser = signed_up(&server, "alice").await;
    let form = [("current_password", PASSWORD), ("new_password", "short")];
    let response = browser.post(&server.url("/password"), &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    signed_in(&server, "alice", PASSWORD).await;
}

#[tokio::test]
async fn password_change_keeps_this_session_and_ends_the_others() {
    let (server, _db) = sqlite_demo().await;
    let changer = signed_up(&server, "alice").await;
    let other = signed_in(&server, "alice", PASSWORD).await;
    let bystander = signed_up(&server, "bob").await;
    let id_before = changer.session_id(&server).unwrap();

    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let response = changer.post(&server.url("/password"), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");

    assert_eq!(changer.me(&server).await.as_deref(), Some("alice"));
    assert_ne!(
        changer.session_id(&server).unwrap(),
        id_before,
        "id rotated"
    );
    assert_eq!(other.me(&server).await, None);
    assert_eq!(bystander.me(&server).await.as_deref(), Some("bob"));

    // The new hash is stored.
    let response = Browser::new().login(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    signed_in(&server, "alice", NEW_PASSWORD).await;
}

#[tokio::test]
async fn a_browser_signed_out_elsewhere_is_told_why_on_the_page_it_gets() {
    const PASSWORD_CHANGED: &str =
        "You were signed out because your password was changed on another device.";
    const SIGNED_OUT_ELSEWHERE: &str =
        "You were signed out because &#34;Sign out other devices&#34; was used on another device.";
    const ACCOUNT_GONE: &str =
        "You were signed out because the account you were signed in to no longer exists.";

    let (server, _db) = sqlite_demo().await;
    let changer = signed_up(&server, "alice").await;
    let home = signed_in(&server, "alice", PASSWORD).await;
    let guarded = signed_in(&server, "alice", PASSWORD).await;
    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    changer.post(&server.url("/password"), &form).await;

    // The home page that ends the session says why, once.
    let body = page(&home, &server, "/").await;
    assert!(body.contains(PASSWORD_CHANGED), "{body}");
    assert!(body.contains(r#"href="/login""#), "{body}");
    assert!(!page(&home, &server, "/").await.contains(PASSWORD_CHANGED));
    // A guarded page redirects to sign-in, and the sign-in page says why.
    let response = guarded.get(&server.url("/password")).await;
    assert_eq!(location(&response), "/login?next=%2Fpassword");
    let body = page(&guarded, &server, "/login?next=%2Fpassword").await;
    assert!(body.contains(PASSWORD_CHANGED), "{body}");
    assert!(!page(&guarded, &server, "/login")
        .await
        .contains(PASSWORD_CHANGED));
    // The changer is told nothing of the kind.
    assert!(!page(&changer, &server, "/")
        .await
        .contains("You were signed out"));

    let other = signed_in(&server, "alice", NEW_PASSWORD).await;
    changer
        .post(&server.url("/sessions/logout-others"), &[])
        .await;
    let body = page(&other, &server, "/").await;
    assert!(body.contains(SIGNED_OUT_ELSEWHERE), "{body}");

    let other = signed_in(&server, "alice", NEW_PASSWORD).await;
    changer
        .post(
            &server.url("/account/delete"),
            &[("password", NEW_PASSWORD)],
        )
        .await;
    let body = page(&other, &server, "/").await;
    assert!(body.contains(ACCOUNT_GONE), "{body}");
}

#[tokio::test]
async fn the_api_gets_no_session_for_the_notice() {
    let (server, _db) = sqlite_demo().await;
    let changer = signed_up(&server, "alice").await;
    let other = signed_in(&server, "alice", PASSWORD).await;
    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    changer.post(&server.url("/password"), &form).await;
    let response = other.get(&server.url("/api/me")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(other.session_id(&server), None, "no new session");
}

/// The home page of `browser` once it lists `count` activity entries (the
/// events reach the list shortly after the response).
async fn activity_page(browser: &Browser, server: &Server, count: usize) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let body = page(browser, server, "/").await;
        if body.matches("<li>").count() >= count || std::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn home_lists_the_accounts_recent_activity_from_the_events() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = Browser::with_user_agent("Phone browser/1.0 <script>");
    let response = phone.login(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let bob = signed_up(&server, "bob").await;
    bob.login(&server, "bob", PASSWORD).await;

    // Signed up (which signs in), then signed in on the phone.
    let body = activity_page(&laptop, &server, 2).await;
    assert!(body.contains("Recent activity"), "{body}");
    assert!(body.contains("Signed in"), "{body}");
    assert!(body.contains("from 127.0.0.1"), "{body}");
    assert!(
        body.contains("Phone browser/1.0 &#60;script&#62;"),
        "the user agent, escaped: {body}"
    );

    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    laptop.post(&server.url("/password"), &form).await;
    assert_eq!(phone.me(&server).await, None);
    let body = activity_page(&laptop, &server, 3).await;
    assert!(
        body.contains("A session was signed out after a password change"),
        "{body}"
    );
    // Newest first.
    let ended = body.find("signed out after a password change").unwrap();
    assert!(ended < body.find("· Signed in").unwrap(), "{body}");
    // Nothing of bob's.
    let body = activity_page(&bob, &server, 2).await;
    assert!(!body.contains("Phone browser"), "{body}");
    assert!(!body.contains("password change"), "{body}");
}

// ---------------------------------------------------------------------------
// POST /sessions/logout-others

#[tokio::test]
async fn logout_others_keeps_this_session_and_the_password() {
    let (server, _db) = sqlite_demo().await;
    let keeper = signed_up(&server, "alice").await;
    let other = signed_in(&server, "alice", PASSWORD).await;

    let response = keeper
        .post(&server.url("/sessions/logout-others"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert_eq!(keeper.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(other.me(&server).await, None);
    // The password did not change.
    signed_in(&server, "alice", PASSWORD).await;
}

#[tokio::test]
async fn logout_others_requires_sign_in() {
    let (server, _db) = sqlite_demo().await;
    let response = Browser::new()
        .post(&server.url("/sessions/logout-others"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login?next="));
}

// ---------------------------------------------------------------------------
// POST /account/delete

#[tokio::test]
async fn account_delete_needs_the_password_and_ends_every_session() {
    let (server, _db) = sqlite_demo().await;
    let deleter = signed_up(&server, "alice").await;
    let other = signed_in(&server, "alice", PASSWORD).await;

    let response = deleter
        .post(
            &server.url("/account/delete"),
            &[("password", "wrong guess")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(deleter.me(&server).await.as_deref(), Some("alice"));

    let response = deleter
        .post(&server.url("/account/delete"), &[("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert_eq!(deleter.me(&server).await, None);
    assert_eq!(other.me(&server).await, None);
    let response = Browser::new().login(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn account_delete_requires_sign_in() {
    let (server, _db) = sqlite_demo().await;
    let response = Browser::new()
        .post(&server.url("/account/delete"), &[("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login?next="));
}

// ---------------------------------------------------------------------------
// JSON API

#[tokio::test]
async fn api_me_is_401_json_when_anonymous_and_200_when_signed_in() {
    let (server, _db) = sqlite_demo().await;
    let browser = Browser::new();
    let response = browser.get(&server.url("/api/me")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cache_control(&response), "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");

    browser.signup(&server, "alice", PASSWORD).await;
    let response = browser.get(&server.url("/api/me")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), "no-store");
    let body: Value = response.json().await.unwrap();
    // Signed up with a password: proved by a password.
    assert_eq!(body, json!({ "username": "alice", "amr": ["pwd"] }));
}

#[tokio::test]
async fn api_login_sets_the_session_cookie_or_answers_401_json() {
    let (server, _db) = sqlite_demo().await;
    signed_up(&server, "alice").await;
    let browser = Browser::new();

    let wrong = json!({ "username": "alice", "password": "nope nope" });
    let response = browser
        .http()
        .post(server.url("/api/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(browser.me(&server).await, None);

    let right = json!({ "username": "alice", "password": PASSWORD });
    let response = browser
        .http()
        .post(server.url("/api/login"))
        .json(&right)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookies(&response)
        .iter()
        .any(|c| c.starts_with("demo_session=")));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "username": "alice" }));
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn api_login_with_a_malformed_body_is_a_4xx_json_error() {
    let (server, _db) = sqlite_demo().await;
    let client = Client::new();
    for (content_type, body) in [
        ("application/json", "{not json"),
        ("application/json", r#"{"username": "alice"}"#),
        ("text/plain", r#"{"username": "a", "password": "b"}"#),
    ] {
        let response = client
            .post(server.url("/api/login"))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{body}: {}",
            response.status()
        );
        let json: Value = response.json().await.unwrap();
        assert!(!json["error"].as_str().unwrap().is_empty());
    }
}

// ---------------------------------------------------------------------------
// Malformed input, size limit, cross-site requests

#[tokio::test]
async fn missing_or_malformed_form_fields_are_4xx_with_a_message() {
    let (server, _db) = sqlite_demo().await;
    let signed = signed_up(&server, "alice").await;
    let anonymous = Browser::new();
    let cases: [(&Browser, &str, &str, &str); 6] = [
        (
            &anonymous,
            "/signup",
            "application/x-www-form-urlencoded",
            "username=bob",
        ),
        (
            &anonymous,
            "/login",
            "application/x-www-form-urlencoded",
            "password=x",
        ),
        (
            &anonymous,
            "/login",
            "application/json",
            r#"{"username":"a"}"#,
        ),
        (
            &anonymous,
            "/signup",
            "application/x-www-form-urlencoded",
            "username=a&username=b&password=12345678",
        ),
        (
            &signed,
            "/password",
            "application/x-www-form-urlencoded",
            "new_password=12345678",
        ),
        (
            &signed,
            "/account/delete",
            "application/x-www-form-urlencoded",
            "",
        ),
    ];
    for (browser, path, content_type, body) in cases {
        let response = browser
            .http()
            .post(server.url(path))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{path} {body:?}: {status}");
        assert!(
            !response.text().await.unwrap().is_empty(),
            "{path} {body:?}"
        );
    }
    // The signed-in user is unharmed.
    assert_eq!(signed.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let (server, _db) = sqlite_demo().await;
    let browser = signed_up(&server, "alice").await;
    let big = "a".repeat(64 * 1024 + 1);
    for path in ["/signup", "/login", "/logout", "/api/login"] {
        let response = browser
            .http()
            .post(server.url(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("username={big}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    // Just under the limit is read (and refused for its content only).
    let field = "a".repeat(64 * 1024 - "username=&password=12345678".len());
    let response = Browser::new()
        .http()
        .post(server.url("/signup"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("username={field}&password=12345678"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The logout above was refused: still signed in.
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn chunked_bodies_over_64_kib_are_413() {
    let (server, _db) = sqlite_demo().await;
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let chunk = format!("username={}", "a".repeat(70 * 1024));
    let request = format!(
        "POST /signup HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
}

#[tokio::test]
async fn cross_site_posts_are_403() {
    let (server, _db) = sqlite_demo().await;
    let browser = signed_up(&server, "alice").await;
    let own = server.base.clone();
    for origin in [
        "http://evil.example",
        "null",
        "https://127.0.0.1",
        own.replace("http:", "https:").as_str(),
    ] {
        for path in ["/logout", "/login", "/sessions/logout-others", "/api/login"] {
            let response = browser
                .http()
                .post(server.url(path))
                .header(header::ORIGIN, origin)
                .form(&[("username", "alice"), ("password", PASSWORD)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin} {path}");
        }
    }
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));

    // The own origin, and no Origin at all, pass.
    let response = browser
        .http()
        .post(server.url("/sessions/logout-others"))
        .header(header::ORIGIN, own.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = browser.post(&server.url("/logout"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.me(&server).await, None);

    // A GET with a foreign Origin is not a state change.
    let response = browser
        .http()
        .get(server.url("/"))
        .header(header::ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_configured_origin_replaces_the_host_header() {
    let db = TempDir::new("demo_http");
    let mut config = config(&db.sqlite_url());
    config.origin = Some("https://demo.example".to_owned());
    let server = Server::start(config).await;
    let client = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let post = |origin: String| {
        client
            .post(server.url("/logout"))
            .header(header::ORIGIN, origin)
            .send()
    };
    assert_eq!(
        post("https://demo.example".to_owned())
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post(server.base.clone()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

// ---------------------------------------------------------------------------
// The session cookie

#[tokio::test]
async fn session_cookie_is_http_only_lax_and_path_root() {
    let (server, _db) = sqlite_demo().await;
    let response = Browser::new().signup(&server, "alice", PASSWORD).await;
    let cookies = set_cookies(&response);
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("demo_session="))
        .unwrap();
    let attributes: Vec<&str> = cookie.split("; ").collect();
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
    assert!(attributes.contains(&"SameSite=Lax"), "{cookie}");
    assert!(attributes.contains(&"Path=/"), "{cookie}");
    assert!(!attributes.contains(&"Secure"), "{cookie}");
}

/// A demo with `Secure` cookies, and the `Set-Cookie` of alice's sign-up
/// on it.
async fn secure_sign_up() -> (Server, TempDir, String) {
    let db = TempDir::new("demo_http");
    let mut config = config(&db.sqlite_url());
    config.secure_cookies = true;
    let server = Server::start(config).await;
    let response = Browser::new().signup(&server, "alice", PASSWORD).await;
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("__Host-demo_session="))
        .unwrap();
    (server, db, cookie)
}

#[tokio::test]
async fn secure_cookies_are_marked_secure() {
    let (_server, _db, cookie) = secure_sign_up().await;
    let attributes: Vec<&str> = cookie.split("; ").collect();
    for expected in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attributes.contains(&expected), "{expected}: {cookie}");
    }
}

/// The removal cookie of a signed-out session keeps `Secure`, `HttpOnly`
/// and `Path=/`: without `Secure`, browsers refuse a `__Host-` cookie, and
/// the old one stays (`tests/browser.rs` shows it in Chromium).
#[tokio::test]
async fn signing_out_removes_a_secure_cookie_with_its_attributes() {
    let (server, _db, cookie) = secure_sign_up().await;
    let session = cookie.split(';').next().unwrap();

    // Sent by hand: the cookie jar keeps `Secure` cookies for `https` only.
    let response = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
        .post(server.url("/logout"))
        .header(header::COOKIE, session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(&response);
    let removal = cookies
        .iter()
        .find(|c| c.starts_with("__Host-demo_session="))
        .unwrap();
    let attributes: Vec<&str> = removal.split("; ").collect();
    assert_eq!(attributes[0], "__Host-demo_session=", "{removal}");
    for expected in ["Max-Age=0", "Secure", "HttpOnly", "Path=/"] {
        assert!(attributes.contains(&expected), "{expected}: {removal}");
    }
}

// ---------------------------------------------------------------------------
// Restarts, several instances, failures

#[tokio::test]
async fn sessions_survive_a_restart_with_the_same_secret() {
    let db = TempDir::new("demo_http");
    let first = Server::start(config(&db.sqlite_url())).await;
    let browser = signed_up(&first, "alice").await;
    let cookie = format!("demo_session={}", browser.session_id(&first).unwrap());
    drop(first);

    let restarted = Server::start(config(&db.sqlite_url())).await;
    let me = |server: &Server| {
        Client::new()
            .get(server.url("/api/me"))
            .header(header::COOKIE, cookie.clone())
            .send()
    };
    assert_eq!(me(&restarted).await.unwrap().status(), StatusCode::OK);
    drop(restarted);

    // With another secret the same session no longer verifies.
    let mut other_secret = config(&db.sqlite_url());
    other_secret.keys = AuthKeys::new(b"a different secret of thirty-two bytes or more").unwrap();
    let rekeyed = Server::start(other_secret).await;
    assert_eq!(
        me(&rekeyed).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_fallback_secret_keeps_sessions_signed_in() {
    let db = TempDir::new("demo_http");
    let first = Server::start(config(&db.sqlite_url())).await;
    let browser = signed_up(&first, "alice").await;
    let cookie = format!("demo_session={}", browser.session_id(&first).unwrap());
    drop(first);

    let mut rotated = config(&db.sqlite_url());
    rotated.keys = AuthKeys::new(b"the next secret, thirty-two bytes or more")
        .unwrap()
        .with_fallback(SECRET)
        .unwrap();
    let server = Server::start(rotated).await;
    let response = Client::new()
        .get(server.url("/api/me"))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Two demo instances (separate pools) on one database serve one user base
/// and one set of sessions: a password change through A ends B's session.
async fn two_instances_share_users_and_sessions(a: &Server, b: &Server) {
    let on_a = signed_up(a, "alice").await;
    let on_b = signed_in(b, "alice", PASSWORD).await;
    // A session made on A is valid on B (one store).
    let shared = signed_in(a, "alice", PASSWORD).await;
    assert_eq!(shared.me(b).await.as_deref(), Some("alice"));

    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let response = on_a.post(&a.url("/password"), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    assert_eq!(on_b.me(b).await, None);
    assert_eq!(shared.me(b).await, None);
    assert_eq!(on_a.me(a).await.as_deref(), Some("alice"));
    assert_eq!(on_a.me(b).await.as_deref(), Some("alice"));
    signed_in(b, "alice", NEW_PASSWORD).await;
}

#[tokio::test]
async fn two_instances_on_one_sqlite_file() {
    let db = TempDir::new("demo_http");
    let a = Server::start(config(&db.sqlite_url())).await;
    let b = Server::start(config(&db.sqlite_url())).await;
    two_instances_share_users_and_sessions(&a, &b).await;
}

#[tokio::test]
async fn a_user_database_failure_is_a_5xx() {
    let (server, db) = sqlite_demo().await;
    let browser = signed_up(&server, "alice").await;
    let pool = sqlx::SqlitePool::connect(&db.sqlite_url()).await.unwrap();
    sqlx::query("DROP TABLE demo_users")
        .execute(&pool)
        .await
        .unwrap();

    let response = browser.get(&server.url("/")).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    let response = Browser::new().login(&server, "alice", PASSWORD).await;
    assert!(response.status().is_server_error(), "{}", response.status());
}

#[tokio::test]
async fn a_session_store_failure_is_a_5xx() {
    let (server, db) = sqlite_demo().await;
    let browser = signed_up(&server, "alice").await;
    let pool = sqlx::SqlitePool::connect(&db.sqlite_url()).await.unwrap();
    sqlx::query("DROP TABLE tower_sessions")
        .execute(&pool)
        .await
        .unwrap();

    let response = browser.get(&server.url("/")).await;
    assert!(response.status().is_server_error(), "{}", response.status());
}

// ---------------------------------------------------------------------------
// Postgres and Redis

#[tokio::test]
async fn users_in_postgres_sessions_in_redis() {
    let (Some(database_url), Some(redis_url)) =
        (service_url("DATABASE_URL"), service_url("REDIS_URL"))
    else {
        return;
    };
    let url = database_url.clone();
    with_postgres_schema(&database_url, move |schema| async move {
        let mut config = config(&url);
        config.postgres_schema = Some(schema);
        config.session_store_url = Some(redis_url.clone());
        let server = Server::start(config).await;

        let changer = signed_up(&server, "alice").await;
        let other = signed_in(&server, "alice", PASSWORD).await;
        let form = [
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
        ];
        let response = changer.post(&server.url("/password"), &form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(changer.me(&server).await.as_deref(), Some("alice"));
        assert_eq!(other.me(&server).await, None);

        let response = changer
            .post(&server.url("/sessions/logout-others"), &[])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let response = changer
            .post(
                &server.url("/account/delete"),
                &[("password", NEW_PASSWORD)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(changer.me(&server).await, None);

        // Sessions still in Redis (the flushed ones are gone already).
        delete_redis_sessions(&redis_url, &[&changer, &other], &server).await;
    })
    .await;
}

#[tokio::test]
async fn two_instances_on_one_postgres_database() {
    let Some(database_url) = service_url("DATABASE_URL") else {
        return;
    };
    let url = database_url.clone();
    with_postgres_schema(&database_url, move |schema| async move {
        let mut config_a = config(&url);
        config_a.postgres_schema = Some(schema.clone());
        let mut config_b = config(&url);
        config_b.postgres_schema = Some(schema);
        let a = Server::start(config_a).await;
        let b = Server::start(config_b).await;
        two_instances_share_users_and_sessions(&a, &b).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// The fast path (`DEMO_FAST_PATH`): on with a Redis or Postgres session
// store, off with `DEMO_FAST_PATH=0`, never on SQLite

/// The handle of `browser`'s own session, from `GET /api/sessions`.
async fn own_handle(browser: &Browser, server: &Server) -> String {
    let response = browser.get(&server.url("/api/sessions")).await;
    let body: Value = response.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    current["handle"].as_str().unwrap().to_owned()
}

/// A sign-in's pass comes with its next request and signs the later ones
/// in, on both instances; then every way of ending a session through `a`
/// refuses that session's pass (or the other sessions') on `b` as soon as
/// the notice arrives, well before the pass's minute is over. Each ending
/// concerns a user of its own: an ending refuses every older pass of its
/// user for a second (the clock skew allowed).
async fn fast_path_across_instances(a: &Server, b: &Server) -> Vec<Browser> {
    let laptop = Browser::new();
    let response = laptop.signup(a, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The new session id exists once tower-sessions saved it.
    assert!(!touches_pass(&response), "{:?}", set_cookies(&response));
    let pass = pass_issued(&laptop, a).await;
    assert!(pass.starts_with("demo_pass="), "{pass}");
    let attributes: Vec<&str> = pass.split("; ").collect();
    for expected in ["Path=/", "Max-Age=60", "HttpOnly", "SameSite=Lax"] {
        assert!(attributes.contains(&expected), "{expected}: {pass}");
    }
    assert!(
        !attributes.contains(&"Secure"),
        "as the session cookie: {pass}"
    );
    let cookies = admitted_on(&laptop, &[b, a]).await;
    assert_admitted(b, &cookies).await;
    for server in [a, b] {
        assert!(page(&laptop, server, "/").await.contains("alice"));
        for path in ["/sessions", "/password", "/api/sessions"] {
            let response = laptop.get(&server.url(path)).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }

    // A revocation: alice's laptop ends her tablet's session through `a`.
    let tablet = signed_in(b, "alice", PASSWORD).await;
    let tablet_cookies = admitted(&tablet, b).await;
    let handle = own_handle(&tablet, b).await;
    let response = laptop
        .delete(&a.url(&format!("/api/sessions/{handle}")))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let refused = refused_within_notice(b, &tablet_cookies, "revocation").await;
    assert!(removes_pass(&refused), "{:?}", set_cookies(&refused));
    assert_eq!(tablet.me(b).await, None);

    // A sign-out through `a`: the session's cookies, replayed on `b`.
    let sam = signed_up(a, "sam").await;
    let sam_cookies = admitted(&sam, b).await;
    let response = sam.post(&a.url("/logout"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    refused_within_notice(b, &sam_cookies, "sign-out").await;

    // A password change through `a` ends pam's phone on `b`; pam's laptop
    // stays, and gets a pass again (its id rotated).
    let pam = signed_up(a, "pam").await;
    let phone = signed_in(b, "pam", PASSWORD).await;
    let phone_cookies = admitted(&phone, b).await;
    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let response = pam.post(&a.url("/password"), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    refused_within_notice(b, &phone_cookies, "password change").await;
    assert_eq!(pam.me(a).await.as_deref(), Some("pam"));
    admitted(&pam, b).await;

    // "Sign out other devices" through `a` ends pam's tablet on `b`.
    let pam_tablet = signed_in(b, "pam", NEW_PASSWORD).await;
    let pam_tablet_cookies = admitted(&pam_tablet, b).await;
    let response = pam.post(&a.url("/sessions/logout-others"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    refused_within_notice(b, &pam_tablet_cookies, "sign out other devices").await;
    assert_eq!(pam.me(b).await.as_deref(), Some("pam"));

    assert_eq!(laptop.me(b).await.as_deref(), Some("alice"));
    vec![laptop, tablet, sam, pam, phone, pam_tablet]
}

#[tokio::test]
async fn the_fast_path_across_two_instances_on_redis() {
    two_on_postgres(SessionsIn::Redis, |a, b, _| async move {
        fast_path_across_instances(&a, &b).await
    })
    .await;
}

#[tokio::test]
async fn the_fast_path_across_two_instances_on_a_redis_cluster() {
    two_on_postgres(SessionsIn::RedisCluster, |a, b, _| async move {
        fast_path_across_instances(&a, &b).await
    })
    .await;
}

#[tokio::test]
async fn the_fast_path_across_two_instances_on_postgres() {
    two_on_postgres(SessionsIn::Postgres, |a, b, _| async move {
        fast_path_across_instances(&a, &b).await
    })
    .await;
}

/// Asserts that no response of a whole session's life, on either
/// instance, sets or removes a pass.
async fn no_pass_ever(a: &Server, b: &Server) -> Browser {
    let alice = Browser::new();
    let response = alice.signup(a, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!touches_pass(&response), "{:?}", set_cookies(&response));
    let phone = Browser::new();
    let response = phone.login(b, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!touches_pass(&response), "{:?}", set_cookies(&response));
    for _ in 0..3 {
        for server in [a, b] {
            for path in ["/api/me", "/", "/sessions"] {
                let response = alice.get(&server.url(path)).await;
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                assert!(
                    !touches_pass(&response),
                    "{path}: {:?}",
                    set_cookies(&response)
                );
            }
        }
    }
    assert_eq!(alice.pass(a), None);
    let response = alice.post(&a.url("/logout"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!touches_pass(&response), "{:?}", set_cookies(&response));
    assert_eq!(phone.me(b).await.as_deref(), Some("alice"));
    phone
}

/// `DEMO_FAST_PATH=0` on both instances. A third instance on the same
/// stores, with the fast path on, shows the channel's heartbeat heard
/// before any of alice's requests: were the fast path on in the two, her
/// second request would get a pass.
async fn fast_path_off(a: &Server, b: &Server, stores: &Stores) -> Vec<Browser> {
    let control = Server::start(config_on(stores)).await;
    let bob = signed_up(&control, "bob").await;
    pass_issued(&bob, &control).await;
    let phone = no_pass_ever(a, b).await;
    // Nor does an instance with the fast path off use or remove the pass of
    // one with it on.
    let response = replay(a, &bob.cookie_header(&control)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!touches_pass(&response), "{:?}", set_cookies(&response));
    vec![phone, bob]
}

#[tokio::test]
async fn with_demo_fast_path_0_no_pass_is_set_on_redis() {
    two_on_postgres_with(
        SessionsIn::Redis,
        |config| config.fast_path = false,
        |a, b, stores| async move { fast_path_off(&a, &b, &stores).await },
    )
    .await;
}

#[tokio::test]
async fn with_demo_fast_path_0_no_pass_is_set_on_postgres() {
    two_on_postgres_with(
        SessionsIn::Postgres,
        |config| config.fast_path = false,
        |a, b, stores| async move { fast_path_off(&a, &b, &stores).await },
    )
    .await;
}

/// SQLite has no channel between processes: the fast path stays off,
/// although the configuration asks for it. (Without a channel a process
/// would trust its passes at once: a second request would carry one.)
#[tokio::test]
async fn on_sqlite_no_pass_is_ever_set() {
    let db = TempDir::new("demo_http");
    let on = || {
        let config = config(&db.sqlite_url());
        assert!(config.fast_path);
        Server::start(config)
    };
    let (a, b) = (on().await, on().await);
    no_pass_ever(&a, &b).await;
}

/// With `DEMO_SECURE_COOKIES=1` the pass is named and secured as the
/// session cookie is: `__Host-demo_pass`, `Secure`; and its removal keeps
/// the attributes that a browser needs to accept it.
#[tokio::test]
async fn with_secure_cookies_the_pass_is_host_prefixed_and_secure() {
    two_on_postgres_with(
        SessionsIn::Postgres,
        |config| config.secure_cookies = true,
        |a, _, _| async move {
            let response = Browser::new().signup(&a, "alice", PASSWORD).await;
            let session = set_cookies(&response)
                .into_iter()
                .find(|c| c.starts_with("__Host-demo_session="))
                .unwrap();
            let session = session.split(';').next().unwrap().to_owned();
            // Sent by hand: the cookie jar keeps `Secure` cookies for
            // `https` only.
            let deadline = Instant::now() + NOTICE_WAIT;
            let pass = loop {
                let response = replay(&a, &session).await;
                assert_eq!(response.status(), StatusCode::OK);
                if let Some(pass) = set_pass(&response) {
                    break pass;
                }
                assert!(Instant::now() < deadline, "no pass within {NOTICE_WAIT:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert!(pass.starts_with("__Host-demo_pass="), "{pass}");
            let attributes: Vec<&str> = pass.split("; ").collect();
            for expected in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"] {
                assert!(attributes.contains(&expected), "{expected}: {pass}");
            }
            assert!(!pass.contains("Domain"), "{pass}");

            let cookies = format!("{session}; {}", pass.split(';').next().unwrap());
            let response = Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap()
                .post(a.url("/logout"))
                .header(header::COOKIE, cookies)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            let cookies = set_cookies(&response);
            let removal = cookies
                .iter()
                .find(|c| c.starts_with("__Host-demo_pass="))
                .unwrap();
            let attributes: Vec<&str> = removal.split("; ").collect();
            assert_eq!(attributes[0], "__Host-demo_pass=", "{removal}");
            for expected in ["Max-Age=0", "Secure", "HttpOnly", "Path=/"] {
                assert!(attributes.contains(&expected), "{expected}: {removal}");
            }
            Vec::new()
        },
    )
    .await;
}

// ---------------------------------------------------------------------------
// The session secret (`demo/src/secret.rs`)

/// A stand-in user: the secret tests compare signatures, not users.
#[derive(Clone)]
struct Probe;

impl SessionUser for Probe {
    type Id = u64;
    fn id(&self) -> u64 {
        1
    }
    fn credential(&self) -> &[u8] {
        b"$argon2id$v=19$m=1024,t=1,p=1$probe"
    }
}

#[test]
fn a_generated_secret_is_stored_beside_the_database_and_reused() {
    let dir = std::env::temp_dir().join(unique("demo_secret"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/demo.sqlite?mode=rwc", dir.display());
    let file = dir.join("demo-secret.key");

    let first = secret::load_keys(&url, None, None).unwrap();
    let stored = std::fs::read_to_string(&file).unwrap();
    assert_eq!(stored.len(), 64, "32 random bytes, hex");
    assert!(stored.chars().all(|c| c.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = secret::load_keys(&url, None, None).unwrap();
    assert_eq!(
        first.auth_hash(&Probe).unwrap(),
        again.auth_hash(&Probe).unwrap(),
        "reused on restart"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_explicit_secret_wins_and_short_secrets_are_refused() {
    let dir = std::env::temp_dir().join(unique("demo_secret"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/demo.sqlite", dir.display());
    let explicit = "an explicit secret of 32 bytes or more!";

    let keys = secret::load_keys(&url, Some(explicit), None).unwrap();
    assert_eq!(
        keys.auth_hash(&Probe).unwrap(),
        AuthKeys::new(explicit).unwrap().auth_hash(&Probe).unwrap()
    );
    assert!(
        !dir.join("demo-secret.key").exists(),
        "no file when the secret is given"
    );
    assert!(secret::load_keys(&url, Some("too short"), None).is_err());
    assert!(secret::load_keys(&url, Some(explicit), Some("short")).is_err());

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fallback_secrets_still_verify() {
    let old_one = "the oldest secret of 32 bytes or more...";
    let old_two = "the previous secret of 32 bytes or more.";
    let signed_before = AuthKeys::new(old_two).unwrap().auth_hash(&Probe).unwrap();
    let fallbacks = format!(" {old_one} ,{old_two},");
    let keys = secret::load_keys(
        "sqlite::memory:",
        Some("the current secret, 32 bytes or more..."),
        Some(&fallbacks),
    )
    .unwrap();
    assert_eq!(keys.verify(&Probe, &signed_before), Verification::Fallback);
}

#[test]
fn the_secret_file_sits_in_the_working_directory_for_postgres() {
    for url in [
        "postgres://localhost/demo",
        "sqlite::memory:",
        "sqlite://demo.sqlite?mode=rwc",
    ] {
        assert_eq!(
            secret::secret_path(url),
            PathBuf::from("demo-secret.key"),
            "{url}"
        );
    }
    assert_eq!(
        secret::secret_path("sqlite:///var/lib/demo/users.sqlite?mode=rwc"),
        PathBuf::from("/var/lib/demo/demo-secret.key")
    );
}
