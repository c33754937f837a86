//! Why an extractor refused a request, and the response for a failure.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use crate::credential::Factor;

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
    /// A [`RecentFactor`](crate::step_up::RecentFactor) route, and the
    /// session proved none of its factors within the window; the client is
    /// not a browser: `403 Forbidden` with the JSON body
    /// `{"error":"factor required","factors":["hwk","swk"]}`.
    #[error("factor required")]
    FactorRequired {
        /// Any one of these would do.
        factors: Vec<Factor>,
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
    /// A [`SessionWatch`](crate::live::SessionWatch) was asked for on a route
    /// whose layer has no registry with
    /// [`LiveSessions`](crate::live::LiveSessions): `500 Internal Server Error`.
    #[error(
        "no live sessions on this route: give `tower_sessions_auth::AuthLayer` a \
         `SessionRegistry` built `with_live_sessions` to watch a session"
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
            Self::ReauthRequired | Self::FactorRequired { .. } => StatusCode::FORBIDDEN,
            Self::MissingAuthLayer
            | Self::MissingSessionLayer
            | Self::WrongUserType { .. }
            | Self::MissingLiveSessions => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body of this rejection: plain text, but for
    /// [`ReauthRequired`](Self::ReauthRequired) and
    /// [`FactorRequired`](Self::FactorRequired), whose body is JSON.
    #[must_use]
    pub fn body_text(&self) -> String {
        match self {
            Self::ReauthRequired => REAUTH_REQUIRED_JSON.to_owned(),
            Self::FactorRequired { factors } => {
                let names: Vec<&str> = factors.iter().map(|factor| factor.as_str()).collect();
                serde_json::json!({ "error": "factor required", "factors": names }).to_string()
            }
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
        if let Self::ReauthRequired | Self::FactorRequired { .. } = self {
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
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
