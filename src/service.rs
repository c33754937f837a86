//! The per-request path: session → record → backend → verify → extensions.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use axum::{extract::Request, response::Response};
use tower::Service;
use tower_sessions::{cookie::time::OffsetDateTime, session, Expiry, Session};
use tracing::{field, Instrument as _, Span};

use crate::{
    backend::{SessionUser, UserBackend},
    config::Context,
    error::{failure_response, AuthRejection, SignError},
    events::AuthEventKind,
    hash::Verification,
    identity::{Identity, SessionEnded},
    live::{WatchTicket, Watched},
    record::{
        end_session, keep_cookie_of_missing_record, AuthRecord, EndReason, RecordTimes, SESSION_KEY,
    },
    registry::{user_key, RegistryError, SessionRegistry},
    times::{Lifetimes, TimeConfig},
};

/// The service made by [`AuthLayer`](crate::AuthLayer).
#[derive(Clone)]
pub struct AuthService<S, B> {
    inner: S,
    backend: B,
    context: Context,
}

impl<S, B> AuthService<S, B> {
    pub(crate) fn new(inner: S, backend: B, context: Context) -> Self {
        Self {
            inner,
            backend,
            context,
        }
    }

    /// Returns a reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Returns a mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, B> fmt::Debug for AuthService<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// The response future of [`AuthService`].
pub struct ResponseFuture<E>(Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>);

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<S, B> Service<Request> for AuthService<S, B>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: UserBackend,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // Only the service that was polled ready may be called; keep a fresh
        // clone in its place (tower's "Be careful when cloning inner services").
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let backend = self.backend.clone();
        let context = self.context.clone();
        // The outcome, never an id or a secret: what a log line of this
        // request (here or in the handler) is told about its session.
        let span = tracing::info_span!("auth", outcome = field::Empty, reason = field::Empty);

        ResponseFuture(Box::pin(
            async move {
                let Some(session) = req.extensions().get::<Session>().cloned() else {
                    return Ok(axum::response::IntoResponse::into_response(
                        AuthRejection::MissingSessionLayer,
                    ));
                };
                // Whether the request carried a session id: reading the
                // session drops an id that has no record.
                let presented = session.id().is_some();
                let outcome = resolve(&backend, &context, &session).await;
                report(&context, &req, &outcome);
                let mut watched = None;
                match outcome {
                    Ok(Outcome::Authenticated { user, watch, .. }) => {
                        req.extensions_mut().insert(Identity::Authenticated(user));
                        watched = watch;
                    }
                    Ok(Outcome::Anonymous) => {
                        req.extensions_mut().insert(Identity::<B::User>::Anonymous);
                    }
                    Ok(Outcome::Ended { reason, .. }) => {
                        req.extensions_mut().insert(Identity::<B::User>::Anonymous);
                        req.extensions_mut().insert(SessionEnded::new(reason));
                    }
                    Err(_) => return Ok(failure_response(context.failure_status)),
                }
                if let Some(live) = &context.live {
                    req.extensions_mut().insert(WatchTicket {
                        live: live.clone(),
                        session: watched,
                    });
                }
                // A pointer for after the handler; a copy of the settings
                // would allocate on every request.
                req.extensions_mut().insert(context.clone());
                let response = inner.call(req).await?;
                if presented {
                    keep_cookie_of_missing_record(&session).await;
                }
                set_cookie_lifetime::<IdOf<B>>(&context.times, &session).await;
                Ok(response)
            }
            .instrument(span),
        ))
    }
}

/// What the layer decided about a request's session.
enum Outcome<U: SessionUser> {
    /// Signed in; `resigned` when the hash was upgraded to the current
    /// secret on this request; with what a live-session watch needs, when
    /// the layer has live sessions.
    Authenticated {
        user: U,
        resigned: bool,
        watch: Option<Watched>,
    },
    /// No user in the session.
    Anonymous,
    /// The session held a user and no longer holds: it was ended.
    Ended {
        reason: EndReason,
        user_id: Option<U::Id>,
    },
}

/// A failure that must not decide who the request is, with the user it
/// concerned when the record was read.
struct Failed<Id, E> {
    failure: Failure<E>,
    user_id: Option<Id>,
}

impl<Id, E> Failed<Id, E> {
    fn new(failure: Failure<E>, user_id: Id) -> Self {
        Self {
            failure,
            user_id: Some(user_id),
        }
    }
}

impl<Id, E> From<session::Error> for Failed<Id, E> {
    fn from(error: session::Error) -> Self {
        Self {
            failure: Failure::Store(error),
            user_id: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure<E> {
    #[error("session store failed")]
    Store(#[source] session::Error),
    #[error("user backend failed")]
    Backend(#[source] E),
    #[error("session registry failed")]
    Registry(#[source] RegistryError),
    /// Re-signing a session that verified under a fallback secret failed.
    /// Verifying proved the user signable, so this is a bug if it happens.
    #[error("re-signing the session failed")]
    Sign(#[source] SignError),
}

type IdOf<B> = <<B as UserBackend>::User as SessionUser>::Id;
type Resolved<B> =
    Result<Outcome<<B as UserBackend>::User>, Failed<IdOf<B>, <B as UserBackend>::Error>>;

/// Decides who the request is, ending the session when it no longer holds.
async fn resolve<B: UserBackend>(backend: &B, context: &Context, session: &Session) -> Resolved<B> {
    let record = match session.get::<AuthRecord<IdOf<B>>>(SESSION_KEY).await {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(Outcome::Anonymous),
        Err(session::Error::SerdeJson(_)) => {
            return end(context, session, EndReason::Malformed, None).await
        }
        Err(err) => return Err(err.into()),
    };
    // Before the backend: an expired session costs no user lookup.
    let now = context.times.clock.unix();
    let lifetimes = context.times.lifetimes(record.times.remembered);
    if expired(&record.times, lifetimes, now) {
        return end(context, session, EndReason::Expired, Some(record)).await;
    }
    let user = match backend.get_user(&record.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return end(context, session, EndReason::UserGone, Some(record)).await,
        Err(error) => return Err(Failed::new(Failure::Backend(error), record.user_id)),
    };
    let verification = context.keys.verify(&user, &record.auth_hash);
    if verification == Verification::Mismatch {
        let reason = if record.epoch == user.session_epoch() {
            EndReason::CredentialChanged
        } else {
            EndReason::EpochChanged
        };
        return end(context, session, reason, Some(record)).await;
    }
    if let Some(registry) = &context.registry {
        match entry_lives(registry, &record).await {
            Ok(true) => {}
            Ok(false) => return end(context, session, EndReason::Revoked, Some(record)).await,
            Err(error) => return Err(Failed::new(Failure::Registry(error), record.user_id)),
        }
    }
    let resigned = verification == Verification::Fallback;
    let record = if resigned {
        match resign(context, session, &user, record).await {
            Ok(record) => record,
            Err((failure, user_id)) => return Err(Failed::new(failure, user_id)),
        }
    } else {
        record
    };
    let record = match record_activity(&context.times, session, record, now).await {
        Ok(record) => record,
        Err((error, user_id)) => return Err(Failed::new(Failure::Store(error), user_id)),
    };
    let watch = match &context.live {
        Some(_) => match watched(&record, lifetimes) {
            Ok(watch) => watch,
            Err(error) => return Err(Failed::new(Failure::Registry(error), record.user_id)),
        },
        None => None,
    };
    Ok(Outcome::Authenticated {
        user,
        resigned,
        watch,
    })
}

/// Whether the session passed its absolute lifetime or its idle timeout
/// at `now`. A session lasts `absolute` seconds: at `signed_in + absolute`
/// it has ended.
fn expired(times: &RecordTimes, lifetimes: Lifetimes, now: u64) -> bool {
    now >= times.signed_in.saturating_add(lifetimes.absolute_secs())
        || now >= times.active.saturating_add(lifetimes.idle_secs())
}

/// Records this request as the session's activity when the recorded one
/// is at least an activity interval old: the only store write the idle
/// timeout costs, once per interval at most.
///
/// The recorded activity lags the last request by less than one interval,
/// so an idle session ends up to one interval early, never late.
async fn record_activity<Id: serde::Serialize + Clone>(
    times: &TimeConfig,
    session: &Session,
    mut record: AuthRecord<Id>,
    now: u64,
) -> Result<AuthRecord<Id>, (session::Error, Id)> {
    let interval = times.activity_interval(times.lifetimes(record.times.remembered));
    if now.saturating_sub(record.times.active) < interval {
        return Ok(record);
    }
    record.times.active = now;
    match session.insert(SESSION_KEY, &record).await {
        Ok(()) => Ok(record),
        Err(error) => Err((error, record.user_id)),
    }
}

/// The cookie's lifetime: until the absolute deadline for a remembered
/// session (tower-sessions sends `Max-Age` and gives the store record the
/// same expiry), the browser session otherwise (no `Max-Age`, no
/// `Expires`). Either way the cookie never outlives the server-side
/// session by a whole second.
///
/// The expiry is the last instant of the deadline's second: the record
/// keeps whole seconds (`signed_in` is the sign-in's second, rounded
/// down), and tower-sessions writes `Max-Age` as the whole seconds left,
/// rounded down, so the deadline itself would give a sign-in's cookie a
/// `Max-Age` one short of the absolute lifetime.
fn cookie_expiry(times: &RecordTimes, lifetimes: Lifetimes) -> Expiry {
    if !times.remembered {
        return Expiry::OnSessionEnd;
    }
    let deadline = times.signed_in.saturating_add(lifetimes.absolute_secs());
    i64::try_from(deadline)
        .ok()
        .and_then(|deadline| OffsetDateTime::from_unix_timestamp(deadline).ok())
        .and_then(|deadline| {
            deadline.checked_add(tower_sessions::cookie::time::Duration::nanoseconds(
                999_999_999,
            ))
        })
        .map_or(Expiry::OnSessionEnd, Expiry::AtDateTime)
}

/// Gives a session that tower-sessions is about to save the cookie
/// lifetime of its tier (see [`cookie_expiry`]); call it once the handler
/// has run, so that a sign-in or sign-out of the handler counts.
///
/// Only a modified session: tower-sessions sets a cookie for no other
/// (but under `with_always_save(true)`, whose unmodified requests keep the
/// session layer's expiry), and `set_expiry` marks the session modified,
/// which would make every request a store write. So the decode this costs
/// happens on requests that write the store anyway.
async fn set_cookie_lifetime<Id: serde::de::DeserializeOwned>(
    times: &TimeConfig,
    session: &Session,
) {
    if !session.is_modified() {
        return;
    }
    if let Ok(Some(record)) = session.get::<AuthRecord<Id>>(SESSION_KEY).await {
        let lifetimes = times.lifetimes(record.times.remembered);
        session.set_expiry(Some(cookie_expiry(&record.times, lifetimes)));
    }
}

/// What a [`SessionWatch`](crate::SessionWatch) of this session needs.
fn watched<Id: serde::Serialize>(
    record: &AuthRecord<Id>,
    lifetimes: Lifetimes,
) -> Result<Option<Watched>, RegistryError> {
    let Some(handle) = &record.handle else {
        return Ok(None);
    };
    Ok(Some(Watched {
        user: user_key(&record.user_id)?,
        handle: handle.clone(),
        hash: record.auth_hash.clone(),
        epoch: record.epoch,
        deadline: record
            .times
            .signed_in
            .saturating_add(lifetimes.absolute_secs()),
        idle: lifetimes.idle_secs(),
    }))
}

/// Whether the registry still holds a session that verified.
///
/// A record without a handle was signed in before the registry was added:
/// it ends too, once. Registering it here instead would let it escape a
/// revoke-all made before its next request, and parallel requests of one
/// browser would each register it.
async fn entry_lives<Id: serde::Serialize>(
    registry: &SessionRegistry,
    record: &AuthRecord<Id>,
) -> Result<bool, RegistryError> {
    match &record.handle {
        Some(handle) => registry.touch(&user_key(&record.user_id)?, handle).await,
        None => Ok(false),
    }
}

/// Writes the record again under the current secret: the lazy upgrade of
/// a fallback-signed session. Returns the upgraded record.
///
/// In place, under the same id, where Django cycles the key: only the
/// secret that signs the session changed, not who it is nor what it may do,
/// so a new id protects nothing. It would delete the record under the old
/// id, and the browser's other requests already under way with that id
/// would be answered as anonymous, their responses removing the cookie.
/// Parallel requests each write the same record.
async fn resign<U: SessionUser, E>(
    context: &Context,
    session: &Session,
    user: &U,
    record: AuthRecord<U::Id>,
) -> Result<AuthRecord<U::Id>, (Failure<E>, U::Id)> {
    let auth_hash = match context.keys.sign(user) {
        Ok(auth_hash) => auth_hash,
        Err(error) => return Err((Failure::Sign(error), record.user_id)),
    };
    // The epoch stays: it is the user's, which the fallback hash covered.
    let upgraded = AuthRecord {
        auth_hash,
        ..record
    };
    if let Err(error) = session.insert(SESSION_KEY, &upgraded).await {
        return Err((Failure::Store(error), upgraded.user_id));
    }
    tracing::info!(session = %fingerprint(context, session), "session re-signed");
    Ok(upgraded)
}

/// Ends the session (its record is deleted, the cookie removed, and its
/// registry entry removed); the request goes on as anonymous.
async fn end<U: SessionUser, E>(
    context: &Context,
    session: &Session,
    reason: EndReason,
    record: Option<AuthRecord<U::Id>>,
) -> Result<Outcome<U>, Failed<U::Id, E>> {
    let ended = fingerprint(context, session);
    let user_id = record.as_ref().map(|record| record.user_id.clone());
    let failed = |failure| Failed {
        failure,
        user_id: user_id.clone(),
    };
    if let (Some(registry), Some(record)) = (&context.registry, &record) {
        if let Some(handle) = &record.handle {
            let removed = async {
                let user = user_key(&record.user_id)?;
                registry.store().remove(&user, handle).await
            };
            removed
                .await
                .map_err(|error| failed(Failure::Registry(error)))?;
        }
    }
    end_session(session)
        .await
        .map_err(|error| failed(Failure::Store(error)))?;
    tracing::warn!(session = %ended, %reason, "session ended");
    // The session's open connections may not have heard of what ended it
    // (a password changed in the database directly).
    if let (Some(live), Some(user_id)) = (&context.live, &user_id) {
        if let Ok(user) = user_key(user_id) {
            live.sessions.changed(user, None);
        }
    }
    Ok(Outcome::Ended { reason, user_id })
}

/// Records the outcome on the request's span, logs a failure and queues
/// the event, if the application listens.
fn report<U: SessionUser, E: std::error::Error + 'static>(
    context: &Context,
    req: &Request,
    outcome: &Result<Outcome<U>, Failed<U::Id, E>>,
) {
    let span = Span::current();
    let event = match outcome {
        Ok(Outcome::Authenticated { user, resigned, .. }) => {
            span.record("outcome", "authenticated");
            resigned.then(|| (AuthEventKind::ReSigned, Some(user.id())))
        }
        Ok(Outcome::Anonymous) => {
            span.record("outcome", "anonymous");
            None
        }
        Ok(Outcome::Ended { reason, user_id }) => {
            span.record("outcome", "ended");
            span.record("reason", reason.as_str());
            Some((AuthEventKind::SessionEnded(*reason), user_id.clone()))
        }
        Err(Failed { failure, user_id }) => {
            span.record("outcome", "failed");
            tracing::error!(
                error = failure as &dyn std::error::Error,
                "authentication failed closed"
            );
            Some((AuthEventKind::FailedClosed, user_id.clone()))
        }
    };
    if let (Some(events), Some((kind, user_id))) = (&context.events, event) {
        let request = events
            .capture()
            .request_info(req.headers(), req.extensions());
        events.emit(kind, user_id, request);
    }
}

/// What the logs may say of the session id: a keyed fingerprint of it.
fn fingerprint(context: &Context, session: &Session) -> String {
    session.id().map_or_else(
        || "none".to_owned(),
        |id| context.keys.log_fingerprint(&id.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use tower::Layer as _;

    use super::*;
    use crate::{test_support::Users, AuthKeys, AuthLayer};

    const SECRET: &str = "a service secret that is long enough to be accepted";

    /// An inner service that is as ready as it is told to be.
    #[derive(Clone, Debug)]
    struct Inner(Poll<Result<(), &'static str>>);

    impl Service<Request> for Inner {
        type Response = Response;
        type Error = &'static str;
        type Future = std::future::Ready<Result<Response, &'static str>>;

        fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), &'static str>> {
            self.0
        }

        fn call(&mut self, _: Request) -> Self::Future {
            std::future::ready(Ok(Response::default()))
        }
    }

    fn service(ready: Poll<Result<(), &'static str>>) -> AuthService<Inner, Users> {
        AuthLayer::new(Users, AuthKeys::new(SECRET).unwrap()).layer(Inner(ready))
    }

    #[test]
    fn readiness_and_its_errors_are_the_inner_services() {
        let mut cx = TaskContext::from_waker(Waker::noop());
        for ready in [Poll::Pending, Poll::Ready(Ok(())), Poll::Ready(Err("down"))] {
            assert_eq!(service(ready).poll_ready(&mut cx), ready);
        }
    }

    #[test]
    fn debug_shows_the_inner_service_and_never_the_secret() {
        let mut service = service(Poll::Ready(Ok(())));
        let printed = format!("{service:?}");
        assert!(
            printed.starts_with("AuthService") && printed.contains("Inner(Ready(Ok(())))"),
            "{printed}"
        );
        assert!(!printed.contains(SECRET), "{printed}");
        assert_eq!(
            format!("{:?}", service.call(Request::default())),
            "ResponseFuture"
        );
    }
}
