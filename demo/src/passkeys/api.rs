//! The JSON side of passkeys: the WebAuthn ceremonies (register, sign in,
//! sign up) and the list, which the pages' script and API clients call.

use std::time::{Duration, SystemTime};

use axum::{
    extract::{FromRequestParts, Path, State},
    http::{header, request::Parts, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;
use tower_sessions_auth::{
    error::HashError, AuthError, AuthRejection, AuthSession, RecentAuth, SignIn,
};
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, Webauthn,
};

use super::{
    relying_party::{self, Registration, NEEDS_HOST_NAME},
    store::{Listed, NewPasskey},
    Removal, LAST_WAY_IN,
};
use crate::{
    accounts::check_username,
    api::{error, not_signed_in, JsonBody},
    devices::{device_name, rfc3339},
    error::AppError,
    users::User,
    AppState,
};

/// The answer to an assertion or attestation that does not verify, a
/// ceremony that was never started or was finished already (a replay).
const NOT_ACCEPTED: &str = "passkey not accepted";

/// The relying party of this request; a site reached by its IP address has
/// none, and the route answers `400`.
pub(crate) struct RelyingParty(pub(crate) Webauthn);

impl FromRequestParts<AppState> for RelyingParty {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match relying_party::for_request(&state.origin, &parts.headers, &parts.uri) {
            Ok(Some(relying_party)) => Ok(Self(relying_party)),
            Ok(None) => Err(error(StatusCode::BAD_REQUEST, NEEDS_HOST_NAME)),
            Err(err) => Err(err.into_response()),
        }
    }
}

/// Options for the browser: never cached, they hold a one-time challenge.
fn options(options: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(options)).into_response()
}

/// `POST /api/passkeys/register/start`: creation options for a new passkey
/// of the signed-in user (`401` when anonymous).
pub(crate) async fn register_start(
    State(state): State<AppState>,
    RelyingParty(relying_party): RelyingParty,
    recent: Result<RecentAuth<User>, AuthRejection>,
    auth: AuthSession<User>,
) -> Result<Response, AppError> {
    let Some(user) = auth.user() else {
        return Ok(not_signed_in());
    };
    // A new credential outlives a password change: adding one needs a
    // recent proof, as removing one does, so that a stolen session cookie
    // cannot plant the thief's passkey.
    if recent.is_err() {
        return Ok(error(StatusCode::FORBIDDEN, "reauthentication required"));
    }
    let handle = match state.users.user_handle(user.id).await? {
        Some(handle) => handle,
        None => Uuid::new_v4(),
    };
    // The user's other passkeys are excluded: an authenticator holding one
    // says so instead of replacing it with a credential of the same user
    // handle, which would leave the listed passkey unusable.
    let created = relying_party::start_registration(
        &relying_party,
        auth.session(),
        Some(user.id),
        &user.username,
        handle,
        user.passkeys.clone(),
    )
    .await?;
    Ok(options(created))
}

/// `POST /api/passkeys/register/finish` with the new credential: `201`
/// `{"id", "name"}` when stored; `400` when it does not verify or no
/// registration of this user is in progress; `409` when it is registered
/// already.
pub(crate) async fn register_finish(
    State(state): State<AppState>,
    RelyingParty(relying_party): RelyingParty,
    auth: AuthSession<User>,
    headers: HeaderMap,
    JsonBody(credential): JsonBody<RegisterPublicKeyCredential>,
) -> Result<Response, AppError> {
    let Some(user) = auth.user() else {
        return Ok(not_signed_in());
    };
    let registration = relying_party::take_registration(auth.session()).await?;
    let Some((registration, passkey)) = registration
        .filter(|registration| registration.owner == Some(user.id))
        .and_then(|registration| verify_registration(&relying_party, &credential, registration))
    else {
        return Ok(error(StatusCode::BAD_REQUEST, NOT_ACCEPTED));
    };
    let name = new_name(&state, user.id, &headers).await?;
    let new = NewPasskey {
        user_handle: registration.handle,
        name: &name,
        created_at: now_secs(),
        passkey: &passkey,
    };
    if !state.users.add_passkey(user.id, &new).await? {
        return Ok(error(StatusCode::CONFLICT, "passkey already registered"));
    }
    let id = super::encode_id(passkey.cred_id());
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "name": name }))).into_response())
}

/// `POST /api/passkeys/login/start`: request options for signing in with
/// a discoverable passkey.
pub(crate) async fn login_start(
    RelyingParty(relying_party): RelyingParty,
    session: Session,
) -> Result<Response, AppError> {
    Ok(options(
        relying_party::start_sign_in(&relying_party, &session).await?,
    ))
}

/// `POST /api/passkeys/login/finish` with the assertion: `200`
/// `{"username"}` and a new session id when it verifies, else `401` and no
/// signed-in session.
///
/// The user the session holds already (the confirmation page's passkey)
/// steps up instead: the same session, a new id, the passkey's factors
/// added and the re-authentication window renewed.
pub(crate) async fn login_finish(
    State(state): State<AppState>,
    RelyingParty(relying_party): RelyingParty,
    mut auth: AuthSession<User>,
    JsonBody(assertion): JsonBody<PublicKeyCredential>,
) -> Result<Response, AppError> {
    let Some(ceremony) = relying_party::take_sign_in(auth.session()).await? else {
        return Ok(error(StatusCode::UNAUTHORIZED, NOT_ACCEPTED));
    };
    let verified = verify_assertion(&state, &relying_party, ceremony.state, &assertion).await?;
    let Some((user, proof)) = verified else {
        if ceremony.session_is_new {
            auth.session().flush().await?;
        }
        return Ok(error(StatusCode::UNAUTHORIZED, NOT_ACCEPTED));
    };
    let same_user = auth.user().is_some_and(|current| current.id == user.id);
    let signed_in = if same_user {
        auth.reauthenticate_with(&user, proof).await
    } else {
        auth.login_with(&user, proof).await
    };
    match signed_in {
        Ok(()) => Ok(Json(json!({ "username": user.username })).into_response()),
        // Removed between its verification and the sign-in: it proves
        // nothing now.
        Err(AuthError::Hash(HashError::UnknownCredential)) => {
            Ok(error(StatusCode::UNAUTHORIZED, NOT_ACCEPTED))
        }
        Err(err) => Err(err.into()),
    }
}

/// The user an assertion proves for the sign-in `ceremony`, with the
/// sign-in it makes; `None` when the passkey is unknown or not the user
/// handle's, or the signature, challenge, origin or flags do not verify.
async fn verify_assertion(
    state: &AppState,
    relying_party: &Webauthn,
    ceremony: DiscoverableAuthentication,
    assertion: &PublicKeyCredential,
) -> Result<Option<(User, SignIn)>, AppError> {
    let Ok((handle, raw_id)) = relying_party.identify_discoverable_authentication(assertion) else {
        return Ok(None);
    };
    let raw_id = raw_id.to_vec();
    let Some(mut stored) = state.users.passkey(&super::encode_id(&raw_id)).await? else {
        return Ok(None);
    };
    if stored.user_handle != handle {
        return Ok(None);
    }
    let Ok(result) =
        relying_party.finish_discoverable_authentication_v2(assertion, ceremony, &stored.passkey)
    else {
        return Ok(None);
    };
    if result.needs_update() && stored.passkey.update_credential(&result) == Some(true) {
        state.users.update_passkey(&stored.passkey).await?;
    }
    let Some(user) = state.users.by_id(stored.user_id).await? else {
        return Ok(None);
    };
    Ok(Some((user, proved(result.backup_eligible(), raw_id))))
}

/// The sign-in a passkey makes: its factors, and the session depending on
/// it.
fn proved(backup_eligible: bool, raw_id: Vec<u8>) -> SignIn {
    SignIn::new()
        .label("passkey")
        .factors(super::factors(backup_eligible))
        .credential(raw_id)
}

/// The body of `POST /api/passkeys/signup/start`.
#[derive(Deserialize)]
pub(crate) struct NewAccount {
    username: String,
}

/// `POST /api/passkeys/signup/start {"username"}`: creation options for
/// the first passkey of a new account without a password; `409` when the
/// name is taken, `422` when it is no valid username.
pub(crate) async fn signup_start(
    State(state): State<AppState>,
    RelyingParty(relying_party): RelyingParty,
    session: Session,
    JsonBody(account): JsonBody<NewAccount>,
) -> Result<Response, AppError> {
    let username = match check_username(&account.username) {
        Ok(username) => username,
        Err(message) => return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, message)),
    };
    if state.users.by_username(username).await?.is_some() {
        return Ok(error(StatusCode::CONFLICT, "username taken"));
    }
    let created = relying_party::start_registration(
        &relying_party,
        &session,
        None,
        username,
        Uuid::new_v4(),
        Vec::new(),
    )
    .await?;
    Ok(options(created))
}

/// `POST /api/passkeys/signup/finish` with the new credential: creates the
/// account and signs it in with that passkey: `201` `{"username", "id",
/// "name"}`; `400` when it does not verify or no sign-up is in progress;
/// `409` when the name was taken meanwhile.
pub(crate) async fn signup_finish(
    State(state): State<AppState>,
    RelyingParty(relying_party): RelyingParty,
    mut auth: AuthSession<User>,
    headers: HeaderMap,
    JsonBody(credential): JsonBody<RegisterPublicKeyCredential>,
) -> Result<Response, AppError> {
    let registration = relying_party::take_registration(auth.session()).await?;
    let Some((registration, passkey)) = registration
        .filter(|registration| registration.owner.is_none())
        .and_then(|registration| verify_registration(&relying_party, &credential, registration))
    else {
        return Ok(error(StatusCode::BAD_REQUEST, NOT_ACCEPTED));
    };
    let name = passkey_name(&headers, &[]);
    let new = NewPasskey {
        user_handle: registration.handle,
        name: &name,
        created_at: now_secs(),
        passkey: &passkey,
    };
    let Some(user) = state
        .users
        .create_with_passkey(&registration.username, &new)
        .await?
    else {
        return Ok(error(StatusCode::CONFLICT, "username taken"));
    };
    let raw_id = passkey.cred_id().to_vec();
    let backup_eligible = Credential::from(passkey).backup_eligible;
    auth.login_with(&user, proved(backup_eligible, raw_id.clone()))
        .await?;
    let body = json!({ "username": user.username, "id": super::encode_id(&raw_id), "name": name });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The passkey a registration produced, if `credential` verifies against
/// it.
fn verify_registration(
    relying_party: &Webauthn,
    credential: &RegisterPublicKeyCredential,
    registration: Registration,
) -> Option<(Registration, Passkey)> {
    let passkey = relying_party
        .finish_passkey_registration(credential, &registration.state)
        .ok()?;
    Some((registration, passkey))
}

/// `GET /api/passkeys`: the signed-in user's passkeys, oldest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthSession<User>,
) -> Result<Response, AppError> {
    let Some(user) = auth.user() else {
        return Ok(not_signed_in());
    };
    let passkeys: Vec<Value> = state
        .users
        .passkeys_of(user.id)
        .await?
        .into_iter()
        .map(
            |Listed {
                 id,
                 name,
                 created_at,
             }| {
                json!({ "id": id, "name": name, "created_at": rfc3339(from_secs(created_at)) })
            },
        )
        .collect();
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    Ok((no_store, Json(json!({ "passkeys": passkeys }))).into_response())
}

/// `DELETE /api/passkeys/{id}`: `204` when removed (the sessions it proved
/// end), `404` when the user has no such passkey, `409` when it is the
/// last way into an account without a password, `401` when anonymous,
/// `403` outside the re-authentication window.
pub(crate) async fn delete(
    State(state): State<AppState>,
    recent: Result<RecentAuth<User>, AuthRejection>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let user = match recent {
        Ok(RecentAuth(user)) => user,
        Err(AuthRejection::LoginRequired { .. } | AuthRejection::Unauthenticated) => {
            return Ok(not_signed_in())
        }
        Err(rejection) => return Ok(rejection.into_response()),
    };
    Ok(match super::remove(&state, &user, &id).await? {
        Removal::Removed => StatusCode::NO_CONTENT.into_response(),
        Removal::NotFound => error(StatusCode::NOT_FOUND, "no such passkey"),
        Removal::LastWayIn => error(StatusCode::CONFLICT, LAST_WAY_IN),
    })
}

/// A name for a new passkey of `user`: where it was made ("Chrome 156 on
/// Linux"), numbered when the user has one by that name already.
async fn new_name(state: &AppState, user: i64, headers: &HeaderMap) -> Result<String, AppError> {
    let taken: Vec<String> = state
        .users
        .passkeys_of(user)
        .await?
        .into_iter()
        .map(|listed| listed.name)
        .collect();
    Ok(passkey_name(headers, &taken))
}

/// The browser's name from `User-Agent`, else "Passkey"; " 2", " 3"… added
/// until it is none of `taken`.
fn passkey_name(headers: &HeaderMap, taken: &[String]) -> String {
    let base = headers
        .get(header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .and_then(device_name)
        .unwrap_or_else(|| "Passkey".to_owned());
    (1..)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                format!("{base} {n}")
            }
        })
        .find(|name| !taken.contains(name))
        .unwrap_or(base)
}

/// Now, in whole seconds since the Unix epoch.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A stored creation time as a moment.
pub(crate) fn from_secs(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}
