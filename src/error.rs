//! Errors and rejections.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use crate::registry::RegistryError;

/// A secret that [`AuthKeys`](crate::AuthKeys) refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is too short to resist guessing.
    #[error("session secret is {len} bytes long; at least {min} random bytes are required")]
    TooShort {
        /// Length of the secret given.
        len: usize,
        /// Minimum length.
        min: usize,
    },
}

/// Why [`AuthKeys::sign`](crate::AuthKeys::sign) refused to sign a user
/// into a session.
///
/// In a handler it reaches you as [`AuthError::Sign`], from
/// [`login`](crate::AuthSession::login) and
/// [`update_session_auth_hash`](crate::AuthSession::update_session_auth_hash);
/// the session is then left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The user's [`credential`](crate::SessionUser::credential) is empty.
    /// A session bound to nothing would survive every password change; give
    /// an account without a password a random value of its own instead.
    #[error(
        "the user's credential is empty: give an account without a password a random value of \
         its own (see `SessionUser::credential`)"
    )]
    EmptyCredential,
    /// serde_json cannot serialize the user's id (a map with non-string
    /// keys, say); the session record could not hold it either.
    #[error("the user id cannot be serialized as JSON")]
    UnserializableId(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A failure in a session operation called from a handler
/// ([`AuthSession::login`](crate::AuthSession::login) and its siblings).
///
/// As a response it is a generic 500 (the cause is logged, not sent), but
/// for [`TooManySessions`](Self::TooManySessions).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The session store failed, or the session could not be encoded.
    #[error("session operation failed")]
    Session(#[from] tower_sessions::session::Error),
    /// The session registry failed.
    #[error("session registry operation failed")]
    Registry(#[from] RegistryError),
    /// The user cannot be signed into a session: their credential is empty
    /// ([`SignError::EmptyCredential`]) or their id cannot be serialized, a
    /// bug of the application or of its data. As a response: a generic 500.
    /// The session was left as it was.
    #[error("cannot sign the user into the session")]
    Sign(#[from] SignError),
    /// The registry's limit of sessions per user refused a new sign-in
    /// ([`LimitPolicy::RefuseNew`](crate::LimitPolicy::RefuseNew)). As a
    /// response: `409 Conflict`.
    #[error("too many active sessions: sign out on another device first")]
    TooManySessions,
    /// A session-listing or revoking method was called, but the layer has
    /// no [`SessionRegistry`](crate::SessionRegistry): a programming error.
    #[error("no session registry: add one with `AuthLayer::with_registry`")]
    NoRegistry,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        if let Self::TooManySessions = self {
            return no_store((StatusCode::CONFLICT, self.to_string()).into_response());
        }
        tracing::error!(
            error = &self as &dyn std::error::Error,
            "session operation failed"
        );
        failure_response(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Why an extractor of this crate refused a request.
///
/// Each variant answers with the status and message of
/// [`status`](Self::status) and [`body_text`](Self::body_text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthRejection {
    /// The request is not signed in: `401 Unauthorized`.
    #[error("authentication required")]
    Unauthenticated,
    /// A browser route needs a signed-in user: `303 See Other` to the login
    /// page, with the requested path in `next`.
    #[error("sign-in required")]
    LoginRequired {
        /// Where to send the browser.
        location: String,
    },
    /// A [`RecentAuth`](crate::RecentAuth) route, and the user's last proof
    /// of their credentials is older than the window; the client is not a
    /// browser: `403 Forbidden` with the JSON body
    /// `{"error":"reauthentication required"}`.
    #[error("reauthentication required")]
    ReauthRequired,
    /// A [`RecentAuth`](crate::RecentAuth) route, and the user's last proof
    /// of their credentials is older than the window; a browser is sent
    /// (`303 See Other`) to the confirmation page, with the requested path
    /// in `next`.
    #[error("reauthentication required")]
    ReauthRedirect {
        /// Where to send the browser.
        location: String,
    },
    /// The extractor ran on a route that `AuthLayer` does not wrap:
    /// `500 Internal Server Error`.
    #[error(
        "missing request extension: is `tower_sessions_auth::AuthLayer` added to this route \
         (inside `tower_sessions::SessionManagerLayer`)?"
    )]
    MissingAuthLayer,
    /// `SessionManagerLayer` does not wrap this route: `500 Internal Server
    /// Error`.
    #[error(
        "missing request extension: `tower_sessions::SessionManagerLayer` must be added as a \
         layer outside `tower_sessions_auth::AuthLayer`"
    )]
    MissingSessionLayer,
    /// The extractor asked for a user type that `AuthLayer` was not built
    /// with: `500 Internal Server Error`.
    #[error(
        "the extractor asks for user type `{requested}`, but `tower_sessions_auth::AuthLayer` \
         on this route was built for `{layer}`: use the layer's user type in the handler"
    )]
    WrongUserType {
        /// The user type the extractor asked for.
        requested: &'static str,
        /// The user type of the layer's backend.
        layer: &'static str,
    },
    /// A [`SessionWatch`](crate::SessionWatch) was asked for on a route
    /// without `AuthLayer`, or whose layer has no
    /// [`LiveSessions`](crate::LiveSessions): `500 Internal Server Error`.
    #[error(
        "no live sessions on this route: add `tower_sessions_auth::AuthLayer` with \
         `with_live_sessions` to watch a session"
    )]
    MissingLiveSessions,
}

impl AuthRejection {
    /// The HTTP status of this rejection.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::LoginRequired { .. } | Self::ReauthRedirect { .. } => StatusCode::SEE_OTHER,
            Self::ReauthRequired => StatusCode::FORBIDDEN,
            Self::MissingAuthLayer
            | Self::MissingSessionLayer
            | Self::WrongUserType { .. }
            | Self::MissingLiveSessions => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body of this rejection: plain text, but for
    /// [`ReauthRequired`](Self::ReauthRequired), whose body is JSON.
    #[must_use]
    pub fn body_text(&self) -> String {
        match self {
            Self::ReauthRequired => REAUTH_REQUIRED_JSON.to_owned(),
            _ => self.to_string(),
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(rejection = %self, "misconfigured router");
        }
        let mut response = (status, self.body_text()).into_response();
        if let Self::ReauthRequired = self {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Self::LoginRequired { location } | Self::ReauthRedirect { location } = &self {
            match HeaderValue::from_str(location) {
                Ok(value) => {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                // The layer checked the login URL and `next` is
                // percent-encoded, so this is a bug; say so rather than
                // answer without a location.
                Err(_) => {
                    tracing::error!("sign-in redirect is not a valid Location header");
                    return failure_response(StatusCode::INTERNAL_SERVER_ERROR);
                }
            }
        }
        no_store(response)
    }
}

/// The body of [`AuthRejection::ReauthRequired`].
const REAUTH_REQUIRED_JSON: &str = r#"{"error":"reauthentication required"}"#;

/// The response for a store or backend failure: the status alone, with its
/// canonical reason as the body, so nothing internal leaks.
pub(crate) fn failure_response(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    no_store((status, reason).into_response())
}

/// Marks a response as not cacheable: it depends on who is signed in.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
