//! The per-request path: session → record → backend → verify → extensions.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use axum::{
    extract::Request,
    http::{header, HeaderMap},
    response::Response,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use tower::Service;
use tower_sessions::{session, Session};
use tracing::{field, Instrument as _, Span};

use crate::{
    backend::{SessionUser, UserBackend},
    config::{Checked, Context},
    device::Gate,
    ending::{self, fingerprint, EndFailure},
    error::HashError,
    events::AuthEventKind,
    fast_path::{self, admit, Admission, FastPath, Found, Presented},
    hash::AuthKeys,
    identity::{Identity, SessionEnded},
    record::{
        keep_cookie_of_missing_record, AuthRecord, Claim, EndReason, RecordTimes, SESSION_KEY,
    },
    registry::{user_key, RegistryError},
    rejection::{failure_response, AuthRejection},
    times::{TimeConfig, UnixMillis},
    validity::{judge, Entry, Evidence, Signed, Verdict},
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
        let span = tracing::info_span!(
            "auth",
            outcome = field::Empty,
            reason = field::Empty,
            path = field::Empty,
            device = field::Empty
        );

        ResponseFuture(Box::pin(
            async move {
                let Some(session) = req.extensions().get::<Session>().cloned() else {
                    return Ok(axum::response::IntoResponse::into_response(
                        AuthRejection::MissingSessionLayer,
                    ));
                };
                // Whether the request carried a session id: reading the
                // session drops an id that has no record.
                let presented = session.id();
                let started = context.times.clock.now_ms();
                let mut found = Found {
                    session: presented,
                    started,
                    pass_seen: false,
                    admitted: false,
                    verified: None,
                };
                let mut checked = Checked {
                    context: context.clone(),
                    claim: None,
                    user_key: None,
                };
                let admitted = match &context.fast_path {
                    Some(fast) => {
                        if let Some(live) = context.live() {
                            // A layer applied outside a runtime starts the
                            // listener and the heartbeat here.
                            live.start();
                        }
                        let tried =
                            try_pass(&backend, &context, fast, req.headers(), &session, started);
                        Box::pin(tried).await
                    }
                    None => Ok(None),
                };
                match admitted {
                    Ok(Some(Tried::Admitted {
                        user,
                        claim,
                        user_key,
                    })) => {
                        found.pass_seen = true;
                        found.admitted = true;
                        Span::current().record("outcome", "authenticated");
                        Span::current().record("path", "fast");
                        checked.claim = Some(claim);
                        checked.user_key = Some(user_key);
                        req.extensions_mut().insert(Identity::Authenticated(user));
                    }
                    Ok(Some(Tried::Refused)) => found.pass_seen = true,
                    Ok(None) => {}
                    Err(failed) => {
                        report::<B::User, B::Error>(&context, &req, &Err(failed));
                        return Ok(failure_response(context.failure_status));
                    }
                }
                if !found.admitted {
                    let outcome = resolve(&backend, &context, &session, started).await;
                    report(&context, &req, &outcome);
                    match outcome {
                        Ok(Outcome::Authenticated { user, claim, .. }) => {
                            let device =
                                device_gate(&context, &session, &mut req, &user, &claim, started);
                            match device.await {
                                Ok(Gate::Refused) => {}
                                Ok(gate) => {
                                    // Only now: a request refused for its
                                    // device keeps no session from idling out.
                                    let noted =
                                        if claim.times.activity_is_due(&context.times, started) {
                                            // Boxed: a write once per interval, not on every request.
                                            Box::pin(note_activity(&session, &user, claim, started))
                                                .await
                                        } else {
                                            Ok(claim)
                                        };
                                    let claim = match noted {
                                        Ok(claim) => claim,
                                        Err(error) => {
                                            let failed =
                                                Failed::new(Failure::Store(error), user.id());
                                            report::<B::User, B::Error>(
                                                &context,
                                                &req,
                                                &Err(failed),
                                            );
                                            return Ok(failure_response(context.failure_status));
                                        }
                                    };
                                    if context.live().is_some() {
                                        // The id serialized on the way in, as the record holds it.
                                        checked.user_key = user_key(&user.id()).ok();
                                    }
                                    // A device-bound session gets no pass: its
                                    // bound cookie is checked on every request.
                                    if context.fast_path.is_some() && gate == Gate::Unbound {
                                        found.verified = Some(AuthRecord {
                                            user_id: user.id(),
                                            claim: claim.clone(),
                                        });
                                    }
                                    checked.claim = Some(claim);
                                    req.extensions_mut().insert(Identity::Authenticated(user));
                                }
                                Err(error) => {
                                    Span::current().record("outcome", "failed");
                                    tracing::error!(
                                        error = &error as &dyn std::error::Error,
                                        "authentication failed closed"
                                    );
                                    return Ok(failure_response(context.failure_status));
                                }
                            }
                        }
                        Ok(Outcome::Anonymous | Outcome::Superseded) => {
                            req.extensions_mut().insert(Identity::<B::User>::Anonymous);
                        }
                        Ok(Outcome::Ended { reason, .. }) => {
                            req.extensions_mut().insert(Identity::<B::User>::Anonymous);
                            req.extensions_mut().insert(SessionEnded::new(reason));
                        }
                        Err(_) => return Ok(failure_response(context.failure_status)),
                    }
                }
                let times = checked.claim.as_ref().map(|claim| claim.times);
                req.extensions_mut().insert(checked);
                #[cfg(feature = "dbsc")]
                let offer = context.device.as_ref().map(|_| {
                    let offer = crate::dbsc::Offer::default();
                    req.extensions_mut().insert(offer.clone());
                    offer
                });
                let mut response = inner.call(req).await?;
                keep_cookie_lifetime(&context.times, &session, times);
                #[cfg(feature = "dbsc")]
                if let (Some(binding), Some(offer)) = (&context.device, &offer) {
                    match crate::dbsc::offer(binding, offer, &session, started).await {
                        Ok(Some(header)) => {
                            response
                                .headers_mut()
                                .append(SECURE_SESSION_REGISTRATION, header);
                        }
                        Ok(None) => {}
                        Err(error) => {
                            tracing::error!(
                                error = &error as &dyn std::error::Error,
                                "offering device binding failed"
                            );
                            return Ok(failure_response(context.failure_status));
                        }
                    }
                }
                if let Some(fast) = &context.fast_path {
                    let cookie = fast_path::pass_cookie(
                        fast,
                        &context.keys,
                        context.live(),
                        &session,
                        found,
                    );
                    if let Some(cookie) = cookie {
                        response.headers_mut().append(header::SET_COOKIE, cookie);
                    }
                }
                if presented.is_some() && !session.is_modified() && session.id().is_none() {
                    let kept = Box::pin(keep_cookie_of_missing_record(&session, response));
                    return Ok(kept.await);
                }
                Ok(response)
            }
            .instrument(span),
        ))
    }
}

/// The response header that offers device binding after a sign-in.
#[cfg(feature = "dbsc")]
const SECURE_SESSION_REGISTRATION: header::HeaderName =
    header::HeaderName::from_static("secure-session-registration");

/// Checks the device of a session found holding ([`crate::dbsc`]).
#[cfg(feature = "dbsc")]
use crate::dbsc::gate as device_gate;

/// Built without device binding: a session bound on another instance is
/// refused all the same.
#[cfg(not(feature = "dbsc"))]
async fn device_gate<U: SessionUser>(
    _: &Context,
    session: &Session,
    request: &mut Request,
    user: &U,
    claim: &Claim,
    _: UnixMillis,
) -> Result<Gate, tower_sessions::session::Error> {
    crate::unproven::without_binding(session, request, user, claim).await
}

/// What the fast path made of a request that carried a pass cookie.
enum Tried<U> {
    /// Signed in from the pass.
    Admitted {
        user: U,
        claim: Claim,
        user_key: String,
    },
    /// The full path decides; the pass is replaced or removed.
    Refused,
}

/// Signs the request in from its pass, if it carries one that the fast
/// path admits; `Ok(None)` when it carries none.
async fn try_pass<B: UserBackend>(
    backend: &B,
    context: &Context,
    fast: &FastPath,
    headers: &HeaderMap,
    session: &Session,
    now: UnixMillis,
) -> Result<Option<Tried<B::User>>, Failed<IdOf<B>, B::Error>> {
    let pass = match fast_path::presented::<IdOf<B>>(fast, &context.keys, headers) {
        Presented::Absent => return Ok(None),
        Presented::Unreadable => return Ok(Some(Tried::Refused)),
        Presented::Pass(pass) => pass,
    };
    let Some(live) = context.live() else {
        return Ok(Some(Tried::Refused));
    };
    match admit(
        backend,
        context.rules(),
        live,
        fast,
        &pass,
        session.id(),
        now,
    )
    .await
    {
        Ok(Admission::Admitted(user)) => Ok(Some(Tried::Admitted {
            user,
            claim: pass.record.claim,
            user_key: pass.user_key,
        })),
        Ok(Admission::FullPath) => Ok(Some(Tried::Refused)),
        Err(error) => Err(Failed::new(Failure::Backend(error), pass.record.user_id)),
    }
}

/// What the layer decided about a request's session.
enum Outcome<U: SessionUser> {
    /// Signed in; `rehashed` when the hash was upgraded to the current
    /// secret on this request; with the claim the session now holds.
    Authenticated {
        user: U,
        rehashed: bool,
        claim: Claim,
    },
    /// No user in the session.
    Anonymous,
    /// The session's own browser rotated its id away while this request
    /// was under way: it is anonymous, and nothing is ended.
    Superseded,
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
    #[error("re-hashing the session failed")]
    Sign(#[source] HashError),
}

type IdOf<B> = <<B as UserBackend>::User as SessionUser>::Id;
type Resolved<B> =
    Result<Outcome<<B as UserBackend>::User>, Failed<IdOf<B>, <B as UserBackend>::Error>>;

/// Decides who the request is, ending the session when it no longer holds.
async fn resolve<B: UserBackend>(
    backend: &B,
    context: &Context,
    session: &Session,
    now: UnixMillis,
) -> Resolved<B> {
    let record = match session.get::<AuthRecord<IdOf<B>>>(SESSION_KEY).await {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(Outcome::Anonymous),
        Err(session::Error::SerdeJson(_)) => {
            return Box::pin(end(context, session, EndReason::Malformed, None)).await
        }
        Err(err) => return Err(err.into()),
    };
    let mut evidence = OnRequest {
        backend,
        context,
        session,
        user_id: &record.user_id,
    };
    let verdict = judge(context.rules(), &record.claim, None, now, &mut evidence).await;
    let (user, signed) = match verdict {
        Ok(Verdict::Holds { user, signed }) => (user, signed),
        Ok(Verdict::Ended(reason)) => {
            return Box::pin(end(context, session, reason, Some(record))).await
        }
        Ok(Verdict::Superseded) => {
            tracing::info!("session superseded by its own browser's new id; nothing ended");
            return Ok(Outcome::Superseded);
        }
        Err(failure) => return Err(Failed::new(failure, record.user_id)),
    };
    let rehashed = signed == Signed::Fallback;
    let record = if rehashed {
        match Box::pin(rehash(context, session, &user, record)).await {
            Ok(record) => record,
            Err((failure, user_id)) => return Err(Failed::new(failure, user_id)),
        }
    } else {
        record
    };
    Ok(Outcome::Authenticated {
        user,
        rehashed,
        claim: record.claim,
    })
}

/// The evidence of one request: the backend, the registry and the store,
/// each asked when the validity rule needs it.
struct OnRequest<'a, B: UserBackend> {
    backend: &'a B,
    context: &'a Context,
    session: &'a Session,
    user_id: &'a IdOf<B>,
}

impl<B: UserBackend> Evidence<B::User> for OnRequest<'_, B> {
    type Error = Failure<B::Error>;
    type Found = B::User;

    fn claim_is_current(&self) -> bool {
        true
    }

    async fn user(&mut self) -> Result<Option<B::User>, Self::Error> {
        self.backend
            .get_user(self.user_id)
            .await
            .map_err(Failure::Backend)
    }

    /// Touches the entry: one read, and a write once per touch interval.
    async fn entry(&mut self, handle: &str) -> Result<Entry, Self::Error> {
        let Some(registry) = &self.context.registry else {
            return Ok(Entry::Gone);
        };
        let lives = async { registry.touch(&user_key(self.user_id)?, handle).await };
        match lives.await {
            Ok(true) => Ok(Entry::Lives { last_seen: None }),
            Ok(false) => Ok(Entry::Gone),
            Err(error) => Err(Failure::Registry(error)),
        }
    }

    /// Reads the record again: `update_session_auth_hash` of the same
    /// browser deletes it as it rotates the id, before it answers, while a
    /// password changed anywhere else leaves it in place. Only on a
    /// mismatch: a read, and a second one when the record is gone
    /// (tower-sessions loads a missing record lazily again).
    async fn superseded(&mut self) -> Result<bool, Self::Error> {
        let session = self.session;
        let reread = async move {
            session.load().await?;
            session.get_value(SESSION_KEY).await
        };
        Ok(Box::pin(reread).await.map_err(Failure::Store)?.is_none())
    }
}

/// Records this request as the session's activity; the caller asks
/// [`RecordTimes::activity_is_due`] first, so that this is the only store
/// write the idle timeout costs, once per interval at most. Returns the
/// claim the session holds.
async fn note_activity<U: SessionUser>(
    session: &Session,
    user: &U,
    mut claim: Claim,
    now: UnixMillis,
) -> Result<Claim, session::Error> {
    claim.times.active = now;
    let record = AuthRecord {
        user_id: user.id(),
        claim,
    };
    session.insert(SESSION_KEY, &record).await?;
    Ok(record.claim)
}

/// Gives a session that tower-sessions is about to save, and that is still
/// the one the layer verified, the cookie lifetime of its tier (see
/// [`RecordTimes::cookie_expiry`]); call it once the handler has run.
///
/// A session whose id the handler changed (a sign-in, a sign-out, a
/// password change) got its expiry from [`AuthSession`](crate::AuthSession)
/// then. Only a modified session: tower-sessions sets a cookie for no other
/// (but under `with_always_save(true)`, whose unmodified requests keep the
/// session layer's expiry), and `set_expiry` marks the session modified,
/// which would make every request a store write.
fn keep_cookie_lifetime(times: &TimeConfig, session: &Session, verified: Option<RecordTimes>) {
    let Some(verified) = verified else { return };
    // The id last: it takes a lock, the flag does not.
    if session.is_modified() && session.id().is_some() {
        session.set_expiry(Some(verified.cookie_expiry(times)));
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
async fn rehash<U: SessionUser, E>(
    context: &Context,
    session: &Session,
    user: &U,
    mut record: AuthRecord<U::Id>,
) -> Result<AuthRecord<U::Id>, (Failure<E>, U::Id)> {
    // The epoch stays: it is the user's, which the fallback hash covered.
    if let Err(error) = resign(&context.keys, user, &mut record.claim) {
        return Err((Failure::Sign(error), record.user_id));
    }
    if let Err(error) = session.insert(SESSION_KEY, &record).await {
        return Err((Failure::Store(error), record.user_id));
    }
    tracing::info!(session = %fingerprint(context, session), "session re-hashed under the current secret");
    Ok(record)
}

/// Signs `claim`'s hash and its credential bindings under the current
/// secret. The rule verified them for `user` a moment ago, so every bound
/// credential is still the user's.
fn resign<U: SessionUser>(keys: &AuthKeys, user: &U, claim: &mut Claim) -> Result<(), HashError> {
    claim.auth_hash = keys.auth_hash_of(user, !claim.bound.is_empty())?;
    for bound in &mut claim.bound {
        let id = URL_SAFE_NO_PAD
            .decode(&bound.credential)
            .map_err(|_| HashError::UnknownCredential)?;
        let version = user
            .credential_version(&id)
            .ok_or(HashError::UnknownCredential)?;
        bound.tag = keys.binding_tag(user, &id, version)?;
    }
    Ok(())
}

/// Ends the session ([`ending::end`]); the request goes on as anonymous.
async fn end<U: SessionUser, E>(
    context: &Context,
    session: &Session,
    reason: EndReason,
    record: Option<AuthRecord<U::Id>>,
) -> Result<Outcome<U>, Failed<U::Id, E>> {
    let user_id = record.as_ref().map(|record| record.user_id.clone());
    ending::end(context, session, reason, record.as_ref())
        .await
        .map_err(|failure| Failed {
            failure: match failure {
                EndFailure::Registry(error) => Failure::Registry(error),
                EndFailure::Store(error) => Failure::Store(error),
            },
            user_id: user_id.clone(),
        })?;
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
        Ok(Outcome::Authenticated { user, rehashed, .. }) => {
            span.record("outcome", "authenticated");
            rehashed.then(|| (AuthEventKind::Rehashed, Some(user.id())))
        }
        Ok(Outcome::Anonymous) => {
            span.record("outcome", "anonymous");
            None
        }
        Ok(Outcome::Superseded) => {
            span.record("outcome", "superseded");
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
