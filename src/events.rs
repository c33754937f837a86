//! Events an application can act on: sign-ins, sign-outs, ended sessions,
//! re-hashed sessions and failures, as Django's `user_logged_in` /
//! `user_logged_out` signals and Better-Auth's hooks allow.
//!
//! The request path only puts the event into a bounded queue; one task
//! hands the events, in order, to the application's hook. A slow hook fills
//! the queue and further events are dropped (and counted in a log line), a
//! panicking one is logged: neither can slow or break a request.

use std::{
    any::Any,
    fmt,
    future::Future,
    net::SocketAddr,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::SystemTime,
};

use axum::{
    extract::ConnectInfo,
    http::{header, Extensions, HeaderMap, HeaderName},
};
use futures_util::FutureExt as _;
use tokio::sync::mpsc;

use crate::record::EndReason;

/// What happened. Every kind names the user when the crate knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthEventKind {
    /// [`AuthSession::login`](crate::AuthSession::login) signed a user in.
    SignedIn,
    /// [`AuthSession::reauthenticate`](crate::AuthSession::reauthenticate)
    /// renewed the proof of the signed-in user's credentials.
    Reauthenticated,
    /// [`AuthSession::logout`](crate::AuthSession::logout) signed a user out.
    SignedOut,
    /// The layer ended a session that no longer holds.
    SessionEnded(EndReason),
    /// The layer re-hashed, under the current secret, a session found
    /// under a fallback secret.
    Rehashed,
    /// The session store or the backend failed; the request was answered
    /// with a 5xx. `user_id` is set when the session's record was read.
    FailedClosed,
    /// A session was bound to its device's key
    /// ([device-bound sessions](crate#device-bound-sessions)).
    DeviceRegistered,
    /// A device-bound session's cookie came without a valid bound cookie,
    /// outside the refresh endpoint and without the browser saying it
    /// skipped a refresh: a copied session cookie, or a browser whose
    /// refresh failed. The request was anonymous.
    DeviceProofMissing,
    /// A device-bound session's refresh was signed by another key than the
    /// one it registered: the session was ended.
    DeviceKeyMismatch,
}

/// One event, as the hook receives it.
///
/// It carries the user id and the request details the application chose
/// with [`Events::capture_header`] and [`Events::capture_peer_addr`]; never
/// the session id, the auth hash or a secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthEvent<Id> {
    /// What happened.
    pub kind: AuthEventKind,
    /// The user concerned, when known.
    pub user_id: Option<Id>,
    /// What the application chose to record of the request.
    pub request: RequestInfo,
    /// When it happened.
    pub at: SystemTime,
}

/// The request details an application chose to receive with each event.
///
/// # Privacy
///
/// User agents and addresses are the user's data: `Debug` prints only which
/// headers are present and whether the address is known.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RequestInfo {
    /// The captured headers that the request carried.
    pub headers: HeaderMap,
    /// The peer address of the connection, when captured and served with
    /// axum's `into_make_service_with_connect_info::<SocketAddr>`.
    pub peer_addr: Option<SocketAddr>,
}

impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("peer_addr", &self.peer_addr.map(|_| "<redacted>"))
            .finish()
    }
}

/// The application's side of the events: an async function of the event.
///
/// Implemented for every `Fn(AuthEvent<Id>) -> impl Future<Output = ()>`.
pub trait EventHook<Id>: Send + Sync + 'static {
    /// Handles one event. Events arrive one at a time, in order.
    fn on_event(&self, event: AuthEvent<Id>) -> impl Future<Output = ()> + Send;
}

impl<Id, F, Fut> EventHook<Id> for F
where
    F: Fn(AuthEvent<Id>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    fn on_event(&self, event: AuthEvent<Id>) -> impl Future<Output = ()> + Send {
        self(event)
    }
}

/// A hook and what it receives; give it to
/// [`AuthLayer::with_events`](crate::AuthLayer::with_events).
///
/// ```
/// use axum::http::header;
/// use tower_sessions_auth::events::{AuthEvent, AuthEventKind, Events};
///
/// let events = Events::new(|event: AuthEvent<u64>| async move {
///     if event.kind == AuthEventKind::SignedIn {
///         let agent = event.request.headers.get(header::USER_AGENT);
///         // Send "a new sign-in to your account" mail to event.user_id ...
///         # let _ = agent;
///     }
/// })
/// .capture_header(header::USER_AGENT)
/// .capture_peer_addr();
/// ```
///
/// The hook runs on a Tokio task of its own, started with the first event.
#[must_use]
pub struct Events<H> {
    hook: H,
    capture: Capture,
    capacity: usize,
}

/// How many events may wait for the hook before new ones are dropped.
const DEFAULT_CAPACITY: usize = 1024;

/// Headers that carry credentials: the session cookie, tokens.
const REFUSED_HEADERS: [HeaderName; 4] = [
    header::COOKIE,
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::SET_COOKIE,
];

impl<H> Events<H> {
    /// Events for `hook`, with no request details and room for 1024 events
    /// waiting.
    pub fn new(hook: H) -> Self {
        Self {
            hook,
            capture: Capture::default(),
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// Also records this request header (the user agent, say) in
    /// [`RequestInfo::headers`].
    ///
    /// # Panics
    ///
    /// For `Cookie`, `Set-Cookie`, `Authorization` and `Proxy-Authorization`:
    /// they carry the session id or other credentials, which events never
    /// hold.
    pub fn capture_header(mut self, name: HeaderName) -> Self {
        assert!(
            !REFUSED_HEADERS.contains(&name),
            "Events::capture_header: `{name}` carries credentials (the session id or a token) \
             and is never given to events"
        );
        if !self.capture.headers.contains(&name) {
            self.capture.headers.push(name);
        }
        self
    }

    /// Also records the connection's peer address in
    /// [`RequestInfo::peer_addr`] (from axum's `ConnectInfo<SocketAddr>`).
    /// Behind a proxy this is the proxy's address.
    pub fn capture_peer_addr(mut self) -> Self {
        self.capture.peer_addr = true;
        self
    }

    /// Sets how many events may wait for the hook (default 1024). When the
    /// queue is full, new events are dropped and a warning counts them.
    ///
    /// # Panics
    ///
    /// When `capacity` is zero.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "Events::with_capacity: the capacity must be at least 1"
        );
        self.capacity = capacity;
        self
    }

    /// The queue and its (not yet started) delivery task, for users with ids
    /// of type `Id`.
    pub(crate) fn into_sink<Id>(self) -> EventSink
    where
        Id: Send + Sync + 'static,
        H: EventHook<Id>,
    {
        let (sender, receiver) = mpsc::channel(self.capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let delivery = deliver(receiver, self.hook, dropped.clone());
        EventSink {
            queue: Arc::new(Queue {
                sender,
                dropped,
                delivery: Mutex::new(Some(Box::pin(delivery))),
            }),
            capture: Arc::new(self.capture),
        }
    }
}

impl<H> fmt::Debug for Events<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("capture", &self.capture)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Which request details go into events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Capture {
    headers: Vec<HeaderName>,
    peer_addr: bool,
}

impl Capture {
    /// The chosen details of a request (or of its parts).
    pub(crate) fn request_info(&self, headers: &HeaderMap, extensions: &Extensions) -> RequestInfo {
        let mut info = RequestInfo::default();
        for name in &self.headers {
            for value in headers.get_all(name) {
                info.headers.append(name.clone(), value.clone());
            }
        }
        if self.peer_addr {
            info.peer_addr = extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr);
        }
        info
    }
}

type Delivery = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The events' way out of the request path, as the configuration holds it:
/// the queue's id type is erased, so that the configuration is one type for
/// every user type.
#[derive(Clone)]
pub(crate) struct EventSink {
    queue: Arc<dyn Any + Send + Sync>,
    capture: Arc<Capture>,
}

struct Queue<Id> {
    sender: mpsc::Sender<AuthEvent<Id>>,
    dropped: Arc<AtomicU64>,
    /// The delivery task, until the first event starts it.
    delivery: Mutex<Option<Delivery>>,
}

impl EventSink {
    /// What the application chose to record of each request.
    pub(crate) fn capture(&self) -> &Capture {
        &self.capture
    }

    /// Queues an event without waiting.
    pub(crate) fn emit<Id: Send + 'static>(
        &self,
        kind: AuthEventKind,
        user_id: Option<Id>,
        request: RequestInfo,
    ) {
        let Some(queue) = self.queue.downcast_ref::<Queue<Id>>() else {
            // The layer builds the sink for its own user type, and only
            // extractors of that type reach here.
            tracing::error!("event for a user type the layer was not built with; dropped");
            return;
        };
        queue.start_delivery();
        let event = AuthEvent {
            kind,
            user_id,
            request,
            at: SystemTime::now(),
        };
        match queue.sender.try_send(event) {
            Ok(()) => {}
            // Counted, and reported by the delivery task once it catches up.
            Err(mpsc::error::TrySendError::Full(_)) => {
                queue.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The delivery task is gone with the runtime it ran on: nobody
            // would report a count, so say it here.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!("event dropped: the event hook's task ended with its runtime");
            }
        }
    }
}

impl<Id> Queue<Id> {
    fn start_delivery(&self) {
        let mut delivery = self.delivery.lock().unwrap_or_else(PoisonError::into_inner);
        if delivery.is_none() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                if let Some(task) = delivery.take() {
                    runtime.spawn(task);
                }
            }
            Err(_) => tracing::warn!("no Tokio runtime to run the event hook on; events wait"),
        }
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSink")
            .field("capture", &self.capture)
            .finish_non_exhaustive()
    }
}

/// Hands the queued events to the hook, one at a time, until every sender
/// is gone. A panic in the hook is caught (and logged) instead of ending
/// the delivery.
async fn deliver<Id, H>(
    mut receiver: mpsc::Receiver<AuthEvent<Id>>,
    hook: H,
    dropped: Arc<AtomicU64>,
) where
    Id: Send + 'static,
    H: EventHook<Id>,
{
    while let Some(event) = receiver.recv().await {
        // The call inside the future: a hook may panic before its future.
        let call = AssertUnwindSafe(async { hook.on_event(event).await });
        if call.catch_unwind().await.is_err() {
            tracing::error!("the event hook panicked; delivery goes on with the next event");
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                lost,
                "event queue full: events were dropped (is the hook slow?)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;

    use super::*;

    type Seen = Arc<Mutex<Vec<AuthEvent<u8>>>>;

    #[test]
    fn debug_names_the_settings_and_never_a_header_value_or_an_address() {
        let (_, events) = recording();
        let events = events
            .capture_header(header::USER_AGENT)
            .capture_peer_addr()
            .with_capacity(7);
        let printed = format!("{events:?}");
        assert!(printed.starts_with("Events {"), "{printed}");
        assert!(
            printed.contains("user-agent") && printed.contains("capacity: 7"),
            "{printed}"
        );
        let sink = events.into_sink::<u8>();
        let printed = format!("{sink:?}");
        assert!(
            printed.starts_with("EventSink {") && printed.contains("user-agent"),
            "{printed}"
        );

        let mut headers = HeaderMap::new();
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static("SecretBrowser/1.0"),
        );
        let info = RequestInfo {
            headers,
            peer_addr: Some(SocketAddr::from(([192, 0, 2, 7], 4242))),
        };
        let printed = format!("{info:?}");
        assert!(
            printed.contains("user-agent") && printed.contains("<redacted>"),
            "{printed}"
        );
        assert!(
            !printed.contains("SecretBrowser") && !printed.contains("192.0.2.7"),
            "{printed}"
        );
    }

    fn recording() -> (Seen, Events<impl EventHook<u8>>) {
        let seen = Seen::default();
        let hook = {
            let seen = seen.clone();
            move |event| {
                seen.lock().unwrap().push(event);
                async {}
            }
        };
        (seen, Events::new(hook))
    }

    async fn wait_for(seen: &Seen, count: usize) {
        for _ in 0..200 {
            if seen.lock().unwrap().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "expected {count} events, got {}",
            seen.lock().unwrap().len()
        );
    }

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::USER_AGENT, HeaderValue::from_static("test agent"));
        headers.insert(header::COOKIE, HeaderValue::from_static("id=secret"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        headers
    }

    #[tokio::test]
    async fn delivers_in_order_with_the_chosen_details_only() {
        let (seen, events) = recording();
        let sink = events.capture_header(header::USER_AGENT).into_sink::<u8>();
        let mut extensions = Extensions::new();
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        extensions.insert(ConnectInfo(peer));
        let info = sink.capture().request_info(&headers(), &extensions);
        sink.emit(AuthEventKind::SignedIn, Some(1_u8), info.clone());
        sink.emit(AuthEventKind::SignedOut, Some(2_u8), info);
        wait_for(&seen, 2).await;

        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].kind, AuthEventKind::SignedIn);
        assert_eq!(seen[1].user_id, Some(2));
        let request = &seen[0].request;
        assert_eq!(request.headers.len(), 1);
        assert_eq!(request.headers[header::USER_AGENT], "test agent");
        assert_eq!(request.peer_addr, None, "the address was not chosen");
    }

    #[tokio::test]
    async fn captures_the_peer_address_when_asked() {
        let sink = Events::new(|_: AuthEvent<u8>| async {})
            .capture_peer_addr()
            .into_sink::<u8>();
        let mut extensions = Extensions::new();
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        extensions.insert(ConnectInfo(peer));
        let info = sink.capture().request_info(&headers(), &extensions);
        assert_eq!(info.peer_addr, Some(peer));
        assert!(info.headers.is_empty());
        let printed = format!("{info:?}");
        assert!(!printed.contains("192.0.2.1"), "{printed}");
    }

    #[test]
    #[should_panic(expected = "carries credentials")]
    fn refuses_to_capture_the_cookie() {
        let _ = Events::new(|_: AuthEvent<u8>| async {}).capture_header(header::COOKIE);
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn refuses_an_empty_queue() {
        let _ = Events::new(|_: AuthEvent<u8>| async {}).with_capacity(0);
    }

    #[tokio::test]
    async fn a_panicking_hook_does_not_stop_delivery() {
        let seen = Seen::default();
        let hook = {
            let seen = seen.clone();
            move |event: AuthEvent<u8>| {
                assert_ne!(event.user_id, Some(0), "the hook fails on user 0");
                seen.lock().unwrap().push(event);
                async {}
            }
        };
        let sink = Events::new(hook).into_sink::<u8>();
        sink.emit(AuthEventKind::SignedIn, Some(0_u8), RequestInfo::default());
        sink.emit(AuthEventKind::SignedIn, Some(1_u8), RequestInfo::default());
        wait_for(&seen, 1).await;
        assert_eq!(seen.lock().unwrap()[0].user_id, Some(1));
    }

    #[tokio::test]
    async fn a_slow_hook_drops_events_beyond_the_queue_instead_of_waiting() {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
        let seen = Seen::default();
        let hook = {
            let seen = seen.clone();
            move |event: AuthEvent<u8>| {
                let released = released.clone();
                let seen = seen.clone();
                async move {
                    if let Some(gate) = released.lock().await.take() {
                        let _ = gate.await;
                    }
                    seen.lock().unwrap().push(event);
                }
            }
        };
        // The delivery task runs on this test's thread: its warnings land here.
        let logs = Logs::default();
        let _logging = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .finish(),
        );
        let sink = Events::new(hook).with_capacity(2).into_sink::<u8>();
        // The first event is taken by the hook, which blocks; two wait in
        // the queue; the rest are dropped at once.
        for id in 0..10_u8 {
            sink.emit(AuthEventKind::SignedIn, Some(id), RequestInfo::default());
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        wait_for(&seen, 3).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ids: Vec<_> = seen.lock().unwrap().iter().map(|e| e.user_id).collect();
        assert_eq!(ids, [Some(0), Some(1), Some(2)], "the queue is bounded");
        // One warning, with the count, after the slow event; none after the
        // events that lost nothing.
        let logged = logs.text();
        let warnings: Vec<_> = logged
            .lines()
            .filter(|l| l.contains("queue full"))
            .collect();
        assert_eq!(warnings.len(), 1, "{logged}");
        assert!(warnings[0].contains("lost=7"), "{logged}");
    }

    /// Log lines written by a test's subscriber.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl Logs {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl std::io::Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn events_after_the_delivery_runtime_ended_are_dropped_without_a_panic() {
        let sink = Events::new(|_: AuthEvent<u8>| async {}).into_sink::<u8>();
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        first.block_on(async {
            sink.emit(AuthEventKind::SignedIn, Some(1_u8), RequestInfo::default());
            tokio::task::yield_now().await;
        });
        drop(first);
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        second.block_on(async {
            sink.emit(AuthEventKind::SignedOut, Some(1_u8), RequestInfo::default());
        });
    }

    #[test]
    fn without_a_runtime_emitting_neither_blocks_nor_panics() {
        let sink = Events::new(|_: AuthEvent<u8>| async {}).into_sink::<u8>();
        sink.emit(AuthEventKind::SignedOut, Some(1_u8), RequestInfo::default());
    }
}
