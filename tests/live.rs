//! Live sessions: an open SSE stream ends as soon as its session does
//! (password change, "sign out everywhere", revocation, logout from
//! another tab, a deleted user), the stream of the session that made the
//! change stays, the backstop catches what no notice announced, failing
//! checks end a stream only after the configured count, and dropped
//! streams leave nothing behind. WebSockets close with 1008 and the
//! reason, whether they receive or only send. Across two instances over
//! Redis pub/sub (one server, and a Redis Cluster when `REDIS_CLUSTER_URL`
//! is set) and Postgres LISTEN/NOTIFY, with a channel outage and its
//! restoration on both.
//!
//! The WebSocket tests need the `ws` feature, the Redis tests `redis`, the
//! Postgres tests `postgres`; without them the rest still runs.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
};
#[cfg(feature = "postgres")]
use common::services::pg_pool;
#[cfg(feature = "redis")]
use common::services::redis_pool;
#[cfg(feature = "ws")]
use common::COOKIE;
use common::{
    keys,
    live_app::{live_app, Events, Next, SocketLog},
    serve, Client, UserTable, Users, SECRET_A,
};
#[cfg(any(feature = "redis", feature = "postgres"))]
use common::{
    proxy::{Mode, Proxy},
    service_url,
    services::unique_name,
};
#[cfg(feature = "ws")]
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
#[cfg(feature = "ws")]
use tokio::net::TcpStream;
#[cfg(feature = "ws")]
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        client::IntoClientRequest as _,
        protocol::{frame::coding::CloseCode, CloseFrame},
        Message,
    },
    MaybeTlsStream, WebSocketStream,
};
use tower::ServiceExt as _;
use tower_sessions::MemoryStore;
#[cfg(any(feature = "redis", feature = "postgres"))]
use tower_sessions_auth::live::LiveChannel;
#[cfg(feature = "postgres")]
use tower_sessions_auth::live::PostgresChannel;
#[cfg(feature = "redis")]
use tower_sessions_auth::live::RedisChannel;
use tower_sessions_auth::{
    live::{LiveSessions, SessionWatch},
    registry::{MemoryRegistry, SessionRegistry},
    AuthLayer,
};

/// How long a notice may take to end a stream here: far above what it
/// takes (milliseconds), far below the backstop periods of these tests.
const PROMPT: Duration = Duration::from_secs(2);

/// How long a stream that must stay open is watched.
const QUIET: Duration = Duration::from_millis(700);

/// One instance of the application.
struct Site {
    base: String,
    users: Users,
    live: LiveSessions,
    /// Read by the WebSocket tests.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    sockets: SocketLog,
}

/// What instances of one application share: the session store, the
/// registry and the user table.
#[derive(Clone)]
struct Shared {
    store: MemoryStore,
    registry: SessionRegistry,
    users: Users,
}

impl Shared {
    fn new() -> Self {
        Self {
            store: MemoryStore::default(),
            registry: SessionRegistry::new(MemoryRegistry::default()),
            users: Users::with_defaults(),
        }
    }

    async fn site(&self, live: LiveSessions) -> Site {
        let sockets = SocketLog::default();
        let app = live_app(
            self.store.clone(),
            self.users.clone(),
            keys(SECRET_A, &[]),
            self.registry.clone(),
            live.clone(),
            sockets.clone(),
        );
        Site {
            base: serve(app).await,
            users: self.users.clone(),
            live,
            sockets,
        }
    }
}

/// A single instance whose backstop is too slow to explain anything a
/// test sees.
async fn site() -> Site {
    Shared::new()
        .site(LiveSessions::new().with_recheck_period(Duration::from_secs(600)))
        .await
}

async fn signed_in(site: &Site, user: u64) -> Client {
    let client = Client::new();
    let reply = client
        .post(&format!("{}/login/{user}", site.base), "")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    client
}

async fn stream(client: &Client, site: &Site) -> Events {
    Events::open(client.open(&format!("{}/events", site.base)).await).await
}

async fn post(client: &Client, site: &Site, path: &str) {
    let reply = client.post(&format!("{}{path}", site.base), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
}

#[cfg(feature = "ws")]
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket to `path` with the client's session cookie.
#[cfg(feature = "ws")]
async fn websocket(client: &Client, site: &Site, path: &str) -> Socket {
    let url = format!("{}{path}", site.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    let id = client.session_id(&site.base).unwrap();
    let cookie = format!("{COOKIE}={id}").parse().unwrap();
    request.headers_mut().insert(header::COOKIE, cookie);
    connect_async(request).await.unwrap().0
}

/// The next message of `socket` other than a tick, within [`PROMPT`].
#[cfg(feature = "ws")]
async fn next_message(socket: &mut Socket) -> Message {
    loop {
        let message = tokio::time::timeout(PROMPT, socket.next()).await;
        match message.unwrap().unwrap().unwrap() {
            Message::Text(text) if text.as_str() == "tick" => {}
            other => return other,
        }
    }
}

/// The close frame a socket gets when its session ends for `reason`.
#[cfg(feature = "ws")]
fn policy_close(reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Policy,
        reason: reason.into(),
    }))
}

/// The handle of the client's own session.
async fn own_handle(client: &Client, site: &Site) -> String {
    let reply = client.get(&format!("{}/sessions", site.base)).await;
    let listed: Value = serde_json::from_str(&reply.body).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == true)
        .unwrap()["handle"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn anonymous_requests_cannot_watch() {
    let site = site().await;
    let reply = Client::new().get(&format!("{}/events", site.base)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(site.live.watch_count(), 0);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_streams_and_keeps_the_changers() {
    let site = site().await;
    let (changer, other) = (signed_in(&site, 1).await, signed_in(&site, 1).await);
    let bystander = signed_in(&site, 2).await;
    let mut kept = stream(&changer, &site).await;
    let mut first_tab = stream(&other, &site).await;
    let mut second_tab = stream(&other, &site).await;
    let mut unrelated = stream(&bystander, &site).await;
    assert_eq!(site.live.watch_count(), 4);

    post(&changer, &site, "/password/1").await;

    assert_eq!(
        first_tab.ended(PROMPT).await.as_deref(),
        Some("credential_changed")
    );
    assert_eq!(
        second_tab.ended(PROMPT).await.as_deref(),
        Some("credential_changed")
    );
    assert_eq!(kept.next(QUIET).await, Next::Silent);
    assert_eq!(unrelated.next(Duration::ZERO).await, Next::Silent);
    assert_eq!(site.live.watch_count(), 2);
    // The kept stream's session is the one the layer keeps, under its new id.
    let me = changer.get(&format!("{}/me", site.base)).await;
    assert_eq!(me.status, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_everywhere_ends_the_others_and_keeps_this_one() {
    let site = site().await;
    for (path, reason) in [
        ("/logout-others", "epoch_changed"),
        ("/revoke-others", "revoked"),
    ] {
        let (me, other) = (signed_in(&site, 1).await, signed_in(&site, 1).await);
        let mut mine = stream(&me, &site).await;
        let mut theirs = stream(&other, &site).await;
        post(&me, &site, path).await;
        assert_eq!(
            theirs.ended(PROMPT).await.as_deref(),
            Some(reason),
            "{path}"
        );
        assert_eq!(mine.next(QUIET).await, Next::Silent, "{path}");
    }
}

#[tokio::test]
async fn a_revoked_session_loses_its_stream() {
    let site = site().await;
    let (me, other) = (signed_in(&site, 1).await, signed_in(&site, 1).await);
    let mut mine = stream(&me, &site).await;
    let mut theirs = stream(&other, &site).await;
    let handle = own_handle(&other, &site).await;
    post(&me, &site, &format!("/revoke/{handle}")).await;
    assert_eq!(theirs.ended(PROMPT).await.as_deref(), Some("revoked"));
    assert_eq!(mine.next(QUIET).await, Next::Silent);
}

#[tokio::test]
async fn a_watch_and_its_stream_debug_what_they_are_and_not_whose() {
    let site = site().await;
    let client = signed_in(&site, 1).await;
    let printed = client.get(&format!("{}/events/debug", site.base)).await;
    assert_eq!(
        printed.body,
        "SessionWatch { ended: None, .. } / WatchedEvents { watching: true, .. }"
    );
}

#[cfg(feature = "ws")]
#[tokio::test]
async fn a_websocket_echoes_until_its_session_ends_then_closes_with_1008() {
    let site = site().await;
    let (me, other) = (signed_in(&site, 1).await, signed_in(&site, 1).await);
    let mut theirs = websocket(&other, &site, "/ws/echo").await;
    let mut mine = websocket(&me, &site, "/ws/echo").await;
    theirs.send(Message::text("hello")).await.unwrap();
    assert_eq!(next_message(&mut theirs).await, Message::text("hello"));

    post(&me, &site, "/logout-others").await;
    assert_eq!(
        next_message(&mut theirs).await,
        policy_close("epoch_changed")
    );
    assert_eq!(
        site.sockets.next(PROMPT).await.as_deref(),
        Some("epoch_changed WatchedSocket { closed: true, .. }")
    );
    mine.send(Message::text("still here")).await.unwrap();
    assert_eq!(next_message(&mut mine).await, Message::text("still here"));

    // A client that leaves ends the handler with the session still on.
    mine.close(None).await.unwrap();
    assert_eq!(
        site.sockets.next(PROMPT).await.as_deref(),
        Some("none WatchedSocket { closed: false, .. }")
    );
}

#[cfg(feature = "ws")]
#[tokio::test]
async fn a_websocket_that_only_sends_is_closed_at_its_next_send() {
    let site = site().await;
    let (me, other) = (signed_in(&site, 1).await, signed_in(&site, 1).await);
    let mut theirs = websocket(&other, &site, "/ws/ticks").await;
    let first = tokio::time::timeout(PROMPT, theirs.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), Message::text("tick"));

    let handle = own_handle(&other, &site).await;
    post(&me, &site, &format!("/revoke/{handle}")).await;
    assert_eq!(next_message(&mut theirs).await, policy_close("revoked"));
    assert_eq!(
        site.sockets.next(PROMPT).await.as_deref(),
        Some("revoked WatchedSocket { closed: true, .. }")
    );
}

#[tokio::test]
async fn a_logout_in_another_tab_ends_the_stream_of_the_same_session() {
    let site = site().await;
    let client = signed_in(&site, 1).await;
    let mut tab = stream(&client, &site).await;
    post(&client, &site, "/logout").await;
    assert_eq!(tab.ended(PROMPT).await.as_deref(), Some("revoked"));
}

#[tokio::test]
async fn a_deleted_user_loses_every_stream() {
    let site = site().await;
    let client = signed_in(&site, 1).await;
    let mut tab = stream(&client, &site).await;
    site.users.delete(1).await;
    site.live.notify(&1_u64).await.unwrap();
    assert_eq!(tab.ended(PROMPT).await.as_deref(), Some("user_gone"));

    let client = signed_in(&site, 2).await;
    let mut tab = stream(&client, &site).await;
    post(&client, &site, "/revoke-all").await;
    assert_eq!(tab.ended(PROMPT).await.as_deref(), Some("revoked"));
}

#[tokio::test]
async fn the_backstop_ends_a_stream_whose_password_changed_in_the_database() {
    let period = Duration::from_millis(400);
    let site = Shared::new()
        .site(LiveSessions::new().with_recheck_period(period))
        .await;
    let client = signed_in(&site, 1).await;
    let mut tab = stream(&client, &site).await;
    // Several passes find nothing to end.
    assert_eq!(tab.next(period * 3).await, Next::Silent);
    // No request, no notice: only the periodic check can see this.
    site.users.set_password(1, "changed behind our back").await;
    assert_eq!(
        tab.ended(period * 4).await.as_deref(),
        Some("credential_changed")
    );
}

#[tokio::test]
async fn failing_checks_end_a_stream_only_after_the_configured_count() {
    let period = Duration::from_millis(200);
    let site = Shared::new()
        .site(
            LiveSessions::new()
                .with_recheck_period(period)
                .with_max_failures(5),
        )
        .await;
    let client = signed_in(&site, 1).await;
    let mut tab = stream(&client, &site).await;

    // A short outage of the user database: one or two failed checks.
    site.users.set_down(true);
    tokio::time::sleep(period + period / 4).await;
    site.users.set_down(false);
    assert_eq!(tab.next(period * 6).await, Next::Silent);

    // A long one: the session is no longer trusted.
    site.users.set_down(true);
    assert_eq!(
        tab.ended(period * 12).await.as_deref(),
        Some("server_error")
    );
    site.users.set_down(false);
}

#[tokio::test]
async fn dropped_streams_leave_no_watch_and_no_task() {
    let shared = Shared::new();
    let live = LiveSessions::new().with_recheck_period(NO_BACKSTOP);
    let app = live_app(
        shared.store.clone(),
        shared.users.clone(),
        keys(SECRET_A, &[]),
        shared.registry.clone(),
        live.clone(),
        SocketLog::default(),
    );
    let login = app
        .clone()
        .oneshot(Request::post("/login/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = login.headers()[header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();

    let mut open = Vec::new();
    for _ in 0..10_000 {
        let request = Request::get("/events")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        open.push(response);
    }
    assert_eq!(live.watch_count(), 10_000);
    drop(open);
    assert_eq!(live.watch_count(), 0);

    // What may stay is the backstop, started with the first watch; the
    // check each new watch ran has finished.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() > before + 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.num_alive_tasks(), before + 1);
}

/// Two instances over one channel: a change on one ends the other's
/// streams at once, and the changer's stream on the other stays. Then an
/// administrator's process on the same channel revokes: through the
/// registry alone, with no second call, the instances' streams end.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn two_instances(make: impl Fn() -> LiveSessions) {
    let shared = Shared::new();
    let a = shared.site(make()).await;
    let b = shared.site(make()).await;
    let (changer, other) = (signed_in(&a, 1).await, signed_in(&a, 1).await);
    let mut kept = stream(&changer, &a).await;
    let mut ended = stream(&other, &a).await;
    // Let both instances subscribe.
    tokio::time::sleep(Duration::from_millis(300)).await;

    post(&changer, &b, "/password/1").await;
    assert_eq!(
        ended.ended(PROMPT).await.as_deref(),
        Some("credential_changed")
    );
    assert_eq!(kept.next(QUIET).await, Next::Silent);

    let mut again = stream(&changer, &a).await;
    let third = signed_in(&b, 1).await;
    let handle = own_handle(&changer, &b).await;
    post(&third, &b, &format!("/revoke/{handle}")).await;
    assert_eq!(kept.ended(PROMPT).await.as_deref(), Some("revoked"));
    assert_eq!(again.ended(PROMPT).await.as_deref(), Some("revoked"));

    let admin = shared.registry.clone().with_live_sessions(make());
    let (on_a, on_b) = (signed_in(&a, 2).await, signed_in(&b, 3).await);
    let (mut two, mut three) = (stream(&on_a, &b).await, stream(&on_b, &a).await);
    let mut third_stream = stream(&third, &a).await;
    assert_eq!(admin.revoke_all(&1_u64).await.unwrap(), 1);
    assert_eq!(third_stream.ended(PROMPT).await.as_deref(), Some("revoked"));
    assert_eq!(
        two.next(QUIET).await,
        Next::Silent,
        "another user's stream stays"
    );
    assert_eq!(admin.revoke_everyone().await.unwrap(), 2);
    assert_eq!(two.ended(PROMPT).await.as_deref(), Some("revoked"));
    assert_eq!(three.ended(PROMPT).await.as_deref(), Some("revoked"));
}

/// Far longer than the tests: only notices can end their streams.
const NO_BACKSTOP: Duration = Duration::from_secs(600);

#[cfg(feature = "redis")]
#[tokio::test]
async fn two_instances_over_redis() {
    two_instances_over_redis_at("REDIS_URL").await;
}

/// The same over a Redis Cluster: notices are classic pub/sub, which the
/// cluster carries to every node, so each instance's subscriber hears them
/// wherever it is connected.
#[cfg(feature = "redis")]
#[tokio::test]
async fn two_instances_over_a_redis_cluster() {
    two_instances_over_redis_at("REDIS_CLUSTER_URL").await;
}

/// Two instances whose notices go through the Redis at `$variable`.
#[cfg(feature = "redis")]
async fn two_instances_over_redis_at(variable: &str) {
    let Some(url) = service_url(variable) else {
        return;
    };
    let pool = redis_pool(&url).await;
    let name = unique_name();
    two_instances(|| {
        LiveSessions::new()
            .with_recheck_period(NO_BACKSTOP)
            .with_channel(RedisChannel::new(pool.clone()).with_channel_name(&name))
    })
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn two_instances_over_postgres() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let pool = pg_pool(&url, 4).await;
    let name = unique_name();
    two_instances(|| {
        LiveSessions::new()
            .with_recheck_period(NO_BACKSTOP)
            .with_channel(PostgresChannel::new(pool.clone()).with_channel_name(&name))
    })
    .await;
}

/// Two instances over one channel, the first's `cut_off` (through a proxy
/// the test cuts), the second's `direct`.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn cut_off_pair<C: LiveChannel>(cut_off: C, direct: C, period_a: Duration) -> (Site, Site) {
    let shared = Shared::new();
    let a = shared
        .site(
            LiveSessions::new()
                .with_recheck_period(period_a)
                .with_channel(cut_off),
        )
        .await;
    let b = shared
        .site(
            LiveSessions::new()
                .with_recheck_period(NO_BACKSTOP)
                .with_channel(direct),
        )
        .await;
    (a, b)
}

/// [`cut_off_pair`] over Redis pub/sub.
#[cfg(feature = "redis")]
async fn cut_off_over_redis(url: &str, period_a: Duration) -> (Proxy, Site, Site) {
    let proxy = Proxy::start(url).await;
    let name = unique_name();
    let cut_off = RedisChannel::new(redis_pool(&proxy.url(url)).await).with_channel_name(&name);
    let direct = RedisChannel::new(redis_pool(url).await).with_channel_name(&name);
    let (a, b) = cut_off_pair(cut_off, direct, period_a).await;
    (proxy, a, b)
}

/// While the channel is down, the backstop ends the streams whose notice
/// was lost, and no valid stream ends for the outage.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_channel_outage_falls_back_on_the_backstop() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let period = Duration::from_millis(800);
    let (proxy, a, b) = cut_off_over_redis(&url, period).await;
    let (user, other, bystander) = (
        signed_in(&a, 1).await,
        signed_in(&a, 1).await,
        signed_in(&a, 2).await,
    );
    let mut mine = stream(&user, &a).await;
    let mut valid = stream(&bystander, &a).await;
    let mut revoked = stream(&other, &a).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    proxy.set(Mode::Cut);
    let handle = own_handle(&other, &b).await;
    post(&user, &b, &format!("/revoke/{handle}")).await;
    assert_eq!(revoked.ended(period * 3).await.as_deref(), Some("revoked"));
    assert_eq!(valid.next(period * 2).await, Next::Silent);
    assert_eq!(mine.next(Duration::ZERO).await, Next::Silent);
    proxy.set(Mode::Open);
}

/// What was lost while the channel was down is caught when it is back,
/// without any backstop; then notices are prompt again.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn a_restored_channel_rechecks(proxy: &Proxy, a: &Site, b: &Site) {
    let (user, other) = (signed_in(a, 1).await, signed_in(a, 1).await);
    let mut mine = stream(&user, a).await;
    let mut revoked = stream(&other, a).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    proxy.set(Mode::Cut);
    // Let the listener find its connection gone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let handle = own_handle(&other, b).await;
    post(&user, b, &format!("/revoke/{handle}")).await;
    assert_eq!(revoked.next(Duration::from_millis(500)).await, Next::Silent);

    proxy.set(Mode::Open);
    assert_eq!(
        revoked.ended(Duration::from_secs(10)).await.as_deref(),
        Some("revoked")
    );
    assert_eq!(mine.next(Duration::ZERO).await, Next::Silent);
    post(&user, b, "/logout").await;
    assert_eq!(mine.ended(PROMPT).await.as_deref(), Some("revoked"));
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_restored_redis_channel_rechecks_what_it_may_have_missed() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let (proxy, a, b) = cut_off_over_redis(&url, NO_BACKSTOP).await;
    a_restored_channel_rechecks(&proxy, &a, &b).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_restored_postgres_channel_rechecks_what_it_may_have_missed() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let proxy = Proxy::start(&url).await;
    let name = unique_name();
    let cut_off = PostgresChannel::new(pg_pool(&proxy.url(&url), 2).await).with_channel_name(&name);
    let direct = PostgresChannel::new(pg_pool(&url, 2).await).with_channel_name(&name);
    let (a, b) = cut_off_pair(cut_off, direct, NO_BACKSTOP).await;
    a_restored_channel_rechecks(&proxy, &a, &b).await;
}

#[tokio::test]
async fn a_watch_without_live_sessions_on_the_layer_is_a_server_error() {
    let users = Users::with_defaults();
    let app = axum::Router::new()
        .route(
            "/events",
            axum::routing::get(|_watch: SessionWatch| async { "watching" }),
        )
        .layer(AuthLayer::new(users, keys(SECRET_A, &[])))
        .layer(tower_sessions::SessionManagerLayer::new(
            MemoryStore::default(),
        ));
    let response = app
        .oneshot(Request::get("/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
