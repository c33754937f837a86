//! Server secrets, key derivation and the session auth hash.
//!
//! The hash is `HMAC-SHA256(k, epoch_be64 || credential)` where
//! `k = HMAC-SHA256(secret, KEY_SALT)`. The epoch has a fixed width, so the
//! message is unambiguous. The tag is stored base64url-encoded without
//! padding: 43 characters.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{backend::SessionUser, error::KeyError};

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: the same secret used elsewhere (cookie signing, CSRF
/// tokens) yields unrelated keys here.
const KEY_SALT: &[u8] = b"tower-sessions-auth.session-auth-hash.v1";

/// Domain separation for [`AuthKeys::log_fingerprint`]: a key of its own, so
/// nothing that is logged relates to the auth hashes.
const LOG_SALT: &[u8] = b"tower-sessions-auth.log-fingerprint.v1";

/// The shortest secret [`AuthKeys`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Length of a decoded tag (SHA-256 output).
const TAG_LEN: usize = 32;

/// Length of a tag in its stored form: 32 bytes in unpadded base64.
pub(crate) const STORED_HASH_LEN: usize = 43;

/// The server secrets that sign session auth hashes: one current secret and
/// any number of older fallbacks, tried in order.
///
/// Sessions signed under a fallback are still accepted, and re-signed under
/// the current secret on their next request, so a secret can be rotated
/// without logging anybody out: deploy the new secret with the old one as a
/// fallback, and drop the fallback once every active session has been seen
/// (or the session expiry has passed).
///
/// # Security
///
/// Each secret must hold at least [`MIN_SECRET_LEN`] bytes of high-entropy
/// data (for example 32 random bytes, or a long random string). `Debug`
/// prints only how many fallbacks there are. Only derived keys are kept in
/// memory, never the secrets themselves.
///
/// # Example
///
/// ```
/// use tower_sessions_auth::AuthKeys;
///
/// let keys = AuthKeys::new(b"a current secret of at least 32 bytes!!")?
///     .with_fallback(b"the previous secret, also 32 bytes or more")?;
/// assert_eq!(format!("{keys:?}"), "AuthKeys { current: <redacted>, fallbacks: 1 }");
///
/// assert!(AuthKeys::new(b"too short").is_err());
/// # Ok::<(), tower_sessions_auth::KeyError>(())
/// ```
#[derive(Clone)]
pub struct AuthKeys {
    current: SigningKey,
    fallbacks: Vec<SigningKey>,
    log: SigningKey,
}

/// The result of [`AuthKeys::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// Signed under the current secret.
    Current,
    /// Signed under a fallback secret: valid, but due for re-signing.
    Fallback,
    /// Signed under no known secret, or for other credentials.
    Mismatch,
}

impl AuthKeys {
    /// Creates keys from the current secret.
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] when the secret is shorter than
    /// [`MIN_SECRET_LEN`] bytes.
    pub fn new(current: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let secret = current.as_ref();
        Ok(Self {
            current: SigningKey::derive(secret, KEY_SALT)?,
            fallbacks: Vec::new(),
            log: SigningKey::derive(secret, LOG_SALT)?,
        })
    }

    /// Adds an older secret that is still accepted. Fallbacks are tried in
    /// the order they were added.
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] when the secret is shorter than
    /// [`MIN_SECRET_LEN`] bytes.
    pub fn with_fallback(mut self, secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        self.fallbacks
            .push(SigningKey::derive(secret.as_ref(), KEY_SALT)?);
        Ok(self)
    }

    /// Adds several older secrets, in order. See [`with_fallback`](Self::with_fallback).
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] for the first secret that is too short.
    pub fn with_fallbacks<I>(self, secrets: I) -> Result<Self, KeyError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        secrets.into_iter().try_fold(self, Self::with_fallback)
    }

    /// Returns the auth hash of `user` under the current secret, in its
    /// stored form (43 characters of base64url).
    ///
    /// The layer and [`AuthSession`](crate::AuthSession) call this for you;
    /// it is public for checks outside an HTTP request (a WebSocket that
    /// outlives it, say) and for benchmarks.
    #[must_use]
    pub fn sign<U: SessionUser>(&self, user: &U) -> String {
        URL_SAFE_NO_PAD.encode(self.current.tag(user))
    }

    /// Checks a stored hash against `user`: first under the current secret,
    /// then under each fallback.
    ///
    /// # Note
    ///
    /// Each comparison is constant time (`Mac::verify_slice`). Decoding the
    /// stored value is not, and neither is the number of secrets tried; the
    /// stored value comes from the server-side session store, not from the
    /// client.
    #[must_use]
    pub fn verify<U: SessionUser>(&self, user: &U, stored: &str) -> Verification {
        let mut tag = [0_u8; TAG_LEN];
        match URL_SAFE_NO_PAD.decode_slice(stored, &mut tag) {
            Ok(TAG_LEN) => {}
            _ => return Verification::Mismatch,
        }
        if self.current.verify(user, &tag) {
            Verification::Current
        } else if self.fallbacks.iter().any(|key| key.verify(user, &tag)) {
            Verification::Fallback
        } else {
            Verification::Mismatch
        }
    }
}

impl AuthKeys {
    /// A short keyed fingerprint of a session id, for logs: 16 hex digits
    /// that correlate the lines about one session without revealing the id
    /// (OWASP: log a salted hash of a session id, never the id).
    pub(crate) fn log_fingerprint(&self, session_id: &str) -> String {
        let mac = self.log.0.clone().chain_update(session_id).finalize();
        mac.into_bytes()[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKeys")
            .field("current", &format_args!("<redacted>"))
            .field("fallbacks", &self.fallbacks.len())
            .finish()
    }
}

/// An HMAC state already keyed with the derived key, cloned per use so that
/// each hash costs only the compressions of its message and the outer
/// digest (three for a typical argon2 PHC string), not a key schedule.
#[derive(Clone)]
struct SigningKey(HmacSha256);

impl SigningKey {
    fn derive(secret: &[u8], salt: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort {
                len: secret.len(),
                min: MIN_SECRET_LEN,
            });
        }
        let derived = keyed(secret).chain_update(salt).finalize().into_bytes();
        Ok(Self(keyed(&derived)))
    }

    fn mac_of<U: SessionUser>(&self, user: &U) -> HmacSha256 {
        self.0
            .clone()
            .chain_update(user.session_epoch().to_be_bytes())
            .chain_update(user.credential())
    }

    fn tag<U: SessionUser>(&self, user: &U) -> [u8; TAG_LEN] {
        self.mac_of(user).finalize().into_bytes().into()
    }

    fn verify<U: SessionUser>(&self, user: &U, tag: &[u8]) -> bool {
        self.mac_of(user).verify_slice(tag).is_ok()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `InvalidLength` cannot occur.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct User {
        credential: &'static str,
        epoch: u64,
    }

    impl SessionUser for User {
        type Id = u64;
        fn id(&self) -> u64 {
            1
        }
        fn credential(&self) -> &[u8] {
            self.credential.as_bytes()
        }
        fn session_epoch(&self) -> u64 {
            self.epoch
        }
    }

    const SECRET_A: &[u8] = b"0123456789abcdef0123456789abcdef";
    const SECRET_B: &[u8] = b"another secret, also long enough!";
    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn user(epoch: u64) -> User {
        User {
            credential: PHC,
            epoch,
        }
    }

    /// Computed independently with Python 3.11:
    ///
    /// ```python
    /// import hmac, hashlib, base64
    /// k = hmac.new(b"0123456789abcdef0123456789abcdef",
    ///              b"tower-sessions-auth.session-auth-hash.v1", hashlib.sha256).digest()
    /// phc = b"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
    /// for epoch in (0, 7):
    ///     tag = hmac.new(k, epoch.to_bytes(8, "big") + phc, hashlib.sha256).digest()
    ///     print(base64.urlsafe_b64encode(tag).rstrip(b"=").decode())
    /// ```
    #[test]
    fn known_answers() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        assert_eq!(keys.sign(&user(0)), KAT_EPOCH_0);
        assert_eq!(keys.sign(&user(7)), KAT_EPOCH_7);
    }

    const KAT_EPOCH_0: &str = "iJrSgUXLcbJg1N3uQ7LHtXFof-5f7ILEYAvztu6gh3U";
    const KAT_EPOCH_7: &str = "9sn6WNDjlxPAC9NcH_6GslgrTe1hm2NnrVGIJFuvick";

    #[test]
    fn stored_form_is_compact() {
        let hash = AuthKeys::new(SECRET_A).unwrap().sign(&user(0));
        assert_eq!(hash.len(), STORED_HASH_LEN);
        assert!(hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn verifies_under_current_secret() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let hash = keys.sign(&user(0));
        assert_eq!(keys.verify(&user(0), &hash), Verification::Current);
    }

    #[test]
    fn changed_credential_or_epoch_mismatches() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let hash = keys.sign(&user(0));
        let other = User {
            credential: "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA",
            epoch: 0,
        };
        assert_eq!(keys.verify(&other, &hash), Verification::Mismatch);
        assert_eq!(keys.verify(&user(1), &hash), Verification::Mismatch);
    }

    #[test]
    fn fallback_secret_verifies_as_fallback() {
        let old = AuthKeys::new(SECRET_A).unwrap();
        let rotated = AuthKeys::new(SECRET_B)
            .unwrap()
            .with_fallbacks([SECRET_A])
            .unwrap();
        let hash = old.sign(&user(3));
        assert_eq!(rotated.verify(&user(3), &hash), Verification::Fallback);
        assert_eq!(
            AuthKeys::new(SECRET_B).unwrap().verify(&user(3), &hash),
            Verification::Mismatch
        );
    }

    #[test]
    fn garbage_and_truncated_hashes_mismatch() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let hash = keys.sign(&user(0));
        for stored in ["", "not base64 at all!", &hash[..42], &format!("{hash}AA")] {
            assert_eq!(keys.verify(&user(0), stored), Verification::Mismatch);
        }
    }

    #[test]
    fn short_secrets_are_rejected() {
        let err = AuthKeys::new([0_u8; 31]).unwrap_err();
        assert_eq!(err, KeyError::TooShort { len: 31, min: 32 });
        assert!(err.to_string().contains("32"));
        let err = AuthKeys::new(SECRET_A)
            .unwrap()
            .with_fallbacks([SECRET_B, b"short".as_slice()])
            .unwrap_err();
        assert_eq!(err, KeyError::TooShort { len: 5, min: 32 });
    }

    #[test]
    fn log_fingerprints_are_short_stable_and_keyed() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let id = "vSIMpZ8JtqZkVIh1EF9bGQ";
        let fingerprint = keys.log_fingerprint(id);
        assert_eq!(fingerprint.len(), 16);
        assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(keys.log_fingerprint(id), fingerprint);
        assert_ne!(keys.log_fingerprint("another id"), fingerprint);
        let other = AuthKeys::new(SECRET_B).unwrap();
        assert_ne!(other.log_fingerprint(id), fingerprint);
    }

    #[test]
    fn debug_hides_secrets() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let printed = format!("{keys:?}");
        assert_eq!(printed, "AuthKeys { current: <redacted>, fallbacks: 0 }");
    }
}
