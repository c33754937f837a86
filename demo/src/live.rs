//! Live connections that end with their session: the event stream every
//! signed-in page listens to (`GET /api/events`), an echo WebSocket
//! (`GET /ws`), and the pages' script (`GET /static/live.js`).
//!
//! Both connections take tower-sessions-auth's `SessionWatch`: a password
//! change, "Sign out other devices", a revocation, a sign-out in another
//! tab or the account's deletion ends them within moments, on this process
//! or (through the session store's channel, see
//! [`Sessions::live_sessions`](crate::stores::Sessions::live_sessions)) on
//! another; the session that made a password change or signed the others
//! out keeps its own.

use std::convert::Infallible;

use axum::{
    extract::{
        ws::{rejection::WebSocketUpgradeRejection, Message, WebSocketUpgrade},
        State,
    },
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::{stream, StreamExt as _};
use serde_json::json;
use tower_sessions_auth::{live::SessionWatch, AuthRejection, AuthUser};

use super::{api, pages, users::User, AppState};

/// The script of the signed-in pages: it listens to `/api/events` and,
/// when the session ends, says so and goes to the sign-in page.
const SCRIPT: &str = include_str!("../static/live.js");

/// `GET /api/events`: Server-Sent Events for the signed-in user, `401` JSON
/// otherwise.
///
/// The first event, sent at once, is `hello` with `{"username": …}`; a
/// comment line follows whenever the stream was silent for
/// [`Config::keep_alive`](crate::Config::keep_alive). When the session
/// ends, the last event is `session-ended` with `{"reason": …}` (the
/// library's reason name, such as `credential_changed` or `revoked`), and
/// the stream closes. A browser's `EventSource` that reconnects then gets
/// `401`, which stops it.
pub(crate) async fn events(
    State(state): State<AppState>,
    user: Option<AuthUser<User>>,
    watch: Result<SessionWatch, AuthRejection>,
) -> Response {
    let (Some(AuthUser(user)), watch) = (user, watch) else {
        return api::not_signed_in();
    };
    let watch = match watch {
        Ok(watch) => watch,
        Err(AuthRejection::Unauthenticated) => return api::not_signed_in(),
        Err(rejection) => return rejection.into_response(),
    };
    let hello = Event::default()
        .event("hello")
        .data(json!({ "username": user.username }).to_string());
    // Nothing more to say until the session ends: the stream stays open
    // for the watch's last event.
    let events = stream::once(async move { Ok::<_, Infallible>(hello) }).chain(stream::pending());
    Sse::new(watch.sse(events))
        .keep_alive(KeepAlive::new().interval(state.keep_alive))
        .into_response()
}

/// `GET /ws`: a WebSocket that echoes the text messages of a signed-in
/// user, and is closed with code 1008 (policy violation) and the reason's
/// name when the session ends. `401` JSON when anonymous, whatever the
/// request; a signed-in request that is no WebSocket handshake gets axum's
/// refusal (`400`, `405` or `426`). A handshake from another origin never
/// gets here: the Origin check ([`guard::same_origin`](crate::guard::same_origin))
/// refuses it with `403`.
pub(crate) async fn echo(
    watch: Result<SessionWatch, AuthRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let watch = match watch {
        Ok(watch) => watch,
        Err(AuthRejection::Unauthenticated) => return api::not_signed_in(),
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade.on_upgrade(|socket| async move {
        let mut socket = watch.websocket(socket);
        // `None` once the client left or the session ended; axum answers
        // pings by itself.
        while let Some(Ok(message)) = socket.recv().await {
            let echo = match message {
                Message::Text(text) => Message::Text(text),
                Message::Close(_) => break,
                _ => continue,
            };
            if socket.send(echo).await.is_err() {
                break;
            }
        }
    })
}

/// `GET /static/live.js`.
pub(crate) async fn script() -> Response {
    pages::script(SCRIPT)
}
