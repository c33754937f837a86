//! Errors and rejections.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{
    registry::RegistryError,
    rejection::{failure_response, no_store},
};

#[doc(inline)]
pub use crate::hash::{HashError, KeyError};

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
    /// ([`HashError::EmptyCredential`]), the credential named does not exist
    /// ([`HashError::UnknownCredential`]) or their id cannot be serialized, a
    /// bug of the application or of its data. As a response: a generic 500.
    /// The session was left as it was.
    #[error("cannot sign the user into the session")]
    Hash(#[from] HashError),
    /// The registry's limit of sessions per user refused a new sign-in
    /// ([`LimitPolicy::RefuseNew`](crate::registry::LimitPolicy::RefuseNew)). As a
    /// response: `409 Conflict`.
    #[error("too many active sessions: sign out on another device first")]
    TooManySessions,
    /// A session-listing or revoking method was called, but the layer has
    /// no [`SessionRegistry`](crate::registry::SessionRegistry): a programming error.
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
