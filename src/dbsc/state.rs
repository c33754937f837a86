//! What a device-bound session keeps in its tower-sessions record: the
//! device's public key and the session identifier the browser knows it by,
//! and the one challenge it may answer next.
//!
//! Both live in the session store, which every instance shares: a browser
//! may register on one instance and refresh on another.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tower_sessions::{session, Session};

use crate::{times::UnixMillis, unproven::DEVICE_KEY};

/// Where the pending challenge lives in the session.
const CHALLENGE_KEY: &str = "tsa.device.challenge";

/// The device a session is bound to.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Device {
    /// The DBSC session identifier: random, unpadded base64url. The bound
    /// cookie names it, and `Sec-Secure-Session-Id` must.
    pub(crate) id: String,
    /// The public key, as [`DeviceKey::to_stored`](super::proof::DeviceKey::to_stored)
    /// writes it.
    pub(crate) key: String,
}

impl Device {
    /// A new identifier: 16 random bytes; `None` when the OS gives no
    /// randomness.
    pub(crate) fn new_id() -> Option<String> {
        random_text()
    }

    /// Whether `id` (from a header or a cookie) names this device, compared
    /// in constant time.
    pub(crate) fn is(&self, id: &str) -> bool {
        bool::from(self.id.as_bytes().ct_eq(id.as_bytes()))
    }
}

/// What a challenge is for: a registration answers the one offered at
/// sign-in, a refresh the one its last `403` sent.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Purpose {
    Registration,
    Refresh,
}

/// The challenge a proof must carry as its `jti`: single-use, and only
/// until `expires_at`.
#[derive(Serialize, Deserialize)]
struct Challenge {
    value: String,
    purpose: Purpose,
    expires_at: UnixMillis,
}

/// The device this session is bound to, if any.
pub(crate) async fn device(session: &Session) -> Result<Option<Device>, session::Error> {
    session.get(DEVICE_KEY).await
}

/// Binds the session to `device`; the pending challenge is spent.
pub(crate) async fn bind(session: &Session, device: &Device) -> Result<(), session::Error> {
    session.remove_value(CHALLENGE_KEY).await?;
    session.insert(DEVICE_KEY, device).await
}

/// A new challenge for `purpose`, kept in the session until `expires_at`
/// in place of any earlier one; `Ok(None)` when the OS gives no randomness.
pub(crate) async fn challenge(
    session: &Session,
    purpose: Purpose,
    expires_at: UnixMillis,
) -> Result<Option<String>, session::Error> {
    let Some(value) = random_text() else {
        return Ok(None);
    };
    let challenge = Challenge {
        value: value.clone(),
        purpose,
        expires_at,
    };
    session.insert(CHALLENGE_KEY, challenge).await?;
    Ok(Some(value))
}

/// Spends the pending challenge if `jti` answers it: of this `purpose`, not
/// expired at `now`, equal in constant time. Anything else changes nothing
/// and answers `false`.
pub(crate) async fn answer(
    session: &Session,
    purpose: Purpose,
    jti: &str,
    now: UnixMillis,
) -> Result<bool, session::Error> {
    let Some(pending) = session.get::<Challenge>(CHALLENGE_KEY).await? else {
        return Ok(false);
    };
    let answers = pending.purpose == purpose
        && now < pending.expires_at
        && bool::from(pending.value.as_bytes().ct_eq(jti.as_bytes()));
    if answers {
        session.remove_value(CHALLENGE_KEY).await?;
    }
    Ok(answers)
}

/// 32 random bytes as unpadded base64url: what a challenge or an
/// identifier is made of (printable, so that it fits a structured-field
/// string).
fn random_text() -> Option<String> {
    let mut bytes = [0_u8; 32];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}
