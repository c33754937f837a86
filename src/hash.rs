//! Server secrets, key derivation and the session auth hash.
//!
//! The hash of a user is `HMAC-SHA256(k, message)` with
//! `k = HMAC-SHA256(secret, "tower-sessions-auth.session-auth-hash.v2")` and
//!
//! ```text
//! message = len(id)         as u64, big-endian   (8 bytes)
//!        || id              the user id as serde_json writes it, UTF-8
//!        || epoch           as u64, big-endian   (8 bytes)
//!        || len(credential) as u64, big-endian   (8 bytes)
//!        || credential      the bytes of `SessionUser::credential`
//! ```
//!
//! `id` is `serde_json::to_vec(&user.id())`, the form the session record
//! and the session registry store (`42`, `"7f0c…"`). Every field has a
//! fixed width or a length prefix, so no two users, epochs or credentials
//! give the same message: a record moved to another user's id does not
//! verify, even when both users have the same credential.
//!
//! The tag is stored base64url-encoded without padding: 43 characters.
//!
//! Version 1 signed `epoch_be64 || credential` under the salt `…v1`, without
//! the id. The new salt gives new keys, so a hash of version 1 never
//! verifies: such a session ends once, as if the credential had changed.

use std::{fmt, io};

use aes_gcm_siv::{Aes256GcmSiv, KeyInit as _};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::backend::SessionUser;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: the same secret used elsewhere (cookie signing, CSRF
/// tokens) yields unrelated keys here. The version changes with the layout
/// of the message, so that a hash of an older layout never verifies.
const KEY_SALT: &[u8] = b"tower-sessions-auth.session-auth-hash.v2";

/// Domain separation for [`AuthKeys::log_fingerprint`]: a key of its own, so
/// nothing that is logged relates to the auth hashes.
const LOG_SALT: &[u8] = b"tower-sessions-auth.log-fingerprint.v1";

/// Domain separation for the key that encrypts the fast path's credential
/// cookie (`fast_path/pass.rs`).
const PASS_SALT: &[u8] = b"tower-sessions-auth.fast-path-pass.v1";

/// Domain separation for the MAC that binds a session to a credential
/// ([`AuthKeys::binding_tag`]).
const BINDING_SALT: &[u8] = b"tower-sessions-auth.credential-binding.v1";

/// The shortest secret [`AuthKeys`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Length of a decoded tag (SHA-256 output).
const TAG_LEN: usize = 32;

/// Length of a tag in its stored form: 32 bytes in unpadded base64.
pub(crate) const STORED_HASH_LEN: usize = 43;

/// The server secrets that sign session auth hashes: one current secret and
/// any number of older fallbacks, tried in order.
///
/// Sessions signed under a fallback are still accepted, and re-hashed under
/// the current secret on their next request, so a secret can be rotated
/// without logging anybody out: deploy the new secret with the old one as a
/// fallback, and drop the fallback once every active session has been seen
/// (or the session expiry has passed).
///
/// # The hash
///
/// `HMAC-SHA256(k, len(id) || id || epoch || len(credential) || credential)`,
/// with `k = HMAC-SHA256(secret, "tower-sessions-auth.session-auth-hash.v2")`,
/// `id` the user's [`id`](SessionUser::id) as serde_json writes it, and the
/// lengths and the epoch as 8-byte big-endian integers. It binds the session
/// to one user: a hash verifies for no other id, even with the same
/// credential. Stored as 43 characters of unpadded base64url.
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
/// # Ok::<(), tower_sessions_auth::error::KeyError>(())
/// ```
#[derive(Clone)]
pub struct AuthKeys {
    current: SigningKey,
    fallbacks: Vec<SigningKey>,
    /// The binding keys of the current secret, then of each fallback.
    binding: Vec<SigningKey>,
    log: SigningKey,
    /// The ciphers of sealed cookies ([`crate::seal`]): the current
    /// secret's, which seals, then each fallback's, which only open what
    /// was sealed before a rotation and only for the values that may
    /// outlive one.
    seals: Vec<Aes256GcmSiv>,
}

/// The result of [`AuthKeys::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// Signed under the current secret.
    Current,
    /// Signed under a fallback secret: valid, but due for re-hashing.
    Fallback,
    /// Signed under no known secret, or for another user id, epoch or
    /// credential; also any hash for a user whose credential is empty.
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
            binding: vec![SigningKey::derive(secret, BINDING_SALT)?],
            log: SigningKey::derive(secret, LOG_SALT)?,
            seals: vec![Aes256GcmSiv::new(&derive(secret, PASS_SALT).into())],
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
        self.binding
            .push(SigningKey::derive(secret.as_ref(), BINDING_SALT)?);
        self.seals.push(Aes256GcmSiv::new(
            &derive(secret.as_ref(), PASS_SALT).into(),
        ));
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
    /// outlives it, say) and for benchmarks. The hash covers the user's id,
    /// session epoch and credential ([the layout](Self#the-hash)).
    ///
    /// # Errors
    ///
    /// [`HashError::EmptyCredential`] when the user's
    /// [`credential`](SessionUser::credential) is empty: such a user has
    /// nothing a password change could change, so no session is signed for
    /// them. [`HashError::UnserializableId`] when serde_json cannot
    /// serialize the user's id.
    pub fn auth_hash<U: SessionUser>(&self, user: &U) -> Result<String, HashError> {
        self.auth_hash_of(user, false)
    }

    /// [`auth_hash`](Self::auth_hash), for a session bound to at least one
    /// credential when `bound`: such a session depends on something even
    /// when the user has no password, so an empty credential is signed.
    pub(crate) fn auth_hash_of<U: SessionUser>(
        &self,
        user: &U,
        bound: bool,
    ) -> Result<String, HashError> {
        let message = Message::of(user, bound)?;
        Ok(URL_SAFE_NO_PAD.encode(self.current.tag(&message)))
    }

    /// Checks a stored hash against `user`: first under the current secret,
    /// then under each fallback.
    ///
    /// A user whose credential is empty, or whose id cannot be serialized,
    /// is a [`Mismatch`](Verification::Mismatch) whatever is stored: [`auth_hash`](Self::auth_hash)
    /// refuses them, so no session of theirs is valid.
    ///
    /// # Note
    ///
    /// Each comparison is constant time (`Mac::verify_slice`). Decoding the
    /// stored value is not, and neither is the number of secrets tried; the
    /// stored value comes from the server-side session store, not from the
    /// client.
    #[must_use]
    pub fn verify<U: SessionUser>(&self, user: &U, stored: &str) -> Verification {
        self.verify_of(user, stored, false)
    }

    /// [`verify`](Self::verify), for a session bound to at least one
    /// credential when `bound` (see [`auth_hash_of`](Self::auth_hash_of)).
    pub(crate) fn verify_of<U: SessionUser>(
        &self,
        user: &U,
        stored: &str,
        bound: bool,
    ) -> Verification {
        let mut tag = [0_u8; TAG_LEN];
        match URL_SAFE_NO_PAD.decode_slice(stored, &mut tag) {
            Ok(TAG_LEN) => {}
            _ => return Verification::Mismatch,
        }
        let Ok(message) = Message::of(user, bound) else {
            return Verification::Mismatch;
        };
        if self.current.verify(&message, &tag) {
            Verification::Current
        } else if self.fallbacks.iter().any(|key| key.verify(&message, &tag)) {
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

impl AuthKeys {
    /// The tag that binds a session of `user` to their credential
    /// `credential` at `version`, in stored form: a MAC of the user's id,
    /// the credential's id and its version under the current secret.
    pub(crate) fn binding_tag<U: SessionUser>(
        &self,
        user: &U,
        credential: &[u8],
        version: u64,
    ) -> Result<String, HashError> {
        let id =
            IdJson::of(&user.id()).map_err(|error| HashError::UnserializableId(error.into()))?;
        let tag = binding_mac(&self.binding[0], &id, credential, version)
            .finalize()
            .into_bytes();
        Ok(URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks a binding tag, under the current secret and then each
    /// fallback, each comparison in constant time.
    pub(crate) fn verify_binding<U: SessionUser>(
        &self,
        user: &U,
        credential: &[u8],
        version: u64,
        stored: &str,
    ) -> Verification {
        let mut tag = [0_u8; TAG_LEN];
        match URL_SAFE_NO_PAD.decode_slice(stored, &mut tag) {
            Ok(TAG_LEN) => {}
            _ => return Verification::Mismatch,
        }
        let Ok(id) = IdJson::of(&user.id()) else {
            return Verification::Mismatch;
        };
        let verifies = |key: &SigningKey| {
            binding_mac(key, &id, credential, version)
                .verify_slice(&tag)
                .is_ok()
        };
        match self.binding.iter().position(verifies) {
            Some(0) => Verification::Current,
            Some(_) => Verification::Fallback,
            None => Verification::Mismatch,
        }
    }

    /// The ciphers of sealed cookies: the current secret's first, then
    /// the fallbacks'.
    pub(crate) fn seal_ciphers(&self) -> &[Aes256GcmSiv] {
        &self.seals
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

/// What the hash covers, gathered once per [`AuthKeys::auth_hash`] or
/// [`AuthKeys::verify`] and fed to each key tried.
struct Message<'a> {
    /// The user id as serde_json writes it: the form the record stores.
    id: IdJson,
    epoch: u64,
    credential: &'a [u8],
}

impl<'a> Message<'a> {
    /// Refuses an empty credential here, unless the session is `bound` to
    /// another credential, so that no path can sign a session that depends
    /// on nothing.
    fn of<U: SessionUser>(user: &'a U, bound: bool) -> Result<Self, HashError> {
        let credential = user.credential();
        if credential.is_empty() && !bound {
            return Err(HashError::EmptyCredential);
        }
        let id =
            IdJson::of(&user.id()).map_err(|error| HashError::UnserializableId(error.into()))?;
        Ok(Self {
            id,
            epoch: user.session_epoch(),
            credential,
        })
    }
}

/// How long an id's JSON may be and still stay on the stack: an integer, a
/// UUID or a short name do.
const INLINE_ID_LEN: usize = 64;

/// A user id as serde_json writes it, on the stack when it is at most
/// [`INLINE_ID_LEN`] bytes: every request verifies a hash, and the id's
/// bytes need not cost it an allocation.
enum IdJson {
    Inline {
        bytes: [u8; INLINE_ID_LEN],
        len: usize,
    },
    Spilled(Vec<u8>),
}

impl IdJson {
    fn of<T: serde::Serialize>(id: &T) -> serde_json::Result<Self> {
        let mut json = Self::Inline {
            bytes: [0; INLINE_ID_LEN],
            len: 0,
        };
        serde_json::to_writer(&mut json, id)?;
        Ok(json)
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { bytes, len } => &bytes[..*len],
            Self::Spilled(bytes) => bytes,
        }
    }
}

impl io::Write for IdJson {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Inline { bytes, len } => match bytes.get_mut(*len..*len + buf.len()) {
                Some(free) => {
                    free.copy_from_slice(buf);
                    *len += buf.len();
                }
                None => *self = Self::Spilled([&bytes[..*len], buf].concat()),
            },
            Self::Spilled(bytes) => bytes.extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A length prefix: 8 bytes, big-endian.
fn length(field: &[u8]) -> [u8; 8] {
    // `usize` is at most 64 bits on every target Rust supports.
    u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes()
}

/// An HMAC state already keyed with the derived key, cloned per use so that
/// each hash costs only the compressions of its message and the outer
/// digest (four for an integer id and a typical argon2 PHC string), not a
/// key schedule.
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
        Ok(Self(keyed(&derive(secret, salt))))
    }

    /// The keyed state after the message of the module docs.
    fn mac_of(&self, message: &Message<'_>) -> HmacSha256 {
        // Updated in place: each `chain_update` would move the whole state.
        let mut mac = self.0.clone();
        mac.update(&length(message.id.as_bytes()));
        mac.update(message.id.as_bytes());
        mac.update(&message.epoch.to_be_bytes());
        mac.update(&length(message.credential));
        mac.update(message.credential);
        mac
    }

    fn tag(&self, message: &Message<'_>) -> [u8; TAG_LEN] {
        self.mac_of(message).finalize().into_bytes().into()
    }

    fn verify(&self, message: &Message<'_>, tag: &[u8]) -> bool {
        self.mac_of(message).verify_slice(tag).is_ok()
    }
}

/// `len(id) || id || len(credential) || credential || version`, each
/// length and the version 8 bytes big-endian, under `key`.
fn binding_mac(key: &SigningKey, id: &IdJson, credential: &[u8], version: u64) -> HmacSha256 {
    // In place, as `SigningKey::mac_of`.
    let mut mac = key.0.clone();
    mac.update(&length(id.as_bytes()));
    mac.update(id.as_bytes());
    mac.update(&length(credential));
    mac.update(credential);
    mac.update(&version.to_be_bytes());
    mac
}

/// The key of one purpose: `HMAC-SHA256(secret, salt)`. The caller has
/// checked the secret's length.
fn derive(secret: &[u8], salt: &[u8]) -> [u8; TAG_LEN] {
    keyed(secret)
        .chain_update(salt)
        .finalize()
        .into_bytes()
        .into()
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `InvalidLength` cannot occur.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// A secret that [`AuthKeys`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is too short to resist guessing.
    #[error("session secret is {len} bytes long; at least {min} random bytes are required")]
    TooShort {
        /// Length of the secret given.
        len: usize,
        /// Minimum length.
        min: usize,
    },
}

/// Why [`AuthKeys::auth_hash`](crate::AuthKeys::auth_hash) refused to sign a user
/// into a session.
///
/// In a handler it reaches you as [`AuthError::Hash`](crate::AuthError::Hash), from
/// [`login`](crate::AuthSession::login) and
/// [`update_session_auth_hash`](crate::AuthSession::update_session_auth_hash);
/// the session is then left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The user's [`credential`](crate::SessionUser::credential) is empty
    /// and the session is bound to no other credential: it would depend on
    /// nothing and survive every change. Sign an account without a
    /// password in with the credential it proved
    /// ([`SignIn::credential`](crate::SignIn::credential)).
    #[error(
        "the user's credential is empty: sign an account without a password in with the \
         credential it proved (see `SignIn::credential`)"
    )]
    EmptyCredential,
    /// A sign-in named a credential
    /// ([`SignIn::credential`](crate::SignIn::credential)) that the user
    /// does not have
    /// ([`SessionUser::credential_version`]
    /// returned `None`): a bug of the application.
    #[error("the user has no such credential (see `SessionUser::credential_version`)")]
    UnknownCredential,
    /// serde_json cannot serialize the user's id (a map with non-string
    /// keys, say); the session record could not hold it either.
    #[error("the user id cannot be serialized as JSON")]
    UnserializableId(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{de::DeserializeOwned, Serialize};

    use super::*;

    #[derive(Clone)]
    struct User<Id = u64> {
        id: Id,
        credential: &'static str,
        epoch: u64,
    }

    impl<Id> SessionUser for User<Id>
    where
        Id: Serialize + DeserializeOwned + PartialEq + Clone + Send + Sync + 'static,
    {
        type Id = Id;
        fn id(&self) -> Id {
            self.id.clone()
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
    /// An id with what JSON escapes (a quote, a backslash, control
    /// characters), what it does not (`/`, non-ASCII) and the record's own
    /// separators (`:`, `.`).
    const ODD_ID: &str = "a:b.c\"d\\e/é🦀\u{1}\n";

    fn user(epoch: u64) -> User {
        user_with(42, epoch)
    }

    fn user_with<Id>(id: Id, epoch: u64) -> User<Id> {
        User {
            id,
            credential: PHC,
            epoch,
        }
    }

    /// Computed independently with Python 3.11 (`odd` is the JSON of
    /// `ODD_ID`, written out byte for byte and checked against Python's own
    /// `json.dumps`):
    ///
    /// ```python
    /// import hmac, hashlib, base64, json
    /// k = hmac.new(b"0123456789abcdef0123456789abcdef",
    ///              b"tower-sessions-auth.session-auth-hash.v2", hashlib.sha256).digest()
    /// phc = b"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
    /// odd = '"a:b.c\\"d\\\\e/\u00e9\U0001f980\\u0001\\n"'.encode()
    /// assert odd == json.dumps('a:b.c"d\\e/\u00e9\U0001f980\u0001\n', ensure_ascii=False).encode()
    /// def u64(n): return n.to_bytes(8, "big")
    /// for user_id, epoch in ((b"42", 0), (b"42", 7), (odd, 0), (odd, 2**63 + 1)):
    ///     msg = u64(len(user_id)) + user_id + u64(epoch) + u64(len(phc)) + phc
    ///     tag = hmac.new(k, msg, hashlib.sha256).digest()
    ///     print(base64.urlsafe_b64encode(tag).rstrip(b"=").decode())
    /// ```
    #[test]
    fn known_answers() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        assert_eq!(keys.auth_hash(&user(0)).unwrap(), KAT_42_EPOCH_0);
        assert_eq!(keys.auth_hash(&user(7)).unwrap(), KAT_42_EPOCH_7);
        let odd = |epoch| user_with(ODD_ID.to_owned(), epoch);
        assert_eq!(keys.auth_hash(&odd(0)).unwrap(), KAT_ODD_EPOCH_0);
        assert_eq!(
            keys.auth_hash(&odd((1 << 63) + 1)).unwrap(),
            KAT_ODD_EPOCH_BIG
        );
    }

    const KAT_42_EPOCH_0: &str = "EHmoCxRYg6E7GM-ORAYyhv-qoy1NUSGqHD367ALR9i4";
    const KAT_42_EPOCH_7: &str = "VINg8vC89SryQEB8jp0vxhLMAXc_ITsau_gVkYd-u0M";
    const KAT_ODD_EPOCH_0: &str = "deEtKGyOQrO5m3n9PIz8mOFJ_bPE4y2wdQR8RxqbLak";
    const KAT_ODD_EPOCH_BIG: &str = "Y5VEXCi_bFWQi96AjXZWQSn7Zen-17B88n1ZZCAegT0";

    /// Ids whose JSON fits the stack buffer, fills it, or outgrows it,
    /// whole or in the middle of serde_json's writes, are the bytes
    /// serde_json writes.
    #[test]
    fn every_id_is_its_json_on_the_stack_or_off_it() {
        for len in [0, 1, 61, 62, 63, 64, 65, 200] {
            let id = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let expected = serde_json::to_vec(&id).unwrap();
            let json = IdJson::of(&id).unwrap();
            assert_eq!(json.as_bytes(), expected, "{len}");
            let inline = matches!(json, IdJson::Inline { .. });
            assert_eq!(inline, expected.len() <= INLINE_ID_LEN, "{len}");
        }
        let big = IdJson::of(&u128::MAX).unwrap();
        assert_eq!(big.as_bytes(), u128::MAX.to_string().as_bytes());
    }

    /// The bytes the Python above spells out are the ones signed.
    #[test]
    fn the_odd_id_is_signed_as_serde_json_writes_it() {
        let user = user_with(ODD_ID.to_owned(), 0);
        let message = Message::of(&user, false).unwrap();
        assert_eq!(
            message.id.as_bytes(),
            b"\"a:b.c\\\"d\\\\e/\xc3\xa9\xf0\x9f\xa6\x80\\u0001\\n\""
        );
        assert_eq!(message.credential, PHC.as_bytes());
    }

    #[test]
    fn stored_form_is_compact() {
        let hash = AuthKeys::new(SECRET_A)
            .unwrap()
            .auth_hash(&user(0))
            .unwrap();
        assert_eq!(hash.len(), STORED_HASH_LEN);
        assert!(hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn verifies_under_current_secret() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let hash = keys.auth_hash(&user(0)).unwrap();
        assert_eq!(keys.verify(&user(0), &hash), Verification::Current);
    }

    #[test]
    fn changed_credential_or_epoch_mismatches() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let hash = keys.auth_hash(&user(0)).unwrap();
        let other = User {
            credential: "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA",
            ..user(0)
        };
        assert_eq!(keys.verify(&other, &hash), Verification::Mismatch);
        assert_eq!(keys.verify(&user(1), &hash), Verification::Mismatch);
    }

    /// Two accounts with the same credential and epoch: a hash of one, in a
    /// record that names the other, does not verify. Neither does an id of
    /// another JSON type that prints alike (`1` and `"1"`).
    #[test]
    fn another_users_id_mismatches_even_with_the_same_credential() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let hash = keys.auth_hash(&user_with(1_u64, 0)).unwrap();
        assert_eq!(
            keys.verify(&user_with(1_u64, 0), &hash),
            Verification::Current
        );
        assert_eq!(
            keys.verify(&user_with(2_u64, 0), &hash),
            Verification::Mismatch
        );
        assert_eq!(
            keys.verify(&user_with("1".to_owned(), 0), &hash),
            Verification::Mismatch
        );
        let rotated = AuthKeys::new(SECRET_B)
            .unwrap()
            .with_fallback(SECRET_A)
            .unwrap();
        assert_eq!(
            rotated.verify(&user_with(2_u64, 0), &hash),
            Verification::Mismatch
        );
    }

    /// Moving bytes between the id and the credential changes the message:
    /// each field has its own length.
    #[test]
    fn fields_do_not_run_into_each_other() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let short = User {
            id: "ab".to_owned(),
            credential: "\"cd",
            epoch: 0,
        };
        let long = User {
            id: "ab\"".to_owned(),
            credential: "cd",
            epoch: 0,
        };
        let hash = keys.auth_hash(&short).unwrap();
        assert_eq!(keys.verify(&long, &hash), Verification::Mismatch);
    }

    #[test]
    fn empty_credentials_are_never_signed_nor_verified() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let empty = User {
            credential: "",
            ..user(0)
        };
        assert!(matches!(
            keys.auth_hash(&empty),
            Err(HashError::EmptyCredential)
        ));
        // Not even the tag of the empty credential's own message verifies.
        let message = Message {
            id: IdJson::of(&42).unwrap(),
            epoch: 0,
            credential: b"",
        };
        let forged = URL_SAFE_NO_PAD.encode(keys.current.tag(&message));
        assert_eq!(keys.verify(&empty, &forged), Verification::Mismatch);
        // A session signed before the credential was emptied ends.
        let signed = keys.auth_hash(&user(0)).unwrap();
        assert_eq!(keys.verify(&empty, &signed), Verification::Mismatch);
    }

    #[test]
    fn unserializable_ids_are_never_signed_nor_verified() {
        // JSON object keys must be strings.
        let id = BTreeMap::from([((1_u8, 2_u8), 3_u8)]);
        let keys = AuthKeys::new(SECRET_A).unwrap();
        assert!(matches!(
            keys.auth_hash(&user_with(id.clone(), 0)),
            Err(HashError::UnserializableId(_))
        ));
        let hash = keys.auth_hash(&user(0)).unwrap();
        assert_eq!(
            keys.verify(&user_with(id, 0), &hash),
            Verification::Mismatch
        );
    }

    #[test]
    fn fallback_secret_verifies_as_fallback() {
        let old = AuthKeys::new(SECRET_A).unwrap();
        let rotated = AuthKeys::new(SECRET_B)
            .unwrap()
            .with_fallbacks([SECRET_A])
            .unwrap();
        let hash = old.auth_hash(&user(3)).unwrap();
        assert_eq!(rotated.verify(&user(3), &hash), Verification::Fallback);
        assert_eq!(
            AuthKeys::new(SECRET_B).unwrap().verify(&user(3), &hash),
            Verification::Mismatch
        );
    }

    #[test]
    fn garbage_and_truncated_hashes_mismatch() {
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let hash = keys.auth_hash(&user(0)).unwrap();
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
