//! The JSON routes.

use axum::{
    extract::{rejection::JsonRejection, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::json;
use tower_sessions_auth::{AuthSession, AuthUser};

use super::{accounts::authenticate, error::AppError, users::User, AppState};

/// `GET /api/me`: the signed-in user's name, or `401`.
pub(crate) async fn me(user: Option<AuthUser<User>>) -> Response {
    match user {
        Some(AuthUser(user)) => Json(json!({ "username": user.username })).into_response(),
        None => error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
}

/// The body of `POST /api/login`.
#[derive(Deserialize)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

/// `POST /api/login`: signs in and sets the session cookie, or `401`.
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
            auth.login(&user).await?;
            Ok(Json(json!({ "username": user.username })).into_response())
        }
        None => Ok(error(
            StatusCode::UNAUTHORIZED,
            "wrong username or password",
        )),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
