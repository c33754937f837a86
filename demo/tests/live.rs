//! The demo's live-session contract: `GET /api/events` (Server-Sent
//! Events) and `GET /ws` (an echo WebSocket) end within 2 s of the response
//! that ended their session, for every way a session ends, on the process
//! that made the change or on another one; the session that changed the
//! password or signed the others out keeps its connections.
//!
//! Times are measured from the moment the ending request's response was
//! received to the moment the stream's `session-ended` event (or the
//! socket's close frame) arrived; run with `--nocapture` to see them.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use tokio::{net::TcpStream, task::JoinHandle};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{self, client::IntoClientRequest as _, protocol::CloseFrame, Message},
    MaybeTlsStream, WebSocketStream,
};
use tower_sessions_auth_demo::DEFAULT_KEEP_ALIVE;

use crate::common::{
    client::{
        cache_control, config, signed_in, signed_up, sqlite_demo, Browser, NEW_PASSWORD, PASSWORD,
    },
    events::{assert_ends, assert_stay_open, watched, Ended, EventStream, STAYS_FOR},
    services::{two_on_postgres, SessionsIn},
    Server, TempDir,
};

// ---------------------------------------------------------------------------
// Harness: a WebSocket client

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The handshake of `/ws` on `server` with `browser`'s cookie (none for
/// `None`) and `origin` when given.
async fn handshake(
    server: &Server,
    browser: Option<&Browser>,
    origin: Option<&str>,
) -> Result<Socket, tungstenite::Error> {
    let url = format!("{}/ws", server.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    if let Some(id) = browser.and_then(|browser| browser.session_id(server)) {
        let cookie = format!("demo_session={id}").parse().unwrap();
        request.headers_mut().insert(header::COOKIE, cookie);
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
    }
    connect_async(request).await.map(|(socket, _)| socket)
}

/// `browser`'s WebSocket, checked to echo.
async fn socket(server: &Server, browser: &Browser) -> Socket {
    let mut socket = handshake(server, Some(browser), None).await.unwrap();
    assert_echoes(&mut socket).await;
    socket
}

async fn assert_echoes(socket: &mut Socket) {
    socket.send(Message::text("ping 1")).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(2), socket.next())
        .await
        .unwrap();
    assert_eq!(echo.unwrap().unwrap(), Message::text("ping 1"));
}

/// Reads `socket` in a task until the server closes it.
fn until_closed(mut socket: Socket) -> JoinHandle<Ended> {
    tokio::spawn(async move {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => {
                    let at = Instant::now();
                    let CloseFrame { code, reason } = frame.unwrap();
                    assert_eq!(u16::from(code), 1008, "policy violation");
                    return Ended {
                        at,
                        reason: reason.to_string(),
                        closed: true,
                    };
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Harness: what ends sessions

/// `POST /password` from `browser` (to [`NEW_PASSWORD`]); returns when its
/// response came.
async fn change_password(browser: &Browser, server: &Server) -> Instant {
    let form = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let response = browser.post(&server.url("/password"), &form).await;
    let at = Instant::now();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    at
}

/// `browser`'s own session handle on `server`.
async fn own_handle(browser: &Browser, server: &Server) -> String {
    let response = browser.get(&server.url("/api/sessions")).await;
    let body: Value = response.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    current["handle"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// GET /api/events

#[tokio::test]
async fn events_when_anonymous_are_401_json_as_api_me() {
    let (server, _db) = sqlite_demo().await;
    let anonymous = Browser::new();
    let response = anonymous.get(&server.url("/api/events")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "error": "not signed in" }));
    let me: Value = anonymous
        .get(&server.url("/api/me"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, me);
}

#[tokio::test]
async fn events_start_with_hello_at_once_then_keep_alive_comments() {
    assert!(DEFAULT_KEEP_ALIVE <= Duration::from_secs(15));
    let db = TempDir::new("demo_live");
    let mut config = config(&db.sqlite_url());
    config.keep_alive = Duration::from_millis(300);
    let server = Server::start(config).await;
    let browser = signed_up(&server, "alice").await;

    let response = browser.get(&server.url("/api/events")).await;
    let opened = Instant::now();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    assert_eq!(cache_control(&response), "no-store");
    let mut stream = EventStream::new(response);
    let hello = stream.next_raw().await.unwrap();
    assert!(opened.elapsed() < Duration::from_millis(500), "at once");
    assert_eq!(hello, "event: hello\ndata: {\"username\":\"alice\"}\n\n");
    // Then nothing but keep-alive comments, each at most 300 ms apart here.
    for _ in 0..2 {
        let next = tokio::time::timeout(Duration::from_secs(1), stream.next_raw())
            .await
            .unwrap()
            .unwrap();
        assert!(next.starts_with(':'), "{next:?}");
    }
}

#[tokio::test]
async fn a_recheck_period_under_100_ms_or_no_keep_alive_is_refused_at_start() {
    let db = TempDir::new("demo_live");
    let mut fast = config(&db.sqlite_url());
    fast.recheck_period = Duration::from_millis(50);
    let error = tower_sessions_auth_demo::build(fast).await.err().unwrap();
    assert!(error.to_string().contains("100 ms"), "{error}");
    let mut silent = config(&db.sqlite_url());
    silent.keep_alive = Duration::ZERO;
    assert!(tower_sessions_auth_demo::build(silent).await.is_err());
}

// ---------------------------------------------------------------------------
// Every cause, on one process

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_streams_not_the_changers() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = signed_in(&server, "alice", PASSWORD).await;
    let bob = signed_up(&server, "bob").await;
    // Two tabs of the phone, one of the laptop, one of another user.
    let phone_tabs = [
        watched(&phone, &server).await,
        watched(&phone, &server).await,
    ];
    let kept = vec![
        watched(&laptop, &server).await,
        watched(&bob, &server).await,
    ];

    let since = change_password(&laptop, &server).await;
    for (tab, task) in phone_tabs.into_iter().enumerate() {
        let what = format!("password change: phone tab {tab}");
        assert_ends(&what, task, since, "credential_changed").await;
    }
    assert_stay_open("password change: the changer and bob", kept).await;
    assert_eq!(laptop.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(phone.me(&server).await, None);
}

#[tokio::test]
async fn signing_out_other_devices_ends_their_streams_not_this_ones() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = signed_in(&server, "alice", PASSWORD).await;
    let phone_stream = watched(&phone, &server).await;
    let laptop_stream = watched(&laptop, &server).await;

    let response = laptop
        .post(&server.url("/sessions/logout-others"), &[])
        .await;
    let since = Instant::now();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ends("logout-others: phone", phone_stream, since, "epoch_changed").await;
    assert_stay_open("logout-others: the laptop", vec![laptop_stream]).await;
    assert_eq!(laptop.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_revocation_by_form_or_api_ends_the_revoked_sessions_stream() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = signed_in(&server, "alice", PASSWORD).await;
    let tablet = signed_in(&server, "alice", PASSWORD).await;
    let phone_stream = watched(&phone, &server).await;
    let tablet_stream = watched(&tablet, &server).await;
    let laptop_stream = watched(&laptop, &server).await;

    let handle = own_handle(&phone, &server).await;
    let response = laptop
        .post(&server.url("/sessions/revoke"), &[("handle", &handle)])
        .await;
    let since = Instant::now();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ends("revoke form: phone", phone_stream, since, "revoked").await;

    let handle = own_handle(&tablet, &server).await;
    let response = laptop
        .delete(&server.url(&format!("/api/sessions/{handle}")))
        .await;
    let since = Instant::now();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_ends(
        "DELETE /api/sessions: tablet",
        tablet_stream,
        since,
        "revoked",
    )
    .await;

    assert_stay_open("revocations: the laptop", vec![laptop_stream]).await;
}

#[tokio::test]
async fn signing_out_in_another_tab_ends_this_tabs_stream() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = signed_in(&server, "alice", PASSWORD).await;
    let tab = watched(&laptop, &server).await;
    let phone_stream = watched(&phone, &server).await;

    // The same browser (the same cookie), another tab.
    let response = laptop.post(&server.url("/logout"), &[]).await;
    let since = Instant::now();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ends("logout: the other tab", tab, since, "revoked").await;
    assert_stay_open("logout: another device", vec![phone_stream]).await;
}

#[tokio::test]
async fn deleting_the_account_ends_every_stream_of_it() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = signed_in(&server, "alice", PASSWORD).await;
    let bob = signed_up(&server, "bob").await;
    let laptop_stream = watched(&laptop, &server).await;
    let phone_stream = watched(&phone, &server).await;
    let bob_stream = watched(&bob, &server).await;

    let response = laptop
        .post(&server.url("/account/delete"), &[("password", PASSWORD)])
        .await;
    let since = Instant::now();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ends("account deleted: phone", phone_stream, since, "user_gone").await;
    assert_ends(
        "account deleted: its own tab",
        laptop_stream,
        since,
        "user_gone",
    )
    .await;
    assert_stay_open("account deleted: bob", vec![bob_stream]).await;
}

// ---------------------------------------------------------------------------
// Two processes: the stream on A, the change on B

/// Alice's phone streams (and holds a WebSocket) on `a`; her laptop, which
/// also streams on `a`, changes the password through `b`; then a tablet
/// streaming on `a` is revoked through `b`.
async fn across_processes(a: &Server, b: &Server) -> Vec<Browser> {
    let laptop = signed_up(a, "alice").await;
    let phone = signed_in(b, "alice", PASSWORD).await;
    let phone_stream = watched(&phone, a).await;
    let phone_socket = until_closed(socket(a, &phone).await);
    let laptop_stream = watched(&laptop, a).await;
    let mut laptop_socket = socket(a, &laptop).await;

    let since = change_password(&laptop, b).await;
    assert_ends(
        "other process, password: stream",
        phone_stream,
        since,
        "credential_changed",
    )
    .await;
    assert_ends(
        "other process, password: socket",
        phone_socket,
        since,
        "credential_changed",
    )
    .await;
    assert_stay_open("other process, password: the changer", vec![laptop_stream]).await;
    assert_echoes(&mut laptop_socket).await;

    let tablet = signed_in(b, "alice", NEW_PASSWORD).await;
    let tablet_stream = watched(&tablet, a).await;
    let handle = own_handle(&tablet, b).await;
    let response = laptop
        .delete(&b.url(&format!("/api/sessions/{handle}")))
        .await;
    let since = Instant::now();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_ends(
        "other process, revoke: stream",
        tablet_stream,
        since,
        "revoked",
    )
    .await;
    vec![laptop, phone, tablet]
}

/// SQLite has no channel between processes: the other process ends its
/// streams at its periodic re-check, here every second.
#[tokio::test]
async fn two_processes_on_one_sqlite_file_end_streams_at_the_recheck() {
    let db = TempDir::new("demo_live");
    let start = || {
        let mut config = config(&db.sqlite_url());
        config.recheck_period = Duration::from_secs(1);
        Server::start(config)
    };
    let (a, b) = (start().await, start().await);
    let laptop = signed_up(&a, "alice").await;
    let phone = signed_in(&b, "alice", PASSWORD).await;
    let phone_stream = watched(&phone, &a).await;
    let phone_socket = until_closed(socket(&a, &phone).await);

    let since = change_password(&laptop, &b).await;
    assert_ends(
        "sqlite, password: stream",
        phone_stream,
        since,
        "credential_changed",
    )
    .await;
    assert_ends(
        "sqlite, password: socket",
        phone_socket,
        since,
        "credential_changed",
    )
    .await;

    let tablet = signed_in(&b, "alice", NEW_PASSWORD).await;
    let tablet_stream = watched(&tablet, &a).await;
    let handle = own_handle(&tablet, &b).await;
    let response = laptop
        .delete(&b.url(&format!("/api/sessions/{handle}")))
        .await;
    let since = Instant::now();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_ends("sqlite, revoke: stream", tablet_stream, since, "revoked").await;
}

/// Redis pub/sub carries the change: the re-check stays at its default
/// 30 s, so only the channel can meet the 2 s.
#[tokio::test]
async fn two_processes_with_postgres_users_and_redis_sessions() {
    two_on_postgres(SessionsIn::Redis, |a, b, _| async move {
        across_processes(&a, &b).await
    })
    .await;
}

/// The same with sessions on a Redis Cluster (`SESSION_STORE_URL` of the
/// form `redis-cluster://…`): records spread over the shards, notices
/// cross the cluster bus.
#[tokio::test]
async fn two_processes_with_postgres_users_and_redis_cluster_sessions() {
    two_on_postgres(SessionsIn::RedisCluster, |a, b, _| async move {
        across_processes(&a, &b).await
    })
    .await;
}

/// Postgres `LISTEN/NOTIFY` carries the change when sessions live in
/// Postgres too.
#[tokio::test]
async fn two_processes_on_one_postgres_database() {
    two_on_postgres(SessionsIn::Postgres, |a, b, _| async move {
        across_processes(&a, &b).await
    })
    .await;
}

// ---------------------------------------------------------------------------
// GET /ws

#[tokio::test]
async fn ws_echoes_text_and_closes_with_1008_when_the_session_ends() {
    let (server, _db) = sqlite_demo().await;
    let laptop = signed_up(&server, "alice").await;
    let phone = signed_in(&server, "alice", PASSWORD).await;
    let mut phone_socket = socket(&server, &phone).await;
    phone_socket.send(Message::text("héllo ✓")).await.unwrap();
    let echo = phone_socket.next().await.unwrap().unwrap();
    assert_eq!(echo, Message::text("héllo ✓"));
    let phone_socket = until_closed(phone_socket);
    let mut laptop_socket = socket(&server, &laptop).await;

    let since = change_password(&laptop, &server).await;
    assert_ends("ws: phone", phone_socket, since, "credential_changed").await;
    tokio::time::sleep(STAYS_FOR).await;
    assert_echoes(&mut laptop_socket).await;

    // Signing out in another tab closes the laptop's socket too.
    let laptop_socket = until_closed(laptop_socket);
    let response = laptop.post(&server.url("/logout"), &[]).await;
    let since = Instant::now();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ends("ws: logout", laptop_socket, since, "revoked").await;
}

#[tokio::test]
async fn ws_is_401_json_when_anonymous_and_403_from_another_origin() {
    let (server, _db) = sqlite_demo().await;
    let status = |result: Result<Socket, tungstenite::Error>| match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (response.status().as_u16(), String::from_utf8(body).unwrap())
        }
        Err(other) => panic!("{other}"),
        Ok(_) => (101, String::new()),
    };
    let (code, body) = status(handshake(&server, None, None).await);
    assert_eq!(code, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({ "error": "not signed in" })
    );

    let alice = signed_up(&server, "alice").await;
    let (code, _) = status(handshake(&server, Some(&alice), Some("https://evil.example")).await);
    assert_eq!(code, 403, "cross-site WebSocket hijacking");
    let (code, _) = status(handshake(&server, Some(&alice), Some("null")).await);
    assert_eq!(code, 403);
    let own = server.base.clone();
    let mut socket = handshake(&server, Some(&alice), Some(&own)).await.unwrap();
    assert_echoes(&mut socket).await;

    // Signed in, but no handshake: refused, not upgraded.
    let response = alice.get(&server.url("/ws")).await;
    assert!(response.status().is_client_error(), "{}", response.status());
}
