//! The WebAuthn relying party of a request, and the ceremonies in progress.
//!
//! The relying party's id is the site's host and its origin the site's own
//! origin, as the cross-site check sees them ([`OriginPolicy`]):
//! `DEMO_ORIGIN` when set, else the request's `Host`. A ceremony's state
//! (its challenge, what it may produce) waits in the session between its
//! start and its finish, so the two requests may reach different
//! instances; the finish takes it out, so each challenge is answered once.

use axum::http::{HeaderMap, Uri};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_sessions::Session;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, PasskeyRegistration, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use crate::{
    error::AppError,
    guard::{request_host, OriginPolicy},
};

/// What a passkey route answers when the site is reached by an address
/// rather than a name: WebAuthn binds credentials to a domain.
pub(crate) const NEEDS_HOST_NAME: &str =
    "passkeys need a host name: open this site as localhost, not by its IP address";

/// The relying party for a request to this site, `Ok(None)` when the
/// site's origin has no host name (an IP address, or no `Host` at all).
pub(crate) fn for_request(
    policy: &OriginPolicy,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Option<Webauthn>, AppError> {
    let Some(origin) = policy
        .own_origin(request_host(headers, uri))
        .and_then(|origin| Url::parse(&origin).ok())
    else {
        return Ok(None);
    };
    let Some(rp_id) = origin.domain() else {
        return Ok(None);
    };
    let relying_party = WebauthnBuilder::new(rp_id, &origin)
        .and_then(|builder| builder.rp_name("tower-sessions-auth demo").build())
        .map_err(|err| AppError::Passkey(format!("relying party for {origin}: {err}")))?;
    Ok(Some(relying_party))
}

/// A passkey registration in progress: for a signed-in user adding one,
/// or for a new account.
#[derive(Serialize, Deserialize)]
pub(crate) struct Registration {
    /// The signed-in user adding a passkey; `None` when signing up.
    pub(crate) owner: Option<i64>,
    /// The account's name (the new account's, when signing up).
    pub(crate) username: String,
    /// The WebAuthn user handle the passkey is made for.
    pub(crate) handle: Uuid,
    pub(crate) state: PasskeyRegistration,
}

const REGISTRATION: &str = "demo.passkey.registration";
const SIGN_IN: &str = "demo.passkey.sign_in";

/// Starts a registration and keeps its state in `session`; returns the
/// options for `navigator.credentials.create`.
///
/// The passkey must be discoverable (kept by the authenticator with the
/// user handle), since signing in names no user: webauthn-rs leaves that
/// to the authenticator, so the options ask for it.
pub(crate) async fn start_registration(
    relying_party: &Webauthn,
    session: &Session,
    owner: Option<i64>,
    username: &str,
    handle: Uuid,
    existing: Vec<CredentialID>,
) -> Result<Value, AppError> {
    let (options, state) = relying_party
        .start_passkey_registration(handle, username, username, Some(existing))
        .map_err(|err| AppError::Passkey(err.to_string()))?;
    let mut options =
        serde_json::to_value(options).map_err(|err| AppError::Passkey(err.to_string()))?;
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    let registration = Registration {
        owner,
        username: username.to_owned(),
        handle,
        state,
    };
    session.insert(REGISTRATION, registration).await?;
    Ok(options)
}

/// The registration in progress, taken out of `session`.
pub(crate) async fn take_registration(session: &Session) -> Result<Option<Registration>, AppError> {
    Ok(session.remove(REGISTRATION).await?)
}

/// Starts a sign-in with a discoverable passkey and keeps its state in
/// `session`; returns the options for `navigator.credentials.get`, which
/// name no credential: the authenticator offers the user's.
pub(crate) async fn start_sign_in(
    relying_party: &Webauthn,
    session: &Session,
) -> Result<Value, AppError> {
    let (mut options, state) = relying_party
        .start_discoverable_authentication()
        .map_err(|err| AppError::Passkey(err.to_string()))?;
    // webauthn-rs asks for conditional mediation (autofill); the pages
    // sign in from a button instead.
    options.mediation = None;
    // Whether the ceremony makes the session: a request without one (or
    // with the cookie of one that is gone) has no id until it is saved.
    let session_is_new = session.id().is_none();
    let ceremony = SignIn {
        state,
        session_is_new,
    };
    session.insert(SIGN_IN, ceremony).await?;
    serde_json::to_value(options).map_err(|err| AppError::Passkey(err.to_string()))
}

/// A sign-in with a passkey in progress.
#[derive(Serialize, Deserialize)]
pub(crate) struct SignIn {
    pub(crate) state: DiscoverableAuthentication,
    /// The session was made for this ceremony: a failed sign-in leaves
    /// nothing of it. Any other session (a cart, a session whose device
    /// must prove itself) is the visitor's to keep.
    pub(crate) session_is_new: bool,
}

/// The sign-in in progress, taken out of `session`.
pub(crate) async fn take_sign_in(session: &Session) -> Result<Option<SignIn>, AppError> {
    Ok(session.remove(SIGN_IN).await?)
}
