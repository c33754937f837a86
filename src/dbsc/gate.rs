//! The layer's side of device binding: offering registration after a
//! sign-in, and refusing a bound session's cookie without its bound
//! cookie.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue},
};
use tower_sessions::{session, Session};
use tracing::Span;

use super::{bound, fields, state, DeviceBinding, DeviceProofRequired};
use crate::{
    backend::SessionUser,
    config::Context,
    device::Gate,
    ending,
    events::AuthEventKind,
    identity::{Identity, SessionEnded},
    record::{AuthRecord, Claim, EndReason},
    times::{millis, UnixMillis},
};

/// Set by a sign-in during the request; the layer then offers
/// registration on its response.
#[derive(Clone, Debug, Default)]
pub(crate) struct Offer(Arc<AtomicBool>);

impl Offer {
    /// A sign-in happened: offer registration.
    pub(crate) fn ask(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn asked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A signed-in session whose device did not prove itself on this request:
/// what [`refresh`](super::refresh) needs to renew the bound cookie, or to
/// end the session.
#[derive(Clone)]
pub(crate) struct Unproven<U> {
    pub(crate) user: U,
    pub(crate) claim: Claim,
}

/// Checks a request whose session the validity rule found holding for
/// `user`: a session bound to a device needs a valid bound cookie for it.
///
/// Without one, the request is made anonymous here: it carries
/// [`DeviceProofRequired`] and, for [`refresh`](super::refresh), the user
/// and claim it would have had. Unless it is at the binding's own
/// endpoints or the browser says it skipped a refresh, the event
/// [`DeviceProofMissing`](AuthEventKind::DeviceProofMissing) is emitted and,
/// if the binding says so, the session ends.
///
/// # Errors
///
/// When the session store fails (reading the device), or ending the
/// session does.
pub(crate) async fn gate<U: SessionUser>(
    context: &Context,
    session: &Session,
    request: &mut Request,
    user: &U,
    claim: &Claim,
    now: UnixMillis,
) -> Result<Gate, GateError> {
    let Some(binding) = &context.device else {
        return Ok(Gate::Unbound);
    };
    let Some(device) = state::device(session).await? else {
        return Ok(Gate::Unbound);
    };
    if bound::presented(binding, &context.keys, request.headers(), &device, now) {
        return Ok(Gate::Proven);
    }
    let suspicious = is_suspicious(binding, request.uri().path(), request.headers());
    Span::current().record("device", "unproven");
    if suspicious {
        tracing::warn!("a device-bound session's cookie came without its bound cookie");
        if let Some(events) = &context.events {
            let info = events
                .capture()
                .request_info(request.headers(), request.extensions());
            events.emit(AuthEventKind::DeviceProofMissing, Some(user.id()), info);
        }
    }
    let extensions = request.extensions_mut();
    extensions.insert(Identity::<U>::Anonymous);
    extensions.insert(DeviceProofRequired);
    if suspicious && binding.end_on_missing_proof {
        let record = AuthRecord {
            user_id: user.id(),
            claim: claim.clone(),
        };
        let reason = EndReason::DeviceUnproven;
        ending::end(context, session, reason, Some(&record)).await?;
        extensions.insert(SessionEnded::new(reason));
    } else {
        extensions.insert(Unproven {
            user: user.clone(),
            claim: claim.clone(),
        });
    }
    Ok(Gate::Refused)
}

/// Why the device check could not decide.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GateError {
    #[error("reading the session's device failed")]
    Store(#[from] session::Error),
    #[error("ending a session that did not prove its device failed")]
    End(#[from] ending::EndFailure),
}

/// Whether a request without its bound cookie is suspicious: not at the
/// endpoints that exist for exactly that, and not when the browser says
/// it skipped a refresh on purpose.
fn is_suspicious(binding: &DeviceBinding, path: &str, headers: &HeaderMap) -> bool {
    path != binding.refresh_path
        && path != binding.registration_path
        && !headers.contains_key("secure-session-skipped")
}

/// The `Secure-Session-Registration` header for the response of a request
/// that signed a user in, with a new registration challenge kept in the
/// session; `None` when nobody signed in, the session is bound already, or
/// no challenge could be made.
///
/// # Errors
///
/// The session store's.
pub(crate) async fn offer(
    binding: &DeviceBinding,
    offer: &Offer,
    session: &Session,
    now: UnixMillis,
) -> Result<Option<HeaderValue>, session::Error> {
    if !offer.asked() || state::device(session).await?.is_some() {
        return Ok(None);
    }
    let expires_at = now.saturating_add(millis(binding.challenge_lifetime));
    let Some(challenge) =
        state::challenge(session, state::Purpose::Registration, expires_at).await?
    else {
        return Ok(None);
    };
    Ok(
        fields::registration_header(&["ES256", "RS256"], &binding.registration_path, &challenge)
            .and_then(|value| HeaderValue::from_str(&value).ok()),
    )
}
