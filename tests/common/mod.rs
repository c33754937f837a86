//! Shared test harness: a test application over real HTTP, a cookie-jar
//! client, an in-memory user backend, and the suite that every session store
//! must pass (`suite`, instantiated per store with `store_suite!`).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod clock;
pub mod cluster;
pub mod counted;
pub mod fast_site;
pub mod live_app;
pub mod panics;
pub mod pg_users;
pub mod proxy;
pub mod registry_app;
pub mod registry_suite;
pub mod services;
pub mod suite;

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
};

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
    Router,
};
use reqwest::{cookie::CookieStore, Url};
use tower_sessions::{
    session::{Id, Record},
    SessionManagerLayer, SessionStore,
};
use tower_sessions_auth::{
    AuthError, AuthKeys, AuthLayer, AuthSession, AuthUser, Identity, LoginRequired, SessionUser,
    UserBackend,
};

/// Two secrets of the minimum length or more.
pub const SECRET_A: &[u8] = b"secret A: 0123456789abcdef0123456789abcdef";
pub const SECRET_B: &[u8] = b"secret B: fedcba9876543210fedcba9876543210";

/// The name of tower-sessions' session cookie.
pub const COOKIE: &str = "id";

pub fn keys(current: &[u8], fallbacks: &[&[u8]]) -> AuthKeys {
    AuthKeys::new(current)
        .and_then(|keys| keys.with_fallbacks(fallbacks))
        .expect("test secrets are long enough")
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestUser {
    pub id: u64,
    pub name: String,
    pub password_hash: String,
    pub epoch: u64,
}

impl SessionUser for TestUser {
    type Id = u64;

    fn id(&self) -> u64 {
        self.id
    }

    fn credential(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }

    /// Every test user has one passkey, [`PASSKEY`], at version 1.
    fn credential_version(&self, id: &[u8]) -> Option<u64> {
        (id == PASSKEY).then_some(1)
    }

    fn session_epoch(&self) -> u64 {
        self.epoch
    }
}

/// The credential id of every test user's passkey.
pub const PASSKEY: &[u8] = b"the test passkey";

/// What the test handlers need of a user table, beyond what the layer
/// needs: one implementation in memory ([`Users`]), others on real databases.
pub trait UserTable: UserBackend<User = TestUser> {
    fn find(&self, id: u64) -> impl Future<Output = Option<TestUser>> + Send;
    /// Stores a new password hash and returns the updated user.
    fn set_password(
        &self,
        id: u64,
        new_password: &str,
    ) -> impl Future<Output = Option<TestUser>> + Send;
    /// Increments the session epoch and returns the updated user.
    fn bump_epoch(&self, id: u64) -> impl Future<Output = Option<TestUser>> + Send;
    fn delete(&self, id: u64) -> impl Future<Output = ()> + Send;
}

/// The users every table starts with: `alice` (1), `bob` (2), `admin` (3).
pub fn default_users() -> Vec<TestUser> {
    [(1, "alice"), (2, "bob"), (3, "admin")]
        .into_iter()
        .map(|(id, name)| TestUser {
            id,
            name: name.to_owned(),
            password_hash: fake_hash(name, "initial"),
            epoch: 0,
        })
        .collect()
}

/// Stands in for an argon2 PHC string: the layer treats it as opaque bytes.
pub fn fake_hash(name: &str, password: &str) -> String {
    format!("$argon2id$v=19$m=19456,t=2,p=1${name}${password}")
}

/// An in-memory user table that tests can change under a running app, and
/// switch into failing.
#[derive(Clone, Default)]
pub struct Users {
    table: Arc<RwLock<HashMap<u64, TestUser>>>,
    down: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("user database unavailable")]
pub struct BackendDown;

impl Users {
    /// A table with the [`default_users`].
    pub fn with_defaults() -> Self {
        let users = Self::default();
        for user in default_users() {
            users.put(user);
        }
        users
    }

    pub fn put(&self, user: TestUser) {
        self.table.write().unwrap().insert(user.id, user);
    }

    pub fn get(&self, id: u64) -> Option<TestUser> {
        self.table.read().unwrap().get(&id).cloned()
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut TestUser)) -> Option<TestUser> {
        let mut table = self.table.write().unwrap();
        let user = table.get_mut(&id)?;
        change(user);
        Some(user.clone())
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl UserTable for Users {
    async fn find(&self, id: u64) -> Option<TestUser> {
        self.get(id)
    }

    async fn set_password(&self, id: u64, new_password: &str) -> Option<TestUser> {
        self.update(id, |user| {
            user.password_hash = fake_hash(&user.name, new_password);
        })
    }

    async fn bump_epoch(&self, id: u64) -> Option<TestUser> {
        self.update(id, |user| user.epoch += 1)
    }

    async fn delete(&self, id: u64) {
        self.table.write().unwrap().remove(&id);
    }
}

impl UserBackend for Users {
    type User = TestUser;
    type Error = BackendDown;

    async fn get_user(&self, id: &u64) -> Result<Option<TestUser>, BackendDown> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BackendDown);
        }
        Ok(self.get(*id))
    }
}

/// The handlers of the test application.
///
/// `POST /login/{id}` signs in as user `id` (checking credentials is the
/// application's concern, not the layer's); `POST /password/{id}` changes
/// user `id`'s password from whatever session calls it.
pub fn routes<T: UserTable>(users: T) -> Router {
    Router::new()
        .route("/login/{id}", post(login::<T>))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route("/identity", get(identity))
        .route("/private", get(private))
        .route("/password/{id}", post(change_password::<T>))
        .route("/logout-others", post(logout_others::<T>))
        .route("/cart", get(get_cart).post(put_cart))
        .with_state(users)
}

/// The test application: `routes` inside `AuthLayer` inside
/// `SessionManagerLayer`.
pub fn app<S: SessionStore + Clone, T: UserTable>(store: S, users: T, keys: AuthKeys) -> Router {
    routes(users.clone())
        .layer(AuthLayer::new(users, keys))
        .layer(SessionManagerLayer::new(store).with_secure(false))
}

async fn login<T: UserTable>(
    State(users): State<T>,
    Path(id): Path<u64>,
    mut auth: AuthSession<TestUser>,
) -> Result<StatusCode, AuthError> {
    let Some(user) = users.find(id).await else {
        return Ok(StatusCode::NOT_FOUND);
    };
    auth.login(&user).await?;
    Ok(StatusCode::OK)
}

async fn logout(mut auth: AuthSession<TestUser>) -> Result<StatusCode, AuthError> {
    auth.logout().await?;
    Ok(StatusCode::OK)
}

async fn me(AuthUser(user): AuthUser<TestUser>) -> String {
    user.name
}

async fn maybe(user: Option<AuthUser<TestUser>>) -> String {
    user.map_or_else(|| "anonymous".to_owned(), |AuthUser(user)| user.name)
}

async fn identity(identity: Identity<TestUser>) -> String {
    match identity {
        Identity::Authenticated(user) => format!("authenticated:{}", user.name),
        Identity::Anonymous => "anonymous".to_owned(),
    }
}

async fn private(LoginRequired(user): LoginRequired<TestUser>) -> String {
    user.name
}

async fn change_password<T: UserTable>(
    State(users): State<T>,
    Path(id): Path<u64>,
    mut auth: AuthSession<TestUser>,
    new_password: String,
) -> Result<StatusCode, AuthError> {
    let Some(user) = users.set_password(id, &new_password).await else {
        return Ok(StatusCode::NOT_FOUND);
    };
    auth.update_session_auth_hash(&user).await?;
    Ok(StatusCode::OK)
}

async fn logout_others<T: UserTable>(
    State(users): State<T>,
    LoginRequired(user): LoginRequired<TestUser>,
    mut auth: AuthSession<TestUser>,
) -> Result<StatusCode, AuthError> {
    let Some(user) = users.bump_epoch(user.id).await else {
        return Ok(StatusCode::NOT_FOUND);
    };
    auth.update_session_auth_hash(&user).await?;
    Ok(StatusCode::OK)
}

async fn put_cart(auth: AuthSession<TestUser>, body: String) -> Result<StatusCode, AuthError> {
    auth.session().insert("cart", body).await?;
    Ok(StatusCode::OK)
}

async fn get_cart(auth: AuthSession<TestUser>) -> Result<String, AuthError> {
    Ok(auth
        .session()
        .get::<String>("cart")
        .await?
        .unwrap_or_default())
}

/// Serves `router` on an ephemeral port of 127.0.0.1 until the test ends.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// A browser stand-in: one cookie jar, any number of servers on 127.0.0.1
/// (cookies ignore the port, as in browsers).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

/// A response reduced to what the tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { http, jar }
    }

    pub async fn get(&self, url: &str) -> Reply {
        Reply::from(self.http.get(url).send().await.unwrap()).await
    }

    pub async fn post(&self, url: &str, body: &str) -> Reply {
        Reply::from(
            self.http
                .post(url)
                .body(body.to_owned())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A POST of `json` as `application/json`.
    pub async fn post_json(&self, url: &str, json: &str) -> Reply {
        Reply::from(
            self.http
                .post(url)
                .header("content-type", "application/json")
                .body(json.to_owned())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A GET with these extra headers (`Accept`, say).
    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.http.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// Sends a GET and returns the response before its body: for streams.
    pub async fn open(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// The session id this client holds for `base`, if any.
    pub fn session_id(&self, base: &str) -> Option<Id> {
        let url = Url::parse(base).unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == COOKIE).then(|| value.parse().unwrap())
        })
    }

    /// The `Cookie` header this client sends to `base`: to replay it from
    /// elsewhere, as a second tab or a thief would.
    pub fn cookie_header(&self, base: &str) -> String {
        let url = Url::parse(base).unwrap();
        self.jar
            .cookies(&url)
            .map(|header| header.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// Makes this client send `id` as its session cookie, as an attacker
    /// replaying a stolen cookie would.
    pub fn set_session_id(&self, base: &str, id: Id) {
        let url = Url::parse(base).unwrap();
        self.jar
            .add_cookie_str(&format!("{COOKIE}={id}; Path=/"), &url);
    }
}

impl Reply {
    async fn from(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

/// Whether the store still holds a record under `id`.
pub async fn record_exists<S: SessionStore>(store: &S, id: Id) -> bool {
    store.load(&id).await.unwrap().is_some()
}

/// Loads the record under `id`, which must exist.
pub async fn load_record<S: SessionStore>(store: &S, id: Id) -> Record {
    store.load(&id).await.unwrap().expect("record exists")
}

/// Whether tests that need an external service must run: in CI a missing
/// service is a failure; elsewhere the test prints why it skipped.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("{var} is not set, and CI=true: this test needs the service")
        }
        _ => {
            eprintln!("skipped: {var} is not set (set it to run this test against the service)");
            None
        }
    }
}
