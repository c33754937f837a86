//! Failures inside a request: all of them are the server's fault, so all of
//! them are a logged `500` with a generic body.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use tower_sessions_auth::AuthError;

/// Something broke while serving a request: the database, the session
/// store, hashing or rendering.
#[derive(Debug)]
pub(crate) enum AppError {
    /// The users' database failed.
    Database(sqlx::Error),
    /// The session store failed.
    Session(String),
    /// Hashing failed, or a stored hash is unreadable.
    Password(argon2::password_hash::Error),
    /// A blocking task panicked or was cancelled.
    Task(tokio::task::JoinError),
    /// A template failed to render.
    Render(askama::Error),
    /// The WebAuthn relying party could not be set up, or a stored passkey
    /// is unreadable.
    Passkey(String),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database(err) => write!(f, "database: {err}"),
            Self::Session(err) => write!(f, "session: {err}"),
            Self::Password(err) => write!(f, "password hashing: {err}"),
            Self::Task(err) => write!(f, "blocking task: {err}"),
            Self::Render(err) => write!(f, "template: {err}"),
            Self::Passkey(err) => write!(f, "passkey: {err}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        // The crate's error names the operation; its source, the store's
        // failure.
        match std::error::Error::source(&err) {
            Some(source) => Self::Session(format!("{err}: {source}")),
            None => Self::Session(err.to_string()),
        }
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(err: tower_sessions::session::Error) -> Self {
        Self::Session(err.to_string())
    }
}

impl From<argon2::password_hash::Error> for AppError {
    fn from(err: argon2::password_hash::Error) -> Self {
        Self::Password(err)
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Task(err)
    }
}

impl From<askama::Error> for AppError {
    fn from(err: askama::Error) -> Self {
        Self::Render(err)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "request failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
    }
}
