//! Short-lived credentials sealed under the current secret: the fast
//! path's pass and the device-bound cookie.
//!
//! A sealed value is `base64url(nonce || ciphertext || tag)`: AES-256-GCM-SIV
//! (RFC 8452) under a key derived from the current secret, with a random
//! 12-byte nonce per value (GCM-SIV stays safe should two nonces ever
//! repeat, which random nonces over a secret's lifetime could). Each kind
//! of value binds its own associated data into the tag, so that one kind
//! never opens as another. Encrypted, because what a value carries (a user
//! id, a registry handle) is nobody else's business; authenticated, so that
//! nothing in it can be changed or made up.

use aes_gcm_siv::{aead::AeadInPlace as _, Nonce, Tag};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};

use crate::hash::AuthKeys;

/// Which secrets may open a sealed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// Only the current secret: a rotation refuses every older value, for
    /// values the full path re-issues on the next request (the pass).
    Current,
    /// The current secret, then each fallback: for values only a device
    /// can renew (the bound cookie), which a rotation must not void.
    #[cfg_attr(not(feature = "dbsc"), allow(dead_code))]
    WithFallbacks,
}

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The bytes a sealed value adds to its plaintext.
pub(crate) const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Seals the concatenation of `parts` for `purpose`; `None` when the OS
/// gives no randomness or the cipher refuses (the response then carries no
/// such cookie).
pub(crate) fn seal(keys: &AuthKeys, purpose: &[u8], parts: &[&[u8]]) -> Option<String> {
    let len = parts.iter().map(|part| part.len()).sum::<usize>();
    let mut sealed = Vec::with_capacity(OVERHEAD + len);
    let mut nonce = [0_u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).ok()?;
    sealed.extend_from_slice(&nonce);
    for part in parts {
        sealed.extend_from_slice(part);
    }
    let tag = keys.seal_ciphers()[0]
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), purpose, &mut sealed[NONCE_LEN..])
        .ok()?;
    sealed.extend_from_slice(&tag);
    Some(URL_SAFE_NO_PAD.encode(sealed))
}

/// Opens `value`, sealed for `purpose` under a secret `opening` accepts,
/// into `buffer` (on the caller's stack); `None` for anything else: not
/// base64url, longer than the buffer, forged, truncated, sealed under
/// another secret or for another purpose.
pub(crate) fn open<'b>(
    keys: &AuthKeys,
    opening: Opening,
    purpose: &[u8],
    value: &str,
    buffer: &'b mut [u8],
) -> Option<&'b [u8]> {
    // Checked before decoding, so that an oversized value costs nothing.
    if value.len() / 4 * 3 > buffer.len() + 2 {
        return None;
    }
    let len = URL_SAFE_NO_PAD.decode_slice(value, buffer).ok()?;
    let bytes = &mut buffer[..len];
    if len < OVERHEAD {
        return None;
    }
    let (nonce, rest) = bytes.split_at_mut(NONCE_LEN);
    let (plaintext, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let ciphers = match opening {
        Opening::Current => &keys.seal_ciphers()[..1],
        Opening::WithFallbacks => keys.seal_ciphers(),
    };
    // A failed attempt leaves `plaintext` as it was (the cipher encrypts
    // it back), so the next secret sees the ciphertext.
    ciphers
        .iter()
        .any(|cipher| {
            cipher
                .decrypt_in_place_detached(
                    Nonce::from_slice(nonce),
                    purpose,
                    plaintext,
                    Tag::from_slice(tag),
                )
                .is_ok()
        })
        .then_some(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> AuthKeys {
        AuthKeys::new(secret).unwrap()
    }

    const SECRET: &str = "the secret of the sealing tests, long enough";

    #[test]
    fn a_sealed_value_opens_for_its_purpose_under_its_secret_only() {
        let sealed = seal(&keys(SECRET), b"one", &[b"head", b"body"]).unwrap();
        let mut buffer = [0_u8; 256];
        assert_eq!(
            open(
                &keys(SECRET),
                Opening::Current,
                b"one",
                &sealed,
                &mut buffer
            ),
            Some(&b"headbody"[..])
        );
        assert_eq!(
            open(
                &keys(SECRET),
                Opening::Current,
                b"two",
                &sealed,
                &mut buffer
            ),
            None
        );
        let other = keys("another secret of the sealing tests, long enough");
        assert_eq!(
            open(&other, Opening::Current, b"one", &sealed, &mut buffer),
            None
        );
    }

    #[test]
    fn tampered_truncated_and_oversized_values_do_not_open() {
        let sealed = seal(&keys(SECRET), b"one", &[b"payload"]).unwrap();
        let mut buffer = [0_u8; 64];
        let mut flipped = sealed.clone().into_bytes();
        flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            open(
                &keys(SECRET),
                Opening::Current,
                b"one",
                &flipped,
                &mut buffer
            ),
            None
        );
        assert_eq!(
            open(
                &keys(SECRET),
                Opening::Current,
                b"one",
                &sealed[..sealed.len() - 4],
                &mut buffer
            ),
            None
        );
        assert_eq!(
            open(&keys(SECRET), Opening::Current, b"one", "", &mut buffer),
            None
        );
        assert_eq!(
            open(&keys(SECRET), Opening::Current, b"one", "!!!!", &mut buffer),
            None
        );
        let long = seal(&keys(SECRET), b"one", &[&[7_u8; 100]]).unwrap();
        assert_eq!(
            open(&keys(SECRET), Opening::Current, b"one", &long, &mut buffer),
            None
        );
    }

    #[test]
    fn fallback_secrets_open_only_what_may_outlive_a_rotation() {
        let old = "the previous secret of the sealing tests, long enough";
        let sealed = seal(&keys(old), b"one", &[b"payload"]).unwrap();
        let rotated = keys(SECRET).with_fallback(old).unwrap();
        let mut buffer = [0_u8; 64];
        assert_eq!(
            open(&rotated, Opening::Current, b"one", &sealed, &mut buffer),
            None
        );
        assert_eq!(
            open(
                &rotated,
                Opening::WithFallbacks,
                b"one",
                &sealed,
                &mut buffer
            ),
            Some(&b"payload"[..])
        );
        let resealed = seal(&rotated, b"one", &[b"payload"]).unwrap();
        assert_eq!(
            open(
                &keys(SECRET),
                Opening::Current,
                b"one",
                &resealed,
                &mut buffer
            ),
            Some(&b"payload"[..])
        );
        assert_eq!(
            open(
                &keys(old),
                Opening::WithFallbacks,
                b"one",
                &resealed,
                &mut buffer
            ),
            None
        );
    }
}
