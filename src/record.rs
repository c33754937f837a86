//! What the crate keeps in the session, and ending a session.

use std::fmt;

use serde::{de, de::DeserializeOwned, ser, Deserialize, Deserializer, Serialize, Serializer};
use tower_sessions::{session, Session};

use crate::{hash::STORED_HASH_LEN, registry::SessionHandle};

/// The session key of the [`AuthRecord`]. One key keeps the per-request work
/// to one lookup and one decode.
pub(crate) const SESSION_KEY: &str = "_auth";

/// The signed-in user of a session: the user id, the session epoch it was
/// signed with, the auth hash, and the session's times. The password hash
/// itself never reaches the store.
///
/// Stored as one string:
///
/// ```text
/// {hash}{epoch}[.{handle}]@{tier}{signed_in}.{authenticated}.{active}:{id}
/// ```
///
/// - `hash`: the 43-character auth hash;
/// - `epoch`: the user's session epoch, in decimal;
/// - `handle`: the session registry's handle, after a dot, when the layer
///   has a registry (URL-safe base64: neither dot, `@` nor colon);
/// - `tier`: `s` for a browser-session sign-in, `r` for a remembered one
///   ("keep me signed in");
/// - `signed_in`: the sign-in time, Unix seconds;
/// - `authenticated`, `active`: the last proof of the credentials (sign-in
///   or re-authentication) and the last recorded request, as seconds
///   after `signed_in` (a few digits where a full time takes ten);
/// - `id`: the user id as JSON.
///
/// `"iJrSg…gh3U0@s1764270000.0.0:42"` is user `42` at epoch 0, signed in
/// for the browser session at 1764270000 and not seen since. Reading it on
/// every request costs one string copy and a few integers, where a JSON
/// object costs a map, its keys and the strings (about half the decode
/// time, measured in `bench/benches/breakdown.rs`). The hash has a fixed
/// length and nothing before the id holds a colon, so the split is
/// unambiguous. Numbers are plain decimal digits without sign or leading
/// zero. The epoch is there to say *why* a session ended (a password change
/// or "sign out everywhere"); the hash alone decides whether it holds.
pub(crate) struct AuthRecord<Id> {
    pub(crate) user_id: Id,
    pub(crate) epoch: u64,
    pub(crate) handle: Option<String>,
    pub(crate) auth_hash: String,
    pub(crate) times: RecordTimes,
}

/// The times of a signed-in session, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordTimes {
    /// The sign-in; the absolute lifetime counts from it.
    pub(crate) signed_in: u64,
    /// The last proof of the credentials: sign-in or re-authentication.
    pub(crate) authenticated: u64,
    /// The last request recorded (at most once per activity interval).
    pub(crate) active: u64,
    /// Signed in with "keep me signed in".
    pub(crate) remembered: bool,
}

impl RecordTimes {
    /// A sign-in at `now`.
    pub(crate) fn signed_in_at(now: u64, remembered: bool) -> Self {
        Self {
            signed_in: now,
            authenticated: now,
            active: now,
            remembered,
        }
    }
}

impl<Id: Serialize> Serialize for AuthRecord<Id> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let id = serde_json::to_string(&self.user_id).map_err(ser::Error::custom)?;
        let times = &self.times;
        let tier = if times.remembered { 'r' } else { 's' };
        let authenticated = times.authenticated.saturating_sub(times.signed_in);
        let active = times.active.saturating_sub(times.signed_in);
        let (dot, handle) = match &self.handle {
            Some(handle) => (".", handle.as_str()),
            None => ("", ""),
        };
        let packed = format!(
            "{}{}{dot}{handle}@{tier}{}.{authenticated}.{active}:{id}",
            self.auth_hash, self.epoch, times.signed_in
        );
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
        let (meta, times) = meta
            .split_once('@')
            .ok_or_else(|| de::Error::custom("auth record without times"))?;
        let (epoch, handle) = match meta.split_once('.') {
            Some((epoch, handle)) => (epoch, Some(handle)),
            None => (meta, None),
        };
        let epoch =
            number(epoch).ok_or_else(|| de::Error::custom("auth record epoch is malformed"))?;
        let handle = match handle {
            Some(handle) if is_handle(handle) => Some(handle.to_owned()),
            Some(_) => return Err(de::Error::custom("auth record handle is malformed")),
            None => None,
        };
        let times = parse_times(times)
            .ok_or_else(|| de::Error::custom("auth record times are malformed"))?;
        let user_id = serde_json::from_str(id).map_err(de::Error::custom)?;
        packed.truncate(STORED_HASH_LEN);
        Ok(Self {
            user_id,
            epoch,
            handle,
            auth_hash: packed,
            times,
        })
    }
}

/// `{tier}{signed_in}.{authenticated}.{active}`, the last two after the first.
fn parse_times(text: &str) -> Option<RecordTimes> {
    let remembered = match text.as_bytes().first()? {
        b's' => false,
        b'r' => true,
        _ => return None,
    };
    let mut fields = text[1..].split('.');
    let signed_in = number(fields.next()?)?;
    let authenticated = signed_in.checked_add(number(fields.next()?)?)?;
    let active = signed_in.checked_add(number(fields.next()?)?)?;
    if fields.next().is_some() {
        return None;
    }
    Some(RecordTimes {
        signed_in,
        authenticated,
        active,
        remembered,
    })
}

/// A decimal `u64` as the record writes it: digits only (`u64::from_str`
/// takes a leading `+`), no leading zero.
fn number(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
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
    /// The session passed its idle timeout or its absolute lifetime (see
    /// [`Lifetimes`](crate::Lifetimes)).
    Expired,
}

impl EndReason {
    /// A short, stable name: `credential_changed`, `epoch_changed`,
    /// `user_gone`, `malformed`, `revoked` or `expired`; for logs, metrics
    /// and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialChanged => "credential_changed",
            Self::EpochChanged => "epoch_changed",
            Self::UserGone => "user_gone",
            Self::Malformed => "malformed",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
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

    const T0: u64 = 1_764_270_000;

    fn record<Id>(user_id: Id, epoch: u64) -> AuthRecord<Id> {
        AuthRecord {
            user_id,
            epoch,
            handle: None,
            auth_hash: HASH.to_owned(),
            times: RecordTimes::signed_in_at(T0, false),
        }
    }

    fn decode<Id: DeserializeOwned>(value: Value) -> Result<AuthRecord<Id>, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn packs_hash_epoch_times_and_id_into_one_string() {
        let stored = serde_json::to_value(record(42_u64, 0)).unwrap();
        assert_eq!(stored, json!(format!("{HASH}0@s{T0}.0.0:42")));
        let stored = serde_json::to_value(record("a\"b:c", u64::MAX)).unwrap();
        assert_eq!(
            stored,
            json!(format!("{HASH}{}@s{T0}.0.0:\"a\\\"b:c\"", u64::MAX))
        );
    }

    #[test]
    fn keeps_the_registry_handle_between_epoch_and_times() {
        let mut with_handle = record(42_u64, 3);
        with_handle.handle = Some(HANDLE.to_owned());
        let stored = serde_json::to_value(&with_handle).unwrap();
        assert_eq!(stored, json!(format!("{HASH}3.{HANDLE}@s{T0}.0.0:42")));
        let back: AuthRecord<u64> = decode(stored).unwrap();
        assert_eq!(
            (back.user_id, back.epoch, back.handle.as_deref()),
            (42, 3, Some(HANDLE))
        );
    }

    #[test]
    fn times_round_trip_as_offsets_from_sign_in() {
        let mut timed = record(7_u64, 1);
        timed.times = RecordTimes {
            signed_in: T0,
            authenticated: T0 + 600,
            active: T0 + 3_599,
            remembered: true,
        };
        let stored = serde_json::to_value(&timed).unwrap();
        assert_eq!(stored, json!(format!("{HASH}1@r{T0}.600.3599:7")));
        let back: AuthRecord<u64> = decode(stored).unwrap();
        assert_eq!(back.times, timed.times);
        // The largest times survive; an earlier "later" time (a clock that
        // went back) is stored as the sign-in time.
        timed.times = RecordTimes {
            signed_in: u64::MAX - 1,
            authenticated: u64::MAX,
            active: 0,
            remembered: false,
        };
        let back: AuthRecord<u64> = decode(serde_json::to_value(&timed).unwrap()).unwrap();
        assert_eq!(
            (back.times.authenticated, back.times.active),
            (u64::MAX, u64::MAX - 1)
        );
    }

    #[test]
    fn round_trips_ids_of_any_serde_type() {
        let back: AuthRecord<u64> = decode(json!(format!("{HASH}7@s{T0}.0.0:42"))).unwrap();
        assert_eq!(
            (back.user_id, back.epoch, back.auth_hash.as_str()),
            (42, 7, HASH)
        );
        let id = "7f0c2a9e-3d4b-4c61-9a57-2b8e1f6d0c33:x".to_owned();
        let stored = serde_json::to_value(record(id.clone(), 3)).unwrap();
        let back: AuthRecord<String> = decode(stored).unwrap();
        assert_eq!((back.user_id, back.epoch), (id, 3));
        let back: AuthRecord<(u8, i32)> =
            decode(json!(format!("{HASH}0@s{T0}.0.0:[1,-2]"))).unwrap();
        assert_eq!(back.user_id, (1, -2));
    }

    #[test]
    fn refuses_malformed_records() {
        let t = format!("@s{T0}.0.0");
        let malformed = [
            json!(""),
            json!("short"),
            json!(HASH),
            json!(format!("{HASH}42")),
            json!(format!("{HASH}:42")),
            json!(format!("{HASH}{t}:42")),
            json!(format!("{HASH}+1{t}:42")),
            json!(format!("{HASH}-1{t}:42")),
            json!(format!("{HASH}x{t}:42")),
            json!(format!("{HASH}01{t}:42")),
            json!(format!("{HASH}18446744073709551616{t}:42")),
            json!(format!("{HASH}0{t}:\"one\"")),
            json!(format!("{HASH}0.{t}:1")),
            json!(format!("{HASH}0.short{t}:1")),
            json!(format!("{HASH}0.{HANDLE}!{t}:1")),
            json!(format!("{HASH}.{HANDLE}{t}:1")),
            json!(format!("{HASH}0{t}:-1")),
            json!(format!("{HASH}0{t}:1 trailing")),
            json!(format!("{}é0{t}:1", &HASH[..42])),
            // The hash format of the previous release: no times.
            json!(format!("{HASH}0:42")),
            json!(format!("{HASH}0.{HANDLE}:42")),
            // Times: tier, three numbers, nothing else.
            json!(format!("{HASH}0@{T0}.0.0:1")),
            json!(format!("{HASH}0@x{T0}.0.0:1")),
            json!(format!("{HASH}0@S{T0}.0.0:1")),
            json!(format!("{HASH}0@s{T0}.0:1")),
            json!(format!("{HASH}0@s{T0}.0.0.0:1")),
            json!(format!("{HASH}0@s{T0}..0:1")),
            json!(format!("{HASH}0@s{T0}.0.:1")),
            json!(format!("{HASH}0@s.0.0:1")),
            json!(format!("{HASH}0@s{T0}.+1.0:1")),
            json!(format!("{HASH}0@s{T0}.01.0:1")),
            json!(format!("{HASH}0@s0{T0}.0.0:1")),
            json!(format!("{HASH}0@s{T0}.0.-1:1")),
            json!(format!("{HASH}0@s{}.1.0:1", u64::MAX)),
            json!(format!("{HASH}0@s{T0}.0.0@s{T0}.0.0:1")),
            json!(format!("{HASH}0@s@{T0}.0.0:1")),
            json!(format!("{HASH}0@@s{T0}.0.0:1")),
            json!(format!("{HASH}0@s{T0}.0.0 :1")),
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
            EndReason::Revoked,
            EndReason::Expired,
        ]
        .map(|reason| reason.to_string());
        assert_eq!(
            names,
            [
                "credential_changed",
                "epoch_changed",
                "user_gone",
                "malformed",
                "revoked",
                "expired"
            ]
        );
    }
}
