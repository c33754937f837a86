//! Server-Sent Events that end with the session.

use std::{
    fmt,
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use axum::response::sse::Event;
use futures_util::{FutureExt as _, Stream, StreamExt as _};

use super::watch::{SessionWatch, WatchEnd};

/// The name of the last event of a stream whose session ended.
const ENDED_EVENT: &str = "session-ended";

/// The events of a handler, until the session ends: then one last
/// `event: session-ended` with `data: {"reason": "…"}`, and the end of the
/// stream. Made by [`SessionWatch::sse`].
#[must_use = "a stream does nothing unless polled"]
pub struct WatchedEvents<S> {
    events: Pin<Box<S>>,
    watch: Option<SessionWatch>,
}

impl SessionWatch {
    /// Wraps the event stream of an SSE handler so that it ends with the
    /// session, telling the client why (see [`WatchedEvents`]). Browsers'
    /// `EventSource` reconnects after a stream ends; the reconnection is
    /// answered `401`, which stops it.
    pub fn sse<S, E>(self, events: S) -> WatchedEvents<S>
    where
        S: Stream<Item = Result<Event, E>>,
    {
        WatchedEvents {
            events: Box::pin(events),
            watch: Some(self),
        }
    }
}

/// The last event: why the session ended, as JSON.
fn ended_event(end: WatchEnd) -> Event {
    Event::default()
        .event(ENDED_EVENT)
        .data(serde_json::json!({ "reason": end.as_str() }).to_string())
}

impl<S, E> Stream for WatchedEvents<S>
where
    S: Stream<Item = Result<Event, E>>,
{
    type Item = Result<Event, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        // The session ending wins over events that are ready at the same
        // time: nothing more reaches a client whose session is over.
        let Some(watch) = self.watch.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(end) = watch.poll_unpin(cx) {
            self.watch = None;
            return Poll::Ready(Some(Ok(ended_event(end))));
        }
        let next = self.events.poll_next_unpin(cx);
        if let Poll::Ready(None) = next {
            self.watch = None;
        }
        next
    }
}

impl<S> fmt::Debug for WatchedEvents<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedEvents")
            .field("watching", &self.watch.is_some())
            .finish_non_exhaustive()
    }
}
