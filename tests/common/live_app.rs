//! The test application with live sessions: the routes of
//! [`registry_routes`](super::registry_app::registry_routes) plus an SSE
//! stream, a WebSocket (with the `ws` feature), and a client-side reader of
//! the stream.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

#[cfg(feature = "ws")]
use axum::{
    extract::{
        ws::{Message, WebSocketUpgrade},
        Path,
    },
    response::Response,
};
use axum::{
    response::sse::{Event, Sse},
    routing::get,
    Extension, Router,
};
use futures_util::{stream, Stream, StreamExt as _};
use tower_sessions::{SessionManagerLayer, SessionStore};
#[cfg(feature = "ws")]
use tower_sessions_auth::live::{WatchEnd, WatchedSocket};
use tower_sessions_auth::{
    live::{LiveSessions, SessionWatch},
    registry::SessionRegistry,
    AuthKeys, AuthLayer,
};

use super::{registry_app::registry_routes, UserTable};

/// `registry_routes` plus:
/// - `GET /events`: `event: hello`, then nothing until the session ends
///   (`event: session-ended`);
/// - `GET /events/debug`: how a fresh watch and its SSE stream debug;
/// - with the `ws` feature, `GET /ws/echo`: a WebSocket that echoes until
///   its session ends;
/// - with the `ws` feature, `GET /ws/ticks`: a WebSocket that sends `tick`
///   every 20 ms, and never receives, until a send fails.
///
/// When a WebSocket handler is done, it records in `sockets` why the
/// session ended and how the socket debugs.
pub fn live_app<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
    keys: AuthKeys,
    registry: SessionRegistry,
    live: LiveSessions,
    sockets: SocketLog,
) -> Router {
    live_routes(users.clone())
        .layer(Extension(sockets))
        .layer(AuthLayer::new(users, keys).with_registry(registry.with_live_sessions(live)))
        .layer(SessionManagerLayer::new(store).with_secure(false))
}

/// The routes of [`live_app`], for a layer of the test's own making; the
/// WebSockets (feature `ws`) need an `Extension<SocketLog>`.
pub fn live_routes<T: UserTable>(users: T) -> Router {
    let routes = registry_routes(users)
        .route("/events", get(events))
        .route("/events/debug", get(debug));
    #[cfg(feature = "ws")]
    let routes = routes.route("/ws/{mode}", get(websocket));
    routes
}

async fn events(watch: SessionWatch) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let hello = stream::once(async { Ok(Event::default().event("hello").data("{}")) });
    Sse::new(watch.sse(hello.chain(stream::pending())))
}

async fn debug(watch: SessionWatch) -> String {
    let printed = format!("{watch:?}");
    let events = watch.sse(stream::empty::<Result<Event, Infallible>>());
    format!("{printed} / {events:?}")
}

/// `GET /ws/echo` and `GET /ws/ticks`.
#[cfg(feature = "ws")]
async fn websocket(
    Path(mode): Path<String>,
    upgrade: WebSocketUpgrade,
    watch: SessionWatch,
    Extension(sockets): Extension<SocketLog>,
) -> Response {
    upgrade.on_upgrade(move |socket| async move {
        let mut socket = watch.websocket(socket);
        if mode == "ticks" {
            while socket.send(Message::text("tick")).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            while let Some(Ok(message)) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        }
        sockets.record(&mut socket);
    })
}

/// What the WebSocket handlers left when they were done: `"{reason}
/// {debug}"`, the reason `none` when the session had not ended.
#[derive(Clone, Default)]
pub struct SocketLog(Arc<Mutex<Vec<String>>>);

impl SocketLog {
    #[cfg(feature = "ws")]
    fn record(&self, socket: &mut WatchedSocket) {
        let reason = socket.ended().map_or("none", WatchEnd::as_str);
        let line = format!("{reason} {socket:?}");
        self.0.lock().unwrap().push(line);
    }

    /// Waits up to `wait` for a handler to be done; what it recorded.
    pub async fn next(&self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(line) = self.0.lock().unwrap().pop() {
                return Some(line);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What [`Events::next`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Event(String, String),
    /// The server ended the stream.
    Closed,
    /// Nothing came in time.
    Silent,
}

/// An open `/events` stream, read event by event.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// Wraps an open response, and reads its `hello`.
    pub async fn open(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let mut events = Self {
            response,
            buffer: String::new(),
        };
        match events.next(Duration::from_secs(5)).await {
            Next::Event(name, _) => assert_eq!(name, "hello"),
            other => panic!("no hello: {other:?}"),
        }
        events
    }

    /// The next event, waiting up to `wait`.
    pub async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if block.lines().all(|line| line.starts_with(':')) {
                    continue;
                }
                return Next::Event(name, data);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None) | Err(_)) => return Next::Closed,
                Err(_) => return Next::Silent,
            }
        }
    }

    /// Waits up to `wait` for `session-ended`; returns its reason (`None`
    /// when nothing came), and checks that the stream closes right after.
    pub async fn ended(&mut self, wait: Duration) -> Option<String> {
        let (name, data) = match self.next(wait).await {
            Next::Event(name, data) => (name, data),
            Next::Silent => return None,
            Next::Closed => panic!("the stream closed without session-ended"),
        };
        assert_eq!(name, "session-ended", "{data}");
        let reason = serde_json::from_str::<serde_json::Value>(&data).unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(self.next(Duration::from_secs(2)).await, Next::Closed);
        Some(reason)
    }
}
