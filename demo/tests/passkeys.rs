//! The demo's passkey contract (issue #18), route by route over HTTP, with
//! the software authenticator of `common/authenticator.rs` in place of a
//! browser: adding a passkey to a password account, the discoverable
//! sign-in and the factors it gives (`amr`), refused and replayed
//! assertions, sign-up without a password, removal within the
//! re-authentication window and the sessions it ends (event streams too),
//! step-up on `/confirm`, a password for a passwordless account, and a
//! ceremony that starts on one instance and finishes on another sharing
//! Redis or Postgres sessions.
//!
//! The demo is addressed as `http://localhost:<port>`: the relying party id
//! is `localhost` (an IP address is none). What needs a browser (the
//! buttons' scripts) is left to a browser test; here the pages are checked
//! for the buttons and forms the scripts work with.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use ciborium::Value as Cbor;
use p256::ecdsa::{signature::Verifier as _, DerSignature, VerifyingKey};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tower_sessions_auth_demo::{admin::Stores, Config};

use crate::common::{
    authenticator::{
        b64, unb64, Authenticator, Backup, Tamper, AT, AUTH_DATA_HEADER, BE, BS, FOREIGN_ORIGIN,
        UP, UV,
    },
    client::{
        config, location, page, set_cookies, signed_in, signed_up, Browser, NEW_PASSWORD, PASSWORD,
    },
    events::{assert_ends, assert_stay_open, watched},
    services::{config_on, delete_redis_sessions, service_url, with_postgres_schema, SessionsIn},
    Server, TempDir,
};

/// What a passkey route reached by IP address answers, in `error`.
const NEEDS_HOST_NAME: &str =
    "passkeys need a host name: open this site as localhost, not by its IP address";

// ---------------------------------------------------------------------------
// Harness

/// A demo on a fresh SQLite file, addressed as `localhost`, with `adjust`
/// applied to its configuration.
async fn demo(adjust: impl FnOnce(&mut Config)) -> (Server, TempDir) {
    let db = TempDir::new("demo_passkeys");
    let mut config = config(&db.sqlite_url());
    adjust(&mut config);
    (Server::start_localhost(config).await, db)
}

/// A demo with the default configuration.
async fn localhost_demo() -> (Server, TempDir) {
    demo(|_| {}).await
}

/// `POST url` without a body, as the pages' script starts a ceremony.
async fn post_empty(browser: &Browser, url: &str) -> Response {
    browser.http().post(url).send().await.unwrap()
}

/// `POST url` with `body` as JSON.
async fn post_json(browser: &Browser, url: &str, body: &Value) -> Response {
    browser.http().post(url).json(body).send().await.unwrap()
}

/// The JSON body of `response`, whose status must be `status`.
async fn expect_json(response: Response, status: StatusCode, what: &str) -> Value {
    let got = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{what}: not JSON ({err}): {text}"))
}

/// `{"error": message}`, the demo's JSON failure.
fn error(message: &str) -> Value {
    json!({ "error": message })
}

/// Whether `response` sets a (non-empty) session cookie.
fn sets_session_cookie(response: &Response) -> bool {
    set_cookies(response).iter().any(|cookie| {
        cookie
            .strip_prefix("demo_session=")
            .is_some_and(|value| !value.starts_with(';') && !value.is_empty())
    })
}

/// The creation options of `POST /api/passkeys/register/start`.
async fn register_start(browser: &Browser, server: &Server) -> Value {
    let response = post_empty(browser, &server.url("/api/passkeys/register/start")).await;
    expect_json(response, StatusCode::OK, "register/start").await
}

async fn register_finish(browser: &Browser, server: &Server, credential: &Value) -> Response {
    post_json(
        browser,
        &server.url("/api/passkeys/register/finish"),
        credential,
    )
    .await
}

/// Adds a passkey made by `authenticator` to the account `browser` is
/// signed in to; its id, checked against the `201` answer.
async fn add_passkey(
    browser: &Browser,
    server: &Server,
    authenticator: &mut Authenticator,
    backup: Backup,
) -> String {
    let options = register_start(browser, server).await;
    let credential = authenticator.create_with(&options, backup, None);
    let response = register_finish(browser, server, &credential).await;
    let answer = expect_json(response, StatusCode::CREATED, "register/finish").await;
    let id = credential["id"].as_str().unwrap();
    assert_eq!(answer["id"], id, "{answer}");
    assert!(
        answer["name"].as_str().is_some_and(|name| !name.is_empty()),
        "{answer}"
    );
    id.to_owned()
}

/// The request options of `POST /api/passkeys/login/start`.
async fn login_start(browser: &Browser, server: &Server) -> Value {
    let response = post_empty(browser, &server.url("/api/passkeys/login/start")).await;
    expect_json(response, StatusCode::OK, "login/start").await
}

async fn login_finish(browser: &Browser, server: &Server, assertion: &Value) -> Response {
    post_json(
        browser,
        &server.url("/api/passkeys/login/finish"),
        assertion,
    )
    .await
}

/// A whole passkey sign-in of `browser` with the credential `id`: the
/// response of the finish.
async fn passkey_login(
    browser: &Browser,
    server: &Server,
    authenticator: &Authenticator,
    id: &str,
) -> Response {
    let options = login_start(browser, server).await;
    let assertion = authenticator.get_with(&options, id, None);
    login_finish(browser, server, &assertion).await
}

/// A new browser signed in as `username` with the passkey `id`.
async fn signed_in_with(
    server: &Server,
    authenticator: &Authenticator,
    id: &str,
    username: &str,
) -> Browser {
    let browser = Browser::new();
    let response = passkey_login(&browser, server, authenticator, id).await;
    let answer = expect_json(response, StatusCode::OK, "login/finish").await;
    assert_eq!(answer, json!({ "username": username }));
    assert_eq!(browser.me(server).await.as_deref(), Some(username));
    browser
}

/// A new browser signed up as `username` with a new device-bound passkey
/// of `authenticator`; and the passkey's id.
async fn passkey_signup(
    server: &Server,
    authenticator: &mut Authenticator,
    username: &str,
) -> (Browser, String) {
    let browser = Browser::new();
    let start = server.url("/api/passkeys/signup/start");
    let response = post_json(&browser, &start, &json!({ "username": username })).await;
    let options = expect_json(response, StatusCode::OK, "signup/start").await;
    let credential = authenticator.create(&options);
    let finish = server.url("/api/passkeys/signup/finish");
    let response = post_json(&browser, &finish, &credential).await;
    assert!(
        sets_session_cookie(&response),
        "{:?}",
        set_cookies(&response)
    );
    let answer = expect_json(response, StatusCode::CREATED, "signup/finish").await;
    let id = credential["id"].as_str().unwrap();
    assert_eq!(answer["username"], username, "{answer}");
    assert_eq!(answer["id"], id, "{answer}");
    assert!(
        answer["name"].as_str().is_some_and(|name| !name.is_empty()),
        "{answer}"
    );
    (browser, id.to_owned())
}

/// The factors of `browser`'s session, as `/api/me` lists them.
async fn amr(browser: &Browser, server: &Server) -> Vec<String> {
    let response = browser.get(&server.url("/api/me")).await;
    let me = expect_json(response, StatusCode::OK, "/api/me").await;
    me["amr"]
        .as_array()
        .unwrap_or_else(|| panic!("no amr in {me}"))
        .iter()
        .map(|factor| factor.as_str().unwrap().to_owned())
        .collect()
}

/// `GET /api/passkeys` as `browser`: the `passkeys` array.
async fn listed(browser: &Browser, server: &Server) -> Vec<Value> {
    let response = browser.get(&server.url("/api/passkeys")).await;
    let body = expect_json(response, StatusCode::OK, "/api/passkeys").await;
    body["passkeys"].as_array().unwrap().clone()
}

/// The ids `GET /api/passkeys` lists for `browser`, sorted.
async fn listed_ids(browser: &Browser, server: &Server) -> Vec<String> {
    let mut ids: Vec<String> = listed(browser, server)
        .await
        .iter()
        .map(|passkey| passkey["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|&id| id.to_owned()).collect();
    ids.sort();
    ids
}

/// `POST /api/login`: the status of a password sign-in by a new browser.
async fn password_sign_in(server: &Server, username: &str, password: &str) -> StatusCode {
    let body = json!({ "username": username, "password": password });
    post_json(&Browser::new(), &server.url("/api/login"), &body)
        .await
        .status()
}

/// Text as the templates escape it.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

fn is_rfc3339(text: &str) -> bool {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}

// ---------------------------------------------------------------------------
// The software authenticator itself: what it encodes, parsed back

const TEST_ORIGIN: &str = "http://localhost:8080";

fn creation_options(rp_id: &str, user_handle: &[u8], challenge: &[u8]) -> Value {
    json!({ "publicKey": {
        "rp": { "id": rp_id, "name": "test" },
        "user": { "id": b64(user_handle), "name": "alice", "displayName": "alice" },
        "challenge": b64(challenge),
        "pubKeyCredParams": [{ "type": "public-key", "alg": -7 }],
    } })
}

fn request_options(rp_id: &str, challenge: &[u8]) -> Value {
    json!({ "publicKey": {
        "rpId": rp_id,
        "challenge": b64(challenge),
        "allowCredentials": [],
        "userVerification": "required",
    } })
}

fn cbor_text(text: &str) -> Cbor {
    Cbor::Text(text.to_owned())
}

fn cbor_int(n: i64) -> Cbor {
    Cbor::Integer(n.into())
}

/// The value at `key` of the CBOR map `map`.
fn cbor_get<'a>(map: &'a Cbor, key: &Cbor) -> &'a Cbor {
    let Cbor::Map(entries) = map else {
        panic!("not a map: {map:?}")
    };
    entries
        .iter()
        .find_map(|(found, value)| (found == key).then_some(value))
        .unwrap_or_else(|| panic!("no {key:?} in {map:?}"))
}

/// The `clientDataJSON` of `credential`, parsed.
fn client_data(credential: &Value) -> Value {
    let bytes = unb64(credential["response"]["clientDataJSON"].as_str().unwrap());
    serde_json::from_slice(&bytes).unwrap()
}

/// A registration's parts: its authenticator data and the public key of
/// its COSE key, read from the attestation object alone.
fn parse_registration(credential: &Value) -> (Vec<u8>, VerifyingKey) {
    let object = unb64(
        credential["response"]["attestationObject"]
            .as_str()
            .unwrap(),
    );
    let object: Cbor = ciborium::from_reader(object.as_slice()).unwrap();
    assert_eq!(cbor_get(&object, &cbor_text("fmt")), &cbor_text("none"));
    assert_eq!(
        cbor_get(&object, &cbor_text("attStmt")),
        &Cbor::Map(Vec::new())
    );
    let Cbor::Bytes(auth_data) = cbor_get(&object, &cbor_text("authData")) else {
        panic!("authData is no byte string")
    };
    let id = unb64(credential["id"].as_str().unwrap());
    let attested = &auth_data[AUTH_DATA_HEADER..];
    assert_eq!(&attested[..16], &[0; 16], "AAGUID");
    let id_len = usize::from(u16::from_be_bytes([attested[16], attested[17]]));
    assert_eq!(&attested[18..18 + id_len], id.as_slice());
    let mut rest = &attested[18 + id_len..];
    let cose: Cbor = ciborium::from_reader(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the COSE key");
    let Cbor::Map(entries) = &cose else {
        panic!("the COSE key is no map")
    };
    let keys: Vec<&Cbor> = entries.iter().map(|(key, _)| key).collect();
    let expected = [1, 3, -1, -2, -3].map(cbor_int);
    assert_eq!(keys, expected.iter().collect::<Vec<_>>(), "COSE key order");
    assert_eq!(cbor_get(&cose, &cbor_int(1)), &cbor_int(2), "kty EC2");
    assert_eq!(cbor_get(&cose, &cbor_int(3)), &cbor_int(-7), "alg ES256");
    assert_eq!(cbor_get(&cose, &cbor_int(-1)), &cbor_int(1), "crv P-256");
    let (Cbor::Bytes(x), Cbor::Bytes(y)) = (
        cbor_get(&cose, &cbor_int(-2)),
        cbor_get(&cose, &cbor_int(-3)),
    ) else {
        panic!("coordinates are no byte strings")
    };
    assert_eq!((x.len(), y.len()), (32, 32));
    let point = [&[0x04][..], x, y].concat();
    (
        auth_data.clone(),
        VerifyingKey::from_sec1_bytes(&point).unwrap(),
    )
}

/// An assertion's authenticator data, and whether its signature verifies
/// with `key` over the authenticator data and the hash of the client data.
fn check_assertion(assertion: &Value, key: &VerifyingKey) -> (Vec<u8>, bool) {
    let response = &assertion["response"];
    let auth_data = unb64(response["authenticatorData"].as_str().unwrap());
    let client_data = unb64(response["clientDataJSON"].as_str().unwrap());
    let signature = unb64(response["signature"].as_str().unwrap());
    let signature = DerSignature::from_bytes(&signature).unwrap();
    let signed = [auth_data.as_slice(), &Sha256::digest(&client_data)].concat();
    (auth_data, key.verify(&signed, &signature).is_ok())
}

#[test]
fn authenticator_registers_with_attestation_none_and_an_es256_cose_key() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let (handle, challenge) = ([7; 16], [9; 32]);
    let credential = authenticator.create(&creation_options("localhost", &handle, &challenge));

    let id = credential["id"].as_str().unwrap();
    assert_eq!(unb64(id).len(), 32);
    assert_eq!(credential["rawId"], id);
    assert_eq!(credential["type"], "public-key");
    assert_eq!(credential["extensions"], json!({}));
    for field in ["clientDataJSON", "attestationObject"] {
        let text = credential["response"][field].as_str().unwrap();
        assert!(!text.contains(['=', '+', '/']), "{field}: {text}");
    }
    assert_eq!(
        client_data(&credential),
        json!({
            "type": "webauthn.create",
            "challenge": b64(&challenge),
            "origin": TEST_ORIGIN,
            "crossOrigin": false,
        })
    );
    let (auth_data, key) = parse_registration(&credential);
    assert_eq!(&auth_data[..32], Sha256::digest(b"localhost").as_slice());
    assert_eq!(auth_data[32], UP | UV | AT);
    assert_eq!(&auth_data[33..37], &[0; 4], "sign count");
    let kept = authenticator.credential(id);
    assert_eq!(key, kept.verifying_key());
    assert_eq!(kept.user_handle(), &handle);
    assert_eq!(kept.rp_id(), "localhost");
}

#[test]
fn authenticator_assertions_verify_with_the_registered_key() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let handle = [3; 16];
    let credential = authenticator.create(&creation_options("localhost", &handle, &[1; 32]));
    let (_, key) = parse_registration(&credential);

    let challenge = [5; 32];
    let assertion = authenticator.get(&request_options("localhost", &challenge));
    assert_eq!(assertion["id"], credential["id"]);
    assert_eq!(assertion["rawId"], credential["id"]);
    assert_eq!(assertion["type"], "public-key");
    assert_eq!(assertion["extensions"], json!({}));
    assert_eq!(
        assertion["response"]["userHandle"].as_str(),
        Some(b64(&handle).as_str())
    );
    assert_eq!(
        client_data(&assertion),
        json!({
            "type": "webauthn.get",
            "challenge": b64(&challenge),
            "origin": TEST_ORIGIN,
            "crossOrigin": false,
        })
    );
    let (auth_data, verifies) = check_assertion(&assertion, &key);
    assert!(verifies);
    assert_eq!(auth_data.len(), AUTH_DATA_HEADER);
    assert_eq!(&auth_data[..32], Sha256::digest(b"localhost").as_slice());
    assert_eq!(auth_data[32], UP | UV);
    assert_eq!(&auth_data[33..], &[0; 4]);
}

#[test]
fn authenticator_synced_credentials_carry_be_and_bs() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let options = creation_options("localhost", &[1; 16], &[2; 32]);
    let credential = authenticator.create_with(&options, Backup::Synced, None);
    let (auth_data, key) = parse_registration(&credential);
    assert_eq!(auth_data[32], UP | UV | AT | BE | BS);
    let assertion = authenticator.get(&request_options("localhost", &[4; 32]));
    let (auth_data, verifies) = check_assertion(&assertion, &key);
    assert!(verifies);
    assert_eq!(auth_data[32], UP | UV | BE | BS);
}

#[test]
fn authenticator_tampering_breaks_what_it_says_and_only_that() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let credential = authenticator.create(&creation_options("localhost", &[1; 16], &[2; 32]));
    let id = credential["id"].as_str().unwrap();
    let (_, key) = parse_registration(&credential);
    let challenge = [6; 32];
    let options = request_options("localhost", &challenge);

    let wrong = authenticator.get_with(&options, id, Some(Tamper::Signature));
    let (_, verifies) = check_assertion(&wrong, &key);
    assert!(!verifies, "a tampered signature verified");
    assert_eq!(client_data(&wrong)["challenge"], b64(&challenge));

    let wrong = authenticator.get_with(&options, id, Some(Tamper::Challenge));
    assert_ne!(client_data(&wrong)["challenge"], b64(&challenge));
    assert_eq!(client_data(&wrong)["origin"], TEST_ORIGIN);
    assert!(check_assertion(&wrong, &key).1, "still signed");

    let wrong = authenticator.get_with(&options, id, Some(Tamper::Origin));
    assert_eq!(client_data(&wrong)["origin"], FOREIGN_ORIGIN);
    assert_eq!(client_data(&wrong)["challenge"], b64(&challenge));

    let wrong = authenticator.get_with(&options, id, Some(Tamper::NoUserVerification));
    let (auth_data, verifies) = check_assertion(&wrong, &key);
    assert!(verifies);
    assert_eq!(auth_data[32], UP);

    // A tampered registration is not kept.
    let options = creation_options("localhost", &[1; 16], &[8; 32]);
    let wrong = authenticator.create_with(&options, Backup::DeviceBound, Some(Tamper::Origin));
    assert_eq!(client_data(&wrong)["origin"], FOREIGN_ORIGIN);
    assert_eq!(authenticator.credentials().len(), 1);
}

#[test]
fn authenticator_answers_with_the_chosen_credential_of_the_rp() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let first = authenticator.create(&creation_options("localhost", &[1; 16], &[0; 32]));
    let second = authenticator.create(&creation_options("localhost", &[2; 16], &[0; 32]));
    let elsewhere = authenticator.create(&creation_options("example.org", &[3; 16], &[0; 32]));
    let options = request_options("localhost", &[9; 32]);

    // The newest of the rp id unless told otherwise.
    assert_eq!(authenticator.get(&options)["id"], second["id"]);
    let first_id = first["id"].as_str().unwrap();
    let chosen = authenticator.get_with(&options, first_id, None);
    assert_eq!(chosen["id"], first_id);
    assert_eq!(chosen["response"]["userHandle"], b64(&[1; 16]));
    let (_, key) = parse_registration(&first);
    assert!(check_assertion(&chosen, &key).1);
    let other_rp = request_options("example.org", &[9; 32]);
    assert_eq!(authenticator.get(&other_rp)["id"], elsewhere["id"]);

    // A clone carries the passkeys to another browser.
    let copy = authenticator.clone();
    assert!(check_assertion(&copy.get_with(&options, first_id, None), &key).1);
    authenticator.forget(first_id);
    assert_eq!(authenticator.credentials().len(), 2);
    assert_eq!(copy.credentials().len(), 3);
}

#[test]
#[should_panic(expected = "do not allow")]
fn authenticator_answers_only_for_allowed_credentials() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    authenticator.create(&creation_options("localhost", &[1; 16], &[0; 32]));
    let mut options = request_options("localhost", &[9; 32]);
    options["publicKey"]["allowCredentials"] =
        json!([{ "type": "public-key", "id": b64(&[0; 32]) }]);
    authenticator.get(&options);
}

// ---------------------------------------------------------------------------
// Pages

#[tokio::test]
async fn pages_offer_the_passkey_buttons_and_every_signed_in_page_links_the_list() {
    let (server, _db) = localhost_demo().await;
    let anonymous = Browser::new();
    let login = page(&anonymous, &server, "/login").await;
    assert!(login.contains(r#"id="passkey-login""#), "{login}");
    let signup = page(&anonymous, &server, "/signup").await;
    assert!(signup.contains(r#"id="passkey-signup""#), "{signup}");
    assert!(signup.contains(r#"name="username""#), "{signup}");
    let response = anonymous.get(&server.url("/passkeys")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fpasskeys");

    let alice = signed_up(&server, "alice").await;
    for path in ["/", "/sessions", "/password", "/passkeys"] {
        let body = page(&alice, &server, path).await;
        assert!(body.contains(r#"href="/passkeys""#), "{path}: {body}");
    }
    let response = alice.get(&server.url("/passkeys")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"id="add-passkey""#), "{body}");
    assert!(!body.contains(r#"<li class="passkey""#), "{body}");
    let confirm = page(&alice, &server, "/confirm?next=%2Fpasskeys").await;
    assert!(confirm.contains(r#"id="passkey-confirm""#), "{confirm}");
    assert!(confirm.contains(r#"name="password""#), "{confirm}");

    // Where each button's script shows its errors.
    for (what, body) in [
        ("/login", &login),
        ("/signup", &signup),
        ("/passkeys", &body),
        ("/confirm", &confirm),
    ] {
        assert!(body.contains(r#"id="passkey-error""#), "{what}: {body}");
    }
}

// ---------------------------------------------------------------------------
// Registration on a password account

#[tokio::test]
async fn registration_options_ask_for_a_discoverable_verified_es256_passkey() {
    let (server, _db) = localhost_demo().await;
    let alice = signed_up(&server, "alice").await;
    let options = register_start(&alice, &server).await;
    let creation = &options["publicKey"];
    assert_eq!(creation["rp"]["id"], "localhost", "{options}");
    let handle = unb64(creation["user"]["id"].as_str().unwrap());
    assert_eq!(handle.len(), 16, "a UUID: {options}");
    assert!(unb64(creation["challenge"].as_str().unwrap()).len() >= 16);
    let selection = &creation["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["requireResidentKey"], true, "{options}");
    assert_eq!(selection["userVerification"], "required", "{options}");
    assert_eq!(creation["attestation"], "none", "{options}");
    let algorithms = creation["pubKeyCredParams"].as_array().unwrap();
    assert!(
        algorithms
            .iter()
            .any(|param| param["type"] == "public-key" && param["alg"] == -7),
        "{options}"
    );

    // The handle is the account's: the same for its next passkey, another
    // for another account.
    let mut authenticator = Authenticator::new(&server.base);
    let id = add_passkey(&alice, &server, &mut authenticator, Backup::DeviceBound).await;
    assert_eq!(authenticator.credential(&id).user_handle().len(), 16);
    let again = register_start(&alice, &server).await;
    assert_eq!(
        unb64(again["publicKey"]["user"]["id"].as_str().unwrap()),
        authenticator.credential(&id).user_handle()
    );
    assert_ne!(again["publicKey"]["challenge"], creation["challenge"]);
    let bob = signed_up(&server, "bob").await;
    let bobs = register_start(&bob, &server).await;
    assert_ne!(
        bobs["publicKey"]["user"]["id"],
        again["publicKey"]["user"]["id"]
    );
}

#[tokio::test]
async fn a_registered_passkey_is_listed_with_its_delete_form() {
    let (server, _db) = localhost_demo().await;
    let alice = signed_up(&server, "alice").await;
    let bob = signed_up(&server, "bob").await;
    let mut authenticator = Authenticator::new(&server.base);
    let first = add_passkey(&alice, &server, &mut authenticator, Backup::DeviceBound).await;
    let second = add_passkey(&alice, &server, &mut authenticator, Backup::Synced).await;
    let bobs = add_passkey(&bob, &server, &mut authenticator, Backup::DeviceBound).await;

    let anonymous = Browser::new().get(&server.url("/api/passkeys")).await;
    let body = expect_json(anonymous, StatusCode::UNAUTHORIZED, "anonymous").await;
    assert_eq!(body, error("not signed in"));

    let passkeys = listed(&alice, &server).await;
    assert_eq!(
        listed_ids(&alice, &server).await,
        sorted(&[&first, &second])
    );
    assert_eq!(listed_ids(&bob, &server).await, [bobs.as_str()]);
    let response = alice.get(&server.url("/passkeys")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    for passkey in &passkeys {
        let mut fields: Vec<&String> = passkey.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(fields, ["created_at", "id", "name"], "{passkey}");
        let id = passkey["id"].as_str().unwrap();
        let name = passkey["name"].as_str().unwrap();
        let created_at = passkey["created_at"].as_str().unwrap();
        assert!(is_rfc3339(created_at), "{passkey}");

        let start = format!(r#"<li class="passkey" data-passkey-id="{id}">"#);
        let item = body
            .split_once(&start)
            .unwrap_or_else(|| panic!("no {start} in {body}"))
            .1;
        let item = &item[..item.find("</li>").unwrap()];
        assert!(item.contains(&html_escape(name)), "{name}: {item}");
        assert!(
            item.contains(&format!(r#"action="/passkeys/{id}/delete""#)),
            "{item}"
        );
        assert!(item.to_lowercase().contains(r#"method="post""#), "{item}");
        // The creation time, as a `<time>` or written out.
        assert!(
            item.contains("<time") || item.contains(&created_at[..10]),
            "{created_at}: {item}"
        );
    }
    assert!(!body.contains(bobs.as_str()), "{body}");
}

#[tokio::test]
async fn registration_needs_a_sign_in_and_a_credential_that_verifies() {
    let (server, _db) = localhost_demo().await;
    let mut authenticator = Authenticator::new(&server.base);
    let anonymous = Browser::new();
    let response = post_empty(&anonymous, &server.url("/api/passkeys/register/start")).await;
    let body = expect_json(response, StatusCode::UNAUTHORIZED, "anonymous start").await;
    assert_eq!(body, error("not signed in"));

    let alice = signed_up(&server, "alice").await;
    let bob = signed_up(&server, "bob").await;
    // Bob's ceremony, finished by an anonymous browser and by Alice, who
    // started none.
    let bobs_options = register_start(&bob, &server).await;
    let credential = authenticator.create(&bobs_options);
    let response = register_finish(&anonymous, &server, &credential).await;
    let body = expect_json(response, StatusCode::UNAUTHORIZED, "anonymous finish").await;
    assert_eq!(body, error("not signed in"));
    let response = register_finish(&alice, &server, &credential).await;
    let body = expect_json(response, StatusCode::BAD_REQUEST, "no ceremony").await;
    assert_eq!(body, error("passkey not accepted"));

    for tamper in [
        Tamper::Challenge,
        Tamper::Origin,
        Tamper::NoUserVerification,
    ] {
        let options = register_start(&alice, &server).await;
        let credential = authenticator.create_with(&options, Backup::DeviceBound, Some(tamper));
        let response = register_finish(&alice, &server, &credential).await;
        let body = expect_json(response, StatusCode::BAD_REQUEST, &format!("{tamper:?}")).await;
        assert_eq!(body, error("passkey not accepted"), "{tamper:?}");
    }
    assert_eq!(listed(&alice, &server).await, Vec::<Value>::new());

    // Single use: a good credential once, not twice.
    let options = register_start(&alice, &server).await;
    let credential = authenticator.create(&options);
    let response = register_finish(&alice, &server, &credential).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = register_finish(&alice, &server, &credential).await;
    let body = expect_json(response, StatusCode::BAD_REQUEST, "replayed").await;
    assert_eq!(body, error("passkey not accepted"));
    assert_eq!(
        listed_ids(&alice, &server).await,
        [credential["id"].as_str().unwrap().to_owned()]
    );
    assert_eq!(listed(&bob, &server).await, Vec::<Value>::new());
}

// ---------------------------------------------------------------------------
// Sign-in with a passkey

#[tokio::test]
async fn a_passkey_signs_in_without_a_username_as_hwk_and_user() {
    let (server, _db) = localhost_demo().await;
    let laptop = signed_up(&server, "alice").await;
    assert_eq!(amr(&laptop, &server).await, ["pwd"]);
    let mut authenticator = Authenticator::new(&server.base);
    let id = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;

    let phone = Browser::new();
    let options = login_start(&phone, &server).await;
    let request = &options["publicKey"];
    assert_eq!(request["rpId"], "localhost", "{options}");
    assert_eq!(request["userVerification"], "required", "{options}");
    assert!(
        request["allowCredentials"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default()
            == 0,
        "discoverable: {options}"
    );
    let ceremony = phone.session_id(&server);
    assert!(ceremony.is_some(), "the ceremony lives in a session");
    let assertion = authenticator.get_with(&options, &id, None);
    let response = login_finish(&phone, &server, &assertion).await;
    assert!(
        sets_session_cookie(&response),
        "{:?}",
        set_cookies(&response)
    );
    let answer = expect_json(response, StatusCode::OK, "login/finish").await;
    assert_eq!(answer, json!({ "username": "alice" }));
    assert_ne!(phone.session_id(&server), ceremony, "a new session id");
    assert_eq!(phone.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(amr(&phone, &server).await, ["hwk", "user"]);
    assert_eq!(amr(&laptop, &server).await, ["pwd"]);
    let password = signed_in(&server, "alice", PASSWORD).await;
    assert_eq!(amr(&password, &server).await, ["pwd"]);
}

#[tokio::test]
async fn a_synced_passkey_signs_in_as_swk_and_user() {
    let (server, _db) = localhost_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let mut authenticator = Authenticator::new(&server.base);
    let synced = add_passkey(&laptop, &server, &mut authenticator, Backup::Synced).await;
    let bound = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;
    let phone = signed_in_with(&server, &authenticator, &synced, "alice").await;
    assert_eq!(amr(&phone, &server).await, ["swk", "user"]);
    let key = signed_in_with(&server, &authenticator, &bound, "alice").await;
    assert_eq!(amr(&key, &server).await, ["hwk", "user"]);
}

#[tokio::test]
async fn a_wrong_assertion_is_401_and_leaves_no_session() {
    let (server, _db) = localhost_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let mut authenticator = Authenticator::new(&server.base);
    let id = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;

    let refused = |what: String, browser: Browser, response: Response| {
        let server = &server;
        async move {
            let body = expect_json(response, StatusCode::UNAUTHORIZED, &what).await;
            assert_eq!(body, error("passkey not accepted"), "{what}");
            assert_eq!(browser.me(server).await, None, "{what}");
            assert_eq!(browser.session_id(server), None, "{what}: a session cookie");
        }
    };
    for tamper in [
        Tamper::Signature,
        Tamper::Challenge,
        Tamper::Origin,
        Tamper::NoUserVerification,
    ] {
        let browser = Browser::new();
        let options = login_start(&browser, &server).await;
        let assertion = authenticator.get_with(&options, &id, Some(tamper));
        let response = login_finish(&browser, &server, &assertion).await;
        refused(format!("{tamper:?}"), browser, response).await;
    }

    // No user handle: the passkey cannot be found without one.
    let browser = Browser::new();
    let options = login_start(&browser, &server).await;
    let mut assertion = authenticator.get_with(&options, &id, None);
    assertion["response"]
        .as_object_mut()
        .unwrap()
        .remove("userHandle");
    let response = login_finish(&browser, &server, &assertion).await;
    refused("no user handle".to_owned(), browser, response).await;

    // A passkey the demo never registered.
    let mut stranger = Authenticator::new(&server.base);
    let options = creation_options("localhost", &[42; 16], &[0; 32]);
    let unknown = stranger.create(&options)["id"].as_str().unwrap().to_owned();
    let browser = Browser::new();
    let response = passkey_login(&browser, &server, &stranger, &unknown).await;
    refused("unknown passkey".to_owned(), browser, response).await;

    // No ceremony started: a good assertion for another browser's.
    let options = login_start(&Browser::new(), &server).await;
    let assertion = authenticator.get_with(&options, &id, None);
    let browser = Browser::new();
    let response = login_finish(&browser, &server, &assertion).await;
    refused("no ceremony".to_owned(), browser, response).await;
}

#[tokio::test]
async fn a_replayed_finish_is_401_wherever_it_comes_from() {
    let (server, _db) = localhost_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let mut authenticator = Authenticator::new(&server.base);
    let id = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;

    let phone = Browser::new();
    let options = login_start(&phone, &server).await;
    let assertion = authenticator.get_with(&options, &id, None);
    let response = login_finish(&phone, &server, &assertion).await;
    assert_eq!(response.status(), StatusCode::OK);

    // The ceremony is used up.
    let response = login_finish(&phone, &server, &assertion).await;
    let body = expect_json(response, StatusCode::UNAUTHORIZED, "same browser").await;
    assert_eq!(body, error("passkey not accepted"));

    // Another browser, without a ceremony and with its own.
    let thief = Browser::new();
    let response = login_finish(&thief, &server, &assertion).await;
    let body = expect_json(response, StatusCode::UNAUTHORIZED, "no ceremony").await;
    assert_eq!(body, error("passkey not accepted"));
    assert_eq!(thief.me(&server).await, None);
    login_start(&thief, &server).await;
    let response = login_finish(&thief, &server, &assertion).await;
    let body = expect_json(response, StatusCode::UNAUTHORIZED, "its own ceremony").await;
    assert_eq!(body, error("passkey not accepted"));
    assert_eq!(thief.me(&server).await, None);
    assert_eq!(thief.session_id(&server), None);
}

#[tokio::test]
async fn a_passkey_of_someone_else_while_signed_in_is_a_fresh_sign_in() {
    let (server, _db) = localhost_demo().await;
    let alice = signed_up(&server, "alice").await;
    let mut authenticator = Authenticator::new(&server.base);
    let id = add_passkey(&alice, &server, &mut authenticator, Backup::DeviceBound).await;
    let shared = signed_up(&server, "bob").await;
    assert_eq!(amr(&shared, &server).await, ["pwd"]);

    let response = passkey_login(&shared, &server, &authenticator, &id).await;
    let answer = expect_json(response, StatusCode::OK, "login/finish").await;
    assert_eq!(answer, json!({ "username": "alice" }));
    assert_eq!(shared.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(
        amr(&shared, &server).await,
        ["hwk", "user"],
        "no pwd of Bob's"
    );
}

// ---------------------------------------------------------------------------
// Sign-up with a passkey

#[tokio::test]
async fn signup_with_a_passkey_makes_an_account_without_a_password() {
    let (server, _db) = localhost_demo().await;
    let mut authenticator = Authenticator::new(&server.base);
    let (carol, id) = passkey_signup(&server, &mut authenticator, "carol").await;
    assert_eq!(carol.me(&server).await.as_deref(), Some("carol"));
    assert_eq!(amr(&carol, &server).await, ["hwk", "user"]);
    assert_eq!(listed_ids(&carol, &server).await, [id.as_str()]);

    // No password signs in, by the form or the API.
    for password in [PASSWORD, NEW_PASSWORD, ""] {
        assert_eq!(
            password_sign_in(&server, "carol", password).await,
            StatusCode::UNAUTHORIZED,
            "{password:?}"
        );
    }
    let browser = Browser::new();
    let response = browser.login(&server, "carol", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(browser.me(&server).await, None);

    // The passkey does, discoverable as any.
    let phone = signed_in_with(&server, &authenticator, &id, "carol").await;
    assert_eq!(amr(&phone, &server).await, ["hwk", "user"]);
}

#[tokio::test]
async fn signup_with_a_passkey_refuses_a_taken_or_invalid_name() {
    let (server, _db) = localhost_demo().await;
    let mut authenticator = Authenticator::new(&server.base);
    signed_up(&server, "alice").await;
    passkey_signup(&server, &mut authenticator, "carol").await;
    let start = server.url("/api/passkeys/signup/start");
    let finish = server.url("/api/passkeys/signup/finish");

    for (username, status, message) in [
        ("alice", StatusCode::CONFLICT, "username taken"),
        ("carol", StatusCode::CONFLICT, "username taken"),
        ("  ", StatusCode::UNPROCESSABLE_ENTITY, "Choose a username."),
        (
            &"x".repeat(65),
            StatusCode::UNPROCESSABLE_ENTITY,
            "The username is too long: 64 characters at most.",
        ),
    ] {
        let browser = Browser::new();
        let response = post_json(&browser, &start, &json!({ "username": username })).await;
        let body = expect_json(response, status, username).await;
        assert_eq!(body, error(message), "{username}");
        assert_eq!(browser.me(&server).await, None);
    }

    // A finish without a start.
    let browser = Browser::new();
    let options = creation_options("localhost", &[5; 16], &[6; 32]);
    let credential = authenticator.create(&options);
    let response = post_json(&browser, &finish, &credential).await;
    let body = expect_json(response, StatusCode::BAD_REQUEST, "no ceremony").await;
    assert_eq!(body, error("passkey not accepted"));
    assert_eq!(browser.me(&server).await, None);

    // Taken between the start and the finish.
    let late = Browser::new();
    let response = post_json(&late, &start, &json!({ "username": "dave" })).await;
    let options = expect_json(response, StatusCode::OK, "signup/start").await;
    signed_up(&server, "dave").await;
    let credential = authenticator.create(&options);
    let response = post_json(&late, &finish, &credential).await;
    let body = expect_json(response, StatusCode::CONFLICT, "taken meanwhile").await;
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(late.me(&server).await, None);
    assert_eq!(
        password_sign_in(&server, "dave", PASSWORD).await,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------
// Removal

#[tokio::test]
async fn removing_a_passkey_ends_the_sessions_it_signed_in_and_only_those() {
    let (server, _db) = localhost_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let mut authenticator = Authenticator::new(&server.base);
    let removed = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;
    let kept = add_passkey(&laptop, &server, &mut authenticator, Backup::Synced).await;
    let phone = signed_in_with(&server, &authenticator, &removed, "alice").await;
    let tablet = signed_in_with(&server, &authenticator, &kept, "alice").await;
    let desktop = signed_in(&server, "alice", PASSWORD).await;
    let bob = signed_up(&server, "bob").await;

    let phone_stream = watched(&phone, &server).await;
    let others = vec![
        watched(&tablet, &server).await,
        watched(&desktop, &server).await,
        watched(&laptop, &server).await,
        watched(&bob, &server).await,
    ];
    let url = server.url(&format!("/api/passkeys/{removed}"));
    let response = laptop.delete(&url).await;
    let at = Instant::now();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_ends(
        "the removed passkey's session",
        phone_stream,
        at,
        "credential_removed",
    )
    .await;
    assert_eq!(phone.me(&server).await, None);
    for (what, browser) in [
        ("another passkey's", &tablet),
        ("a password's", &desktop),
        ("the remover's", &laptop),
    ] {
        assert_eq!(
            browser.me(&server).await.as_deref(),
            Some("alice"),
            "{what}"
        );
    }
    assert_eq!(bob.me(&server).await.as_deref(), Some("bob"));
    assert_stay_open("the other sessions", others).await;
    assert_eq!(listed_ids(&laptop, &server).await, [kept.as_str()]);

    // The removed passkey signs in no more; the other still does.
    let again = Browser::new();
    let response = passkey_login(&again, &server, &authenticator, &removed).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(again.me(&server).await, None);
    signed_in_with(&server, &authenticator, &kept, "alice").await;
    // Gone is gone: a second removal finds nothing.
    let response = laptop.delete(&url).await;
    let body = expect_json(response, StatusCode::NOT_FOUND, "removed twice").await;
    assert_eq!(body, error("no such passkey"));
}

#[tokio::test]
async fn the_delete_form_removes_a_passkey_and_goes_back_to_the_list() {
    let (server, _db) = localhost_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let mut authenticator = Authenticator::new(&server.base);
    let removed = add_passkey(&laptop, &server, &mut authenticator, Backup::Synced).await;
    let kept = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;
    let phone = signed_in_with(&server, &authenticator, &removed, "alice").await;
    let tablet = signed_in_with(&server, &authenticator, &kept, "alice").await;

    let form = server.url(&format!("/passkeys/{removed}/delete"));
    let response = laptop.post(&form, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/passkeys");
    assert_eq!(phone.me(&server).await, None);
    assert_eq!(tablet.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(laptop.me(&server).await.as_deref(), Some("alice"));
    let body = page(&laptop, &server, "/passkeys").await;
    assert!(
        !body.contains(&format!(r#"data-passkey-id="{removed}""#)),
        "{body}"
    );
    assert!(
        body.contains(&format!(r#"data-passkey-id="{kept}""#)),
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_passkey_or_another_users_is_404_and_nothing_changes() {
    let (server, _db) = localhost_demo().await;
    let alice = signed_up(&server, "alice").await;
    let bob = signed_up(&server, "bob").await;
    let mut authenticator = Authenticator::new(&server.base);
    let alices = add_passkey(&alice, &server, &mut authenticator, Backup::DeviceBound).await;
    let bobs = add_passkey(&bob, &server, &mut authenticator, Backup::DeviceBound).await;
    let bobs_phone = signed_in_with(&server, &authenticator, &bobs, "bob").await;

    let unknown = b64(&[0; 32]);
    for id in [bobs.as_str(), unknown.as_str(), "not base64!"] {
        let response = alice
            .delete(&server.url(&format!("/api/passkeys/{id}")))
            .await;
        let body = expect_json(response, StatusCode::NOT_FOUND, id).await;
        assert_eq!(body, error("no such passkey"), "{id}");
        let form = server.url(&format!("/passkeys/{id}/delete"));
        let response = alice.post(&form, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "form: {id}");
    }
    let anonymous = Browser::new()
        .delete(&server.url(&format!("/api/passkeys/{bobs}")))
        .await;
    let body = expect_json(anonymous, StatusCode::UNAUTHORIZED, "anonymous").await;
    assert_eq!(body, error("not signed in"));

    assert_eq!(listed_ids(&bob, &server).await, [bobs.as_str()]);
    assert_eq!(listed_ids(&alice, &server).await, [alices]);
    assert_eq!(bobs_phone.me(&server).await.as_deref(), Some("bob"));
    signed_in_with(&server, &authenticator, &bobs, "bob").await;
}

#[tokio::test]
async fn removal_needs_a_recent_proof_and_a_passkey_confirmation_gives_one() {
    let (server, _db) = demo(|config| config.sudo_window = Duration::from_secs(2)).await;
    let laptop = signed_up(&server, "alice").await;
    let mut authenticator = Authenticator::new(&server.base);
    let removed = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;
    let confirming = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;
    let phone = signed_in_with(&server, &authenticator, &removed, "alice").await;
    tokio::time::sleep(Duration::from_millis(2_200)).await;

    // Outside the window: nothing changes.
    let form = server.url(&format!("/passkeys/{removed}/delete"));
    let response = laptop.post(&form, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/confirm?next=%2Fpasskeys");
    let api = server.url(&format!("/api/passkeys/{removed}"));
    let response = laptop.delete(&api).await;
    let body = expect_json(response, StatusCode::FORBIDDEN, "outside the window").await;
    assert_eq!(body, error("reauthentication required"));
    assert_eq!(
        listed_ids(&laptop, &server).await,
        sorted(&[&removed, &confirming])
    );
    assert_eq!(phone.me(&server).await.as_deref(), Some("alice"));

    // A passkey sign-in as the same user is a step-up: the same session
    // (its password factor stays), a new id, the window renewed.
    let before = laptop.session_id(&server).unwrap();
    let response = passkey_login(&laptop, &server, &authenticator, &confirming).await;
    let answer = expect_json(response, StatusCode::OK, "step-up").await;
    assert_eq!(answer, json!({ "username": "alice" }));
    let after = laptop.session_id(&server).unwrap();
    assert_ne!(before, after, "a new session id");
    assert_eq!(laptop.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(amr(&laptop, &server).await, ["hwk", "pwd", "user"]);

    let response = laptop.post(&form, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/passkeys");
    assert_eq!(listed_ids(&laptop, &server).await, [confirming]);
    assert_eq!(phone.me(&server).await, None);
    assert_eq!(laptop.me(&server).await.as_deref(), Some("alice"));
}

// ---------------------------------------------------------------------------
// A password for a passwordless account

#[tokio::test]
async fn a_passwordless_account_sets_a_password_after_a_recent_proof() {
    let (server, _db) = demo(|config| config.sudo_window = Duration::from_secs(2)).await;
    let mut authenticator = Authenticator::new(&server.base);
    let (carol, id) = passkey_signup(&server, &mut authenticator, "carol").await;

    let form = page(&carol, &server, "/password").await;
    assert!(form.contains(r#"name="new_password""#), "{form}");
    assert!(!form.contains(r#"name="current_password""#), "{form}");
    let confirm = page(&carol, &server, "/confirm?next=%2Fpassword").await;
    assert!(confirm.contains(r#"id="passkey-confirm""#), "{confirm}");
    assert!(!confirm.contains(r#"name="password""#), "{confirm}");

    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let set = [("new_password", NEW_PASSWORD)];
    let response = carol.post(&server.url("/password"), &set).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/confirm?next=%2Fpassword");
    assert_eq!(
        password_sign_in(&server, "carol", NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );

    // Confirmed with the passkey, the password is set and signs in.
    let response = passkey_login(&carol, &server, &authenticator, &id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = carol.post(&server.url("/password"), &set).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        !location(&response).starts_with("/confirm"),
        "{}",
        location(&response)
    );
    let browser = signed_in(&server, "carol", NEW_PASSWORD).await;
    assert_eq!(amr(&browser, &server).await, ["pwd"]);
    signed_in_with(&server, &authenticator, &id, "carol").await;
}

#[tokio::test]
async fn the_last_way_into_a_passwordless_account_is_kept() {
    let (server, _db) = localhost_demo().await;
    let mut authenticator = Authenticator::new(&server.base);
    let (carol, id) = passkey_signup(&server, &mut authenticator, "carol").await;
    const ONLY_WAY: &str = "only way to sign in";

    // Signed up a moment ago: the proof is recent, the refusal is for
    // what removing it would do.
    let api = server.url(&format!("/api/passkeys/{id}"));
    let body = expect_json(carol.delete(&api).await, StatusCode::CONFLICT, "delete").await;
    assert!(body["error"].as_str().unwrap().contains(ONLY_WAY), "{body}");
    let response = carol
        .post(&server.url(&format!("/passkeys/{id}/delete")), &[])
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let page_body = response.text().await.unwrap();
    assert!(page_body.contains(ONLY_WAY), "{page_body}");
    assert_eq!(listed_ids(&carol, &server).await, [id.as_str()]);
    assert_eq!(carol.me(&server).await.as_deref(), Some("carol"));
    signed_in_with(&server, &authenticator, &id, "carol").await;

    // With a password, it may go.
    let set = [("new_password", NEW_PASSWORD)];
    let response = carol.post(&server.url("/password"), &set).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        !location(&response).starts_with("/confirm"),
        "{}",
        location(&response)
    );
    assert_eq!(carol.delete(&api).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        password_sign_in(&server, "carol", NEW_PASSWORD).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_refused_passkey_keeps_the_visitors_own_session() {
    let (server, _db) = localhost_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let mut authenticator = Authenticator::new(&server.base);
    let id = add_passkey(&laptop, &server, &mut authenticator, Backup::DeviceBound).await;

    // A visitor whose session was there before this ceremony (here, made
    // by an abandoned one; a cart or a device-bound session waiting for
    // its proof are the same to the demo).
    let visitor = Browser::new();
    login_start(&visitor, &server).await;
    let before = visitor.session_id(&server);
    assert!(before.is_some(), "a ceremony keeps its state in a session");
    let options = login_start(&visitor, &server).await;
    let assertion = authenticator.get_with(&options, &id, Some(Tamper::Signature));
    let response = login_finish(&visitor, &server, &assertion).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(visitor.session_id(&server), before);
    assert_eq!(visitor.me(&server).await, None);
}

// ---------------------------------------------------------------------------
// By IP address

#[tokio::test]
async fn passkey_routes_by_ip_address_are_400_with_the_reason() {
    let (server, _db) = localhost_demo().await;
    let browser = Browser::new();
    let form = [("username", "alice"), ("password", PASSWORD)];
    let response = browser.post(&server.ip_url("/signup"), &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    for (path, body) in [
        ("/api/passkeys/register/start", None),
        ("/api/passkeys/login/start", None),
        (
            "/api/passkeys/signup/start",
            Some(json!({ "username": "bob" })),
        ),
    ] {
        let url = server.ip_url(path);
        let response = match &body {
            Some(body) => post_json(&browser, &url, body).await,
            None => post_empty(&browser, &url).await,
        };
        let body = expect_json(response, StatusCode::BAD_REQUEST, path).await;
        assert_eq!(body, error(NEEDS_HOST_NAME), "{path}");
    }
}

// ---------------------------------------------------------------------------
// Two instances sharing the sessions

/// The one origin both instances are served at (behind a proxy, say):
/// `DEMO_ORIGIN`, which makes the relying party.
const SITE: &str = "http://localhost";

/// A passkey sign-in started on one instance and finished on the other
/// (the ceremony's state lives in the shared session store), a passkey
/// registered the same way, and a removal on the first that ends the
/// session on the second, its event stream too. Skipped as `service_url`
/// says when Postgres or Redis is not configured.
async fn passkeys_on_two_instances(sessions: SessionsIn) {
    let Some(database_url) = service_url("DATABASE_URL") else {
        return;
    };
    let redis_url = match sessions {
        SessionsIn::Postgres => None,
        SessionsIn::Redis => match service_url("REDIS_URL") {
            Some(url) => Some(url),
            None => return,
        },
        SessionsIn::RedisCluster => unreachable!("not run on a cluster"),
    };
    let url = database_url.clone();
    with_postgres_schema(&database_url, move |schema| async move {
        let stores = Stores {
            database_url: url,
            session_store_url: redis_url.clone(),
            postgres_schema: Some(schema),
        };
        let start = || {
            let mut config = config_on(&stores);
            config.origin = Some(SITE.to_owned());
            Server::start_localhost(config)
        };
        let (one, two) = (start().await, start().await);
        let mut authenticator = Authenticator::new(SITE);
        let laptop = signed_up(&one, "alice").await;

        let options = register_start(&laptop, &two).await;
        let credential = authenticator.create(&options);
        let response = register_finish(&laptop, &one, &credential).await;
        let answer = expect_json(response, StatusCode::CREATED, "register on two").await;
        let id = credential["id"].as_str().unwrap().to_owned();
        assert_eq!(answer["id"], id);

        let phone = Browser::new();
        let options = login_start(&phone, &one).await;
        let assertion = authenticator.get_with(&options, &id, None);
        let response = login_finish(&phone, &two, &assertion).await;
        let answer = expect_json(response, StatusCode::OK, "login/finish on two").await;
        assert_eq!(answer, json!({ "username": "alice" }));
        assert_eq!(phone.me(&one).await.as_deref(), Some("alice"));
        assert_eq!(amr(&phone, &two).await, ["hwk", "user"]);

        let phone_stream = watched(&phone, &two).await;
        let laptop_stream = watched(&laptop, &two).await;
        let response = laptop
            .delete(&one.url(&format!("/api/passkeys/{id}")))
            .await;
        let at = Instant::now();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_ends(
            "the passkey's session on the other instance",
            phone_stream,
            at,
            "credential_removed",
        )
        .await;
        assert_eq!(phone.me(&two).await, None);
        assert_eq!(phone.me(&one).await, None);
        assert_eq!(laptop.me(&two).await.as_deref(), Some("alice"));
        assert_stay_open("the remover's", vec![laptop_stream]).await;
        if let Some(redis_url) = &redis_url {
            delete_redis_sessions(redis_url, &[&laptop, &phone], &one).await;
        }
    })
    .await;
}

#[tokio::test]
async fn passkeys_on_two_instances_sharing_redis_sessions() {
    passkeys_on_two_instances(SessionsIn::Redis).await;
}

#[tokio::test]
async fn passkeys_on_two_instances_sharing_postgres_sessions() {
    passkeys_on_two_instances(SessionsIn::Postgres).await;
}
