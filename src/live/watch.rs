//! The handler's side: a future that completes when the session ends.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use tokio::sync::oneshot;

use super::hub::Hub;
use crate::record::{Claim, EndReason};

/// Why a [`SessionWatch`] completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WatchEnd {
    /// The session no longer holds, for this reason.
    Session(EndReason),
    /// The session could not be checked for the configured number of times
    /// in a row (the backend or the registry kept failing): it is no longer
    /// trusted. See [`LiveSessions::with_max_failures`](crate::live::LiveSessions::with_max_failures).
    ServerError,
}

impl WatchEnd {
    /// A short, stable name: the [`EndReason`] name, or `server_error`; what
    /// the SSE and WebSocket helpers send to the client.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session(reason) => reason.as_str(),
            Self::ServerError => "server_error",
        }
    }
}

impl fmt::Display for WatchEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed-in session as a watch starts from: its user (the id as JSON)
/// and what the session claimed on the request that opened the watch.
#[derive(Clone)]
pub(crate) struct Watched {
    pub(crate) user: String,
    pub(crate) claim: Claim,
}

/// Completes when this request's session stops holding: its user's
/// password or session epoch changed (through any process), it was logged
/// out (from another tab, too), it was revoked, its registry entry expired,
/// the session passed its absolute lifetime or idle timeout (see
/// [`Lifetimes`](crate::times::Lifetimes); noticed by the next check, within the
/// re-check period), or the user is gone or disabled. It stays pending when this very session
/// made the change through
/// [`update_session_auth_hash`](crate::AuthSession::update_session_auth_hash)
/// or [`revoke_other_sessions`](crate::AuthSession::revoke_other_sessions),
/// as the session itself does.
///
/// An extractor: anonymous requests are refused with `401`; it needs a
/// layer whose registry has live sessions
/// ([`SessionRegistry::with_live_sessions`](crate::registry::SessionRegistry::with_live_sessions)).
/// Await it, `select!` on it beside the connection's work, or let
/// [`sse`](Self::sse) or [`WatchedSocket`](crate::live::WatchedSocket) do that.
/// Dropping it stops watching; nothing stays behind.
///
/// ```
/// use tower_sessions_auth::live::SessionWatch;
///
/// async fn long_job(watch: SessionWatch) -> String {
///     // Whatever the connection does; it stops when the session ends.
///     let work = std::future::pending::<()>();
///     tokio::select! {
///         end = watch => format!("stopped: {end}"),
///         () = work => "done".to_owned(),
///     }
/// }
/// ```
pub struct SessionWatch {
    pub(super) hub: Arc<Hub>,
    pub(super) user: String,
    pub(super) id: u64,
    pub(super) end: oneshot::Receiver<WatchEnd>,
    pub(super) done: Option<WatchEnd>,
}

impl SessionWatch {
    /// Returns why the watch ended, if it has, without waiting.
    pub fn ended(&mut self) -> Option<WatchEnd> {
        if self.done.is_none() {
            self.done = match self.end.try_recv() {
                Ok(end) => Some(end),
                Err(oneshot::error::TryRecvError::Empty) => None,
                Err(oneshot::error::TryRecvError::Closed) => Some(WatchEnd::ServerError),
            };
        }
        self.done
    }
}

impl Future for SessionWatch {
    type Output = WatchEnd;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<WatchEnd> {
        if let Some(end) = self.done {
            return Poll::Ready(end);
        }
        // The sender goes away without a word only if the process drops its
        // `LiveSessions` while connections are open: nobody watches any
        // more, so do not trust the session.
        let end = match Pin::new(&mut self.end).poll(cx) {
            Poll::Ready(Ok(end)) => end,
            Poll::Ready(Err(_)) => WatchEnd::ServerError,
            Poll::Pending => return Poll::Pending,
        };
        self.done = Some(end);
        Poll::Ready(end)
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        self.hub.unregister(&self.user, self.id);
    }
}

impl fmt::Debug for SessionWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionWatch")
            .field("ended", &self.done)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_displays_as_its_name() {
        assert_eq!(WatchEnd::ServerError.to_string(), "server_error");
        assert_eq!(
            WatchEnd::Session(EndReason::CredentialChanged).to_string(),
            "credential_changed"
        );
    }
}
