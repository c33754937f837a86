//! The rule that holds on every instance, with or without the `dbsc`
//! feature: a session bound to a device ([`crate::dbsc`]) is never signed
//! in on its session cookie alone, and what the layer keeps of a session
//! it refused for its device.

use axum::extract::Request;
use tower_sessions::{session, Session};

use crate::{backend::SessionUser, device::Gate, identity::Identity, record::Claim};

/// Where a device-bound session keeps its device in the session.
pub(crate) const DEVICE_KEY: &str = "tsa.device";

/// A signed-in session whose device did not prove itself on this request:
/// the request is anonymous, but a sign-in must still end this session
/// rather than take it over, and [`refresh`](crate::dbsc::refresh) renews
/// it from here.
#[derive(Clone)]
pub(crate) struct Unproven<U> {
    pub(crate) user: U,
    pub(crate) claim: Claim,
}

/// The device check of a layer that cannot check a device (no
/// [`DeviceBinding`], or built without the `dbsc` feature): a session bound
/// to a device on another instance is refused here, not signed in on the
/// cookie a thief copies.
///
/// # Errors
///
/// The session store's.
pub(crate) async fn without_binding<U: SessionUser>(
    session: &Session,
    request: &mut Request,
    user: &U,
    claim: &Claim,
) -> Result<Gate, session::Error> {
    if session.get_value(DEVICE_KEY).await?.is_none() {
        return Ok(Gate::Unbound);
    }
    tracing::warn!(
        "a device-bound session reached a layer without device binding: treated as signed out"
    );
    refuse(request, user, claim);
    Ok(Gate::Refused)
}

/// Makes `request` anonymous, keeping what a sign-in or a refresh needs to
/// know of the session it refused.
pub(crate) fn refuse<U: SessionUser>(request: &mut Request, user: &U, claim: &Claim) {
    let extensions = request.extensions_mut();
    extensions.insert(Identity::<U>::Anonymous);
    extensions.insert(Unproven {
        user: user.clone(),
        claim: claim.clone(),
    });
}
