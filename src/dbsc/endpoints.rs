//! The two endpoints a device-bound session needs: registration and
//! refresh.

use axum::{
    extract::Request,
    http::{header, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{json, Value};
use tower_sessions::Session;

use super::{
    bound, fields,
    proof::{self, DeviceKey, ProofError},
    state::{self, Device, Purpose},
    DeviceBinding,
};
use crate::{
    backend::SessionUser,
    config::{Checked, Context},
    ending,
    events::{AuthEventKind, RequestInfo},
    identity::Identity,
    record::{AuthRecord, EndReason},
    registry::user_key,
    rejection::failure_response,
    times::{millis, UnixMillis},
    unproven::Unproven,
};

/// The request header carrying a proof.
const RESPONSE: HeaderName = HeaderName::from_static("secure-session-response");
/// The request header naming the session to refresh.
const SESSION_ID: HeaderName = HeaderName::from_static("sec-secure-session-id");
/// The response header carrying a challenge.
const CHALLENGE: HeaderName = HeaderName::from_static("secure-session-challenge");

/// The longest registration body read: a proof is at most 8 KiB.
const MAX_BODY: usize = 16 * 1024;

/// What both endpoints read off the request.
struct Setup {
    session: Session,
    context: Context,
    claim: Option<crate::record::Claim>,
}

impl Setup {
    fn of(request: &Request) -> Option<(Self, DeviceBinding)> {
        let session = request.extensions().get::<Session>()?.clone();
        let Checked { context, claim, .. } = request.extensions().get::<Checked>()?.clone();
        let binding = context.device.clone()?;
        Some((
            Self {
                session,
                context,
                claim,
            },
            binding,
        ))
    }

    fn now(&self) -> UnixMillis {
        self.context.times.clock.now_ms()
    }

    /// What the events record of `request`, when the layer has events.
    fn request_info(&self, request: &Request) -> Option<RequestInfo> {
        let events = self.context.events.as_ref()?;
        Some(
            events
                .capture()
                .request_info(request.headers(), request.extensions()),
        )
    }

    /// The layer's answer to a failure of the session store or the
    /// registry (its `failure_status`), logged.
    fn failed(&self, error: &(dyn std::error::Error + 'static)) -> Response {
        tracing::error!(error, "device binding failed");
        failure_response(self.context.failure_status)
    }

    fn emit<U: SessionUser>(&self, kind: AuthEventKind, user: &U, info: Option<&RequestInfo>) {
        if let (Some(events), Some(info)) = (&self.context.events, info) {
            events.emit(kind, Some(user.id()), info.clone());
        }
    }
}

/// `POST` to the registration path: binds the signed-in session to the
/// device whose key signed the registration proof.
///
/// The proof (a `dbsc+jwt`, ES256 or RS256, with its public key in the
/// header and the challenge offered at sign-in as its `jti`) comes in the
/// `Secure-Session-Response` header or, as the body, alone. Then the key is
/// kept in the session's record, the challenge is spent, the session id
/// changes, and the answer is `200` with the session instructions
/// (`session_identifier`, `refresh_url`, `scope`, `credentials`) and a
/// bound cookie.
///
/// Refused, with nothing changed: an anonymous request (`401`), a session
/// bound already (`409`), a proof that does not verify or does not answer
/// this session's pending challenge (`400`). A layer without
/// [`DeviceBinding`] or a session layer answers `500`.
pub async fn register<U: SessionUser>(request: Request) -> Response {
    let Some((setup, binding)) = Setup::of(&request) else {
        return misconfigured();
    };
    let Some(Identity::Authenticated(user)) = request.extensions().get::<Identity<U>>().cloned()
    else {
        return refused(StatusCode::UNAUTHORIZED, "not signed in");
    };
    match state::device(&setup.session).await {
        Ok(None) => {}
        Ok(Some(_)) => return refused(StatusCode::CONFLICT, "session already bound to a device"),
        Err(error) => return setup.failed(&error),
    }
    let info = setup.request_info(&request);
    let from_header = request
        .headers()
        .get(RESPONSE)
        .and_then(|value| fields::jwt_from_header(value.as_bytes()));
    let jwt = match from_header {
        Some(jwt) => jwt,
        None => match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
            Ok(body) => String::from_utf8_lossy(&body).trim().to_owned(),
            Err(_) => return refused(StatusCode::PAYLOAD_TOO_LARGE, "registration body too large"),
        },
    };
    let (key, claims) = match proof::verify_registration(&jwt) {
        Ok(verified) => verified,
        Err(error) => return refused_proof(&error),
    };
    let now = setup.now();
    match state::answer(&setup.session, Purpose::Registration, &claims.jti, now).await {
        Ok(true) => {}
        Ok(false) => return refused(StatusCode::BAD_REQUEST, "not this session's challenge"),
        Err(error) => return setup.failed(&error),
    }
    let Some(id) = Device::new_id() else {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "no randomness");
    };
    let device = Device {
        id,
        key: key.to_stored(),
    };
    if let Err(error) = state::bind(&setup.session, &device).await {
        return setup.failed(&error);
    }
    // A new id: the session cookie copied before the binding, and any
    // fast-path pass issued for it, sign nobody in.
    if let Err(error) = setup.session.cycle_id().await {
        return setup.failed(&error);
    }
    // The new id is unknown until the session layer saves it, so the
    // layer cannot keep the cookie's lifetime after this handler: kept
    // here, as a sign-in keeps it.
    if let Some(claim) = &setup.claim {
        setup
            .session
            .set_expiry(Some(claim.times.cookie_expiry(&setup.context.times)));
    }
    if let (Some(registry), Ok(key)) = (&setup.context.registry, user_key(&user.id())) {
        registry.announce(key);
    }
    // The key's RFC 7638 thumbprint names it in the logs: public, and the
    // same wherever the key is seen.
    let thumbprint = URL_SAFE_NO_PAD.encode(key.thumbprint());
    tracing::info!(
        algorithm = key.algorithm(),
        key = %thumbprint,
        "session bound to a device"
    );
    setup.emit(AuthEventKind::DeviceRegistered, &user, info.as_ref());
    let mut response = json(StatusCode::OK, &instructions(&binding, &device.id));
    if let Some(cookie) = bound_cookie(&setup, &binding, &device, now) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST` to the refresh path, with `Sec-Secure-Session-Id`: renews the
/// bound cookie of a device-bound session that proves its key.
///
/// - Without a proof: `403` and a new single-use challenge in
///   `Secure-Session-Challenge`, which the browser signs and sends back.
/// - With a proof (`Secure-Session-Response`) signed by the session's key
///   for its pending challenge: `200`, the session instructions and a new
///   bound cookie. For another challenge (an old or a spent one): `403`
///   and a new one.
/// - A proof signed by another key: the session ends
///   ([`EndReason::DeviceUnproven`]), the event
///   [`DeviceKeyMismatch`](AuthEventKind::DeviceKeyMismatch) is emitted, and
///   the answer is `403`.
/// - A session that ended, was never bound, or is named otherwise in
///   `Sec-Secure-Session-Id`: `401` with `{"continue": false}`, which ends
///   the browser's side too. A malformed proof: `400`, nothing changed.
pub async fn refresh<U: SessionUser>(request: Request) -> Response {
    let Some((setup, binding)) = Setup::of(&request) else {
        return misconfigured();
    };
    let extensions = request.extensions();
    let signed_in = match extensions.get::<Unproven<U>>() {
        Some(unproven) => Some((unproven.user.clone(), unproven.claim.clone())),
        None => match (extensions.get::<Identity<U>>(), &setup.claim) {
            (Some(Identity::Authenticated(user)), Some(claim)) => {
                Some((user.clone(), claim.clone()))
            }
            _ => None,
        },
    };
    let Some((user, claim)) = signed_in else {
        return discontinued();
    };
    let device = match state::device(&setup.session).await {
        Ok(Some(device)) => device,
        Ok(None) => return discontinued(),
        Err(error) => return setup.failed(&error),
    };
    let named = request
        .headers()
        .get(SESSION_ID)
        .and_then(|value| fields::parse_sf_string(value.as_bytes()));
    if !named.is_some_and(|id| device.is(&id)) {
        return discontinued();
    }
    let now = setup.now();
    let Some(jwt) = request
        .headers()
        .get(RESPONSE)
        .and_then(|value| fields::jwt_from_header(value.as_bytes()))
    else {
        return challenge(&setup, &binding, &device, now).await;
    };
    let key = match DeviceKey::from_stored(&device.key) {
        Ok(key) => key,
        Err(error) => return setup.failed(&error),
    };
    let claims = match proof::verify_refresh(&jwt, &key) {
        Ok(claims) => claims,
        Err(ProofError::Signature) => {
            let info = setup.request_info(&request);
            setup.emit(AuthEventKind::DeviceKeyMismatch, &user, info.as_ref());
            let record = AuthRecord {
                user_id: user.id(),
                claim,
            };
            let ended = ending::end(
                &setup.context,
                &setup.session,
                EndReason::DeviceUnproven,
                Some(&record),
            )
            .await;
            if let Err(error) = ended {
                return setup.failed(&error);
            }
            setup.emit(
                AuthEventKind::SessionEnded(EndReason::DeviceUnproven),
                &user,
                info.as_ref(),
            );
            return refused(StatusCode::FORBIDDEN, "proof signed by another key");
        }
        Err(error) => return refused_proof(&error),
    };
    match state::answer(&setup.session, Purpose::Refresh, &claims.jti, now).await {
        Ok(true) => {}
        Ok(false) => return challenge(&setup, &binding, &device, now).await,
        Err(error) => return setup.failed(&error),
    }
    let mut response = json(StatusCode::OK, &instructions(&binding, &device.id));
    if let Some(cookie) = bound_cookie(&setup, &binding, &device, now) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `403` with a new refresh challenge for `device`.
async fn challenge(
    setup: &Setup,
    binding: &DeviceBinding,
    device: &Device,
    now: UnixMillis,
) -> Response {
    let expires_at = now.saturating_add(millis(binding.challenge_lifetime));
    let value = match state::challenge(&setup.session, Purpose::Refresh, expires_at).await {
        Ok(Some(value)) => value,
        Ok(None) => return refused(StatusCode::SERVICE_UNAVAILABLE, "no randomness"),
        Err(error) => return setup.failed(&error),
    };
    let header = fields::challenge_header(&value, &device.id)
        .and_then(|header| HeaderValue::from_str(&header).ok());
    let mut response = refused(StatusCode::FORBIDDEN, "proof required");
    if let Some(header) = header {
        response.headers_mut().insert(CHALLENGE, header);
    }
    response
}

/// The session instructions of the draft: the session's identifier, where
/// to refresh, the scope (the whole origin that registered), and the one
/// bound cookie.
fn instructions(binding: &DeviceBinding, id: &str) -> Value {
    json!({
        "session_identifier": id,
        "refresh_url": binding.refresh_path,
        "scope": { "include_site": false, "scope_specification": [] },
        "credentials": [{
            "type": "cookie",
            "name": binding.cookie_name,
            "attributes": binding.cookie_attributes(),
        }],
    })
}

fn bound_cookie(
    setup: &Setup,
    binding: &DeviceBinding,
    device: &Device,
    now: UnixMillis,
) -> Option<HeaderValue> {
    let expires_at = now.saturating_add(millis(binding.lifetime));
    bound::seal_for(&setup.context.keys, device, expires_at)
        .and_then(|value| binding.set_cookie(&value))
}

/// `status` with a JSON body.
fn json(status: StatusCode, body: &Value) -> Response {
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    (status, content_type, body.to_string()).into_response()
}

/// `status` with `{"error": message}`.
fn refused(status: StatusCode, message: &str) -> Response {
    json(status, &json!({ "error": message }))
}

/// `400` naming what is wrong with a proof (never its content).
fn refused_proof(error: &ProofError) -> Response {
    refused(StatusCode::BAD_REQUEST, &format!("proof refused: {error}"))
}

/// `401` with `{"continue": false}`: the browser ends its side of a
/// session this server no longer has.
fn discontinued() -> Response {
    json(StatusCode::UNAUTHORIZED, &json!({ "continue": false }))
}

fn misconfigured() -> Response {
    tracing::error!(
        "a device-binding endpoint needs the session layer and an AuthLayer with_device_binding"
    );
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
}
