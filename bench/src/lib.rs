//! The applications under test, shared by the macro benchmark (the server
//! side of `tower-sessions-auth-bench`) and the criterion micro benchmarks,
//! so that both measure exactly the same routers.
//!
//! Every kind serves `GET /me`, answering the signed-in user's name or
//! `401`, from the same in-memory user table ([`Users`]) and the same
//! session store. They differ only in how they decide who the request is:
//!
//! - (a) [`Kind::Axum`]: no sessions at all. The floor: routing, one header
//!   check and one user lookup.
//! - (b) [`Kind::Sessions`]: tower-sessions alone. The handler reads a user id
//!   from the session and loads the user: what an application does without
//!   an auth library, and without any invalidation on password change.
//! - (c) [`Kind::AxumLogin`]: axum-login 0.18 with the same backend.
//! - (d) [`Kind::Tsa`]: tower-sessions-auth.
//! - (e) [`Kind::TsaRegistry`]: (d) with its session registry.
//! - (f) [`Kind::TsaFast`]: (e) with live sessions and the fast path: a
//!   request that carries a pass cookie is signed in without reading the
//!   session store or the registry.
//!
//! So `Sessions − Axum` is the price of tower-sessions, and `Tsa − Sessions`
//! the price of this crate's layer on top of it.

use std::{collections::HashMap, convert::Infallible, fmt, str::FromStr, sync::Arc};

use axum::{
    body::Body,
    extract::{Query, State},
    http::{header, HeaderMap, Request, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use serde::Deserialize;
use tower::ServiceExt as _;
use tower_sessions::{
    cookie::time::{Duration, OffsetDateTime},
    Expiry, Session, SessionManagerLayer, SessionStore,
};
use tower_sessions_auth::{
    fast_path::FastPath,
    live::LiveSessions,
    registry::{MemoryRegistry, SessionRegistry},
    AuthKeys, AuthLayer, AuthSession, SessionUser, UserBackend,
};

/// The secret of every benchmark server; a benchmark needs no real secret.
pub const SECRET: &[u8] = b"benchmark secret, 32 bytes or more; not a real one";

/// The session key of [`Kind::Sessions`].
const USER_ID_KEY: &str = "user_id";

/// A user as an application stores it: a name and an argon2 PHC string
/// (97 bytes, the length of a real argon2id hash with default parameters).
#[derive(Clone, Debug)]
pub struct User {
    /// Primary key.
    pub id: u64,
    /// What `GET /me` answers.
    pub name: String,
    /// The encoded password hash, different for every user.
    pub password_hash: String,
}

impl User {
    /// Makes user `id` with a unique, realistic-looking password hash.
    #[must_use]
    pub fn generate(id: u64) -> Self {
        Self {
            id,
            name: format!("user{id}"),
            password_hash: format!(
                "$argon2id$v=19$m=19456,t=2,p=1${id:022}${:043}",
                id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ),
        }
    }
}

impl SessionUser for User {
    type Id = u64;

    fn id(&self) -> u64 {
        self.id
    }

    fn credential(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

impl axum_login::AuthUser for User {
    type Id = u64;

    fn id(&self) -> u64 {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

/// The in-memory user table every kind loads from. Read-only after start,
/// so it needs no lock; a lookup clones the user, as a database row would be
/// decoded into a fresh value.
#[derive(Clone, Debug)]
pub struct Users(Arc<HashMap<u64, User>>);

impl Users {
    /// Users `1..=count`.
    #[must_use]
    pub fn generate(count: u64) -> Self {
        Self(Arc::new(
            (1..=count).map(|id| (id, User::generate(id))).collect(),
        ))
    }

    /// How many users there are.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.0.len() as u64
    }

    /// The user with this id, cloned.
    #[must_use]
    pub fn get(&self, id: u64) -> Option<User> {
        self.0.get(&id).cloned()
    }
}

impl UserBackend for Users {
    type User = User;
    type Error = Infallible;

    async fn get_user(&self, id: &u64) -> Result<Option<User>, Infallible> {
        Ok(self.get(*id))
    }
}

impl axum_login::AuthnBackend for Users {
    type User = User;
    /// The benchmark signs in by id: credentials are not what is measured.
    type Credentials = u64;
    type Error = Infallible;

    async fn authenticate(&self, id: u64) -> Result<Option<User>, Infallible> {
        Ok(self.get(id))
    }

    async fn get_user(&self, id: &u64) -> Result<Option<User>, Infallible> {
        Ok(self.get(*id))
    }
}

/// Which application to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// (a) plain axum, no sessions.
    Axum,
    /// (b) axum + tower-sessions, reading the user id from the session.
    Sessions,
    /// (c) axum-login 0.18.
    AxumLogin,
    /// (d) tower-sessions-auth.
    Tsa,
    /// (e) tower-sessions-auth with its session registry (in the store's
    /// own kind: memory or Redis).
    TsaRegistry,
    /// (f) (e) with live sessions and the fast path ([`fast_path`]): the
    /// registry given to [`router`] must carry live sessions (see
    /// [`memory_registry`]).
    TsaFast,
}

impl Kind {
    /// Every kind, in the order of the report.
    pub const ALL: [Self; 6] = [
        Self::Axum,
        Self::Sessions,
        Self::AxumLogin,
        Self::Tsa,
        Self::TsaRegistry,
        Self::TsaFast,
    ];

    /// The name used on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Sessions => "tower-sessions",
            Self::AxumLogin => "axum-login",
            Self::Tsa => "tower-sessions-auth",
            Self::TsaRegistry => "tower-sessions-auth+registry",
            Self::TsaFast => "tower-sessions-auth+fast",
        }
    }

    /// The letter of the report: (a) to (f).
    #[must_use]
    pub fn letter(self) -> char {
        match self {
            Self::Axum => 'a',
            Self::Sessions => 'b',
            Self::AxumLogin => 'c',
            Self::Tsa => 'd',
            Self::TsaRegistry => 'e',
            Self::TsaFast => 'f',
        }
    }

    /// Whether the kind has sessions at all (and so anything to seed).
    #[must_use]
    pub fn has_sessions(self) -> bool {
        self != Self::Axum
    }

    /// Whether the kind keeps a session registry, whose entries a server
    /// removes when it stops.
    #[must_use]
    pub fn has_registry(self) -> bool {
        matches!(self, Self::TsaRegistry | Self::TsaFast)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == s || s.len() == 1 && s.starts_with(kind.letter()))
            .ok_or_else(|| format!("unknown kind {s:?}; expected one of axum, tower-sessions, axum-login, tower-sessions-auth, tower-sessions-auth+registry, tower-sessions-auth+fast (or a-f)"))
    }
}

/// The session layer every kind with sessions uses.
///
/// A fixed expiry an hour ahead: unlike `OnInactivity` it does not rewrite
/// the record on every request (which would measure the store's writes, not
/// the auth layer), and sessions left in Redis by a killed run expire.
pub fn session_layer<S: SessionStore + Clone>(store: S) -> SessionManagerLayer<S> {
    SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(Expiry::AtDateTime(
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
}

/// The fast path of (f): the pass cookie over plain HTTP (the benchmark
/// has no TLS), living the longest a pass may (an hour), so that the pass
/// taken before a run is still good at its end.
pub fn fast_path() -> FastPath {
    FastPath::new()
        .with_secure(false)
        .with_lifetime(FastPath::MAX_LIFETIME)
}

/// The activity interval of (f): a pass serves until its session's
/// activity is due to be recorded, and wrk sends the same pass all run
/// long; 30 minutes, which the default 30-minute idle timeout makes 15
/// (half of it), covers the servers' few minutes.
pub const FAST_ACTIVITY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1800);

/// The in-memory registry of `kind`: with live sessions for (f), which
/// the fast path needs (no channel: the process is the only one).
pub fn memory_registry(kind: Kind) -> SessionRegistry {
    let registry = SessionRegistry::new(MemoryRegistry::default());
    if kind == Kind::TsaFast {
        registry.with_live_sessions(LiveSessions::new())
    } else {
        registry
    }
}

/// Builds the application of `kind` over `users` and `store`; `registry`
/// serves (e) and (f) only, and must carry live sessions for (f).
///
/// Besides `GET /me`, the kinds with sessions have `POST /login?id=N`, which
/// signs user N in through the kind's own login path; [`seed`] uses it.
pub fn router<S: SessionStore + Clone>(
    kind: Kind,
    users: Users,
    store: S,
    registry: SessionRegistry,
) -> Router {
    match kind {
        Kind::Axum => Router::new().route("/me", get(me_axum)).with_state(users),
        Kind::Sessions => Router::new()
            .route("/me", get(me_sessions))
            .route("/login", post(login_sessions))
            .with_state(users)
            .layer(session_layer(store)),
        Kind::AxumLogin => Router::new()
            .route("/me", get(me_axum_login))
            .route("/login", post(login_axum_login))
            .layer(axum_login::AuthManagerLayerBuilder::new(users, session_layer(store)).build()),
        Kind::Tsa => tsa_router(users, store, |layer| layer),
        Kind::TsaRegistry => tsa_router(users, store, |layer| layer.with_registry(registry)),
        Kind::TsaFast => tsa_router(users, store, |layer| {
            layer
                .with_registry(registry)
                .with_fast_path(fast_path())
                .with_activity_interval(FAST_ACTIVITY_INTERVAL)
        }),
    }
}

/// The tower-sessions-auth application of [`router`], plus `POST /logout`,
/// with `configure` applied to its `AuthLayer` (to turn events on, say).
pub fn tsa_router<S: SessionStore + Clone>(
    users: Users,
    store: S,
    configure: impl FnOnce(AuthLayer<Users>) -> AuthLayer<Users>,
) -> Router {
    let keys = AuthKeys::new(SECRET).expect("the benchmark secret is long enough");
    Router::new()
        .route("/me", get(me_tsa))
        .route("/login", post(login_tsa))
        .route("/logout", post(logout_tsa))
        .with_state(users.clone())
        .layer(
            tower::ServiceBuilder::new()
                .layer(session_layer(store))
                .layer(configure(AuthLayer::new(users, keys))),
        )
}

#[derive(Deserialize)]
struct LoginQuery {
    id: u64,
}

/// (a): a cookie must be present; its value is not looked at.
async fn me_axum(State(users): State<Users>, headers: HeaderMap) -> Response {
    if !headers.contains_key(header::COOKIE) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    users
        .get(1)
        .map_or(StatusCode::UNAUTHORIZED.into_response(), |user| {
            user.name.into_response()
        })
}

async fn me_sessions(State(users): State<Users>, session: Session) -> Result<String, StatusCode> {
    let id = session
        .get::<u64>(USER_ID_KEY)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
        .ok_or(StatusCode::UNAUTHORIZED)?;
    users
        .get(id)
        .map(|user| user.name)
        .ok_or(StatusCode::UNAUTHORIZED)
}

async fn login_sessions(
    session: Session,
    Query(LoginQuery { id }): Query<LoginQuery>,
) -> StatusCode {
    if session.cycle_id().await.is_err() || session.insert(USER_ID_KEY, id).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}

async fn me_axum_login(auth: axum_login::AuthSession<Users>) -> Result<String, StatusCode> {
    auth.user
        .map(|user| user.name)
        .ok_or(StatusCode::UNAUTHORIZED)
}

async fn login_axum_login(
    mut auth: axum_login::AuthSession<Users>,
    Query(LoginQuery { id }): Query<LoginQuery>,
) -> StatusCode {
    let Some(user) = auth.backend.get(id) else {
        return StatusCode::NOT_FOUND;
    };
    match auth.login(&user).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn me_tsa(
    tower_sessions_auth::AuthUser(user): tower_sessions_auth::AuthUser<User>,
) -> String {
    user.name
}

async fn login_tsa(
    State(users): State<Users>,
    mut auth: AuthSession<User>,
    Query(LoginQuery { id }): Query<LoginQuery>,
) -> StatusCode {
    let Some(user) = users.get(id) else {
        return StatusCode::NOT_FOUND;
    };
    match auth.login(&user).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn logout_tsa(mut auth: AuthSession<User>) -> StatusCode {
    match auth.logout().await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// How many logins [`seed`] runs at once: enough to hide Redis round trips.
const SEED_CONCURRENCY: usize = 64;

/// Signs users `ids` in, one fresh session each, through the router's own
/// `POST /login`, and returns the `Cookie` header values (`id=...`) in order.
///
/// # Errors
///
/// A login that does not answer `204` with a session cookie.
pub async fn seed(
    router: &Router,
    ids: impl IntoIterator<Item = u64>,
) -> Result<Vec<String>, String> {
    let ids: Vec<u64> = ids.into_iter().collect();
    let mut cookies = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(SEED_CONCURRENCY) {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, &id) in chunk.iter().enumerate() {
            let router = router.clone();
            tasks.spawn(async move { (index, login(router, id).await) });
        }
        let mut chunk_cookies = vec![String::new(); chunk.len()];
        while let Some(joined) = tasks.join_next().await {
            let (index, cookie) = joined.map_err(|err| format!("login task failed: {err}"))?;
            chunk_cookies[index] = cookie?;
        }
        cookies.extend(chunk_cookies);
    }
    Ok(cookies)
}

/// One `POST /login?id=N`, returning the new session's `Cookie` value.
///
/// # Errors
///
/// A status other than `204`, or no session cookie in the answer.
pub async fn login(router: Router, id: u64) -> Result<String, String> {
    let request = Request::post(format!("/login?id={id}"))
        .body(Body::empty())
        .map_err(|err| format!("login request: {err}"))?;
    let response = router
        .oneshot(request)
        .await
        .map_err(|err| format!("login of user {id}: {err}"))?;
    if response.status() != StatusCode::NO_CONTENT {
        return Err(format!("login of user {id} answered {}", response.status()));
    }
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            value
                .split(';')
                .next()
                .filter(|pair| pair.starts_with("id="))
        })
        .map(str::to_owned)
        .ok_or_else(|| format!("login of user {id} set no session cookie"))
}

/// The name of the pass cookie of [`fast_path`].
pub const PASS_COOKIE: &str = "tsa_pass";

/// How long [`add_pass`] waits for a pass: the fast path issues none until
/// the channel's heartbeat came back once (a few milliseconds after start).
const PASS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Signs users `ids` in as [`seed`] does and returns the `Cookie` header
/// values a browser of `kind` sends next: for (f), the session cookie and
/// the pass cookie that the first `GET /me` after sign-in set
/// ([`add_pass`]); for the other kinds, the session cookie.
///
/// # Errors
///
/// As [`seed`] and [`add_pass`].
pub async fn sign_in(
    kind: Kind,
    router: &Router,
    ids: impl IntoIterator<Item = u64>,
) -> Result<Vec<String>, String> {
    let cookies = seed(router, ids).await?;
    if kind != Kind::TsaFast {
        return Ok(cookies);
    }
    let mut with_passes = Vec::with_capacity(cookies.len());
    for chunk in cookies.chunks(SEED_CONCURRENCY) {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, cookie) in chunk.iter().enumerate() {
            let (router, cookie) = (router.clone(), cookie.clone());
            tasks.spawn(async move { (index, add_pass(&router, &cookie).await) });
        }
        let mut chunk_cookies = vec![String::new(); chunk.len()];
        while let Some(joined) = tasks.join_next().await {
            let (index, cookie) = joined.map_err(|err| format!("pass task failed: {err}"))?;
            chunk_cookies[index] = cookie?;
        }
        with_passes.extend(chunk_cookies);
    }
    Ok(with_passes)
}

/// A browser's first `GET /me` after sign-in, in process: the fast path
/// answers it on the full path and sets the pass cookie. Returns
/// `session_cookie` with the pass added (`id=...; tsa_pass=...`), once a
/// second `GET /me` shows that the pass signs the request in (the answer
/// sets no cookie). Asks again for up to 10 s until it does: no pass is
/// issued until the channel's heartbeat came back, and the passes issued
/// within the clock skew (one second) after that first echo are refused.
///
/// # Errors
///
/// A status other than `200`, or no pass that signs in within 10 s.
pub async fn add_pass(router: &Router, session_cookie: &str) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + PASS_WAIT;
    loop {
        let response = router
            .clone()
            .oneshot(me_request(Some(session_cookie)))
            .await
            .map_err(|err| format!("GET /me for a pass: {err}"))?;
        if response.status() != StatusCode::OK {
            return Err(format!("GET /me for a pass answered {}", response.status()));
        }
        if let Some(pass) = set_cookie(response.headers(), PASS_COOKIE) {
            let cookie = format!("{session_cookie}; {pass}");
            let check = router
                .clone()
                .oneshot(me_request(Some(&cookie)))
                .await
                .map_err(|err| format!("GET /me with a pass: {err}"))?;
            if check.status() == StatusCode::OK && !check.headers().contains_key(header::SET_COOKIE)
            {
                return Ok(cookie);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "GET /me set no {PASS_COOKIE} cookie that signs in within {PASS_WAIT:?}: is the \
                 fast path on?"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The `name=value` pair of the first `Set-Cookie` of `name` with a
/// non-empty value (a removal has an empty one).
#[must_use]
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| {
            pair.split_once('=')
                .is_some_and(|(key, value)| key == name && !value.is_empty())
        })
        .map(str::to_owned)
}

/// A `GET /me` with this `Cookie` header value, for in-process requests.
///
/// # Panics
///
/// Never for a cookie returned by [`login`] (it is a valid header value).
#[must_use]
pub fn me_request(cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/me");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder
        .body(Body::empty())
        .expect("a GET with a cookie from `login` is a valid request")
}

/// Checks that a `GET /me` with a valid cookie is what the benchmark thinks
/// it is: a signed-in request that reached the handler. With a pass in the
/// cookie, also that the pass signed it in: the fast path sets no cookie
/// then, where the full path would set a new pass (or remove the old one).
///
/// # Errors
///
/// Any status other than `200`, or a `Set-Cookie` answering a pass.
pub async fn check_in_process(router: &Router, cookie: &str) -> Result<(), String> {
    let response = router
        .clone()
        .oneshot(me_request(Some(cookie)))
        .await
        .map_err(|err| err.to_string())?;
    let signed_in = response.status();
    if cookie.contains(&format!("{PASS_COOKIE}="))
        && response.headers().contains_key(header::SET_COOKIE)
    {
        return Err(format!(
            "GET /me with a pass answered with a Set-Cookie: the pass did not sign it in ({signed_in})"
        ));
    }
    let anonymous = router
        .clone()
        .oneshot(me_request(None))
        .await
        .map_err(|err| err.to_string())?
        .status();
    if signed_in == StatusCode::OK && anonymous == StatusCode::UNAUTHORIZED {
        Ok(())
    } else {
        Err(format!(
            "GET /me answered {signed_in} with a cookie and {anonymous} without (expected 200 and 401)"
        ))
    }
}

/// The micro benchmark's control for the layer's plumbing: (b)'s router
/// with a middleware that does what `AuthService` does around its decision
/// (clone the ready inner service, box the response future, clone the
/// `Session` out of the extensions, insert two extensions) but reads
/// nothing and verifies nothing. `per_request/tower-sessions+plumbing` minus
/// `per_request/tower-sessions` is the cost of that shape alone.
pub fn sessions_router_with_plumbing<S: SessionStore + Clone>(users: Users, store: S) -> Router {
    Router::new()
        .route("/me", get(me_sessions))
        .route("/login", post(login_sessions))
        .with_state(users)
        .layer(axum::middleware::from_fn(plumbing))
        .layer(session_layer(store))
}

/// What `AuthService::call` does besides deciding, as an axum middleware
/// (which itself clones the inner service and boxes its future, as
/// `AuthService` does).
async fn plumbing(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let marker = Arc::new(session.id().is_some());
    request.extensions_mut().insert(marker);
    request.extensions_mut().insert(PlumbingMarker);
    next.run(request).await
}

/// Today's date (UTC), `YYYY-MM-DD`, for the names of result files.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The calendar date of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A second extension, standing in for the layer's `Identity`.
#[derive(Clone, Copy)]
struct PlumbingMarker;

#[cfg(test)]
mod date_tests {
    use super::civil_from_days;

    #[test]
    fn days_since_the_epoch_are_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
