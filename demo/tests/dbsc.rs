//! The demo's Device Bound Session Credentials (DBSC) contract, over HTTP,
//! with a device written in the test (`common/device.rs`: an ES256 key and
//! the draft's JWTs and headers): off by default; sign-ins offer
//! registration; `/dbsc/register` binds the session and sets `demo_bound`;
//! from then on the session cookie alone is anonymous; `/dbsc/refresh`
//! renews the bound cookie against a challenge, refuses replays, ends the
//! session on another key's proof, and refuses sessions that ended. On one
//! SQLite demo, and on two demos sharing Redis or Postgres.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use p256::ecdsa::{signature::Verifier as _, DerSignature, SigningKey, VerifyingKey};
use reqwest::{header, Client, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use tower_sessions_auth_demo::Config;

use crate::common::{
    client::{
        config, location, me_with_cookie, page, set_cookies, signed_in, sqlite_demo, Browser,
        NEW_PASSWORD, PASSWORD,
    },
    device::{
        b64, challenges, decode, hmac_sha256, hs256, parse_item, parse_list, registrations,
        sf_string, signing_input, unb64, unsigned, verifies, Bare, Challenge, Device, Member,
        Params, Registration, TYP,
    },
    passes::{pass_issued, refused_within_notice, replay},
    services::{config_on, two_on_postgres_with, SessionsIn},
    Server, TempDir,
};

const REGISTRATION: &str = "secure-session-registration";
const RESPONSE: &str = "secure-session-response";
const SESSION_ID: &str = "sec-secure-session-id";
const CHALLENGE: &str = "secure-session-challenge";
const SKIPPED: &str = "secure-session-skipped";

/// The bound cookie's lifetime when the tests do not choose one: the
/// demo's default.
const LIFETIME: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------
// Harness

/// The test configuration with device binding on, the bound cookie living
/// `lifetime`.
fn dbsc_config(database_url: &str, lifetime: Duration) -> Config {
    let mut config = config(database_url);
    config.device_binding = Some(lifetime);
    config
}

/// A demo with device binding on a fresh SQLite file.
async fn dbsc_demo_with(lifetime: Duration) -> (Server, TempDir) {
    let db = TempDir::new("demo_dbsc");
    let server = Server::start(dbsc_config(&db.sqlite_url(), lifetime)).await;
    (server, db)
}

async fn dbsc_demo() -> (Server, TempDir) {
    dbsc_demo_with(LIFETIME).await
}

/// The values of `response`'s `Secure-Session-Registration` headers.
fn registration_headers(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(REGISTRATION)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

/// The one registration `response` offers, as the contract has it: ES256
/// and RS256, at `/dbsc/register`, with a challenge of 32 random bytes.
fn offer(response: &Response) -> Registration {
    let headers = registration_headers(response);
    assert_eq!(headers.len(), 1, "one registration header: {headers:?}");
    let mut offers = registrations(&headers[0]).unwrap();
    assert_eq!(offers.len(), 1, "{headers:?}");
    let offer = offers.remove(0);
    assert_eq!(offer.algorithms, ["ES256", "RS256"], "{headers:?}");
    assert_eq!(offer.path, "/dbsc/register", "{headers:?}");
    assert_eq!(offer.authorization, None, "{headers:?}");
    assert_random_text(&offer.challenge);
    offer
}

/// `text` is 32 bytes as base64url without padding: 43 characters.
fn assert_random_text(text: &str) {
    assert_eq!(text.len(), 43, "{text:?}");
    assert_eq!(unb64(text).map(|bytes| bytes.len()), Some(32), "{text:?}");
}

/// A browser signed up as `username`, with the registration its sign-up
/// offered.
async fn signed_up_offered(server: &Server, username: &str) -> (Browser, Registration) {
    let browser = Browser::new();
    let response = browser.signup(server, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let offer = offer(&response);
    (browser, offer)
}

/// A browser signed in (form) as `username`, with the registration its
/// sign-in offered.
async fn signed_in_offered(server: &Server, username: &str) -> (Browser, Registration) {
    let browser = Browser::new();
    let response = browser.login(server, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let offer = offer(&response);
    (browser, offer)
}

/// How a registration proof is sent.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `Secure-Session-Response: "<jwt>"`, as the draft says.
    Header,
    /// `Secure-Session-Response: <jwt>`, not quoted.
    BareHeader,
    /// The JWT alone as the body.
    Body,
}

/// `POST /dbsc/register` as `browser` with `jwt`.
async fn register_via(browser: &Browser, server: &Server, jwt: &str, via: Via) -> Response {
    let request = browser.http().post(server.url("/dbsc/register"));
    let request = match via {
        Via::Header => request.header(RESPONSE, sf_string(jwt).unwrap()),
        Via::BareHeader => request.header(RESPONSE, jwt),
        Via::Body => request
            .header(header::CONTENT_TYPE, "application/jwt")
            .body(jwt.to_owned()),
    };
    request.send().await.unwrap()
}

async fn register(browser: &Browser, server: &Server, jwt: &str) -> Response {
    register_via(browser, server, jwt, Via::Header).await
}

/// The session instructions the contract answers a registration or a
/// refresh with, for the session `id`.
fn instructions(id: &str) -> Value {
    json!({
        "session_identifier": id,
        "refresh_url": "/dbsc/refresh",
        "scope": { "include_site": false, "scope_specification": [] },
        "credentials": [{
            "type": "cookie",
            "name": "demo_bound",
            "attributes": "Path=/; HttpOnly; SameSite=Lax",
        }],
    })
}

/// Asserts that `response` is a `200` with the session instructions and a
/// new `demo_bound` living `lifetime`; returns the session identifier and
/// the bound cookie's value.
async fn assert_instructions(response: Response, lifetime: Duration) -> (String, String) {
    assert_eq!(response.status(), StatusCode::OK);
    let bound = set_bound(&response).expect("a demo_bound cookie");
    let (value, attributes) = bound.split_once(';').unwrap();
    let value = value.strip_prefix("demo_bound=").unwrap().to_owned();
    assert!(!value.is_empty(), "{bound}");
    let mut attributes: Vec<&str> = attributes.split(';').map(str::trim).collect();
    attributes.sort_unstable();
    let max_age = format!("Max-Age={}", lifetime.as_secs());
    let mut expected = vec!["HttpOnly", "Path=/", "SameSite=Lax", max_age.as_str()];
    expected.sort_unstable();
    assert_eq!(attributes, expected, "{bound}");
    let body: Value = response.json().await.unwrap();
    let id = body["session_identifier"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(sf_string(&id).is_some_and(|_| !id.is_empty()), "{body}");
    assert_eq!(body, instructions(&id));
    (id, value)
}

/// The `Set-Cookie` of a new `demo_bound` in `response`, whole.
fn set_bound(response: &Response) -> Option<String> {
    set_cookies(response).into_iter().find(|cookie| {
        cookie
            .strip_prefix("demo_bound=")
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with(';'))
    })
}

/// The value of the cookie `name` in `browser`'s jar for `server`.
fn cookie(browser: &Browser, server: &Server, name: &str) -> Option<String> {
    browser
        .cookie_header(server)
        .split("; ")
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

fn session_cookie(browser: &Browser, server: &Server) -> String {
    browser.session_id(server).expect("a session cookie")
}

/// A session bound to its device.
struct Bound {
    browser: Browser,
    device: Device,
    /// The DBSC session identifier.
    id: String,
}

impl Bound {
    /// The `Cookie` header of this session's session cookie alone: what a
    /// thief of the cookie jar without the bound cookie sends.
    fn session_only(&self, server: &Server) -> String {
        format!("demo_session={}", session_cookie(&self.browser, server))
    }

    /// The session cookie and the bound cookie.
    fn both(&self, server: &Server) -> String {
        let bound = cookie(&self.browser, server, "demo_bound").expect("a bound cookie");
        format!("{}; demo_bound={bound}", self.session_only(server))
    }

    /// A new bound cookie by the refresh protocol, with the session cookie
    /// alone (as when the bound cookie expired): its value.
    async fn refresh(&self, server: &Server, lifetime: Duration) -> String {
        let cookies = self.session_only(server);
        let challenge = challenge(&server.url(""), &cookies, &self.id).await;
        let proof = self.device.refresh_proof(&challenge);
        let response = refresh(server, &cookies, Some(&self.id), Some(&proof)).await;
        let (id, value) = assert_instructions(response, lifetime).await;
        assert_eq!(id, self.id);
        value
    }
}

/// Signs `username` up and binds the session with a new device, by the
/// header.
async fn bound(server: &Server, username: &str) -> Bound {
    let (browser, offer) = signed_up_offered(server, username).await;
    bind(server, browser, &offer).await
}

/// Binds `browser`'s session, offered `offer`, to a new device.
async fn bind(server: &Server, browser: Browser, offer: &Registration) -> Bound {
    let device = Device::new();
    let response = register(
        &browser,
        server,
        &device.registration_proof(&offer.challenge),
    )
    .await;
    let (id, _) = assert_instructions(response, LIFETIME).await;
    Bound {
        browser,
        device,
        id,
    }
}

/// Adds the refresh headers: `Sec-Secure-Session-Id` naming `id` and
/// `Secure-Session-Response` carrying `proof`, each when given.
fn refresh_headers(
    request: RequestBuilder,
    id: Option<&str>,
    proof: Option<&str>,
) -> RequestBuilder {
    let request = match id {
        Some(id) => request.header(SESSION_ID, sf_string(id).unwrap()),
        None => request,
    };
    match proof {
        Some(proof) => request.header(RESPONSE, sf_string(proof).unwrap()),
        None => request,
    }
}

/// `POST /dbsc/refresh` with exactly `cookies`, from a client without a
/// jar.
async fn refresh(
    server: &Server,
    cookies: &str,
    id: Option<&str>,
    proof: Option<&str>,
) -> Response {
    let request = Client::new()
        .post(server.url("/dbsc/refresh"))
        .header(header::COOKIE, cookies);
    refresh_headers(request, id, proof).send().await.unwrap()
}

/// `POST /dbsc/refresh` as `browser`, with its jar.
async fn refresh_as(
    browser: &Browser,
    server: &Server,
    id: Option<&str>,
    proof: Option<&str>,
) -> Response {
    let request = browser.http().post(server.url("/dbsc/refresh"));
    refresh_headers(request, id, proof).send().await.unwrap()
}

/// Asserts that `response` is the `403` of a refresh without a (current)
/// proof: a new challenge for the session `id`; returns the challenge.
fn assert_challenged(response: &Response, id: &str) -> String {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let values: Vec<&str> = response
        .headers()
        .get_all(CHALLENGE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(values.len(), 1, "one challenge header: {values:?}");
    let found = challenges(values[0]).unwrap();
    assert_eq!(found.len(), 1, "{values:?}");
    assert_eq!(found[0].id, id, "{values:?}");
    assert_random_text(&found[0].challenge);
    found[0].challenge.clone()
}

/// A refresh challenge for the session `id`, asked at `base` (a server's
/// URL) with `cookies`.
async fn challenge(base: &str, cookies: &str, id: &str) -> String {
    let response = Client::new()
        .post(format!("{base}/dbsc/refresh"))
        .header(header::COOKIE, cookies)
        .header(SESSION_ID, sf_string(id).unwrap())
        .send()
        .await
        .unwrap();
    assert_challenged(&response, id)
}

/// Asserts that `response` is the `401` that ends the browser's side of a
/// device-bound session.
async fn assert_discontinued(response: Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "continue": false }));
}

/// Asserts that `GET /api/me` with exactly `cookies` is the `401` of a
/// bound session without its device proof.
async fn assert_proof_required(server: &Server, cookies: &str) {
    let response = replay(server, cookies).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookies}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "device proof required" }),
        "{cookies}"
    );
}

/// Asserts that `GET /api/me` with exactly `cookies` signs `username` in.
async fn assert_signed_in(server: &Server, cookies: &str, username: &str) {
    let response = replay(server, cookies).await;
    assert_eq!(response.status(), StatusCode::OK, "{cookies}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], username, "{cookies}");
}

/// `GET path` with exactly `cookies`, from a client without a jar that
/// follows no redirect.
async fn get_with(server: &Server, path: &str, cookies: &str) -> Response {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(server.url(path))
        .header(header::COOKIE, cookies)
        .send()
        .await
        .unwrap()
}

/// Asserts that the pages treat `cookies` as nobody's: the signed-out
/// home, and the device list sends to the sign-in.
async fn assert_pages_signed_out(server: &Server, cookies: &str) {
    let home = get_with(server, "/", cookies).await;
    assert_eq!(home.status(), StatusCode::OK);
    let body = home.text().await.unwrap();
    assert!(body.contains(r#"href="/login""#), "{body}");
    assert!(!body.contains("Signed in as"), "{body}");
    let sessions = get_with(server, "/sessions", cookies).await;
    assert_eq!(sessions.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&sessions), "/login?next=%2Fsessions");
}

// ---------------------------------------------------------------------------
// Off by default

#[tokio::test]
async fn off_by_default_no_offer_and_no_endpoints() {
    let (server, _db) = sqlite_demo().await;
    let browser = Browser::new();
    let response = browser.signup(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(registration_headers(&response), Vec::<String>::new());
    let response = browser.login(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(registration_headers(&response), Vec::<String>::new());
    let response = Browser::new()
        .http()
        .post(server.url("/api/login"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(registration_headers(&response), Vec::<String>::new());

    // No routes: a signed-in browser's well-formed requests find nothing.
    let device = Device::new();
    let proof = device.registration_proof(&b64(&[7; 32]));
    for via in [Via::Header, Via::Body] {
        let response = register_via(&browser, &server, &proof, via).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{via:?}");
    }
    let response = refresh_as(&browser, &server, Some("an id"), None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(set_bound(&response).is_none());
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
}

// ---------------------------------------------------------------------------
// The offer

#[tokio::test]
async fn every_sign_in_offers_registration_with_a_new_challenge() {
    let (server, _db) = dbsc_demo().await;
    let (_, at_signup) = signed_up_offered(&server, "alice").await;
    let (_, at_login) = signed_in_offered(&server, "alice").await;
    let response = Browser::new()
        .http()
        .post(server.url("/api/login"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let at_api_login = offer(&response);
    let (_, again) = signed_in_offered(&server, "alice").await;

    let mut seen = vec![
        at_signup.challenge,
        at_login.challenge,
        at_api_login.challenge,
        again.challenge,
    ];
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "every offer has its own challenge");
}

#[tokio::test]
async fn what_signs_nobody_in_offers_nothing() {
    let (server, _db) = dbsc_demo().await;
    let (browser, _) = signed_up_offered(&server, "alice").await;

    // A refused sign-in, pages and API calls of a signed-in session.
    let response = Browser::new()
        .login(&server, "alice", "wrong password")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(registration_headers(&response), Vec::<String>::new());
    for path in ["/", "/api/me", "/sessions"] {
        let response = browser.get(&server.url(path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            registration_headers(&response),
            Vec::<String>::new(),
            "{path}"
        );
    }
    // A re-authentication (`/confirm`) proves the user again in the same
    // session: no new offer.
    let response = browser
        .post(&server.url("/confirm"), &[("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(registration_headers(&response), Vec::<String>::new());
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
}

// ---------------------------------------------------------------------------
// Registration

#[tokio::test]
async fn registration_by_header_binds_the_session_and_rotates_its_id() {
    let (server, _db) = dbsc_demo().await;
    let (browser, offer) = signed_up_offered(&server, "alice").await;
    let before = session_cookie(&browser, &server);

    let device = Device::new();
    let response = register(
        &browser,
        &server,
        &device.registration_proof(&offer.challenge),
    )
    .await;
    assert!(
        registration_headers(&response).is_empty(),
        "a bound session is offered nothing"
    );
    let (_, bound) = assert_instructions(response, LIFETIME).await;

    // A new session id; the one from before the binding signs nobody in.
    let after = session_cookie(&browser, &server);
    assert_ne!(after, before);
    assert_eq!(
        me_with_cookie(&server, &before).await,
        StatusCode::UNAUTHORIZED
    );
    // Both cookies: signed in.
    assert_eq!(cookie(&browser, &server, "demo_bound"), Some(bound.clone()));
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
    assert_signed_in(
        &server,
        &format!("demo_session={after}; demo_bound={bound}"),
        "alice",
    )
    .await;
}

#[tokio::test]
async fn registration_by_body_or_by_an_unquoted_header() {
    let (server, _db) = dbsc_demo().await;
    for (n, via) in [Via::Body, Via::BareHeader].into_iter().enumerate() {
        let username = format!("user{n}");
        let (browser, offer) = signed_up_offered(&server, &username).await;
        let device = Device::new();
        let proof = device.registration_proof(&offer.challenge);
        let response = register_via(&browser, &server, &proof, via).await;
        assert_instructions(response, LIFETIME).await;
        assert_eq!(browser.me(&server).await, Some(username), "{via:?}");
        // Bound: its session cookie alone is not enough.
        let session = format!("demo_session={}", session_cookie(&browser, &server));
        assert_proof_required(&server, &session).await;
    }
}

#[tokio::test]
async fn the_bound_cookie_lives_the_configured_lifetime() {
    let lifetime = Duration::from_secs(120);
    let (server, _db) = dbsc_demo_with(lifetime).await;
    let (browser, offer) = signed_up_offered(&server, "alice").await;
    let device = Device::new();
    let response = register(
        &browser,
        &server,
        &device.registration_proof(&offer.challenge),
    )
    .await;
    let (id, _) = assert_instructions(response, lifetime).await;
    let bound = Bound {
        browser,
        device,
        id,
    };
    // A refreshed one too.
    bound.refresh(&server, lifetime).await;
}

// ---------------------------------------------------------------------------
// The session cookie without its bound cookie

#[tokio::test]
async fn a_copied_session_cookie_alone_is_anonymous() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let session = owner.session_only(&server);

    // A second client given the session cookie's value only.
    assert_proof_required(&server, &session).await;
    assert_pages_signed_out(&server, &session).await;
    // Every cookie of the jar but the bound one (a pass, had one been
    // issued, included).
    let without_bound: Vec<String> = owner
        .browser
        .cookie_header(&server)
        .split("; ")
        .filter(|pair| !pair.starts_with("demo_bound="))
        .map(str::to_owned)
        .collect();
    assert_proof_required(&server, &without_bound.join("; ")).await;
    assert_pages_signed_out(&server, &without_bound.join("; ")).await;

    // The owner, with both cookies, is signed in all along.
    assert_signed_in(&server, &owner.both(&server), "alice").await;
    assert_eq!(owner.browser.me(&server).await.as_deref(), Some("alice"));
    let home = page(&owner.browser, &server, "/").await;
    assert!(home.contains("Signed in as"), "{home}");
}

#[tokio::test]
async fn a_sign_in_on_the_session_cookie_alone_starts_a_new_session() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let watcher = signed_in(&server, "alice", PASSWORD).await;

    // Whoever holds the copied cookie (and, here, alice's password) signs
    // in with it.
    let response = Client::new()
        .post(server.url("/api/login"))
        .header(header::COOKIE, owner.session_only(&server))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let new_session = set_cookies(&response)
        .iter()
        .find_map(|cookie| cookie.strip_prefix("demo_session="))
        .and_then(|rest| rest.split(';').next())
        .expect("a session cookie")
        .to_owned();

    // A session of its own, bound to no device: the bound one was ended,
    // not taken over with its device and its entry.
    assert_signed_in(&server, &format!("demo_session={new_session}"), "alice").await;
    let response = replay(&server, &owner.both(&server)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_discontinued(refresh_as(&owner.browser, &server, Some(&owner.id), None).await).await;
    let response = watcher.get(&server.url("/api/sessions")).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["sessions"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn an_expired_bound_cookie_is_refused_until_a_refresh() {
    let lifetime = Duration::from_secs(1);
    let (server, _db) = dbsc_demo_with(lifetime).await;
    let (browser, offer) = signed_up_offered(&server, "alice").await;
    let device = Device::new();
    let response = register(
        &browser,
        &server,
        &device.registration_proof(&offer.challenge),
    )
    .await;
    let (id, first) = assert_instructions(response, lifetime).await;
    let owner = Bound {
        browser,
        device,
        id,
    };
    // Sent by hand: the jar drops the cookie at its Max-Age by itself, and
    // the server must refuse it whatever the client keeps.
    let session = owner.session_only(&server);
    let with_first = format!("{session}; demo_bound={first}");
    assert_signed_in(&server, &with_first, "alice").await;

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_proof_required(&server, &with_first).await;
    assert_pages_signed_out(&server, &with_first).await;

    // The refresh works without a valid bound cookie, and its cookie signs
    // in (within its second).
    let renewed = owner.refresh(&server, lifetime).await;
    assert_ne!(renewed, first);
    assert_signed_in(
        &server,
        &format!("{session}; demo_bound={renewed}"),
        "alice",
    )
    .await;
    assert_proof_required(&server, &with_first).await;
}

#[tokio::test]
async fn a_forged_or_garbled_bound_cookie_is_refused() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let session = owner.session_only(&server);
    let real = cookie(&owner.browser, &server, "demo_bound").unwrap();

    let mut flipped = real.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let same_length = b64(&vec![0x5a; unb64(&real).map_or(48, |bytes| bytes.len())]);
    let forged = [
        flipped,
        real[..real.len() - 1].to_owned(),
        format!("{real}A"),
        same_length,
        String::new(),
        "x".to_owned(),
        "%00%ff".to_owned(),
        "A".repeat(4096),
        // The session cookie's value in the bound cookie's place.
        session_cookie(&owner.browser, &server),
    ];
    for value in &forged {
        assert_proof_required(&server, &format!("{session}; demo_bound={value}")).await;
    }
    assert_signed_in(&server, &owner.both(&server), "alice").await;
}

#[tokio::test]
async fn another_sessions_bound_cookie_is_refused() {
    let (server, _db) = dbsc_demo().await;
    let laptop = bound(&server, "alice").await;
    let (phone, offer) = signed_in_offered(&server, "alice").await;
    let phone = bind(&server, phone, &offer).await;
    let bob = bound(&server, "bob").await;

    let laptop_session = laptop.session_only(&server);
    for other in [&phone, &bob] {
        let bound = cookie(&other.browser, &server, "demo_bound").unwrap();
        assert_proof_required(&server, &format!("{laptop_session}; demo_bound={bound}")).await;
    }
    // Each with its own: signed in.
    assert_signed_in(&server, &laptop.both(&server), "alice").await;
    assert_signed_in(&server, &phone.both(&server), "alice").await;
    assert_signed_in(&server, &bob.both(&server), "bob").await;
}

#[tokio::test]
async fn a_bound_session_signing_in_again_stays_bound_and_is_offered_nothing() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let response = owner.browser.login(&server, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(registration_headers(&response), Vec::<String>::new());
    assert_eq!(owner.browser.me(&server).await.as_deref(), Some("alice"));
    assert_proof_required(&server, &owner.session_only(&server)).await;
    owner.refresh(&server, LIFETIME).await;
}

// ---------------------------------------------------------------------------
// Refresh

#[tokio::test]
async fn refresh_without_a_proof_answers_a_new_challenge_each_time() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    // With both cookies (the jar), and with the session cookie alone.
    let response = refresh_as(&owner.browser, &server, Some(&owner.id), None).await;
    let first = assert_challenged(&response, &owner.id);
    assert!(set_bound(&response).is_none());
    let second = challenge(&server.url(""), &owner.session_only(&server), &owner.id).await;
    assert_ne!(first, second);
    // Asking is harmless: still signed in.
    assert_eq!(owner.browser.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn refresh_with_a_valid_proof_sets_a_new_bound_cookie_that_signs_in() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let first = cookie(&owner.browser, &server, "demo_bound").unwrap();
    let session = owner.session_only(&server);

    // The session cookie alone, as a browser whose bound cookie expired.
    let challenge = challenge(&server.url(""), &session, &owner.id).await;
    let proof = owner.device.refresh_proof(&challenge);
    let response = refresh(&server, &session, Some(&owner.id), Some(&proof)).await;
    let (id, renewed) = assert_instructions(response, LIFETIME).await;
    assert_eq!(id, owner.id);
    assert_ne!(renewed, first);
    assert_signed_in(
        &server,
        &format!("{session}; demo_bound={renewed}"),
        "alice",
    )
    .await;

    // With the jar: the browser keeps the new one and stays signed in.
    let response = refresh_as(&owner.browser, &server, Some(&owner.id), None).await;
    let challenge = assert_challenged(&response, &owner.id);
    let proof = owner.device.refresh_proof(&challenge);
    let response = refresh_as(&owner.browser, &server, Some(&owner.id), Some(&proof)).await;
    let (_, third) = assert_instructions(response, LIFETIME).await;
    assert_eq!(cookie(&owner.browser, &server, "demo_bound"), Some(third));
    assert_eq!(owner.browser.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_replayed_or_older_proof_gets_a_new_challenge() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let session = owner.session_only(&server);
    let base = server.url("");

    let first = challenge(&base, &session, &owner.id).await;
    let proof = owner.device.refresh_proof(&first);
    let response = refresh(&server, &session, Some(&owner.id), Some(&proof)).await;
    assert_instructions(response, LIFETIME).await;
    // The same proof again: spent.
    let response = refresh(&server, &session, Some(&owner.id), Some(&proof)).await;
    let second = assert_challenged(&response, &owner.id);
    assert!(set_bound(&response).is_none());
    assert_ne!(second, first);

    // A proof for a challenge that a newer one replaced.
    let third = challenge(&base, &session, &owner.id).await;
    let stale = owner.device.refresh_proof(&second);
    let response = refresh(&server, &session, Some(&owner.id), Some(&stale)).await;
    let fourth = assert_challenged(&response, &owner.id);
    assert!(set_bound(&response).is_none());
    assert!(fourth != second && fourth != third);
    // The registration's challenge, spent at registration, is none either.
    let proof = owner.device.refresh_proof(&first);
    let response = refresh(&server, &session, Some(&owner.id), Some(&proof)).await;
    let fifth = assert_challenged(&response, &owner.id);

    // Nothing of that ended the session: the latest challenge works.
    let proof = owner.device.refresh_proof(&fifth);
    let response = refresh(&server, &session, Some(&owner.id), Some(&proof)).await;
    assert_instructions(response, LIFETIME).await;
}

#[tokio::test]
async fn a_proof_by_another_key_ends_the_session() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let bystander = bound(&server, "bob").await;
    let both = owner.both(&server);
    let session = owner.session_only(&server);

    let challenge = challenge(&server.url(""), &session, &owner.id).await;
    let thief = Device::new();
    let response = refresh(
        &server,
        &session,
        Some(&owner.id),
        Some(&thief.refresh_proof(&challenge)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_bound(&response).is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "error": "proof signed by another key" }));

    // Ended: the bound cookie signs nobody in, the refresh is over.
    let response = replay(&server, &both).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(owner.browser.me(&server).await, None);
    let proof = owner.device.refresh_proof(&challenge);
    assert_discontinued(refresh(&server, &both, Some(&owner.id), Some(&proof)).await).await;
    assert_discontinued(refresh(&server, &both, Some(&owner.id), None).await).await;
    // Others are unharmed.
    assert_signed_in(&server, &bystander.both(&server), "bob").await;
}

#[tokio::test]
async fn a_malformed_refresh_proof_is_400_and_changes_nothing() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let session = owner.session_only(&server);
    let challenge = challenge(&server.url(""), &session, &owner.id).await;
    let jti = json!({ "jti": challenge });
    let device = &owner.device;

    let malformed = [
        // The draft: no key in a refresh proof, even the session's own.
        device.sign(&device.registration_header(), &jti),
        device.sign(&json!({ "alg": "ES256", "typ": "JWT" }), &jti),
        device.sign(&json!({ "alg": "ES256" }), &jti),
        unsigned(&json!({ "alg": "none", "typ": TYP }), &jti),
        hs256(&device.sec1(), &json!({ "alg": "HS256", "typ": TYP }), &jti),
        "not a jwt".to_owned(),
        String::new(),
    ];
    for proof in &malformed {
        let response = refresh(&server, &session, Some(&owner.id), Some(proof)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{proof}");
        assert!(set_bound(&response).is_none(), "{proof}");
    }
    // The session and its pending challenge are as they were.
    assert_signed_in(&server, &owner.both(&server), "alice").await;
    let proof = device.refresh_proof(&challenge);
    let response = refresh(&server, &session, Some(&owner.id), Some(&proof)).await;
    assert_instructions(response, LIFETIME).await;
}

#[tokio::test]
async fn a_refresh_naming_another_or_no_session_is_refused() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let other = bound(&server, "bob").await;
    let (unbound, _) = signed_in_offered(&server, "alice").await;
    let session = owner.session_only(&server);

    for id in [None, Some("wrong"), Some(other.id.as_str())] {
        assert_discontinued(refresh(&server, &session, id, None).await).await;
        let proof = owner.device.refresh_proof("anything");
        assert_discontinued(refresh(&server, &session, id, Some(&proof)).await).await;
    }
    // A session never bound, and no session.
    assert_discontinued(refresh_as(&unbound, &server, Some(&owner.id), None).await).await;
    assert_discontinued(refresh(&server, "", Some(&owner.id), None).await).await;

    // Nothing ended: the right name gets a challenge.
    challenge(&server.url(""), &session, &owner.id).await;
    assert_signed_in(&server, &owner.both(&server), "alice").await;
}

// ---------------------------------------------------------------------------
// Registration refusals

/// A registration proof that is wrong in each of the ways the contract
/// names, for a browser offered `challenge`; `foreign` is a challenge
/// offered to another session.
fn bad_registrations(
    device: &Device,
    challenge: &str,
    foreign: &str,
) -> Vec<(&'static str, String)> {
    let other = Device::new();
    let header = device.registration_header();
    let jti = json!({ "jti": challenge });
    let with = |changes: Value| {
        let mut header = header.clone();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                header.as_object_mut().unwrap().remove(key);
            } else {
                header[key] = value.clone();
            }
        }
        header
    };
    let mut garbled = device.registration_proof(challenge).into_bytes();
    let last = garbled.len() - 2;
    garbled[last] = if garbled[last] == b'A' { b'B' } else { b'A' };
    let padded = json!({ "jti": challenge, "pad": "x".repeat(9 * 1024) });
    let mut p384_jwk = device.jwk();
    p384_jwk["crv"] = json!("P-384");
    vec![
        ("not a JWT", "not a jwt".to_owned()),
        ("empty", String::new()),
        ("two parts", signing_input(&header, &jti)),
        ("alg none", unsigned(&with(json!({ "alg": "none" })), &jti)),
        (
            "alg none, no key",
            unsigned(&with(json!({ "alg": "none", "jwk": null })), &jti),
        ),
        (
            "HS256 keyed with the public key's bytes",
            hs256(&device.sec1(), &with(json!({ "alg": "HS256" })), &jti),
        ),
        (
            "HS256 keyed with the public JWK",
            hs256(
                device.jwk().to_string().as_bytes(),
                &with(json!({ "alg": "HS256" })),
                &jti,
            ),
        ),
        (
            "alg ES384",
            device.sign(&with(json!({ "alg": "ES384" })), &jti),
        ),
        (
            "alg RS256 on an EC key",
            device.sign(&with(json!({ "alg": "RS256" })), &jti),
        ),
        ("typ JWT", device.sign(&with(json!({ "typ": "JWT" })), &jti)),
        ("no typ", device.sign(&with(json!({ "typ": null })), &jti)),
        ("no jwk", device.sign(&with(json!({ "jwk": null })), &jti)),
        (
            "another key's jwk",
            device.sign(&with(json!({ "jwk": other.jwk() })), &jti),
        ),
        (
            "a jwk on another curve",
            device.sign(&with(json!({ "jwk": p384_jwk })), &jti),
        ),
        ("signed by another key", other.sign(&header, &jti)),
        ("a DER signature", device.sign_der(&header, &jti)),
        ("a garbled signature", String::from_utf8(garbled).unwrap()),
        (
            "another session's challenge",
            device.registration_proof(foreign),
        ),
        (
            "an invented challenge",
            device.registration_proof(&b64(&[1; 32])),
        ),
        ("an empty jti", device.registration_proof("")),
        (
            "no jti",
            device.sign(&header, &json!({ "nonce": challenge })),
        ),
        ("a proof over 8 KiB", device.sign(&header, &padded)),
    ]
}

#[tokio::test]
async fn registration_refusals_are_400_and_change_nothing() {
    let (server, _db) = dbsc_demo().await;
    let (_, foreign) = signed_up_offered(&server, "bob").await;
    let (browser, offer) = signed_up_offered(&server, "alice").await;
    let session = session_cookie(&browser, &server);
    let device = Device::new();

    for (what, proof) in bad_registrations(&device, &offer.challenge, &foreign.challenge) {
        for via in [Via::Header, Via::Body] {
            let response = register_via(&browser, &server, &proof, via).await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{what} by {via:?}"
            );
            assert!(set_bound(&response).is_none(), "{what} by {via:?}");
            assert_eq!(
                session_cookie(&browser, &server),
                session,
                "{what} by {via:?}"
            );
        }
    }
    // Larger than any proof may be: refused before it is read.
    let huge = device.sign(
        &device.registration_header(),
        &json!({ "jti": offer.challenge, "pad": "x".repeat(20 * 1024) }),
    );
    for via in [Via::Header, Via::Body] {
        let response = register_via(&browser, &server, &huge, via).await;
        assert!(
            response.status().is_client_error(),
            "{via:?}: {}",
            response.status()
        );
        assert!(set_bound(&response).is_none());
    }

    // Still signed in with the same session, unbound; the offer still
    // stands.
    assert_eq!(me_with_cookie(&server, &session).await, StatusCode::OK);
    let proof = device.registration_proof(&offer.challenge);
    let response = register(&browser, &server, &proof).await;
    assert_instructions(response, LIFETIME).await;
    assert_eq!(browser.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn registration_needs_a_signed_in_session_not_bound_yet() {
    let (server, _db) = dbsc_demo().await;
    let (browser, offer) = signed_up_offered(&server, "alice").await;
    let device = Device::new();
    let proof = device.registration_proof(&offer.challenge);

    // Anonymous: the proof is for a session it does not have.
    let anonymous = Browser::new();
    let response = register(&anonymous, &server, &proof).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_bound(&response).is_none());

    let owner = bind(&server, browser, &offer).await;
    let bound_before = cookie(&owner.browser, &server, "demo_bound").unwrap();

    // Twice: 409, whatever the proof.
    for proof in [
        owner.device.registration_proof(&offer.challenge),
        device.registration_proof(&offer.challenge),
        device.registration_proof(&b64(&[3; 32])),
    ] {
        let response = register(&owner.browser, &server, &proof).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(set_bound(&response).is_none());
    }
    // A thief with the session cookie alone cannot bind it to its own key:
    // it is nobody.
    let thief = Device::new();
    let response = Client::new()
        .post(server.url("/dbsc/register"))
        .header(header::COOKIE, owner.session_only(&server))
        .header(
            RESPONSE,
            sf_string(&thief.registration_proof(&offer.challenge)).unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_bound(&response).is_none());

    // The binding is the first one.
    assert_eq!(
        cookie(&owner.browser, &server, "demo_bound"),
        Some(bound_before)
    );
    assert_signed_in(&server, &owner.both(&server), "alice").await;
    owner.refresh(&server, LIFETIME).await;
}

// ---------------------------------------------------------------------------
// Endings, and the changes that are none

#[tokio::test]
async fn after_a_sign_out_the_refresh_is_refused() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let both = owner.both(&server);
    let response = owner.browser.post(&server.url("/logout"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // The browser (its session cookie removed) and a copy of the cookies
    // from before.
    assert_discontinued(refresh_as(&owner.browser, &server, Some(&owner.id), None).await).await;
    assert_discontinued(refresh(&server, &both, Some(&owner.id), None).await).await;
    let response = replay(&server, &both).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn after_a_password_change_elsewhere_the_refresh_is_refused() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let other = signed_in(&server, "alice", PASSWORD).await;
    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let response = other.post(&server.url("/password"), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    assert_discontinued(refresh_as(&owner.browser, &server, Some(&owner.id), None).await).await;
    let response = replay(&server, &owner.both(&server)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(other.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn after_a_revocation_the_refresh_is_refused() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let other = signed_in(&server, "alice", PASSWORD).await;
    let response = other.get(&server.url("/api/sessions")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let others: Vec<&Value> = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|session| session["current"] == false)
        .collect();
    assert_eq!(others.len(), 1, "{body}");
    let handle = others[0]["handle"].as_str().unwrap();
    let response = other
        .delete(&server.url(&format!("/api/sessions/{handle}")))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_discontinued(refresh_as(&owner.browser, &server, Some(&owner.id), None).await).await;
    let response = replay(&server, &owner.both(&server)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_bound_cookie_survives_the_sessions_own_id_changes() {
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let bound_value = cookie(&owner.browser, &server, "demo_bound").unwrap();

    // Its own password change, then a re-authentication: each changes the
    // session id.
    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let steps: [(&str, &[(&str, &str)]); 2] = [
        ("/password", &form),
        ("/confirm", &[("password", NEW_PASSWORD)]),
    ];
    for (path, form) in steps {
        let before = session_cookie(&owner.browser, &server);
        let response = owner.browser.post(&server.url(path), form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            registration_headers(&response),
            Vec::<String>::new(),
            "{path}"
        );
        let after = session_cookie(&owner.browser, &server);
        assert_ne!(after, before, "{path}");
        assert_signed_in(
            &server,
            &format!("demo_session={after}; demo_bound={bound_value}"),
            "alice",
        )
        .await;
        assert_proof_required(&server, &format!("demo_session={after}")).await;
    }
    owner.refresh(&server, LIFETIME).await;
}

// ---------------------------------------------------------------------------
// Events, as the demo's recent activity shows them

/// Waits until the home page of `browser` lists `what` `count` times
/// (events are recorded after the response), and asserts that it lists it
/// no more often.
async fn activity_reaches(browser: &Browser, server: &Server, what: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let home = page(browser, server, "/").await;
        let seen = home.matches(what).count();
        if seen >= count {
            assert_eq!(seen, count, "{what:?} listed too often: {home}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what:?} not listed {count} times: {home}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_activity_lists_bindings_missing_proofs_and_unproven_ends() {
    const BOUND: &str = "A session was bound to its device";
    // (The page escapes the apostrophe of "session's".)
    const MISSING: &str = "cookie was used without its device proof";
    const UNPROVEN: &str = "A session was signed out: it could not prove its device";
    let (server, _db) = dbsc_demo().await;
    let owner = bound(&server, "alice").await;
    let watcher = signed_in(&server, "alice", PASSWORD).await;
    activity_reaches(&watcher, &server, BOUND, 1).await;
    let session = owner.session_only(&server);

    assert_proof_required(&server, &session).await;
    activity_reaches(&watcher, &server, MISSING, 1).await;
    // Not suspicious: a browser that says it skipped a refresh, and the
    // refresh itself.
    let response = Client::new()
        .get(server.url("/api/me"))
        .header(header::COOKIE, &session)
        .header(
            SKIPPED,
            format!(
                "unreachable;session_identifier={}",
                sf_string(&owner.id).unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = challenge(&server.url(""), &session, &owner.id).await;
    // Suspicious: a skipped refresh of another session, or of none.
    for skipped in [
        format!(
            "unreachable;session_identifier={}",
            sf_string("another session").unwrap()
        ),
        "unreachable".to_owned(),
    ] {
        let response = Client::new()
            .get(server.url("/api/me"))
            .header(header::COOKIE, &session)
            .header(SKIPPED, skipped)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Events arrive in order: once these two are listed, the two before
    // them would be too.
    activity_reaches(&watcher, &server, MISSING, 3).await;

    let thief = Device::new();
    let proof = thief.refresh_proof(&challenge);
    let response = refresh(&server, &session, Some(&owner.id), Some(&proof)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    activity_reaches(&watcher, &server, UNPROVEN, 1).await;
}

// ---------------------------------------------------------------------------
// Two instances on one session store

/// Two demos on one store: registration on `a`, the refresh challenged by
/// `b` and answered on `a`; the bound cookie works on both, the session
/// cookie alone on neither, and the bound session never gets a pass.
async fn bound_across_two_instances(sessions: SessionsIn) {
    let adjust = |config: &mut Config| config.device_binding = Some(LIFETIME);
    two_on_postgres_with(sessions, adjust, |a, b, _| async move {
        let (browser, offer) = signed_up_offered(&a, "alice").await;
        // The fast path is on: an unbound session gets a pass, and so did
        // this one before its binding (from either instance).
        let unbound = signed_in(&a, "alice", PASSWORD).await;
        pass_issued(&unbound, &b).await;
        pass_issued(&browser, &a).await;
        let copied_before = browser.cookie_header(&a);

        let owner = bind(&a, browser, &offer).await;
        let session = owner.session_only(&a);
        for server in [&a, &b] {
            assert_signed_in(server, &owner.both(server), "alice").await;
            assert_proof_required(server, &session).await;
        }
        // Refresh: challenged on b, answered on a.
        let challenge = challenge(&b.url(""), &session, &owner.id).await;
        let proof = owner.device.refresh_proof(&challenge);
        let response = refresh(&a, &session, Some(&owner.id), Some(&proof)).await;
        let (_, renewed) = assert_instructions(response, LIFETIME).await;
        let renewed = format!("{session}; demo_bound={renewed}");
        for server in [&a, &b] {
            assert_signed_in(server, &renewed, "alice").await;
            assert_proof_required(server, &session).await;
            // The cookies but the bound one, the pass included: anonymous.
            let without_bound: Vec<&str> = copied_before
                .split("; ")
                .filter(|pair| !pair.starts_with("demo_session="))
                .chain(std::iter::once(session.as_str()))
                .collect();
            assert_proof_required(server, &without_bound.join("; ")).await;
            // The copy from before the binding: its session id is gone, its
            // pass refused once the instance hears of it.
            refused_within_notice(server, &copied_before, "the copy from before the binding").await;
        }
        // Its requests never carry a pass.
        for server in [&a, &b] {
            for _ in 0..5 {
                let response = owner.browser.get(&server.url("/api/me")).await;
                assert_eq!(response.status(), StatusCode::OK);
                let cookies = set_cookies(&response);
                assert!(
                    !cookies.iter().any(|cookie| cookie.starts_with("demo_pass=")
                        && !cookie.starts_with("demo_pass=;")),
                    "{cookies:?}"
                );
            }
        }
        vec![owner.browser, unbound]
    })
    .await;
}

#[tokio::test]
async fn an_instance_without_binding_refuses_bound_sessions() {
    let adjust = |config: &mut Config| config.device_binding = Some(LIFETIME);
    two_on_postgres_with(SessionsIn::Postgres, adjust, |a, _, stores| async move {
        // A third instance on the same stores, without `DEMO_DBSC`.
        let plain = Server::start(config_on(&stores)).await;
        let owner = bound(&a, "alice").await;
        let unbound = signed_in(&plain, "alice", PASSWORD).await;

        // It cannot check a device: the bound session is nobody there,
        // with its bound cookie or without, and gets no pass.
        for cookies in [owner.both(&plain), owner.session_only(&plain)] {
            let response = replay(&plain, &cookies).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookies}");
            assert!(
                !set_cookies(&response)
                    .iter()
                    .any(|cookie| cookie.starts_with("demo_pass=")
                        && !cookie.starts_with("demo_pass=;")),
                "{cookies}"
            );
        }
        // Sessions bound to no device work there as before, and the bound
        // one still holds where its device is checked.
        assert_eq!(unbound.me(&plain).await.as_deref(), Some("alice"));
        assert_signed_in(&a, &owner.both(&a), "alice").await;
        vec![owner.browser, unbound]
    })
    .await;
}

#[tokio::test]
async fn bound_across_two_instances_on_redis() {
    bound_across_two_instances(SessionsIn::Redis).await;
}

#[tokio::test]
async fn bound_across_two_instances_on_postgres() {
    bound_across_two_instances(SessionsIn::Postgres).await;
}

// ---------------------------------------------------------------------------
// The test device's own encoding

/// RFC 7515 §A.3: a P-256 key as a JWK, and a JWS it signed with ES256.
const RFC7515_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const RFC7515_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const RFC7515_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
const RFC7515_JWS: &str = "eyJhbGciOiJFUzI1NiJ9\
    .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
    .DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

fn rfc7515_device() -> Device {
    Device::with_key(SigningKey::from_slice(&unb64(RFC7515_D).unwrap()).unwrap())
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

#[test]
fn client_jwk_and_es256_match_rfc_7515() {
    let device = rfc7515_device();
    assert_eq!(
        device.jwk(),
        json!({ "kty": "EC", "crv": "P-256", "x": RFC7515_X, "y": RFC7515_Y })
    );
    assert!(verifies(RFC7515_JWS, device.verifying_key()));
    assert!(!verifies(RFC7515_JWS, Device::new().verifying_key()));
    let tampered = format!("{}A", &RFC7515_JWS[..RFC7515_JWS.len() - 1]);
    assert!(!verifies(&tampered, device.verifying_key()));
    // The same header, encoded as the RFC encodes it.
    let input = signing_input(&json!({ "alg": "ES256" }), &json!({}));
    assert!(input.starts_with("eyJhbGciOiJFUzI1NiJ9."), "{input}");
}

#[test]
fn client_proofs_are_the_drafts_jws() {
    let device = Device::new();
    let jwt = device.registration_proof("the challenge");
    assert_eq!(jwt.matches('.').count(), 2);
    assert!(
        jwt.bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte)),
        "base64url without padding: {jwt}"
    );
    let (header, payload, signature) = decode(&jwt).unwrap();
    assert_eq!(
        header,
        json!({ "alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk() })
    );
    assert_eq!(payload, json!({ "jti": "the challenge" }));
    assert_eq!(signature.len(), 64, "raw r || s");
    assert!(verifies(&jwt, device.verifying_key()));
    assert!(!verifies(&jwt, Device::new().verifying_key()));

    // The JWK names the signing key: its coordinates are the SEC1 point's.
    let jwk = device.jwk();
    let mut point = vec![4_u8];
    point.extend(unb64(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(unb64(jwk["y"].as_str().unwrap()).unwrap());
    assert_eq!(point, device.sec1());
    assert_eq!(
        VerifyingKey::from_sec1_bytes(&point).unwrap(),
        *device.verifying_key()
    );

    let jwt = device.refresh_proof("next");
    let (header, payload, signature) = decode(&jwt).unwrap();
    assert_eq!(header, json!({ "alg": "ES256", "typ": "dbsc+jwt" }));
    assert_eq!(payload, json!({ "jti": "next" }));
    assert_eq!(signature.len(), 64);
    assert!(verifies(&jwt, device.verifying_key()));
    // Signed by the RFC's key too: the signing path is not tied to one key.
    let rfc = rfc7515_device();
    assert!(verifies(&rfc.refresh_proof("c"), rfc.verifying_key()));
}

#[test]
fn client_der_unsigned_and_hs256_tokens_are_what_they_say() {
    let device = Device::new();
    let header = json!({ "alg": "ES256", "typ": TYP });
    let payload = json!({ "jti": "c" });

    let der = device.sign_der(&header, &payload);
    let (input, signature) = der.rsplit_once('.').unwrap();
    assert_eq!(input, signing_input(&header, &payload));
    let signature = unb64(signature).unwrap();
    assert_eq!(signature[0], 0x30, "a DER SEQUENCE");
    let signature = DerSignature::from_bytes(&signature).unwrap();
    assert!(device
        .verifying_key()
        .verify(input.as_bytes(), &signature)
        .is_ok());
    assert!(!verifies(&der, device.verifying_key()), "not raw r || s");

    let none = unsigned(&json!({ "alg": "none" }), &payload);
    let (_, _, signature) = decode(&none).unwrap();
    assert!(none.ends_with('.') && signature.is_empty(), "{none}");

    // RFC 4231 test case 2, then a token's MAC over its signing input.
    assert_eq!(
        hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
        hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
    let token = hs256(b"secret", &header, &payload);
    let (input, mac) = token.rsplit_once('.').unwrap();
    assert_eq!(input, signing_input(&header, &payload));
    assert_eq!(
        unb64(mac).unwrap(),
        hmac_sha256(b"secret", input.as_bytes())
    );
}

#[test]
fn client_sf_strings_quote_escape_and_read_back() {
    assert_eq!(sf_string("abc").as_deref(), Some(r#""abc""#));
    assert_eq!(sf_string(r#"a"b\c"#).as_deref(), Some(r#""a\"b\\c""#));
    assert_eq!(sf_string("").as_deref(), Some(r#""""#));
    for refused in ["tab\there", "new\nline", "é", "\u{7f}"] {
        assert_eq!(sf_string(refused), None, "{refused:?}");
    }
    for text in ["abc", r#"a"b\c"#, "", " spaced ", "eyJ.x-_"] {
        let (item, params) = parse_item(&sf_string(text).unwrap()).unwrap();
        assert_eq!(item, Bare::String(text.to_owned()));
        assert_eq!(params, Params::default());
    }
    for malformed in [
        r#""open"#,
        r#""a\b""#,
        "\"tab\there\"",
        r#""a" b"#,
        "1.5",
        "",
    ] {
        assert!(parse_item(malformed).is_err(), "{malformed:?}");
    }
}

#[test]
fn client_reads_lists_of_items_inner_lists_and_parameters() {
    let list = parse_list(r#"1, ?0;a, tok/x:y;b=?1;c=-5, ("s" t);z="q\"", *w"#).unwrap();
    assert_eq!(
        list,
        [
            Member::Item(Bare::Integer(1), Params::default()),
            Member::Item(
                Bare::Boolean(false),
                Params(vec![("a".to_owned(), Bare::Boolean(true))])
            ),
            Member::Item(
                Bare::Token("tok/x:y".to_owned()),
                Params(vec![
                    ("b".to_owned(), Bare::Boolean(true)),
                    ("c".to_owned(), Bare::Integer(-5)),
                ])
            ),
            Member::InnerList(
                vec![
                    (Bare::String("s".to_owned()), Params::default()),
                    (Bare::Token("t".to_owned()), Params::default()),
                ],
                Params(vec![("z".to_owned(), Bare::String("q\"".to_owned()))])
            ),
            Member::Item(Bare::Token("*w".to_owned()), Params::default()),
        ]
    );
    assert_eq!(parse_list("").unwrap(), []);
    for malformed in [
        "a,",
        "a,,b",
        "(a",
        "(a)b",
        "a;B=1",
        "a;=1",
        "1234567890123456",
        "a b",
    ] {
        assert!(parse_list(malformed).is_err(), "{malformed:?}");
    }
}

#[test]
fn client_reads_the_drafts_registration_and_challenge_examples() {
    let offer = |algorithms: &[&str], path: &str, challenge: &str, authorization: Option<&str>| {
        Registration {
            algorithms: algorithms.iter().map(|name| (*name).to_owned()).collect(),
            path: path.to_owned(),
            challenge: challenge.to_owned(),
            authorization: authorization.map(str::to_owned),
        }
    };
    assert_eq!(
        registrations(r#"(ES256);path="reg";challenge="cv";authorization="ac""#).unwrap(),
        [offer(&["ES256"], "reg", "cv", Some("ac"))]
    );
    assert_eq!(
        registrations(r#"(ES256 RS256);path="reg";challenge="cv""#).unwrap(),
        [offer(&["ES256", "RS256"], "reg", "cv", None)]
    );
    assert_eq!(
        registrations(
            r#"(ES256);path="reg1";challenge="cv1";authorization="a", (RS256);path="reg2";challenge="cv2";authorization="b""#
        )
        .unwrap(),
        [
            offer(&["ES256"], "reg1", "cv1", Some("a")),
            offer(&["RS256"], "reg2", "cv2", Some("b")),
        ]
    );
    assert_eq!(
        registrations(r#"(ES256);path="/p";challenge="a\"b\\c""#).unwrap(),
        [offer(&["ES256"], "/p", r#"a"b\c"#, None)]
    );
    for malformed in [
        r#"(ES256);challenge="c""#,
        r#"(ES256);path="p""#,
        r#"ES256;path="p";challenge="c""#,
        r#"(ES256);path=p;challenge="c""#,
        r#"(ES256 "x");path="p";challenge="c""#,
        r#"(ES256);path="p;challenge="c""#,
        r#"(ES256);path="p";challenge="c","#,
    ] {
        assert!(registrations(malformed).is_err(), "{malformed}");
    }

    let challenge = |challenge: &str, id: &str| Challenge {
        challenge: challenge.to_owned(),
        id: id.to_owned(),
    };
    assert_eq!(
        challenges(r#""new challenge";id="my session""#).unwrap(),
        [challenge("new challenge", "my session")]
    );
    assert_eq!(
        challenges(r#""c1";id="session 1", "c2";id="session 2""#).unwrap(),
        [challenge("c1", "session 1"), challenge("c2", "session 2")]
    );
    for malformed in [r#""c""#, r#"c;id="s""#, r#""c";id=s"#, r#"("c");id="s""#] {
        assert!(challenges(malformed).is_err(), "{malformed}");
    }
}
