//! The JSON routes.

use axum::{
    extract::{FromRequest, Path, Request, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};
use tower_sessions_auth::{
    dbsc::DeviceProofRequired,
    registry::{Revocation, SessionHandle},
    AuthRejection, AuthSession, RecentAuth,
};

use super::{
    accounts::authenticate, devices, error::AppError, times::SessionTimes, users::User, AppState,
};

/// `GET /api/me`: the signed-in user's name and how the session was
/// proved (`amr`: the RFC 8176 factors, sorted: `["pwd"]`, `["hwk",
/// "user"]`), or `401`: `{"error": "device proof required"}` for a
/// device-bound session's cookie without its bound cookie.
pub(crate) async fn me(auth: AuthSession<User>, proof: Option<DeviceProofRequired>) -> Response {
    let Some(user) = auth.user() else {
        return match proof {
            Some(_) => error(StatusCode::UNAUTHORIZED, "device proof required"),
            None => not_signed_in(),
        };
    };
    let mut amr: Vec<&str> = auth
        .factors()
        .into_iter()
        .map(|(factor, _)| factor.as_str())
        .collect();
    amr.sort_unstable();
    Json(json!({ "username": user.username, "amr": amr })).into_response()
}

/// A JSON body; a missing, malformed or mistyped one is refused with a
/// JSON error (`400`, `415` or `422`), as every JSON route answers.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(body)) => Ok(Self(body)),
            Err(rejection) => Err(error(rejection.status(), &rejection.body_text())),
        }
    }
}

/// The body of `POST /api/login`.
#[derive(Deserialize)]
pub(crate) struct Credentials {
    username: String,
    password: String,
    /// "Keep me signed in": a cookie with a `Max-Age`.
    #[serde(default)]
    remember: bool,
}

/// `POST /api/login`: signs in (for the browser session, or remembered with
/// `"remember": true`) and sets the session cookie, or `401`.
pub(crate) async fn login(
    State(state): State<AppState>,
    mut auth: AuthSession<User>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Response, AppError> {
    match authenticate(&state, &credentials.username, credentials.password).await? {
        Some(user) => {
            auth.login_with(&user, SessionTimes::sign_in(credentials.remember))
                .await?;
            Ok(Json(json!({ "username": user.username })).into_response())
        }
        None => Ok(error(
            StatusCode::UNAUTHORIZED,
            "wrong username or password",
        )),
    }
}

/// `GET /api/sessions`: the user's signed-in sessions, most recently seen
/// first, or `401`.
pub(crate) async fn sessions(
    State(state): State<AppState>,
    auth: AuthSession<User>,
) -> Result<Response, AppError> {
    if auth.user().is_none() {
        return Ok(not_signed_in());
    }
    let sessions: Vec<Value> = devices::listed(&auth, &state.times)
        .await?
        .into_iter()
        .map(|device| {
            json!({
                "handle": device.handle,
                "current": device.current,
                "created_at": device.created_at.rfc3339,
                "last_seen_at": device.last_seen_at.rfc3339,
                "expires_at": device.expires_at.rfc3339,
                "remembered": device.remembered,
                "factors": device.factors,
                "user_agent": device.user_agent,
                "ip": device.ip,
            })
        })
        .collect();
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    Ok((no_store, Json(json!({ "sessions": sessions }))).into_response())
}

/// `DELETE /api/sessions/{handle}`: `204` when revoked (this session's own
/// handle signs it out), `404` when the user has no such session, `401`
/// when anonymous, `403` with `{"error": "reauthentication required"}`
/// when the sign-in or the last confirmation is older than the window.
pub(crate) async fn revoke_session(
    recent: Result<RecentAuth<User>, AuthRejection>,
    mut auth: AuthSession<User>,
    Path(handle): Path<String>,
) -> Result<Response, AppError> {
    if auth.user().is_none() {
        return Ok(not_signed_in());
    }
    if let Err(rejection) = recent {
        return Ok(rejection.into_response());
    }
    let Ok(handle) = handle.parse::<SessionHandle>() else {
        return Ok(error(StatusCode::NOT_FOUND, "no such session"));
    };
    Ok(match auth.revoke_session(&handle).await? {
        Revocation::Revoked | Revocation::SignedOut => StatusCode::NO_CONTENT.into_response(),
        _ => error(StatusCode::NOT_FOUND, "no such session"),
    })
}

/// `401` with `{"error": "not signed in"}`: every JSON route's answer to an
/// anonymous request.
pub(crate) fn not_signed_in() -> Response {
    error(StatusCode::UNAUTHORIZED, "not signed in")
}

/// `status` with `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
