//! The layer's side of device binding: offering registration after a
//! sign-in, and refusing a bound session's cookie without its bound
//! cookie.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue},
};
use tower_sessions::{session, Session};
use tracing::Span;

use super::{
    bound, fields,
    state::{self, Device},
    DeviceBinding, DeviceProofRequired,
};
use crate::{
    backend::SessionUser,
    config::Context,
    device::Gate,
    ending,
    events::AuthEventKind,
    identity::{Identity, SessionEnded},
    record::{AuthRecord, Claim, EndReason},
    times::{millis, UnixMillis},
    unproven,
};

/// The request header by which a browser says it skipped a refresh.
const SKIPPED: HeaderName = HeaderName::from_static("secure-session-skipped");

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

/// Checks a request whose session the validity rule found holding for
/// `user`: a session bound to a device needs a valid bound cookie for it.
///
/// Without one, the request is made anonymous here: it carries
/// [`DeviceProofRequired`] and, for a sign-in or
/// [`refresh`](super::refresh), the user and claim it would have had.
/// Unless it is at the binding's own endpoints or the browser says it
/// skipped this session's refresh, the event
/// [`DeviceProofMissing`](AuthEventKind::DeviceProofMissing) is emitted
/// and, if the binding says so, the session ends. A session whose device
/// cannot be read ends as [`EndReason::Malformed`].
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
        return Ok(unproven::without_binding(session, request, user, claim).await?);
    };
    let device = match state::device(session).await {
        Ok(Some(device)) => device,
        Ok(None) => return Ok(Gate::Unbound),
        Err(session::Error::SerdeJson(_)) => {
            end(context, session, request, user, claim, EndReason::Malformed).await?;
            return Ok(Gate::Refused);
        }
        Err(error) => return Err(error.into()),
    };
    if bound::presented(binding, &context.keys, request.headers(), &device, now) {
        return Ok(Gate::Proven);
    }
    let suspicious = is_suspicious(binding, &device, request.uri().path(), request.headers());
    Span::current().record("device", "unproven");
    request.extensions_mut().insert(DeviceProofRequired);
    if suspicious {
        tracing::warn!("a device-bound session's cookie came without its bound cookie");
        emit(context, request, AuthEventKind::DeviceProofMissing, user);
    }
    if suspicious && binding.end_on_missing_proof {
        end(
            context,
            session,
            request,
            user,
            claim,
            EndReason::DeviceUnproven,
        )
        .await?;
    } else {
        unproven::refuse(request, user, claim);
    }
    Ok(Gate::Refused)
}

/// Ends the session of `user` for `reason`, as the layer ends one that no
/// longer holds: the request is anonymous and carries [`SessionEnded`],
/// and the event [`SessionEnded`](AuthEventKind::SessionEnded) is emitted.
async fn end<U: SessionUser>(
    context: &Context,
    session: &Session,
    request: &mut Request,
    user: &U,
    claim: &Claim,
    reason: EndReason,
) -> Result<(), ending::EndFailure> {
    let record = AuthRecord {
        user_id: user.id(),
        claim: claim.clone(),
    };
    ending::end(context, session, reason, Some(&record)).await?;
    let span = Span::current();
    span.record("outcome", "ended");
    span.record("reason", reason.as_str());
    emit(context, request, AuthEventKind::SessionEnded(reason), user);
    let extensions = request.extensions_mut();
    extensions.insert(Identity::<U>::Anonymous);
    extensions.insert(SessionEnded::new(reason));
    Ok(())
}

fn emit<U: SessionUser>(context: &Context, request: &Request, kind: AuthEventKind, user: &U) {
    if let Some(events) = &context.events {
        let info = events
            .capture()
            .request_info(request.headers(), request.extensions());
        events.emit(kind, Some(user.id()), info);
    }
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
/// it skipped this session's refresh on purpose (a header naming another
/// session, or none, does not count).
fn is_suspicious(
    binding: &DeviceBinding,
    device: &Device,
    path: &str,
    headers: &HeaderMap,
) -> bool {
    let skipped = headers
        .get_all(SKIPPED)
        .iter()
        .flat_map(|value| fields::skipped_sessions(value.as_bytes()))
        .any(|id| device.is(&id));
    path != binding.refresh_path && path != binding.registration_path && !skipped
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
