//! `AuthLayer`: the configuration, applied to a service.

use std::sync::Arc;

use axum::http::StatusCode;
use tower::Layer;

use crate::{backend::UserBackend, hash::AuthKeys, service::AuthService};

/// Verifies the session's auth hash on every request and puts an
/// [`Identity`](crate::Identity) into the request extensions.
///
/// Add it inside tower-sessions' `SessionManagerLayer`: with axum's
/// `Router::layer`, the layer added last is the outermost, so add this one
/// first.
///
/// ```
/// # use std::convert::Infallible;
/// # use tower_sessions_auth::{SessionUser, UserBackend};
/// # #[derive(Clone)] struct User;
/// # impl SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"" } }
/// # #[derive(Clone)] struct Users;
/// # impl UserBackend for Users { type User = User; type Error = Infallible;
/// #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
/// use axum::{routing::get, Router};
/// use tower_sessions::{MemoryStore, SessionManagerLayer};
/// use tower_sessions_auth::{AuthKeys, AuthLayer};
///
/// let keys = AuthKeys::new(b"a secret of at least thirty-two bytes")?;
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(AuthLayer::new(Users, keys).with_login_url("/sign-in"))
///     .layer(SessionManagerLayer::new(MemoryStore::default()));
/// # Ok::<(), tower_sessions_auth::KeyError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthLayer<B> {
    backend: B,
    context: Context,
}

/// The settings the handler-side types need too; shared by reference.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) keys: AuthKeys,
    pub(crate) login_url: String,
    pub(crate) failure_status: StatusCode,
}

pub(crate) type Context = Arc<Config>;

impl<B: UserBackend> AuthLayer<B> {
    /// Creates the layer with the application's user backend and secrets.
    pub fn new(backend: B, keys: AuthKeys) -> Self {
        Self {
            backend,
            context: Arc::new(Config {
                keys,
                login_url: "/login".to_owned(),
                failure_status: StatusCode::INTERNAL_SERVER_ERROR,
            }),
        }
    }

    /// Sets where [`LoginRequired`](crate::LoginRequired) sends anonymous
    /// browsers (default `/login`). The requested path is appended as the
    /// `next` query parameter.
    pub fn with_login_url(mut self, url: impl Into<String>) -> Self {
        self.config_mut().login_url = url.into();
        self
    }

    /// Sets the status answered when the session store or the backend fails
    /// (default `500`; `503` suits a service behind a retrying proxy). Only
    /// server-error statuses are accepted; any other is ignored, so that a
    /// failure can never look like success.
    pub fn with_failure_status(mut self, status: StatusCode) -> Self {
        if status.is_server_error() {
            self.config_mut().failure_status = status;
        }
        self
    }

    fn config_mut(&mut self) -> &mut Config {
        // Builders run before `layer`, while the Arc is still unique; a clone
        // shared elsewhere is copied rather than changed under its owner.
        Arc::make_mut(&mut self.context)
    }
}

impl<S, B: Clone> Layer<S> for AuthLayer<B> {
    type Service = AuthService<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::new(inner, self.backend.clone(), self.context.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Users;

    const SECRET: &str = "a layer secret that is long enough to be accepted";

    fn layer() -> AuthLayer<Users> {
        AuthLayer::new(Users, AuthKeys::new(SECRET).unwrap())
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let printed = format!("{:?}", layer().with_login_url("/in"));
        assert!(!printed.contains(SECRET), "{printed}");
        assert!(
            printed.contains("<redacted>") && printed.contains("/in"),
            "{printed}"
        );
    }

    #[test]
    fn failure_status_accepts_only_server_errors() {
        let status = |layer: AuthLayer<Users>| layer.context.failure_status;
        assert_eq!(status(layer()), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            status(layer().with_failure_status(StatusCode::SERVICE_UNAVAILABLE)),
            StatusCode::SERVICE_UNAVAILABLE
        );
        for ignored in [
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::SEE_OTHER,
        ] {
            assert_eq!(
                status(layer().with_failure_status(ignored)),
                StatusCode::INTERNAL_SERVER_ERROR
            );
        }
    }

    #[test]
    fn builders_do_not_change_a_shared_clone() {
        let original = layer();
        let changed = original.clone().with_login_url("/elsewhere");
        assert_eq!(original.context.login_url, "/login");
        assert_eq!(changed.context.login_url, "/elsewhere");
    }
}
