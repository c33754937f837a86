//! The per-request path: session → backend → verify → extensions.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use axum::{extract::Request, response::Response};
use tower::Service;
use tower_sessions::{session, Session};

use crate::{
    backend::{SessionUser, UserBackend},
    error::{failure_response, AuthRejection},
    extract::Identity,
    hash::Verification,
    layer::Context,
    record::{AuthRecord, SESSION_KEY},
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

        ResponseFuture(Box::pin(async move {
            let Some(session) = req.extensions().get::<Session>().cloned() else {
                return Ok(axum::response::IntoResponse::into_response(
                    AuthRejection::MissingSessionLayer,
                ));
            };
            match resolve(&backend, &context, &session).await {
                Ok(identity) => {
                    req.extensions_mut().insert(identity);
                    req.extensions_mut().insert(context);
                    inner.call(req).await
                }
                Err(failure) => {
                    tracing::error!(error = %failure, "authentication failed closed");
                    Ok(failure_response(context.failure_status))
                }
            }
        }))
    }
}

/// A failure that must not decide who the request is.
#[derive(Debug, thiserror::Error)]
enum Failure<E> {
    #[error("session store: {0}")]
    Store(#[from] session::Error),
    #[error("user backend: {0}")]
    Backend(#[source] E),
}

/// Why a session was ended; logged, never sent.
#[derive(Debug, Clone, Copy)]
enum Invalid {
    Malformed,
    UnknownUser,
    HashMismatch,
}

impl Invalid {
    fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed auth data in session",
            Self::UnknownUser => "user no longer exists or may not sign in",
            Self::HashMismatch => "auth hash does not match (credential, epoch or secret changed)",
        }
    }
}

/// Decides who the request is, ending the session when it no longer holds.
async fn resolve<B: UserBackend>(
    backend: &B,
    context: &Context,
    session: &Session,
) -> Result<Identity<B::User>, Failure<B::Error>> {
    type Id<B> = <<B as UserBackend>::User as SessionUser>::Id;

    let record = match session.get::<AuthRecord<Id<B>>>(SESSION_KEY).await {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(Identity::Anonymous),
        Err(session::Error::SerdeJson(_)) => {
            return invalidate(context, session, Invalid::Malformed).await
        }
        Err(err) => return Err(err.into()),
    };
    let Some(user) = backend
        .get_user(&record.user_id)
        .await
        .map_err(Failure::Backend)?
    else {
        return invalidate(context, session, Invalid::UnknownUser).await;
    };
    match context.keys.verify(&user, &record.auth_hash) {
        Verification::Current => {}
        Verification::Fallback => {
            // Lazy upgrade, as Django does: re-sign under the current secret
            // and give the session a new id.
            let old = fingerprint(context, session);
            session.cycle_id().await?;
            let upgraded = AuthRecord {
                user_id: record.user_id,
                auth_hash: context.keys.sign(&user),
            };
            session.insert(SESSION_KEY, upgraded).await?;
            tracing::info!(session = %old, "session re-signed under the current secret");
        }
        Verification::Mismatch => return invalidate(context, session, Invalid::HashMismatch).await,
    }
    Ok(Identity::Authenticated(user))
}

/// Flushes the session (its record is deleted and the cookie removed) and
/// continues as anonymous.
async fn invalidate<U, E>(
    context: &Context,
    session: &Session,
    why: Invalid,
) -> Result<Identity<U>, Failure<E>> {
    let ended = fingerprint(context, session);
    crate::session::flush(session).await?;
    tracing::warn!(session = %ended, reason = why.as_str(), "session ended");
    Ok(Identity::Anonymous)
}

/// What the logs may say of the session id: a keyed fingerprint of it.
fn fingerprint(context: &Context, session: &Session) -> String {
    session.id().map_or_else(
        || "none".to_owned(),
        |id| context.keys.log_fingerprint(&id.to_string()),
    )
}
