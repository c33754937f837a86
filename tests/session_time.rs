//! Time in the session (issue #12): the re-authentication window of
//! `RecentAuth`, idle and absolute lifetimes per tier, the throttled
//! activity write, the cookie of each tier, a request in flight at the
//! deadline, and a live watch of an expired session. Memory store, a clock
//! the tests move.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        sse::{Event, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Router,
};
use common::{
    clock::TestClock, counted::Counted, live_app::Events as EventStream, serve, Client, TestUser,
    UserTable, Users, COOKIE,
};
use futures_util::{stream, Stream, StreamExt as _};
use tokio::sync::Notify;
use tower_sessions::{MemoryStore, SessionManagerLayer, SessionStore};
use tower_sessions_auth::{
    events::{AuthEvent, AuthEventKind, Events},
    live::{LiveSessions, SessionWatch},
    registry::{MemoryRegistry, SessionRegistry},
    times::{Lifetimes, ReauthPolicy},
    AuthError, AuthKeys, AuthLayer, AuthSession, AuthUser, EndReason, RecentAuth, SessionEnded,
    SignIn,
};

const SECRET: &[u8] = b"session time tests: 0123456789abcdef0123456789";

/// The plain tier of these tests: 10 minutes idle, an hour in all.
const IDLE: u64 = 600;
const ABSOLUTE: u64 = 3_600;
/// The remembered tier: 3 days idle, 30 days in all.
const REMEMBERED_IDLE: u64 = 3 * 86_400;
const REMEMBERED_ABSOLUTE: u64 = 30 * 86_400;
/// Activity is rewritten once a minute at most; the window is 5 minutes.
const INTERVAL: u64 = 60;
const WINDOW: u64 = 300;

/// What the slow route waits for, and tells.
#[derive(Clone, Default)]
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

#[derive(Clone)]
struct AppState {
    users: Users,
    gate: Gate,
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    remember: Option<bool>,
}

/// `POST /login/{id}[?remember=true]`, `POST /reauth/{id}`, `GET /me`
/// (the name; or 401 with the reason the session ended, or `anonymous`),
/// `GET /sensitive` (`RecentAuth`), `GET /slow` (waits for the gate),
/// `GET /sessions` (the registry's handles), `GET /events` (a watch).
fn routes(state: AppState) -> Router {
    Router::new()
        .route("/login/{id}", post(login))
        .route("/reauth/{id}", post(reauth))
        .route("/me", get(me))
        .route("/sensitive", get(sensitive))
        .route("/slow", get(slow))
        .route("/sessions", get(sessions))
        .route("/events", get(events))
        .route("/proved", get(proved))
        .with_state(state)
}

fn layer(users: Users, clock: &TestClock) -> AuthLayer<Users> {
    AuthLayer::new(users, AuthKeys::new(SECRET).unwrap())
        .with_clock(clock.reader())
        .with_activity_interval(Duration::from_secs(INTERVAL))
        .with_lifetimes(Lifetimes::new(
            Duration::from_secs(IDLE),
            Duration::from_secs(ABSOLUTE),
        ))
        .with_remembered_lifetimes(Lifetimes::new(
            Duration::from_secs(REMEMBERED_IDLE),
            Duration::from_secs(REMEMBERED_ABSOLUTE),
        ))
        .with_reauth(ReauthPolicy::new(Duration::from_secs(WINDOW)).with_confirm_url("/confirm"))
}

fn app<S: SessionStore + Clone>(store: S, state: AppState, layer: AuthLayer<Users>) -> Router {
    routes(state)
        .layer(layer)
        .layer(SessionManagerLayer::new(store).with_secure(false))
}

fn state() -> AppState {
    AppState {
        users: Users::with_defaults(),
        gate: Gate::default(),
    }
}

async fn login(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    Query(query): Query<LoginQuery>,
    mut auth: AuthSession<TestUser>,
) -> Result<StatusCode, AuthError> {
    let user = state.users.find(id).await.unwrap();
    let options = SignIn::new().remember(query.remember.unwrap_or(false));
    auth.login_with(&user, options).await?;
    Ok(StatusCode::OK)
}

async fn reauth(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    mut auth: AuthSession<TestUser>,
) -> Result<StatusCode, AuthError> {
    let user = state.users.find(id).await.unwrap();
    auth.reauthenticate(&user).await?;
    Ok(StatusCode::OK)
}

async fn me(user: Option<AuthUser<TestUser>>, ended: Option<SessionEnded>) -> Response {
    match (user, ended) {
        (Some(AuthUser(user)), _) => user.name.into_response(),
        (None, Some(ended)) => {
            (StatusCode::UNAUTHORIZED, ended.reason().to_string()).into_response()
        }
        (None, None) => (StatusCode::UNAUTHORIZED, "anonymous").into_response(),
    }
}

/// When the user last proved their credentials, in Unix seconds.
async fn proved(auth: AuthSession<TestUser>) -> Result<String, AuthError> {
    let at = auth.authenticated_at();
    Ok(at.map_or_else(
        || "none".to_owned(),
        |at| at.duration_since(UNIX_EPOCH).unwrap().as_secs().to_string(),
    ))
}

async fn sensitive(RecentAuth(user): RecentAuth<TestUser>) -> String {
    user.name
}

async fn slow(State(state): State<AppState>, AuthUser(user): AuthUser<TestUser>) -> String {
    let released = state.gate.release.notified();
    state.gate.entered.notify_one();
    released.await;
    user.name
}

async fn sessions(auth: AuthSession<TestUser>) -> Result<String, AuthError> {
    let handles: Vec<String> = auth
        .sessions()
        .await?
        .into_iter()
        .map(|info| info.handle.to_string())
        .collect();
    Ok(handles.join(","))
}

async fn events(watch: SessionWatch) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let hello = stream::once(async { Ok(Event::default().event("hello").data("{}")) });
    Sse::new(watch.sse(hello.chain(stream::pending())))
}

const JSON: (&str, &str) = ("accept", "application/json");
const HTML: (&str, &str) = ("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8");

/// A served app over a fresh memory store, with its clock.
async fn started() -> (String, TestClock) {
    let clock = TestClock::new();
    let state = state();
    let layer = layer(state.users.clone(), &clock);
    (
        serve(app(MemoryStore::default(), state, layer)).await,
        clock,
    )
}

#[tokio::test]
async fn recent_auth_lets_in_within_the_window_only() {
    let (base, clock) = started().await;
    let client = Client::new();
    let t0 = clock.now();
    assert_eq!(
        client.post(&format!("{base}/login/1"), "").await.status,
        200
    );

    clock.set(t0 + WINDOW - 1);
    for accept in [JSON, HTML] {
        let reply = client
            .get_with(&format!("{base}/sensitive"), &[accept])
            .await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "alice")
        );
    }

    clock.set(t0 + WINDOW);
    let api = client
        .get_with(&format!("{base}/sensitive?x=1"), &[JSON])
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    assert_eq!(api.body, r#"{"error":"reauthentication required"}"#);
    assert_eq!(api.header("content-type"), Some("application/json"));
    assert_eq!(api.header("cache-control"), Some("no-store"));
    // No Accept header at all is not a browser either.
    let bare = client.get(&format!("{base}/sensitive")).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);

    let browser = client
        .get_with(&format!("{base}/sensitive?tab=email&q=a%20b"), &[HTML])
        .await;
    assert_eq!(browser.status, StatusCode::SEE_OTHER);
    assert_eq!(
        browser.header("location"),
        Some("/confirm?next=%2Fsensitive%3Ftab%3Demail%26q%3Da%2520b")
    );
    // Still signed in: only the sensitive route asks again.
    assert_eq!(client.get(&format!("{base}/me")).await.body, "alice");

    // Anonymous: the usual sign-in refusals.
    let stranger = Client::new();
    let api = stranger
        .get_with(&format!("{base}/sensitive"), &[JSON])
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let browser = stranger
        .get_with(&format!("{base}/sensitive?x=1"), &[HTML])
        .await;
    assert_eq!(browser.status, StatusCode::SEE_OTHER);
    assert_eq!(
        browser.header("location"),
        Some("/login?next=%2Fsensitive%3Fx%3D1")
    );
}

#[tokio::test]
async fn reauthentication_counts_as_activity() {
    let (base, clock) = started().await;
    let client = Client::new();
    let t0 = clock.now();
    client.post(&format!("{base}/login/1"), "").await;
    // Within the activity interval, so no request rewrote the activity.
    let reauthenticated = t0 + INTERVAL - 1;
    clock.set(reauthenticated);
    let reply = client.post(&format!("{base}/reauth/1"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    clock.set(reauthenticated + IDLE - 1);
    assert_eq!(client.get(&format!("{base}/me")).await.body, "alice");
}

#[tokio::test]
async fn reauthentication_renews_the_window_rotates_the_id_and_keeps_the_handle() {
    let clock = TestClock::new();
    let state = state();
    let layer = layer(state.users.clone(), &clock)
        .with_registry(SessionRegistry::new(MemoryRegistry::default()));
    let base = serve(app(MemoryStore::default(), state, layer)).await;
    let client = Client::new();
    let t0 = clock.now();
    let proved = format!("{base}/proved");
    assert_eq!(client.get(&proved).await.body, "none", "anonymous");
    client.post(&format!("{base}/login/1"), "").await;
    assert_eq!(client.get(&proved).await.body, t0.to_string());
    let handles = client.get(&format!("{base}/sessions")).await.body;
    assert_eq!(handles.split(',').count(), 1, "{handles}");

    let sensitive = format!("{base}/sensitive");
    clock.set(t0 + WINDOW);
    assert_eq!(client.get_with(&sensitive, &[JSON]).await.status, 403);
    let before = client.session_id(&base).unwrap();
    assert_eq!(
        client.post(&format!("{base}/reauth/1"), "").await.status,
        200
    );
    let after = client.session_id(&base).unwrap();
    assert_ne!(before, after, "the id rotates");
    assert_eq!(client.get(&proved).await.body, (t0 + WINDOW).to_string());
    assert_eq!(client.get(&format!("{base}/sessions")).await.body, handles);

    clock.set(t0 + 2 * WINDOW - 1);
    assert_eq!(client.get_with(&sensitive, &[JSON]).await.status, 200);
    clock.set(t0 + 2 * WINDOW);
    assert_eq!(client.get_with(&sensitive, &[JSON]).await.status, 403);

    // The old id is worth nothing.
    let replay = Client::new();
    replay.set_session_id(&base, before);
    assert_eq!(replay.get(&format!("{base}/me")).await.body, "anonymous");

    // Re-authenticating does not extend the absolute lifetime.
    for elapsed in (3 * WINDOW..ABSOLUTE).step_by(usize::try_from(WINDOW).unwrap()) {
        clock.set(t0 + elapsed);
        assert_eq!(client.get(&format!("{base}/me")).await.body, "alice");
    }
    clock.set(t0 + ABSOLUTE - 1);
    client.post(&format!("{base}/reauth/1"), "").await;
    clock.set(t0 + ABSOLUTE);
    let me = client.get(&format!("{base}/me")).await;
    assert_eq!(
        (me.status, me.body.as_str()),
        (StatusCode::UNAUTHORIZED, "expired")
    );
}

#[tokio::test]
async fn an_idle_session_ends_at_its_idle_timeout() {
    let (base, clock) = started().await;
    let client = Client::new();
    let me = format!("{base}/me");
    let t0 = clock.now();
    client.post(&format!("{base}/login/1"), "").await;

    clock.set(t0 + IDLE - 1);
    assert_eq!(client.get(&me).await.body, "alice", "just before");
    // That request was recorded (the last one was over a minute old):
    // the timeout counts from it.
    let t1 = t0 + IDLE - 1;
    clock.set(t1 + IDLE - 1);
    assert_eq!(client.get(&me).await.body, "alice");
    let t2 = t1 + IDLE - 1;
    clock.set(t2 + IDLE);
    let ended = client.get(&me).await;
    assert_eq!(
        (ended.status, ended.body.as_str()),
        (StatusCode::UNAUTHORIZED, "expired")
    );
    let set_cookie = ended.header("set-cookie").unwrap();
    assert!(
        set_cookie.starts_with(&format!("{COOKIE}=")),
        "{set_cookie}"
    );
    assert!(
        set_cookie.contains("Max-Age=0"),
        "the cookie is removed: {set_cookie}"
    );
    assert_eq!(client.get(&me).await.body, "anonymous", "ended once");
}

#[tokio::test]
async fn an_active_session_ends_at_its_absolute_lifetime() {
    let (base, clock) = started().await;
    let client = Client::new();
    let me = format!("{base}/me");
    let t0 = clock.now();
    client.post(&format!("{base}/login/1"), "").await;
    for elapsed in (IDLE / 2..ABSOLUTE).step_by(usize::try_from(IDLE / 2).unwrap()) {
        clock.set(t0 + elapsed);
        assert_eq!(client.get(&me).await.body, "alice", "at {elapsed} s");
    }
    clock.set(t0 + ABSOLUTE - 1);
    assert_eq!(client.get(&me).await.body, "alice", "just before");
    clock.set(t0 + ABSOLUTE);
    let ended = client.get(&me).await;
    assert_eq!(
        (ended.status, ended.body.as_str()),
        (StatusCode::UNAUTHORIZED, "expired")
    );
}

#[tokio::test]
async fn activity_is_written_once_per_interval_at_most() {
    let clock = TestClock::new();
    let state = state();
    let store = Counted::default();
    let layer = layer(state.users.clone(), &clock);
    let base = serve(app(store.clone(), state, layer)).await;
    let client = Client::new();
    let me = format!("{base}/me");
    let t0 = clock.now();
    client.post(&format!("{base}/login/1"), "").await;
    let after_login = store.writes();

    for elapsed in [0, 1, 30, INTERVAL - 1] {
        clock.set(t0 + elapsed);
        assert_eq!(client.get(&me).await.body, "alice");
    }
    assert_eq!(
        store.writes(),
        after_login,
        "nothing written within the interval"
    );

    clock.set(t0 + INTERVAL);
    let reply = client.get(&me).await;
    assert_eq!(reply.body, "alice");
    assert_eq!(
        store.writes(),
        after_login + 1,
        "one write once the interval passed"
    );
    assert!(
        reply
            .header("set-cookie")
            .is_some_and(|cookie| !cookie.contains("Max-Age")),
        "the plain tier's cookie stays a session cookie: {:?}",
        reply.header("set-cookie")
    );

    for elapsed in [INTERVAL + 1, 2 * INTERVAL - 1] {
        clock.set(t0 + elapsed);
        client.get(&me).await;
    }
    assert_eq!(store.writes(), after_login + 1);
    clock.set(t0 + 2 * INTERVAL);
    client.get(&me).await;
    assert_eq!(store.writes(), after_login + 2);
}

#[tokio::test]
async fn a_request_in_flight_at_the_deadline_finishes_and_the_next_one_is_refused() {
    let clock = TestClock::new();
    let state = state();
    let gate = state.gate.clone();
    let layer = layer(state.users.clone(), &clock);
    let base = serve(app(MemoryStore::default(), state, layer)).await;
    let client = Client::new();
    let t0 = clock.now();
    client.post(&format!("{base}/login/1"), "").await;
    for elapsed in (IDLE / 2..ABSOLUTE).step_by(usize::try_from(IDLE / 2).unwrap()) {
        clock.set(t0 + elapsed);
        assert_eq!(client.get(&format!("{base}/me")).await.body, "alice");
    }

    // Started a second before the absolute deadline...
    clock.set(t0 + ABSOLUTE - 1);
    let entered = gate.entered.notified();
    let slow = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/slow");
        async move { client.get(&url).await }
    });
    entered.await;
    // ...and answered after it: the layer decided at its start.
    clock.set(t0 + ABSOLUTE + 5);
    gate.release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!((slow.status, slow.body.as_str()), (StatusCode::OK, "alice"));

    let next = client.get(&format!("{base}/me")).await;
    assert_eq!(
        (next.status, next.body.as_str()),
        (StatusCode::UNAUTHORIZED, "expired")
    );
}

/// `Max-Age` of the session cookie in `reply`, if it has one.
fn max_age(set_cookie: &str) -> Option<u64> {
    set_cookie
        .split("; ")
        .find_map(|attribute| attribute.strip_prefix("Max-Age="))
        .map(|age| age.parse().unwrap())
}

#[tokio::test]
async fn each_tier_gets_its_cookie_and_its_lifetimes() {
    let (base, clock) = started().await;
    let t0 = clock.now();

    let plain = Client::new();
    let reply = plain.post(&format!("{base}/login/1"), "").await;
    let cookie = reply.header("set-cookie").unwrap();
    assert!(cookie.starts_with(&format!("{COOKIE}=")), "{cookie}");
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "a browser-session cookie: {cookie}"
    );

    let remembered = Client::new();
    let reply = remembered
        .post(&format!("{base}/login/2?remember=true"), "")
        .await;
    let cookie = reply.header("set-cookie").unwrap();
    let age = max_age(cookie).unwrap_or_else(|| panic!("no Max-Age: {cookie}"));
    assert!(
        (REMEMBERED_ABSOLUTE - 5..=REMEMBERED_ABSOLUTE).contains(&age),
        "Max-Age {age} is not the remembered lifetime {REMEMBERED_ABSOLUTE}"
    );

    // Past the plain tier's idle timeout: only the remembered one holds.
    clock.set(t0 + IDLE);
    assert_eq!(plain.get(&format!("{base}/me")).await.body, "expired");
    let reply = remembered.get(&format!("{base}/me")).await;
    assert_eq!(reply.body, "bob");
    // That request recorded its activity: the cookie sent again keeps a
    // Max-Age within the absolute lifetime.
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        max_age(cookie).is_some_and(|age| age <= REMEMBERED_ABSOLUTE),
        "{cookie}"
    );
    // Active every two days, it lasts exactly its absolute lifetime.
    let mut elapsed = IDLE;
    while elapsed + 2 * 86_400 < REMEMBERED_ABSOLUTE {
        elapsed += 2 * 86_400;
        clock.set(t0 + elapsed);
        assert_eq!(remembered.get(&format!("{base}/me")).await.body, "bob");
    }
    clock.set(t0 + REMEMBERED_ABSOLUTE - 1);
    assert_eq!(remembered.get(&format!("{base}/me")).await.body, "bob");
    clock.set(t0 + REMEMBERED_ABSOLUTE);
    assert_eq!(remembered.get(&format!("{base}/me")).await.body, "expired");
}

#[tokio::test]
async fn the_live_watch_of_an_expired_session_ends_with_expired() {
    let clock = TestClock::new();
    let state = state();
    // The clock set after the registry: the watch's check reads it too.
    let live = LiveSessions::new().with_recheck_period(Duration::from_millis(200));
    let layer = AuthLayer::new(state.users.clone(), AuthKeys::new(SECRET).unwrap())
        .with_lifetimes(Lifetimes::new(
            Duration::from_secs(IDLE),
            Duration::from_secs(ABSOLUTE),
        ))
        .with_registry(SessionRegistry::new(MemoryRegistry::default()).with_live_sessions(live))
        .with_clock(clock.reader());
    let base = serve(app(MemoryStore::default(), state, layer)).await;
    let client = Client::new();
    let t0 = clock.now();
    client.post(&format!("{base}/login/1"), "").await;
    let mut events = EventStream::open(client.open(&format!("{base}/events")).await).await;
    assert_eq!(
        events.ended(Duration::from_millis(600)).await,
        None,
        "still live"
    );

    clock.set(t0 + ABSOLUTE);
    assert_eq!(
        events.ended(Duration::from_secs(3)).await.as_deref(),
        Some("expired")
    );
    let me = client.get(&format!("{base}/me")).await;
    assert_eq!(
        (me.status, me.body.as_str()),
        (StatusCode::UNAUTHORIZED, "expired")
    );
}

#[tokio::test]
async fn events_tell_a_re_authentication_and_an_expiry() {
    let clock = TestClock::new();
    let state = state();
    let seen: Arc<std::sync::Mutex<Vec<AuthEventKind>>> = Arc::default();
    let hook = {
        let seen = seen.clone();
        move |event: AuthEvent<u64>| {
            seen.lock().unwrap().push(event.kind);
            async {}
        }
    };
    let layer = layer(state.users.clone(), &clock).with_events(Events::new(hook));
    let base = serve(app(MemoryStore::default(), state, layer)).await;
    let client = Client::new();
    let t0 = clock.now();
    client.post(&format!("{base}/login/1"), "").await;
    client.post(&format!("{base}/reauth/1"), "").await;
    clock.set(t0 + IDLE);
    assert_eq!(client.get(&format!("{base}/me")).await.body, "expired");
    // The anonymous session is logged in again: a plain sign-in.
    client.post(&format!("{base}/reauth/1"), "").await;

    let expected = [
        AuthEventKind::SignedIn,
        AuthEventKind::Reauthenticated,
        AuthEventKind::SessionEnded(EndReason::Expired),
        AuthEventKind::SignedIn,
    ];
    for _ in 0..500 {
        if seen.lock().unwrap().len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*seen.lock().unwrap(), expected);
}
