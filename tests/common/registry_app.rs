//! The test application with a session registry: the routes of
//! [`routes`](super::routes) plus the registry's, over any session store.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};
use tower_sessions::{SessionManagerLayer, SessionStore};
use tower_sessions_auth::{
    registry::{Revocation, SessionHandle, SessionRegistry},
    AuthError, AuthKeys, AuthLayer, AuthSession, SessionEnded, SignIn,
};

use super::{routes, TestUser, UserTable};

/// `routes` plus:
/// - `POST /login/{id}/{label}`: signs in with a registry label;
/// - `GET /sessions`: `[{"handle", "current", "user_agent", "ip", "label"}]`;
/// - `POST /revoke/{handle}`: `revoked`, `signed_out`, `not_found` (or 400);
/// - `POST /revoke-others`, `POST /revoke-all`: how many;
/// - `GET /why`: why the layer ended the session on this request, or `none`.
///
/// `always_save` is tower-sessions' `with_always_save`.
pub fn registry_app<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
    keys: AuthKeys,
    registry: SessionRegistry,
    always_save: bool,
) -> Router {
    registry_routes(users.clone())
        .layer(AuthLayer::new(users, keys).with_registry(registry))
        .layer(
            SessionManagerLayer::new(store)
                .with_secure(false)
                .with_always_save(always_save),
        )
}

/// The routes of [`registry_app`], without its layers.
pub fn registry_routes<T: UserTable>(users: T) -> Router {
    routes(users.clone())
        .merge(
            Router::new()
                .route("/login/{id}/{label}", post(login_labelled::<T>))
                .with_state(users),
        )
        .route("/sessions", get(sessions))
        .route("/revoke/{handle}", post(revoke))
        .route("/revoke-others", post(revoke_others))
        .route("/revoke-all", post(revoke_all))
        .route(
            "/why",
            get(|ended: Option<SessionEnded>| async move {
                ended.map_or("none", |ended| ended.reason().as_str())
            }),
        )
}

async fn sessions(auth: AuthSession<TestUser>) -> Result<Json<Value>, AuthError> {
    let sessions = auth.sessions().await?;
    Ok(Json(
        sessions
            .iter()
            .map(|session| {
                json!({
                    "handle": session.handle.as_str(),
                    "current": session.current,
                    "user_agent": session.user_agent,
                    "ip": session.ip.map(|ip| ip.to_string()),
                    "label": session.label,
                })
            })
            .collect(),
    ))
}

async fn login_labelled<T: UserTable>(
    State(users): State<T>,
    Path((id, label)): Path<(u64, String)>,
    mut auth: AuthSession<TestUser>,
) -> Result<StatusCode, AuthError> {
    let Some(user) = users.find(id).await else {
        return Ok(StatusCode::NOT_FOUND);
    };
    auth.login_with(&user, SignIn::new().label(label)).await?;
    Ok(StatusCode::OK)
}

async fn revoke(
    mut auth: AuthSession<TestUser>,
    Path(handle): Path<String>,
) -> Result<(StatusCode, &'static str), AuthError> {
    let Ok(handle) = handle.parse::<SessionHandle>() else {
        return Ok((StatusCode::BAD_REQUEST, "not a handle"));
    };
    Ok(match auth.revoke_session(&handle).await? {
        Revocation::Revoked => (StatusCode::OK, "revoked"),
        Revocation::SignedOut => (StatusCode::OK, "signed_out"),
        _ => (StatusCode::NOT_FOUND, "not_found"),
    })
}

async fn revoke_others(auth: AuthSession<TestUser>) -> Result<String, AuthError> {
    Ok(auth.revoke_other_sessions().await?.to_string())
}

async fn revoke_all(mut auth: AuthSession<TestUser>) -> Result<String, AuthError> {
    Ok(auth.revoke_all_sessions().await?.to_string())
}
