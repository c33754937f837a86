//! The fast path's credential cookie: a session record, sealed
//! ([`crate::seal`]) with the plaintext
//!
//! ```text
//! issued_at (8 bytes) || expires_at (8 bytes) || session_id (16 bytes) || record
//! ```
//!
//! with the times in Unix milliseconds and the tower-sessions id it is bound
//! to, big-endian, and the record in its stored form (the auth hash, epoch,
//! registry handle, times, factors and user id). Opening one allocates only
//! the record's strings: the cookie is decoded and decrypted on the stack.

use serde::{de::DeserializeOwned, Serialize};

use crate::{
    hash::AuthKeys,
    record::{id_json, AuthRecord},
    seal::{open, seal as seal_parts, Opening},
    times::UnixMillis,
};

/// Bound into every tag: a ciphertext of the same key made for another
/// purpose never opens as a pass.
const ASSOCIATED: &[u8] = b"tower-sessions-auth.fast-path-pass.v2";

/// The times and the session id before the record.
const HEADER_LEN: usize = 8 + 8 + 16;

/// The longest cookie value opened: a pass of an id of a few hundred bytes
/// fits many times over; anything longer is not decoded at all.
pub(crate) const MAX_VALUE_LEN: usize = 2048;

/// The most bytes [`MAX_VALUE_LEN`] characters of base64 decode to.
const MAX_DECODED_LEN: usize = MAX_VALUE_LEN / 4 * 3;

/// An opened pass: the session `session` held `record` at `issued_at`,
/// and may be trusted on that until `expires_at`.
pub(crate) struct Pass<Id> {
    pub(crate) session: i128,
    pub(crate) issued_at: UnixMillis,
    pub(crate) expires_at: UnixMillis,
    pub(crate) record: AuthRecord<Id>,
    /// The user id's JSON, as the record holds it: the key of the user in
    /// the registry and in the live sessions' notices.
    pub(crate) user_key: String,
}

/// The cookie value of a pass saying that the session `session` held
/// `record` at `issued_at`, trusted until `expires_at`; `None` when the id
/// cannot be serialized, the pass would be too long, or the OS gives no
/// randomness (the response then simply carries no pass).
pub(crate) fn seal<Id: Serialize>(
    keys: &AuthKeys,
    session: i128,
    issued_at: UnixMillis,
    expires_at: UnixMillis,
    record: &AuthRecord<Id>,
) -> Option<String> {
    let record = record.pack().ok()?;
    let value = seal_parts(
        keys,
        ASSOCIATED,
        &[
            &issued_at.to_be_bytes(),
            &expires_at.to_be_bytes(),
            &session.to_be_bytes(),
            record.as_bytes(),
        ],
    )?;
    (value.len() <= MAX_VALUE_LEN).then_some(value)
}

impl<Id: DeserializeOwned> Pass<Id> {
    /// Opens a cookie value sealed under the current secret; `None` for
    /// anything else: too long, not base64url, forged, truncated, sealed
    /// under another secret, or not a pass inside.
    pub(crate) fn open(keys: &AuthKeys, value: &str) -> Option<Self> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        let mut buffer = [0_u8; MAX_DECODED_LEN];
        let plaintext = open(keys, Opening::Current, ASSOCIATED, value, &mut buffer)?;
        if plaintext.len() < HEADER_LEN {
            return None;
        }
        let (header, record) = plaintext.split_at(HEADER_LEN);
        let issued_at = i64::from_be_bytes(header[..8].try_into().ok()?);
        let expires_at = i64::from_be_bytes(header[8..16].try_into().ok()?);
        let session = i128::from_be_bytes(header[16..].try_into().ok()?);
        let record = std::str::from_utf8(record).ok()?;
        let user_key = id_json(record)?.to_owned();
        let record = AuthRecord::parse(record.to_owned()).ok()?;
        Some(Self {
            session,
            issued_at,
            expires_at,
            record,
            user_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    use proptest::prelude::*;

    use super::*;
    use crate::record::{Claim, RecordTimes};

    fn keys() -> AuthKeys {
        AuthKeys::new("the secret of the pass tests, long enough").unwrap()
    }

    const SESSION: i128 = i128::MIN;
    const ISSUED: UnixMillis = 1_800_000_000_000;
    const EXPIRES: UnixMillis = 1_800_000_060_000;

    fn record(user_id: String, handle: Option<String>) -> AuthRecord<String> {
        AuthRecord {
            user_id,
            claim: Claim {
                auth_hash: "iJrSgUXLcbJg1N3uQ7LHtXFof-5f7ILEYAvztu6gh3U".to_owned(),
                epoch: 3,
                handle,
                times: RecordTimes::signed_in_at(1_799_999_000_000, true),
                proofs: None,
                bound: Vec::new(),
            },
        }
    }

    fn sealed(record: &AuthRecord<String>) -> String {
        seal(&keys(), SESSION, ISSUED, EXPIRES, record).unwrap()
    }

    #[test]
    fn a_sealed_pass_opens_as_it_was_and_hides_what_it_holds() {
        let original = record(
            "ana@example.com".to_owned(),
            Some("q3XcA9-_kLmN0pQrStUvWx".to_owned()),
        );
        let value = sealed(&original);
        assert!(!value.contains("ana") && !value.contains("q3Xc"), "{value}");
        let opened = Pass::<String>::open(&keys(), &value).unwrap();
        assert_eq!(opened.session, SESSION);
        assert_eq!(opened.issued_at, ISSUED);
        assert_eq!(opened.expires_at, EXPIRES);
        assert_eq!(opened.record.user_id, "ana@example.com");
        assert_eq!(opened.record.claim, original.claim);
        assert_eq!(opened.user_key, r#""ana@example.com""#);
        assert_ne!(value, sealed(&original), "a nonce per cookie");
    }

    #[test]
    fn another_secret_or_another_id_type_does_not_open_it() {
        let value = sealed(&record("7".to_owned(), None));
        let other = AuthKeys::new("another secret of the pass tests, as long").unwrap();
        assert!(Pass::<String>::open(&other, &value).is_none());
        let rotated = other
            .with_fallback("the secret of the pass tests, long enough")
            .unwrap();
        assert!(
            Pass::<String>::open(&rotated, &value).is_none(),
            "only the current secret opens passes"
        );
        assert!(
            Pass::<u64>::open(&keys(), &value).is_none(),
            "\"7\" is no u64"
        );
        assert!(Pass::<String>::open(&keys(), &"A".repeat(MAX_VALUE_LEN + 1)).is_none());
    }

    #[test]
    fn an_id_too_long_for_a_cookie_gets_no_pass() {
        assert!(seal(
            &keys(),
            SESSION,
            ISSUED,
            EXPIRES,
            &record("x".repeat(1600), None)
        )
        .is_none());
        assert!(seal(
            &keys(),
            SESSION,
            ISSUED,
            EXPIRES,
            &record("x".repeat(1300), None)
        )
        .is_some());
    }

    proptest! {
        #[test]
        fn any_change_to_a_sealed_pass_is_refused(
            id in ".{0,40}",
            at in 0_usize..400,
            flip in 1_u8..=255,
            cut in 0_usize..400,
        ) {
            let value = sealed(&record(id, None));
            let mut bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
            let at = at % bytes.len();
            bytes[at] ^= flip;
            let flipped = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert!(Pass::<String>::open(&keys(), &flipped).is_none());
            let truncated = &value[..cut % value.len()];
            prop_assert!(Pass::<String>::open(&keys(), truncated).is_none());
        }

        #[test]
        fn arbitrary_values_never_open_nor_panic(value in ".{0,600}") {
            prop_assert!(Pass::<String>::open(&keys(), &value).is_none());
        }
    }
}
