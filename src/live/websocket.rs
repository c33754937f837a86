//! An axum WebSocket that is closed when its session ends.

use std::fmt;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};

use super::watch::{SessionWatch, WatchEnd};

/// An axum [`WebSocket`] that is closed with code 1008 (policy violation)
/// and the reason's name as soon as its session ends. Made by
/// [`SessionWatch::websocket`].
///
/// ```
/// use axum::{extract::ws::WebSocketUpgrade, response::Response};
/// use tower_sessions_auth::live::SessionWatch;
///
/// async fn echo(upgrade: WebSocketUpgrade, watch: SessionWatch) -> Response {
///     upgrade.on_upgrade(|socket| async move {
///         let mut socket = watch.websocket(socket);
///         // `None` once the client left or the session ended (the socket
///         // is closed with 1008 then).
///         while let Some(Ok(message)) = socket.recv().await {
///             if socket.send(message).await.is_err() {
///                 break;
///             }
///         }
///     })
/// }
/// ```
pub struct WatchedSocket {
    socket: WebSocket,
    watch: SessionWatch,
    closed: bool,
}

impl SessionWatch {
    /// Wraps an upgraded WebSocket so that it closes with the session (see
    /// [`WatchedSocket`]).
    pub fn websocket(self, socket: WebSocket) -> WatchedSocket {
        WatchedSocket {
            socket,
            watch: self,
            closed: false,
        }
    }
}

impl WatchedSocket {
    /// Receives the next message; `None` when the client closed the
    /// connection or the session ended (then the socket was closed with
    /// 1008 and [`ended`](Self::ended) says why).
    pub async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        if self.closed {
            return None;
        }
        tokio::select! {
            biased;
            end = &mut self.watch => {
                self.close(end).await;
                None
            }
            message = self.socket.recv() => message,
        }
    }

    /// Sends a message, unless the session has ended: then the socket is
    /// closed with 1008 instead and an error is returned.
    ///
    /// # Errors
    ///
    /// When the session has ended or the connection failed.
    pub async fn send(&mut self, message: Message) -> Result<(), axum::Error> {
        if let Some(end) = self.watch.ended() {
            self.close(end).await;
        }
        if self.closed {
            return Err(axum::Error::new(SessionOver));
        }
        self.socket.send(message).await
    }

    /// Why the session ended, if it has.
    pub fn ended(&mut self) -> Option<WatchEnd> {
        self.watch.ended()
    }

    /// Waits until the session ends, then closes the socket with 1008: for
    /// handlers that only send, to `select!` on beside their work.
    pub async fn closed(&mut self) -> WatchEnd {
        let end = (&mut self.watch).await;
        self.close(end).await;
        end
    }

    async fn close(&mut self, end: WatchEnd) {
        if self.closed {
            return;
        }
        self.closed = true;
        let frame = CloseFrame {
            code: close_code::POLICY,
            reason: end.as_str().into(),
        };
        // The client may be gone already; the connection ends either way.
        let _ = self.socket.send(Message::Close(Some(frame))).await;
    }
}

impl fmt::Debug for WatchedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedSocket")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// The error of a send after the session ended.
#[derive(Debug, thiserror::Error)]
#[error("the session ended; the WebSocket is closed")]
struct SessionOver;
