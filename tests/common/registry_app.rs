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
    credential::Factor,
    registry::{Revocation, SessionHandle, SessionRegistry},
    AuthError, AuthKeys, AuthLayer, AuthSession, AuthUser, SessionEnded, SignIn,
};

use super::{routes, Client, TestUser, UserTable, PASSKEY};

/// `routes` plus:
/// - `POST /login/{id}/{label}`: signs in with a registry label;
/// - `POST /passkey-login/{id}`: signs in with [`PASSKEY`], as `hwk` and
///   `user`;
/// - `POST /passkey-step-up`: the signed-in user proves [`PASSKEY`]
///   (`reauthenticate_with`);
/// - `GET /sessions`: `[{"handle", "current", "user_agent", "ip", "label",
///   "factors"}]`;
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
                .route("/passkey-login/{id}", post(passkey_login::<T>))
                .route("/passkey-step-up", post(passkey_step_up::<T>))
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
                    "factors": session.factors.iter().map(|factor| factor.as_str()).collect::<Vec<_>>(),
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

/// How a passkey that verified its user signs in.
fn passkey() -> SignIn {
    SignIn::new()
        .factors([Factor::HWK, Factor::USER])
        .credential(PASSKEY)
}

async fn passkey_login<T: UserTable>(
    State(users): State<T>,
    Path(id): Path<u64>,
    mut auth: AuthSession<TestUser>,
) -> Result<StatusCode, AuthError> {
    let Some(user) = users.find(id).await else {
        return Ok(StatusCode::NOT_FOUND);
    };
    auth.login_with(&user, passkey()).await?;
    Ok(StatusCode::OK)
}

async fn passkey_step_up<T: UserTable>(
    State(users): State<T>,
    AuthUser(user): AuthUser<TestUser>,
    mut auth: AuthSession<TestUser>,
) -> Result<StatusCode, AuthError> {
    let Some(user) = users.find(user.id).await else {
        return Ok(StatusCode::NOT_FOUND);
    };
    auth.reauthenticate_with(&user, passkey()).await?;
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

/// Each session of the client's user as `/sessions` lists it: its handle,
/// whether it is the client's, and its factors joined by spaces.
pub async fn listed_factors(client: &Client, base: &str) -> Vec<(String, bool, String)> {
    let reply = client.get(&format!("{base}/sessions")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let listed: Vec<Value> = serde_json::from_str(&reply.body).unwrap();
    listed
        .iter()
        .map(|session| {
            let factors: Vec<&str> = session["factors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|name| name.as_str().unwrap())
                .collect();
            (
                session["handle"].as_str().unwrap().to_owned(),
                session["current"] == true,
                factors.join(" "),
            )
        })
        .collect()
}

/// The factors of the client's own session, and its handle.
async fn own_factors(client: &Client, base: &str) -> (String, String) {
    let listed = listed_factors(client, base).await;
    let own: Vec<_> = listed
        .into_iter()
        .filter(|(_, current, _)| *current)
        .collect();
    assert_eq!(own.len(), 1, "{own:?}");
    let (handle, _, factors) = own.into_iter().next().unwrap();
    (handle, factors)
}

/// What every registry store shows of the factors, through the layer on
/// `base` (a [`registry_app`] with the default users): a password sign-in
/// lists `pwd`, a passkey sign-in `hwk user`; a step-up adds to the entry
/// it keeps, and signing in again replaces them.
pub async fn a_session_lists_the_factors_that_proved_it(base: &str) {
    let by_password = Client::new();
    let reply = by_password.post(&format!("{base}/login/1"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let by_passkey = Client::new();
    let reply = by_passkey
        .post(&format!("{base}/passkey-login/1"), "")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let (password_handle, factors) = own_factors(&by_password, base).await;
    assert_eq!(factors, "pwd");
    let (passkey_handle, factors) = own_factors(&by_passkey, base).await;
    assert_eq!(factors, "hwk user");
    let listed = listed_factors(&by_password, base).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed.contains(&(passkey_handle.clone(), false, "hwk user".to_owned())),
        "{listed:?}"
    );

    // A step-up keeps the entry and adds the passkey's factors.
    let reply = by_password
        .post(&format!("{base}/passkey-step-up"), "")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        own_factors(&by_password, base).await,
        (password_handle.clone(), "hwk pwd user".to_owned())
    );
    // Ordinary requests change nothing; the other session is as it was.
    for _ in 0..3 {
        let reply = by_passkey.get(&format!("{base}/me")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(
        own_factors(&by_passkey, base).await,
        (passkey_handle.clone(), "hwk user".to_owned())
    );

    // The same user signing in again by password keeps the entry, with
    // this sign-in's factors.
    let reply = by_passkey.post(&format!("{base}/login/1"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        own_factors(&by_passkey, base).await,
        (passkey_handle, "pwd".to_owned())
    );
    assert_eq!(listed_factors(&by_password, base).await.len(), 2);
}
