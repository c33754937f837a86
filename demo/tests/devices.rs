//! The demo's "signed-in devices" contract, route by route: `GET /sessions`,
//! `GET /api/sessions`, `POST /sessions/revoke`, `DELETE
//! /api/sessions/{handle}`, what updates the list, `DEMO_MAX_SESSIONS`
//! (with the fast path too), and two demo processes sharing one SQLite
//! file, Postgres or Redis.

#![allow(clippy::unwrap_used)]

mod common;

use reqwest::{header, StatusCode};
use serde_json::Value;

use crate::common::{
    client::{
        cache_control, config, location, me_with_cookie, page, signed_up, sqlite_demo, Browser,
        NEW_PASSWORD, PASSWORD,
    },
    passes::{admitted_on, assert_admitted, refused_within_notice},
    services::{
        delete_redis_sessions, service_url, two_on_postgres_with, with_postgres_schema, SessionsIn,
    },
    Server, TempDir,
};

/// A browser with its own user agent, signed in as `username`.
async fn device(server: &Server, username: &str, agent: &str) -> Browser {
    let browser = Browser::with_user_agent(agent);
    let response = browser.login(server, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    browser
}

/// `GET /api/sessions` as `browser`: the `sessions` array.
async fn api_sessions(browser: &Browser, server: &Server) -> Vec<Value> {
    let response = browser.get(&server.url("/api/sessions")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

/// The handle of `browser`'s own session.
async fn own_handle(browser: &Browser, server: &Server) -> String {
    let sessions = api_sessions(browser, server).await;
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{sessions:?}");
    current[0]["handle"].as_str().unwrap().to_owned()
}

/// Chrome 156 on Linux, as it introduces itself.
const CHROME_ON_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
                               (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

/// `<time>` as the device list shows a moment: the exact time (RFC 3339,
/// UTC, as `/api/sessions` gives it) in `datetime` and, readable, in
/// `title` for the hover, and `relative` as the text.
fn time_element(class: &str, rfc3339: &str, relative: &str) -> String {
    let exact = rfc3339.replacen('T', " ", 1).replace('Z', " UTC");
    format!(r#"<time{class} datetime="{rfc3339}" title="{exact}">{relative}</time>"#)
}

fn is_rfc3339_utc(text: &str) -> bool {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .is_ok_and(|at| at.offset().is_utc())
        && text.ends_with('Z')
}

#[tokio::test]
async fn sessions_page_requires_sign_in() {
    let (server, _db) = sqlite_demo().await;
    let response = Browser::new().get(&server.url("/sessions")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fsessions");
}

#[tokio::test]
async fn sessions_page_lists_every_device_and_marks_this_one() {
    let (server, _db) = sqlite_demo().await;
    let laptop = Browser::with_user_agent(CHROME_ON_LINUX);
    laptop.signup(&server, "alice", PASSWORD).await;
    device(&server, "alice", "Phone browser/2.0").await;
    signed_up(&server, "bob").await;

    let home = page(&laptop, &server, "/").await;
    assert!(home.contains(r#"href="/sessions""#), "{home}");
    let response = laptop.get(&server.url("/sessions")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), "no-store");
    let body = response.text().await.unwrap();
    assert!(body.contains("Signed-in devices"), "{body}");
    // Named for people, with what the browser sent on hover; a user agent
    // the parser does not know is an unknown browser.
    assert!(
        body.contains(&format!(
            r#"<strong class="agent" title="{CHROME_ON_LINUX}">Chrome 156 on Linux</strong>"#
        )),
        "{body}"
    );
    assert!(
        body.contains(
            r#"<strong class="agent" title="Phone browser/2.0">Unknown browser</strong>"#
        ),
        "{body}"
    );
    assert!(body.contains("From 127.0.0.1"), "{body}");
    assert_eq!(body.matches("This device").count(), 1, "{body}");
    assert_eq!(body.matches("<li class=\"device").count(), 2, "alice's two");
    // One revoke form, for the phone; the laptop's own handle has none.
    assert_eq!(body.matches(r#"action="/sessions/revoke""#).count(), 1);
    let sessions = api_sessions(&laptop, &server).await;
    let phone_handle = sessions.iter().find(|s| s["current"] == false).unwrap()["handle"]
        .as_str()
        .unwrap();
    assert!(body.contains(&format!(
        r#"<input type="hidden" name="handle" value="{phone_handle}">"#
    )));
    assert!(body.contains(r#"action="/sessions/logout-others""#));

    // Times relative to now, the exact time on hover: signed in a moment
    // ago, ending in the default idle timeout of 30 minutes if unused.
    let mine = sessions.iter().find(|s| s["current"] == true).unwrap();
    let signed_in = time_element("", mine["created_at"].as_str().unwrap(), "just now");
    assert!(body.contains(&signed_in), "{body}");
    let ends = time_element(
        r#" class="ends""#,
        mine["expires_at"].as_str().unwrap(),
        "in 30 minutes",
    );
    assert!(body.contains(&format!("Ends if unused {ends}")), "{body}");
    assert_eq!(body.matches("Ends if unused <time").count(), 2, "{body}");
}

#[tokio::test]
async fn api_sessions_is_json_most_recently_seen_first() {
    let (server, _db) = sqlite_demo().await;
    let laptop = Browser::with_user_agent("Laptop browser/1.0");
    laptop.signup(&server, "alice", PASSWORD).await;
    device(&server, "alice", "Phone browser/2.0").await;

    let anonymous = Browser::new().get(&server.url("/api/sessions")).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert!(body["error"].is_string());

    let response = laptop.get(&server.url("/api/sessions")).await;
    assert_eq!(cache_control(&response), "no-store");
    let sessions = api_sessions(&laptop, &server).await;
    assert_eq!(sessions.len(), 2);
    for session in &sessions {
        let handle = session["handle"].as_str().unwrap();
        assert!(handle.len() >= 16, "{handle}");
        assert!(handle
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(
            is_rfc3339_utc(session["created_at"].as_str().unwrap()),
            "{session}"
        );
        assert!(
            is_rfc3339_utc(session["last_seen_at"].as_str().unwrap()),
            "{session}"
        );
        assert_eq!(session["ip"], "127.0.0.1");
        assert!(session["current"].is_boolean());
    }
    let seen: Vec<&str> = sessions
        .iter()
        .map(|s| s["last_seen_at"].as_str().unwrap())
        .collect();
    assert!(seen.windows(2).all(|pair| pair[0] >= pair[1]), "{seen:?}");
    let agents: Vec<&str> = sessions
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert!(agents.contains(&"Laptop browser/1.0") && agents.contains(&"Phone browser/2.0"));
}

#[tokio::test]
async fn the_user_agent_is_kept_to_256_characters() {
    let (server, _db) = sqlite_demo().await;
    signed_up(&server, "alice").await;
    let long = "A".repeat(1000);
    let browser = device(&server, "alice", &long).await;
    let sessions = api_sessions(&browser, &server).await;
    let mine = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(mine["user_agent"].as_str().unwrap(), "A".repeat(256));
}

#[tokio::test]
async fn revoke_form_signs_out_one_device_this_one_or_nothing() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = device(&server, "alice", "Phone").await;
    let bob = signed_up(&server, "bob").await;
    let phone_handle = own_handle(&phone, &server).await;
    let bob_handle = own_handle(&bob, &server).await;

    // Bob's handle and an unknown one: 404, nothing revoked.
    for handle in [
        bob_handle.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAA",
        "not a handle",
    ] {
        let response = laptop
            .post(&server.url("/sessions/revoke"), &[("handle", handle)])
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{handle}");
    }
    assert_eq!(bob.me(&server).await.as_deref(), Some("bob"));
    assert_eq!(phone.me(&server).await.as_deref(), Some("alice"));

    // Another device: revoked, back to the list.
    let response = laptop
        .post(
            &server.url("/sessions/revoke"),
            &[("handle", &phone_handle)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/sessions");
    assert_eq!(phone.me(&server).await, None);
    assert_eq!(api_sessions(&laptop, &server).await.len(), 1);

    // This device: signed out, to the sign-in page.
    let own = own_handle(&laptop, &server).await;
    let response = laptop
        .post(&server.url("/sessions/revoke"), &[("handle", &own)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    assert_eq!(laptop.me(&server).await, None);

    // Anonymous: sign-in first.
    let response = Browser::new()
        .post(&server.url("/sessions/revoke"), &[("handle", &bob_handle)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login?next="));
    assert_eq!(bob.me(&server).await.as_deref(), Some("bob"));
}

#[tokio::test]
async fn delete_api_revokes_or_answers_404_or_401() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = device(&server, "alice", "Phone").await;
    let bob = signed_up(&server, "bob").await;
    let phone_handle = own_handle(&phone, &server).await;
    let bob_handle = own_handle(&bob, &server).await;
    let url = |handle: &str| server.url(&format!("/api/sessions/{handle}"));

    assert_eq!(
        Browser::new().delete(&url(&phone_handle)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for handle in [bob_handle.as_str(), "AAAAAAAAAAAAAAAAAAAAAA", "x"] {
        let response = laptop.delete(&url(handle)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{handle}");
    }
    assert_eq!(bob.me(&server).await.as_deref(), Some("bob"));

    // A cross-site DELETE (or PUT, PATCH) is refused before anything runs.
    for method in [
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    ] {
        let response = laptop
            .http()
            .request(method.clone(), url(&phone_handle))
            .header(header::ORIGIN, "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method}");
    }
    assert_eq!(phone.me(&server).await.as_deref(), Some("alice"));

    let response = laptop.delete(&url(&phone_handle)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(phone.me(&server).await, None);
    assert_eq!(
        laptop.delete(&url(&phone_handle)).await.status(),
        StatusCode::NOT_FOUND
    );
    // Its own handle signs it out.
    let own = own_handle(&laptop, &server).await;
    assert_eq!(
        laptop.delete(&url(&own)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(laptop.me(&server).await, None);
}

#[tokio::test]
async fn a_handle_is_never_the_cookie_and_is_anonymous_as_one() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let handle = own_handle(&laptop, &server).await;
    assert_ne!(Some(handle.clone()), laptop.session_id(&server));
    assert_eq!(
        me_with_cookie(&server, &handle).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn ended_sessions_leave_the_list() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;

    // Sign out.
    let phone = device(&server, "alice", "Phone").await;
    assert_eq!(api_sessions(&laptop, &server).await.len(), 2);
    phone.post(&server.url("/logout"), &[]).await;
    assert_eq!(api_sessions(&laptop, &server).await.len(), 1);
    // Sign out other devices.
    device(&server, "alice", "Phone").await;
    device(&server, "alice", "Tablet").await;
    assert_eq!(api_sessions(&laptop, &server).await.len(), 3);
    laptop
        .post(&server.url("/sessions/logout-others"), &[])
        .await;
    assert_eq!(api_sessions(&laptop, &server).await.len(), 1);
    // A password change.
    device(&server, "alice", "Phone").await;
    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    laptop.post(&server.url("/password"), &form).await;
    assert_eq!(api_sessions(&laptop, &server).await.len(), 1);
    // Account deletion: nothing of alice's is left.
    let other = Browser::new();
    other.login(&server, "alice", NEW_PASSWORD).await;
    laptop
        .post(
            &server.url("/account/delete"),
            &[("password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(other.me(&server).await, None);
    let anew = signed_up(&server, "alice").await;
    assert_eq!(
        api_sessions(&anew, &server).await.len(),
        1,
        "only the new account's session"
    );
}

#[tokio::test]
async fn max_sessions_ends_the_least_recently_seen() {
    let db = TempDir::new("demo_devices");
    let mut config = config(&db.sqlite_url());
    config.max_sessions = Some(2);
    let server = Server::start(config).await;
    let first = signed_up(&server, "alice").await;
    let second = device(&server, "alice", "Second").await;
    let third = device(&server, "alice", "Third").await;
    assert_eq!(
        first.me(&server).await,
        None,
        "the least recently seen ended"
    );
    assert_eq!(second.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(third.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(api_sessions(&third, &server).await.len(), 2);
}

#[tokio::test]
async fn two_processes_on_one_sqlite_file_share_the_list() {
    let db = TempDir::new("demo_devices");
    let a = Server::start(config(&db.sqlite_url())).await;
    let b = Server::start(config(&db.sqlite_url())).await;
    let laptop = signed_up(&a, "alice").await;
    let phone = device(&b, "alice", "Phone").await;
    assert_eq!(api_sessions(&laptop, &b).await.len(), 2);
    let phone_handle = own_handle(&phone, &b).await;
    let response = laptop
        .delete(&a.url(&format!("/api/sessions/{phone_handle}")))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(phone.me(&b).await, None);
    assert_eq!(phone.me(&a).await, None);
    assert_eq!(laptop.me(&b).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn two_processes_with_postgres_users_and_redis_sessions_share_the_list() {
    let (Some(database_url), Some(redis_url)) =
        (service_url("DATABASE_URL"), service_url("REDIS_URL"))
    else {
        return;
    };
    let url = database_url.clone();
    with_postgres_schema(&database_url, move |schema| async move {
        let start = || {
            let mut config = config(&url);
            config.postgres_schema = Some(schema.clone());
            config.session_store_url = Some(redis_url.clone());
            config.max_sessions = Some(3);
            Server::start(config)
        };
        let (a, b) = (start().await, start().await);
        let laptop = signed_up(&a, "alice").await;
        let phone = device(&b, "alice", "Phone").await;
        let tablet = device(&a, "alice", "Tablet").await;
        assert_eq!(api_sessions(&laptop, &b).await.len(), 3);

        // A revoke through one process ends the session on both.
        let phone_handle = own_handle(&phone, &b).await;
        let response = laptop
            .post(&a.url("/sessions/revoke"), &[("handle", &phone_handle)])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(phone.me(&b).await, None);
        assert_eq!(phone.me(&a).await, None);
        // The limit holds across processes: a fourth sign-in ends the least
        // recently seen of three.
        let again = device(&b, "alice", "Phone again").await;
        let fourth = device(&a, "alice", "Fourth").await;
        assert_eq!(api_sessions(&fourth, &b).await.len(), 3);
        assert_eq!(laptop.me(&b).await, None, "the least recently seen");
        assert_eq!(tablet.me(&a).await.as_deref(), Some("alice"));

        let browsers = [&laptop, &phone, &tablet, &again, &fourth];
        delete_redis_sessions(&redis_url, &browsers, &a).await;
    })
    .await;
}

/// `DEMO_MAX_SESSIONS` with the fast path: the session a sign-in on `a`
/// evicts is refused on both instances, its pass too, as soon as the
/// notice arrives, not a pass's lifetime later.
async fn eviction_refuses_the_pass(a: &Server, b: &Server) -> Vec<Browser> {
    let laptop = signed_up(a, "alice").await;
    let cookies = admitted_on(&laptop, &[b, a]).await;
    assert_admitted(b, &cookies).await;
    let phone = device(b, "alice", "Phone").await;
    let tablet = device(a, "alice", "Tablet").await;
    refused_within_notice(a, &cookies, "eviction, same instance").await;
    refused_within_notice(b, &cookies, "eviction, other instance").await;
    assert_eq!(laptop.me(b).await, None, "the least recently seen");
    assert_eq!(phone.me(b).await.as_deref(), Some("alice"));
    assert_eq!(tablet.me(a).await.as_deref(), Some("alice"));
    vec![laptop, phone, tablet]
}

#[tokio::test]
async fn an_evicted_sessions_pass_is_refused_on_redis() {
    two_on_postgres_with(
        SessionsIn::Redis,
        |config| config.max_sessions = Some(2),
        |a, b, _| async move { eviction_refuses_the_pass(&a, &b).await },
    )
    .await;
}

#[tokio::test]
async fn an_evicted_sessions_pass_is_refused_on_postgres() {
    two_on_postgres_with(
        SessionsIn::Postgres,
        |config| config.max_sessions = Some(2),
        |a, b, _| async move { eviction_refuses_the_pass(&a, &b).await },
    )
    .await;
}
