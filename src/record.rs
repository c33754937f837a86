//! What the crate keeps in the session, and ending a session.

use std::fmt;

use serde::{de, de::DeserializeOwned, ser, Deserialize, Deserializer, Serialize, Serializer};
use tower_sessions::{session, Session};

use crate::{hash::STORED_HASH_LEN, registry::SessionHandle};

/// The session key of the [`AuthRecord`]. One key keeps the per-request work
/// to one lookup and one decode.
pub(crate) const SESSION_KEY: &str = "_auth";

/// The signed-in user of a session: the user id, the session epoch it was
/// signed with, and the auth hash. The password hash itself never reaches
/// the store.
///
/// Stored as one string: the 43-character hash, the epoch in decimal, a
/// colon, then the id as JSON (`"iJrSg…gh3U0:42"` for user `42` at epoch
/// 0). Reading it on every request costs one string copy, where a JSON
/// object costs a map, its keys and the strings (about half the decode time,
/// measured in `bench/benches/breakdown.rs`). The hash has a fixed length
/// and the epoch holds no colon, so the split is unambiguous. The epoch is
/// there to say *why* a session ended (a password change or "sign out
/// everywhere"); the hash alone decides whether it holds.
///
/// With a session registry the record also holds the session's handle,
/// after the epoch and a dot: `"iJrSg…gh3U0.q3Xc…Zw:42"`. Handles are
/// URL-safe base64, so they hold neither a dot nor a colon.
pub(crate) struct AuthRecord<Id> {
    pub(crate) user_id: Id,
    pub(crate) epoch: u64,
    pub(crate) handle: Option<String>,
    pub(crate) auth_hash: String,
}

impl<Id: Serialize> Serialize for AuthRecord<Id> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let id = serde_json::to_string(&self.user_id).map_err(ser::Error::custom)?;
        let packed = match &self.handle {
            Some(handle) => format!("{}{}.{handle}:{id}", self.auth_hash, self.epoch),
            None => format!("{}{}:{id}", self.auth_hash, self.epoch),
        };
        serializer.serialize_str(&packed)
    }
}

impl<'de, Id: DeserializeOwned> Deserialize<'de> for AuthRecord<Id> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut packed = String::deserialize(deserializer)?;
        if !packed.is_char_boundary(STORED_HASH_LEN) {
            return Err(de::Error::custom("auth record shorter than its hash"));
        }
        let (meta, id) = packed[STORED_HASH_LEN..]
            .split_once(':')
            .ok_or_else(|| de::Error::custom("auth record without an epoch"))?;
        let (epoch, handle) = match meta.split_once('.') {
            Some((epoch, handle)) => (epoch, Some(handle)),
            None => (meta, None),
        };
        // `u64::from_str` takes a leading `+`; the record never holds one.
        if !epoch.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(de::Error::custom("auth record epoch is not a number"));
        }
        let epoch = epoch.parse().map_err(de::Error::custom)?;
        let handle = match handle {
            Some(handle) if is_handle(handle) => Some(handle.to_owned()),
            Some(_) => return Err(de::Error::custom("auth record handle is malformed")),
            None => None,
        };
        let user_id = serde_json::from_str(id).map_err(de::Error::custom)?;
        packed.truncate(STORED_HASH_LEN);
        Ok(Self {
            user_id,
            epoch,
            handle,
            auth_hash: packed,
        })
    }
}

/// Whether `text` can be a session handle: URL-safe characters, 16 to 64.
fn is_handle(text: &str) -> bool {
    text.parse::<SessionHandle>().is_ok()
}

/// Why the layer ended a session.
///
/// Read it on the request where it happened through
/// [`SessionEnded`](crate::SessionEnded), and in the
/// [events](crate::AuthEvent). It says nothing about other accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The user's credential (their password hash) changed since the session
    /// was signed, or the session was signed under a secret that is no
    /// longer configured.
    CredentialChanged,
    /// The user's session epoch changed: they signed out their other
    /// devices, or an administrator ended their sessions.
    EpochChanged,
    /// The user is gone, or the backend refuses them (a disabled account).
    UserGone,
    /// The session held auth data the crate cannot read (an older format, a
    /// bug, or a tampered store).
    Malformed,
    /// The session was revoked through the session registry (signed out, or
    /// ended from another device or by an administrator), or its entry
    /// expired.
    Revoked,
}

impl EndReason {
    /// A short, stable name: `credential_changed`, `epoch_changed`,
    /// `user_gone`, `malformed` or `revoked`; for logs, metrics and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialChanged => "credential_changed",
            Self::EpochChanged => "epoch_changed",
            Self::UserGone => "user_gone",
            Self::Malformed => "malformed",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Deletes the session's data and store record, and makes sure its id is
/// never used again.
///
/// tower-sessions 0.14's `flush` keeps the id in the loaded record, and data
/// inserted afterwards in the same request would be saved under the very id
/// that was just ended; `cycle_id` gives the empty record a fresh one.
pub(crate) async fn end_session(session: &Session) -> Result<(), session::Error> {
    session.flush().await?;
    session.cycle_id().await
}

/// Leaves the browser's cookie alone when the request carried a session id
/// that the store holds no record for, and nothing was written to the
/// session. Call it once the handler has run.
///
/// Such a request is often one that started before `login` or
/// `update_session_auth_hash` of the same browser changed the id: by the
/// time it reads the store, the old record is gone. tower-sessions 0.14
/// then drops the id (a load that finds no record sets it to `None`), and a
/// session with no id and no data ends the request with a `Set-Cookie` that
/// removes the cookie, whatever its value is by then: if that response
/// reaches the browser after the rotation's, it removes the new cookie.
///
/// Giving the session an id again, that of an empty record created and
/// deleted at once (two store writes, on this path only), makes it not
/// empty; as it is not modified either, tower-sessions neither saves it nor
/// sets a cookie. A session the handler wrote to is left to tower-sessions
/// (a new session, with its cookie). A failure leaves the removal in place.
pub(crate) async fn keep_cookie_of_missing_record(session: &Session) {
    if session.id().is_some() || session.is_modified() {
        return;
    }
    let kept = async {
        session.save().await?;
        session.delete().await
    };
    if let Err(error) = kept.await {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            "could not keep the cookie of a session without a record"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};
    use tower_sessions::{session::Id, MemoryStore, SessionStore as _};

    use super::*;

    const HASH: &str = "iJrSgUXLcbJg1N3uQ7LHtXFof-5f7ILEYAvztu6gh3U";

    const HANDLE: &str = "q3XcA9-_kLmN0pQrStUvWx";

    fn record<Id>(user_id: Id, epoch: u64) -> AuthRecord<Id> {
        AuthRecord {
            user_id,
            epoch,
            handle: None,
            auth_hash: HASH.to_owned(),
        }
    }

    fn decode<Id: DeserializeOwned>(value: Value) -> Result<AuthRecord<Id>, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn packs_hash_epoch_and_id_into_one_string() {
        let stored = serde_json::to_value(record(42_u64, 0)).unwrap();
        assert_eq!(stored, json!(format!("{HASH}0:42")));
        let stored = serde_json::to_value(record("a\"b:c", u64::MAX)).unwrap();
        assert_eq!(stored, json!(format!("{HASH}{}:\"a\\\"b:c\"", u64::MAX)));
    }

    #[test]
    fn keeps_the_registry_handle_between_epoch_and_id() {
        let mut with_handle = record(42_u64, 3);
        with_handle.handle = Some(HANDLE.to_owned());
        let stored = serde_json::to_value(&with_handle).unwrap();
        assert_eq!(stored, json!(format!("{HASH}3.{HANDLE}:42")));
        let back: AuthRecord<u64> = decode(stored).unwrap();
        assert_eq!(
            (back.user_id, back.epoch, back.handle.as_deref()),
            (42, 3, Some(HANDLE))
        );
    }

    #[test]
    fn round_trips_ids_of_any_serde_type() {
        let back: AuthRecord<u64> = decode(json!(format!("{HASH}7:42"))).unwrap();
        assert_eq!(
            (back.user_id, back.epoch, back.auth_hash.as_str()),
            (42, 7, HASH)
        );
        let id = "7f0c2a9e-3d4b-4c61-9a57-2b8e1f6d0c33:x".to_owned();
        let stored = serde_json::to_value(record(id.clone(), 3)).unwrap();
        let back: AuthRecord<String> = decode(stored).unwrap();
        assert_eq!((back.user_id, back.epoch), (id, 3));
        let back: AuthRecord<(u8, i32)> = decode(json!(format!("{HASH}0:[1,-2]"))).unwrap();
        assert_eq!(back.user_id, (1, -2));
    }

    #[test]
    fn refuses_malformed_records() {
        let malformed = [
            json!(""),
            json!("short"),
            json!(HASH),
            json!(format!("{HASH}42")),
            json!(format!("{HASH}:42")),
            json!(format!("{HASH}+1:42")),
            json!(format!("{HASH}-1:42")),
            json!(format!("{HASH}x:42")),
            json!(format!("{HASH}18446744073709551616:42")),
            json!(format!("{HASH}0:\"one\"")),
            json!(format!("{HASH}0.:1")),
            json!(format!("{HASH}0.short:1")),
            json!(format!("{HASH}0.{HANDLE}!:1")),
            json!(format!("{HASH}.{HANDLE}:1")),
            json!(format!("{HASH}0:-1")),
            json!(format!("{HASH}0:1 trailing")),
            json!(format!("{}é0:1", &HASH[..42])),
            json!(42),
            json!({ "id": 1, "hash": HASH }),
            json!(null),
        ];
        for value in malformed {
            assert!(decode::<u64>(value.clone()).is_err(), "{value}");
        }
    }

    #[tokio::test]
    async fn a_missing_record_keeps_its_cookie_and_leaves_nothing_behind() {
        let store = Arc::new(MemoryStore::default());
        let session = Session::new(Some(Id::default()), store.clone(), None);
        // tower-sessions 0.14: reading a missing record drops the id, and a
        // session without id and data has its cookie removed.
        assert_eq!(session.get_value(SESSION_KEY).await.unwrap(), None);
        assert!(session.id().is_none() && session.is_empty().await);

        keep_cookie_of_missing_record(&session).await;
        let id = session.id().expect("an id again");
        assert!(!session.is_empty().await, "the cookie is not removed");
        assert!(!session.is_modified(), "nothing is saved, no cookie set");
        assert!(store.load(&id).await.unwrap().is_none(), "no record left");
    }

    #[tokio::test]
    async fn a_session_written_to_is_left_to_tower_sessions() {
        let store = Arc::new(MemoryStore::default());
        let session = Session::new(Some(Id::default()), store, None);
        session.insert("cart", "1 pear").await.unwrap();
        keep_cookie_of_missing_record(&session).await;
        assert!(session.id().is_none(), "saved as a new session");
    }

    #[test]
    fn reasons_have_stable_names() {
        let names = [
            EndReason::CredentialChanged,
            EndReason::EpochChanged,
            EndReason::UserGone,
            EndReason::Malformed,
        ]
        .map(|reason| reason.to_string());
        assert_eq!(
            names,
            [
                "credential_changed",
                "epoch_changed",
                "user_gone",
                "malformed"
            ]
        );
    }
}
