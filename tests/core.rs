//! The layer's own behaviour on `MemoryStore`: tampered and malformed
//! session data, failures that must fail closed, misconfiguration, the login
//! guard, and what is logged.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex,
};

use axum::{body::Body, http::Request, routing::get, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use common::{
    app, keys, load_record, record_exists, routes, serve, Client, TestUser, UserTable, Users,
    COOKIE, SECRET_A,
};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_sessions::{
    session::{Id, Record},
    session_store, MemoryStore, SessionManagerLayer, SessionStore,
};
use tower_sessions_auth::{AuthLayer, AuthSession, AuthUser, LoginRequired, SessionEnded};

async fn signed_in_alice(store: &MemoryStore, users: &Users) -> (String, Client, Id) {
    let base = serve(app(store.clone(), users.clone(), keys(SECRET_A, &[]))).await;
    let client = Client::new();
    assert_eq!(
        client.post(&format!("{base}/login/1"), "").await.status,
        StatusCode::OK
    );
    let id = client.session_id(&base).unwrap();
    (base, client, id)
}

/// The crate's entry in a stored session: the 43-character auth hash, then
/// the user id as JSON.
async fn auth_entry(store: &MemoryStore, id: Id) -> String {
    let record = load_record(store, id).await;
    record.data["_auth"].as_str().unwrap().to_owned()
}

/// Replaces the crate's entry in a stored session.
async fn overwrite_auth_entry(store: &MemoryStore, id: Id, value: Value) {
    let mut record = load_record(store, id).await;
    record.data.insert("_auth".to_owned(), value);
    store.save(&record).await.unwrap();
}

#[tokio::test]
async fn tampered_hash_ends_the_session() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let (base, client, id) = signed_in_alice(&store, &users).await;
    let mut forged = auth_entry(&store, id).await.into_bytes();
    forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();

    overwrite_auth_entry(&store, id, json!(forged)).await;
    assert_eq!(
        client.get(&format!("{base}/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(!record_exists(&store, id).await);
}

/// The entry after its hash, with the times (`@s…`) left out: `0:1` for
/// alice at epoch 0; and the entry with its id replaced by `id`.
fn without_times(entry: &str) -> String {
    let (meta, id) = entry[43..].split_once(':').unwrap();
    let (epoch, times) = meta.split_once('@').unwrap();
    assert!(times.starts_with('s'), "{entry}");
    format!("{epoch}:{id}")
}

fn with_id(entry: &str, id: &str) -> String {
    let (head, _) = entry.split_once(':').unwrap();
    format!("{head}:{id}")
}

#[tokio::test]
async fn another_users_hash_does_not_verify() {
    // A session that claims user 2 with a hash signed for user 1.
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let (base, client, id) = signed_in_alice(&store, &users).await;
    let entry = auth_entry(&store, id).await;
    assert_eq!(without_times(&entry), "0:1");
    overwrite_auth_entry(&store, id, json!(with_id(&entry, "2"))).await;
    assert_eq!(
        client.get(&format!("{base}/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(!record_exists(&store, id).await);
}

/// The test application with `GET /why`: who the request is, and why the
/// layer ended its session (`"alice none"`, `"anonymous credential_changed"`).
fn app_telling_why(store: MemoryStore, users: Users) -> Router {
    routes(users.clone())
        .route(
            "/why",
            get(
                |user: Option<AuthUser<TestUser>>, ended: Option<SessionEnded>| async move {
                    let who = user.map_or_else(|| "anonymous".to_owned(), |AuthUser(u)| u.name);
                    let why = ended.map_or("none", |ended| ended.reason().as_str());
                    format!("{who} {why}")
                },
            ),
        )
        .layer(AuthLayer::new(users, keys(SECRET_A, &[])))
        .layer(SessionManagerLayer::new(store).with_secure(false))
}

/// The hash binds the user id: a record of alice's copied onto bob's id
/// ends, even when bob's credential and epoch equal alice's (with a MAC of
/// the credential alone, as in version 1, it would sign the request in as
/// bob).
#[tokio::test]
async fn a_record_moved_to_a_user_with_the_same_credential_ends() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let alice = users.get(1).unwrap();
    users.put(TestUser {
        id: 2,
        name: "bob".to_owned(),
        ..alice
    });
    let base = serve(app_telling_why(store.clone(), users.clone())).await;
    let client = Client::new();
    client.post(&format!("{base}/login/1"), "").await;
    assert_eq!(client.get(&format!("{base}/why")).await.body, "alice none");
    let id = client.session_id(&base).unwrap();
    let entry = auth_entry(&store, id).await;
    assert_eq!(without_times(&entry), "0:1");

    overwrite_auth_entry(&store, id, json!(with_id(&entry, "2"))).await;
    assert_eq!(
        client.get(&format!("{base}/why")).await.body,
        "anonymous credential_changed"
    );
    assert!(!record_exists(&store, id).await);
    assert_eq!(client.session_id(&base), None, "cookie removed");
}

/// A session signed by version 1 of the hash, `HMAC(k1, epoch_be64 ||
/// credential)` with `k1 = HMAC(secret, "...session-auth-hash.v1")`, ends
/// once on upgrade, as a credential change; signing in again works.
#[tokio::test]
async fn a_session_signed_by_the_first_hash_format_ends_once() {
    fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }

    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = serve(app_telling_why(store.clone(), users.clone())).await;
    let client = Client::new();
    client.post(&format!("{base}/login/1"), "").await;
    let id = client.session_id(&base).unwrap();
    let alice = users.get(1).unwrap();
    let v1_key = hmac(SECRET_A, &[b"tower-sessions-auth.session-auth-hash.v1"]);
    let v1 = hmac(
        &v1_key,
        &[&0_u64.to_be_bytes(), alice.password_hash.as_bytes()],
    );
    let v1 = URL_SAFE_NO_PAD.encode(v1);
    let entry = auth_entry(&store, id).await;
    assert_ne!(entry[..43], v1);
    overwrite_auth_entry(&store, id, json!(format!("{v1}{}", &entry[43..]))).await;

    assert_eq!(
        client.get(&format!("{base}/why")).await.body,
        "anonymous credential_changed"
    );
    assert!(!record_exists(&store, id).await);
    client.post(&format!("{base}/login/1"), "").await;
    assert_eq!(client.get(&format!("{base}/why")).await.body, "alice none");

    // A record of the format before times (`{hash}{epoch}:{id}`) ends
    // once too, as malformed.
    let id = client.session_id(&base).unwrap();
    let entry = auth_entry(&store, id).await;
    overwrite_auth_entry(&store, id, json!(format!("{}0:1", &entry[..43]))).await;
    assert_eq!(
        client.get(&format!("{base}/why")).await.body,
        "anonymous malformed"
    );
    assert!(!record_exists(&store, id).await);
}

/// A user whose credential is empty is refused at login (a 500 for the
/// application to fix; nothing changes), and a session signed before the
/// credential was emptied ends.
#[tokio::test]
async fn an_empty_credential_signs_nobody_in() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let (base, client, id) = signed_in_alice(&store, &users).await;
    let mut bob = users.get(2).unwrap();
    bob.password_hash.clear();
    users.put(bob);
    assert_eq!(
        client.post(&format!("{base}/login/2"), "").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        client.session_id(&base),
        Some(id),
        "alice's session is kept"
    );
    assert_eq!(client.get(&format!("{base}/me")).await.body, "alice");

    let mut alice = users.get(1).unwrap();
    alice.password_hash.clear();
    users.put(alice);
    assert_eq!(
        client.get(&format!("{base}/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(!record_exists(&store, id).await);
}

/// Malformed variants of a valid entry `{hash}0:1`, each in its own session.
fn malformed_entries(entry: &str) -> Vec<Value> {
    let hash = &entry[..43];
    vec![
        json!(42),
        json!(null),
        json!(""),
        json!("short"),
        json!(hash),
        json!(format!("{hash}1")),
        json!(format!("{hash}x:1")),
        json!(format!("{hash}0:\"one\"")),
        json!(format!("{hash}0:-1")),
        json!(format!("{hash}0:1 and more")),
        json!(format!("{}é0:1", &hash[..42])),
        json!({ "id": 1, "hash": hash }),
        json!([1, hash]),
    ]
}

#[tokio::test]
async fn malformed_auth_data_ends_the_session() {
    for case in 0..malformed_entries(&"x".repeat(44)).len() {
        let (store, users) = (MemoryStore::default(), Users::with_defaults());
        let (base, client, id) = signed_in_alice(&store, &users).await;
        client.post(&format!("{base}/cart"), "kept?").await;
        let value = malformed_entries(&auth_entry(&store, id).await).swap_remove(case);
        overwrite_auth_entry(&store, id, value.clone()).await;

        let reply = client.get(&format!("{base}/maybe")).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "anonymous"),
            "{value}"
        );
        assert!(!record_exists(&store, id).await, "{value}: record flushed");
        assert_eq!(client.session_id(&base), None, "{value}: cookie removed");
        assert_eq!(
            client.get(&format!("{base}/cart")).await.body,
            "",
            "{value}"
        );

        // Signing in again works and gives a new id (Django's
        // test_login_session_without_hash_session_key).
        client.post(&format!("{base}/login/1"), "").await;
        assert_eq!(
            client.get(&format!("{base}/me")).await.body,
            "alice",
            "{value}"
        );
        assert_ne!(client.session_id(&base), Some(id));
    }
}

#[tokio::test]
async fn backend_failure_fails_closed_and_keeps_the_session() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let (base, client, id) = signed_in_alice(&store, &users).await;

    users.set_down(true);
    for path in ["/me", "/maybe", "/identity", "/private"] {
        let reply = client.get(&format!("{base}{path}")).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(reply.body, "Internal Server Error", "{path}: generic body");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    assert!(record_exists(&store, id).await, "nothing lost");
    assert_eq!(client.session_id(&base), Some(id));

    users.set_down(false);
    assert_eq!(client.get(&format!("{base}/me")).await.body, "alice");
}

#[tokio::test]
async fn failure_status_is_configurable_but_stays_a_server_error() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let build = |status| {
        routes(users.clone())
            .layer(AuthLayer::new(users.clone(), keys(SECRET_A, &[])).with_failure_status(status))
            .layer(SessionManagerLayer::new(store.clone()).with_secure(false))
    };
    let unavailable = serve(build(StatusCode::SERVICE_UNAVAILABLE)).await;
    let client = Client::new();
    client.post(&format!("{unavailable}/login/1"), "").await;

    users.set_down(true);
    let reply = client.get(&format!("{unavailable}/me")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    );
}

/// A `MemoryStore` that can be switched into failing, to test the layer's
/// error path without a network (the Redis and Postgres fault tests cut a
/// real connection).
#[derive(Clone, Debug, Default)]
struct SwitchableStore {
    inner: MemoryStore,
    down: Arc<AtomicBool>,
}

impl SwitchableStore {
    fn check(&self) -> session_store::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(session_store::Error::Backend(
                "store unreachable".to_owned(),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SessionStore for SwitchableStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.check()?;
        self.inner.create(record).await
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.check()?;
        self.inner.save(record).await
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.check()?;
        self.inner.load(id).await
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.check()?;
        self.inner.delete(id).await
    }
}

#[tokio::test]
async fn store_failure_fails_closed() {
    let store = SwitchableStore::default();
    let users = Users::with_defaults();
    let base = serve(app(store.clone(), users.clone(), keys(SECRET_A, &[]))).await;
    let client = Client::new();
    client.post(&format!("{base}/login/1"), "").await;
    let id = client.session_id(&base).unwrap();

    store.down.store(true, Ordering::SeqCst);
    for path in ["/me", "/maybe"] {
        let reply = client.get(&format!("{base}{path}")).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(reply.body, "Internal Server Error");
    }
    assert_eq!(client.session_id(&base), Some(id), "cookie kept");

    store.down.store(false, Ordering::SeqCst);
    assert_eq!(client.get(&format!("{base}/me")).await.body, "alice");
}

#[tokio::test]
async fn missing_session_layer_is_a_500_that_names_it() {
    let users = Users::with_defaults();
    let app = routes(users.clone()).layer(AuthLayer::new(users, keys(SECRET_A, &[])));
    let (status, body) = get_in_process(app, "/maybe").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("SessionManagerLayer"), "{body}");
}

/// One GET through `app` in process, without a cookie.
async fn get_in_process(app: Router, path: &str) -> (StatusCode, String) {
    let response = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn extractors_without_auth_layer_are_a_500_that_names_it() {
    let app = Router::new()
        .route(
            "/me",
            get(|AuthUser(user): AuthUser<common::TestUser>| async move { user.name }),
        )
        .layer(SessionManagerLayer::new(MemoryStore::default()));
    let (status, body) = get_in_process(app, "/me").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("AuthLayer"), "{body}");
}

#[tokio::test]
async fn an_extractor_of_another_user_type_names_both_types() {
    #[derive(Clone)]
    struct OtherUser;
    impl tower_sessions_auth::SessionUser for OtherUser {
        type Id = u64;
        fn id(&self) -> u64 {
            1
        }
        fn credential(&self) -> &[u8] {
            b"other"
        }
    }

    let users = Users::with_defaults();
    let app = Router::new()
        .route("/me", get(|_: AuthUser<OtherUser>| async { "unreachable" }))
        .route(
            "/maybe",
            get(|_: Option<AuthUser<OtherUser>>| async { "unreachable" }),
        )
        .route(
            "/private",
            get(|_: LoginRequired<OtherUser>| async { "unreachable" }),
        )
        .route(
            "/session",
            get(|_: AuthSession<OtherUser>| async { "unreachable" }),
        )
        .layer(AuthLayer::new(users, keys(SECRET_A, &[])))
        .layer(SessionManagerLayer::new(MemoryStore::default()));
    for path in ["/me", "/maybe", "/private", "/session"] {
        let (status, body) = get_in_process(app.clone(), path).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(
            body.contains("::OtherUser`") && body.contains("common::TestUser"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn anonymous_api_requests_get_401() {
    let base = serve(app(
        MemoryStore::default(),
        Users::with_defaults(),
        keys(SECRET_A, &[]),
    ))
    .await;
    let reply = Client::new().get(&format!("{base}/me")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, "authentication required");
}

#[tokio::test]
async fn login_required_redirects_with_next() {
    let users = Users::with_defaults();
    let store = MemoryStore::default();
    let nested = Router::new()
        .nest("/app", routes(users.clone()))
        .layer(
            AuthLayer::new(users.clone(), keys(SECRET_A, &[])).with_login_url("/auth/sign-in?v=2"),
        )
        .layer(SessionManagerLayer::new(store.clone()).with_secure(false));
    let plain = serve(app(store, users, keys(SECRET_A, &[]))).await;
    let nested = serve(nested).await;
    let client = Client::new();

    let reply = client.get(&format!("{plain}/private?tab=a&b=%2F")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header("location"),
        Some("/login?next=%2Fprivate%3Ftab%3Da%26b%3D%252F")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    // Inside a nested router the full path is kept.
    let reply = client.get(&format!("{nested}/app/private")).await;
    assert_eq!(
        reply.header("location"),
        Some("/auth/sign-in?v=2&next=%2Fapp%2Fprivate")
    );

    client.post(&format!("{plain}/login/1"), "").await;
    let reply = client.get(&format!("{plain}/private")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "alice")
    );
}

/// Collects everything the crate logs during one request.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn ending_a_session_logs_why_but_no_secret_hash_or_id() {
    let store = MemoryStore::default();
    let users = Users::with_defaults();
    let (base, client, id) = signed_in_alice(&store, &users).await;
    let hash = auth_entry(&store, id).await[..43].to_owned();
    drop((base, client));
    let user = users.set_password(1, "changed elsewhere").await.unwrap();

    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("tower_sessions_auth=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = app(store.clone(), users, keys(SECRET_A, &[]));
    let response = app
        .oneshot(
            Request::get("/me")
                .header("cookie", format!("{COOKIE}={id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("reason=credential_changed"), "{logged}");
    let fingerprint = logged
        .split("session=")
        .nth(1)
        .and_then(|rest| rest.get(..16))
        .unwrap_or_default();
    assert!(
        fingerprint.len() == 16 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
        "a session fingerprint instead of the id: {logged}"
    );
    for secret in [
        id.to_string(),
        hash,
        user.password_hash,
        String::from_utf8_lossy(SECRET_A).into_owned(),
    ] {
        assert!(!logged.contains(&secret), "logged {secret:?}: {logged}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn handler_logs_carry_the_requests_outcome_but_no_id() {
    let store = MemoryStore::default();
    let users = Users::with_defaults();
    let (base, client, id) = signed_in_alice(&store, &users).await;
    drop((base, client));

    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = Router::new()
        .route(
            "/log",
            get(|| async {
                tracing::info!("handler ran");
            }),
        )
        .layer(AuthLayer::new(users.clone(), keys(SECRET_A, &[])))
        .layer(SessionManagerLayer::new(store.clone()).with_secure(false));
    let get = |cookie: Option<String>| {
        let mut request = Request::get("/log");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        app.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    get(Some(format!("{COOKIE}={id}"))).await.unwrap();
    get(None).await.unwrap();
    users.set_password(1, "changed").await.unwrap();
    get(Some(format!("{COOKIE}={id}"))).await.unwrap();

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let handler_lines: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("handler ran"))
        .collect();
    assert_eq!(handler_lines.len(), 3, "{logged}");
    assert!(
        handler_lines[0].contains("auth{outcome=\"authenticated\"}"),
        "{logged}"
    );
    assert!(
        handler_lines[1].contains("auth{outcome=\"anonymous\"}"),
        "{logged}"
    );
    assert!(
        handler_lines[2].contains("auth{outcome=\"ended\" reason=\"credential_changed\"}"),
        "{logged}"
    );
    assert!(!logged.contains(&id.to_string()), "{logged}");
}

/// A user whose id is a string (a UUID, an email), serialized as such.
#[derive(Clone)]
struct NamedUser {
    id: String,
    password_hash: String,
}

impl tower_sessions_auth::SessionUser for NamedUser {
    type Id = String;
    fn id(&self) -> String {
        self.id.clone()
    }
    fn credential(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

#[derive(Clone)]
struct NamedUsers(Arc<Mutex<Vec<NamedUser>>>);

impl tower_sessions_auth::UserBackend for NamedUsers {
    type User = NamedUser;
    type Error = std::convert::Infallible;
    async fn get_user(&self, id: &String) -> Result<Option<NamedUser>, Self::Error> {
        Ok(self.0.lock().unwrap().iter().find(|u| &u.id == id).cloned())
    }
}

#[tokio::test]
async fn string_user_ids_round_trip_through_the_session() {
    use axum::routing::post;
    use tower_sessions_auth::AuthSession;

    let id = "7f0c2a9e-3d4b-4c61-9a57-2b8e1f6d0c33".to_owned();
    let users = NamedUsers(Arc::new(Mutex::new(vec![NamedUser {
        id: id.clone(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$x$y".to_owned(),
    }])));
    let store = MemoryStore::default();
    let login_users = users.clone();
    let router = Router::new()
        .route(
            "/login",
            post(move |mut auth: AuthSession<NamedUser>| async move {
                let user = login_users.0.lock().unwrap()[0].clone();
                auth.login(&user).await.map(|()| "ok")
            }),
        )
        .route(
            "/me",
            get(|AuthUser(user): AuthUser<NamedUser>| async move { user.id }),
        )
        .layer(AuthLayer::new(users.clone(), keys(SECRET_A, &[])))
        .layer(SessionManagerLayer::new(store.clone()).with_secure(false));
    let base = serve(router).await;
    let client = Client::new();
    client.post(&format!("{base}/login"), "").await;

    assert_eq!(client.get(&format!("{base}/me")).await.body, id);
    let record = load_record(&store, client.session_id(&base).unwrap()).await;
    let entry = record.data["_auth"].as_str().unwrap();
    assert_eq!(
        without_times(entry),
        format!("0:{}", serde_json::to_string(&id).unwrap())
    );

    users.0.lock().unwrap()[0].password_hash = "$argon2id$v=19$m=19456,t=2,p=1$x$z".to_owned();
    assert_eq!(
        client.get(&format!("{base}/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// What an instance with device binding (the `dbsc` feature) keeps in a
/// session bound to a device.
const DEVICE_KEY: &str = "tsa.device";

#[tokio::test]
async fn a_device_bound_session_is_refused_where_no_device_is_checked() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let (base, client, id) = signed_in_alice(&store, &users).await;
    let mut record = load_record(&store, id).await;
    record.data.insert(
        DEVICE_KEY.to_owned(),
        json!({ "id": "the-device", "key": "es256.unread-here" }),
    );
    store.save(&record).await.unwrap();

    // This layer has no device binding: it cannot check the device, so the
    // session cookie alone signs nobody in, and the session is kept for
    // the instances that can.
    assert_eq!(
        client.get(&format!("{base}/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(record_exists(&store, id).await);

    // A sign-in on it does not take it over: the bound session ends, and
    // the new one holds no device.
    assert_eq!(
        client.post(&format!("{base}/login/1"), "").await.status,
        StatusCode::OK
    );
    let new_id = client.session_id(&base).unwrap();
    assert_ne!(new_id, id);
    assert!(!record_exists(&store, id).await);
    let record = load_record(&store, new_id).await;
    assert!(
        !record.data.contains_key(DEVICE_KEY),
        "{:?}",
        record.data.keys()
    );
    assert_eq!(
        client.get(&format!("{base}/me")).await.status,
        StatusCode::OK
    );
}
