//! Device-bound sessions (DBSC): a stolen session cookie is worthless off
//! the device that signed in.
//!
//! Enable the `dbsc` feature and add [`DeviceBinding`] to the layer with
//! [`AuthLayer::with_device_binding`](crate::AuthLayer::with_device_binding),
//! then route its two endpoints to [`register`] and [`refresh`]. The
//! protocol is the W3C WebAppSec *Device Bound Session Credentials*
//! editor's draft as of February 2026 (w3c/webappsec-dbsc at `d346811`, the
//! header names of the 2025 rename), which Chrome ships:
//!
//! 1. **Registration.** Every response that signs a user in offers it:
//!    `Secure-Session-Registration: (ES256 RS256);path="…";challenge="…"`.
//!    A browser with DBSC makes a key pair (in a TPM where it has one) and
//!    posts a `dbsc+jwt` signed with it, the public key in its header, the
//!    challenge as its `jti`. [`register`] verifies it, keeps the public
//!    key in the session's record, changes the session id, and answers the
//!    session instructions (identifier, refresh URL, scope: the whole
//!    origin, the one bound cookie) with a first bound cookie.
//! 2. **The bound cookie** lives minutes ([`DeviceBinding::with_lifetime`],
//!    default 10). From registration on, the session is signed in only
//!    with it; its session cookie alone, what an infostealer copies, is
//!    anonymous, and the request carries [`DeviceProofRequired`].
//! 3. **Refresh.** When the bound cookie is about to expire, the browser
//!    posts to [`refresh`] with `Sec-Secure-Session-Id`: it gets a
//!    challenge (`403` and `Secure-Session-Challenge`), signs it with the
//!    device's key, and gets a new bound cookie. Challenges are single-use,
//!    expire ([`DeviceBinding::with_challenge_lifetime`]), and live in the
//!    session store, so a refresh works on any instance.
//! 4. **Endings.** A session that ends for any reason of the validity rule
//!    (sign-out, revocation, password change, lifetimes…) has no record
//!    left: its refreshes are refused (`401`, `{"continue": false}`, which
//!    ends the browser's DBSC session too) and its bound cookie names a
//!    device no record knows.
//!
//! # Security
//!
//! **What it stops.** Session cookies stolen from the device (infostealer
//! malware, a copied browser profile, a leaked cookie jar) and replayed
//! from elsewhere: without the device's private key, the thief's session
//! cookie is anonymous and its copy of the bound cookie expires within
//! the bound lifetime. Where the key is held in hardware (a TPM), malware
//! on the device cannot copy it either.
//!
//! **What it does not stop.** Malware running on the device while the user
//! is signed in can use the browser (and its key) as the user, and can
//! replay a bound cookie it copied until it expires: keep the lifetime
//! short. A browser without DBSC never registers; its session works as
//! before, with no such protection. A software-held key (Linux today) can
//! be copied with the profile. The registration itself trusts the browser
//! that signs in: sessions stolen before registration are not bound.
//!
//! **Signals.** A bound session's cookie arriving without a valid bound
//! cookie (except at the refresh endpoint, or when the browser says it
//! skipped a refresh with `Secure-Session-Skipped`) emits
//! [`AuthEventKind::DeviceProofMissing`](crate::events::AuthEventKind::DeviceProofMissing);
//! a refresh signed by another key emits
//! [`AuthEventKind::DeviceKeyMismatch`](crate::events::AuthEventKind::DeviceKeyMismatch)
//! and ends the session ([`EndReason::DeviceUnproven`](crate::EndReason::DeviceUnproven)).
//! [`DeviceBinding::end_session_on_missing_proof`] ends it on the first
//! signal too, at the cost of signing out a browser whose refresh failed.
//!
//! **Proofs.** Only ES256 and RS256 (RSA of 2048 to 4096 bits) are
//! accepted; `none`, `HS256` and every other algorithm are refused, as are
//! a key in a refresh proof, a proof over 8 KiB, a wrong `typ`, and a
//! challenge that is not the session's pending one. Every refusal is a
//! `4xx` that changes nothing, except a refresh signed by another key,
//! which ends the session.
//!
//! Device-bound sessions never take the [fast path](crate::fast_path): the
//! bound cookie is checked on each request against the session's record.
//! The bound cookie is `Secure` by default and still opens under a
//! [fallback secret](crate::AuthKeys::with_fallback): only the device can
//! renew it, so a rotation must not sign bound sessions out. It is taken a
//! tenth of its lifetime (at most 30 seconds) past its expiry, for a
//! request sent as the browser's copy ran out.
//!
//! **Every instance.** An instance without device binding (or built
//! without the `dbsc` feature) cannot check a device: it treats a bound
//! session as signed out rather than signing it in on its session cookie,
//! and issues it no pass. A request refused for its device records no
//! activity, so a thief's requests keep no session from idling out. A
//! sign-in on such a request ends the bound session (its registry entry
//! too) and starts a new one: the new sign-in never inherits the device,
//! the data or the entry of the session it could not prove. A
//! `Secure-Session-Skipped` counts only for the session it names.
//!
//! **Open connections.** A [live](crate::live) WebSocket or event stream
//! opened with a valid bound cookie is checked against the session, not
//! against the bound cookie, which a connection cannot renew: it lives
//! until the session ends (any of the endings above, including a refresh
//! signed by another key), not until its bound cookie would have expired.
//!
//! **Browsers.** Chrome registers where it has a platform key store
//! (Windows with a TPM, from Chrome 145/146). Chromium 156 on Linux did not
//! register against this crate, nor against a page sending the draft's own
//! header examples, with its developer flags for standard DBSC and for
//! software keys on, headless or not, over `http://localhost` or HTTPS:
//! the header arrives, the DBSC service runs, and no registration request
//! follows (the software-keys flag covers Google's own session binding).
//! The protocol is therefore tested with a device written in the tests.

mod bound;
mod endpoints;
mod fields;
mod gate;
mod proof;
mod state;

pub use self::endpoints::{refresh, register};
pub(crate) use self::gate::{gate, offer, Offer};
pub use crate::device::DeviceBinding;

/// On a request whose session is device-bound but came without a valid
/// bound cookie: the request is anonymous, and this says why, so that an
/// API can answer "device proof required" rather than "not signed in".
///
/// As an extractor, take `Option<DeviceProofRequired>`.
///
/// ```
/// use axum::{http::StatusCode, Json};
/// use tower_sessions_auth::dbsc::DeviceProofRequired;
///
/// async fn me(proof: Option<DeviceProofRequired>) -> (StatusCode, Json<serde_json::Value>) {
///     let error = if proof.is_some() { "device proof required" } else { "not signed in" };
///     (StatusCode::UNAUTHORIZED, Json(serde_json::json!({ "error": error })))
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceProofRequired;

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for DeviceProofRequired {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().copied())
    }
}
