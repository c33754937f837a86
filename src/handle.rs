//! The name of one signed-in session, which the session record, the
//! registry and the device list share.

use std::{fmt, str::FromStr};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};

/// An opaque name for one signed-in session, stable while it lives (also
/// across the id changes of `login` and `update_session_auth_hash`).
///
/// 16 random bytes, 22 URL-safe characters. It is not the session id and
/// says nothing about it: knowing a handle lets nobody into the session,
/// and only the user it belongs to (or an administrator) can revoke with it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHandle(String);

impl SessionHandle {
    /// A new random handle.
    pub(crate) fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0_u8; 16];
        getrandom::getrandom(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A handle the store gave back, as it is.
    pub(crate) fn from_store(handle: String) -> Self {
        Self(handle)
    }

    /// The handle as text, for a form field or a URL.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionHandle(<redacted>)")
    }
}

/// A string that cannot be a [`SessionHandle`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a session handle")]
pub struct InvalidHandle;

impl FromStr for SessionHandle {
    type Err = InvalidHandle;

    /// Accepts what [`SessionHandle`] prints: 16 to 64 URL-safe characters
    /// (letters, digits, `-`, `_`).
    fn from_str(text: &str) -> Result<Self, InvalidHandle> {
        is_handle(text)
            .then(|| Self(text.to_owned()))
            .ok_or(InvalidHandle)
    }
}

/// Whether `text` can be a [`SessionHandle`]: 16 to 64 URL-safe characters
/// (letters, digits, `-`, `_`). Checks without a copy: the session record
/// holds a handle that every request reads.
pub(crate) fn is_handle(text: &str) -> bool {
    (16..=64).contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}
