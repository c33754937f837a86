//! The JSON routes.

use axum::{
    extract::{rejection::JsonRejection, Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions_auth::{
    registry::{Revocation, SessionHandle},
    AuthRejection, AuthSession, AuthUser, RecentAuth,
};

use super::{
    accounts::authenticate, devices, error::AppError, times::SessionTimes, users::User, AppState,
};

/// `GET /api/me`: the signed-in user's name, or `401`.
pub(crate) async fn me(user: Option<AuthUser<User>>) -> Response {
    match user {
        Some(AuthUser(user)) => Json(json!({ "username": user.username })).into_response(),
        None => not_signed_in(),
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
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(credentials) = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(error(rejection.status(), &rejection.body_text())),
    };
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

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
