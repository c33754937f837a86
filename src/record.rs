//! What the crate keeps in the session, and ending a session.

use std::{
    fmt,
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    response::Response,
};
use http_body::{Frame, SizeHint};
use serde::{de, de::DeserializeOwned, ser, Deserialize, Deserializer, Serialize, Serializer};
use tower_sessions::{cookie::time::OffsetDateTime, session, Expiry, Session};

use crate::{
    credential::Factor,
    handle::is_handle,
    hash::STORED_HASH_LEN,
    times::{TimeConfig, UnixMillis},
};

/// The session key of the [`AuthRecord`]. One key keeps the per-request work
/// to one lookup and one decode.
pub(crate) const SESSION_KEY: &str = "_auth";

/// The signed-in user of a session: the user id and what the session
/// claims (see [`Claim`]). The password hash itself never reaches the store.
///
/// Stored as one string:
///
/// ```text
/// {hash}{epoch}[.{handle}]@{tier}{signed_in}.{authenticated}.{active}[;amr=…][;cred=…]:{id}
/// ```
///
/// - `hash`: the 43-character auth hash;
/// - `epoch`: the user's session epoch, in decimal;
/// - `handle`: the session registry's handle, after a dot, when the layer
///   has a registry (URL-safe base64: neither dot, `@` nor colon);
/// - `tier`: `s` for a browser-session sign-in, `r` for a remembered one
///   ("keep me signed in");
/// - `signed_in`: the sign-in time, Unix milliseconds;
/// - `authenticated`, `active`: the last proof of the credentials (sign-in
///   or re-authentication) and the last recorded request, as milliseconds
///   after `signed_in` (a few digits where a full time takes thirteen);
/// - `amr=`: the factors proved, unless a password alone proved the
///   session, `+`-separated, each `{factor}.{ms}` (its RFC 8176 name and
///   its last proof in milliseconds after `signed_in`); a record without
///   it was proved by a password at `authenticated` (every record written
///   before factors existed);
/// - `cred=`: the credentials the session depends on, `+`-separated, each
///   `{credential id}.{tag}` (both unpadded base64url; the tag is a keyed
///   MAC of the user, the credential and its version);
/// - `id`: the user id as JSON.
///
/// `"iJrSg…gh3U0@s1764270000000.0.0:42"` is user `42` at epoch 0, signed
/// in for the browser session at 1764270000 s and not seen since. Reading
/// it on every request costs one string copy and a few integers, where a
/// JSON object costs a map, its keys and the strings (about half the decode
/// time, measured in `bench/benches/breakdown.rs`). The hash has a fixed
/// length and nothing before the id holds a colon, so the split is
/// unambiguous. Numbers are plain decimal digits without sign or leading
/// zero. The epoch is there to say *why* a session ended (a password change
/// or "sign out everywhere"); the hash alone decides whether it holds.
#[derive(Clone)]
pub(crate) struct AuthRecord<Id> {
    pub(crate) user_id: Id,
    pub(crate) claim: Claim,
}

/// What a signed-in session claims, whatever the user id's type: the form
/// in which the [validity rule](crate::validity) judges a session, the
/// layer hands the verified session to handlers, and a live watch keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) auth_hash: String,
    pub(crate) epoch: u64,
    pub(crate) handle: Option<String>,
    pub(crate) times: RecordTimes,
    /// The factors proved, each with its last proof, unless the session was
    /// proved by a password alone: `None` is a password proved at
    /// `times.authenticated`, which every record from before factors
    /// existed reads as. Boxed: most sessions have none.
    pub(crate) proofs: Proofs,
    /// The credentials the session depends on: it ends when one is removed
    /// or replaced.
    pub(crate) bound: Vec<Bound>,
}

/// The factors a session proved, `None` for a password alone (see
/// [`Claim::proofs`](Claim#structfield.proofs)).
pub(crate) type Proofs = Option<Box<[Proof]>>;

/// A factor and when the session last proved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proof {
    pub(crate) factor: Factor,
    pub(crate) at: UnixMillis,
}

/// A credential the session depends on: its id, unpadded base64url, and a
/// keyed MAC of the user, the id and the credential's version when the
/// session was bound ([`AuthKeys::binding_tag`](crate::AuthKeys)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bound {
    pub(crate) credential: String,
    pub(crate) tag: String,
}

impl Claim {
    /// The factors proved and when, a password at the last proof when the
    /// claim names none.
    pub(crate) fn proofs(&self) -> impl Iterator<Item = Proof> + '_ {
        let password = Proof {
            factor: Factor::PWD,
            at: self.times.authenticated,
        };
        let named = self.proofs.as_deref();
        named
            .into_iter()
            .flatten()
            .copied()
            .chain(named.is_none().then_some(password))
    }
}

/// The times of a signed-in session, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordTimes {
    /// The sign-in; the absolute lifetime counts from it.
    pub(crate) signed_in: UnixMillis,
    /// The last proof of the credentials: sign-in or re-authentication.
    pub(crate) authenticated: UnixMillis,
    /// The last request recorded (at most once per activity interval).
    pub(crate) active: UnixMillis,
    /// Signed in with "keep me signed in".
    pub(crate) remembered: bool,
}

impl RecordTimes {
    /// A sign-in at `now`.
    pub(crate) fn signed_in_at(now: UnixMillis, remembered: bool) -> Self {
        Self {
            signed_in: now,
            authenticated: now,
            active: now,
            remembered,
        }
    }

    /// Whether a request at `now` must record itself as the session's
    /// activity: once the recorded one is an activity interval old.
    ///
    /// The recorded activity then lags the last request by less than one
    /// interval, so an idle session ends up to one interval early, never
    /// late.
    pub(crate) fn activity_is_due(&self, times: &TimeConfig, now: UnixMillis) -> bool {
        let interval = times.activity_interval_ms(times.lifetimes(self.remembered));
        now.saturating_sub(self.active) >= interval
    }

    /// The cookie's lifetime: until the absolute deadline for a remembered
    /// session (tower-sessions sends `Max-Age` and gives the store record
    /// the same expiry), the browser session otherwise (no `Max-Age`, no
    /// `Expires`). Either way the cookie never outlives the server-side
    /// session by a whole second.
    ///
    /// The expiry is the last instant of the deadline's second:
    /// tower-sessions writes `Max-Age` as the whole seconds left, rounded
    /// down, so the deadline itself would give a sign-in's cookie a
    /// `Max-Age` one short of the absolute lifetime.
    pub(crate) fn cookie_expiry(&self, times: &TimeConfig) -> Expiry {
        if !self.remembered {
            return Expiry::OnSessionEnd;
        }
        let lifetimes = times.lifetimes(true);
        let deadline = self.signed_in.saturating_add(lifetimes.absolute_ms());
        let last_instant = i128::from(deadline / 1000) * 1_000_000_000 + 999_999_999;
        OffsetDateTime::from_unix_timestamp_nanos(last_instant)
            .map_or(Expiry::OnSessionEnd, Expiry::AtDateTime)
    }
}

impl<Id: Serialize> AuthRecord<Id> {
    /// The record in its stored form (see [`AuthRecord`]).
    pub(crate) fn pack(&self) -> serde_json::Result<String> {
        let id = serde_json::to_string(&self.user_id)?;
        let claim = &self.claim;
        let times = &claim.times;
        let tier = if times.remembered { 'r' } else { 's' };
        // A later time before the sign-in (a clock that went back) is
        // written as the sign-in time.
        let authenticated = times.authenticated.saturating_sub(times.signed_in).max(0);
        let active = times.active.saturating_sub(times.signed_in).max(0);
        let (dot, handle) = match &claim.handle {
            Some(handle) => (".", handle.as_str()),
            None => ("", ""),
        };
        let mut packed = format!(
            "{}{}{dot}{handle}@{tier}{}.{authenticated}.{active}",
            claim.auth_hash, claim.epoch, times.signed_in
        );
        if let Some(proofs) = &claim.proofs {
            packed.push_str(";amr=");
            for (n, proof) in proofs.iter().enumerate() {
                let after = proof.at.saturating_sub(times.signed_in).max(0);
                let plus = if n == 0 { "" } else { "+" };
                packed.push_str(&format!("{plus}{}.{after}", proof.factor));
            }
        }
        if !claim.bound.is_empty() {
            packed.push_str(";cred=");
            for (n, bound) in claim.bound.iter().enumerate() {
                let plus = if n == 0 { "" } else { "+" };
                packed.push_str(&format!("{plus}{}.{}", bound.credential, bound.tag));
            }
        }
        packed.push(':');
        packed.push_str(&id);
        Ok(packed)
    }
}

impl<Id: DeserializeOwned> AuthRecord<Id> {
    /// Reads a record in its stored form; says what is wrong when it is
    /// not one.
    pub(crate) fn parse(mut packed: String) -> Result<Self, &'static str> {
        if !packed.is_char_boundary(STORED_HASH_LEN) {
            return Err("auth record shorter than its hash");
        }
        let (meta, id) = packed[STORED_HASH_LEN..]
            .split_once(':')
            .ok_or("auth record without an epoch")?;
        let (meta, times) = meta.split_once('@').ok_or("auth record without times")?;
        let (epoch, handle) = match meta.split_once('.') {
            Some((epoch, handle)) => (epoch, Some(handle)),
            None => (meta, None),
        };
        let epoch = number(epoch).ok_or("auth record epoch is malformed")?;
        let handle = match handle {
            Some(handle) if is_handle(handle) => Some(handle.to_owned()),
            Some(_) => return Err("auth record handle is malformed"),
            None => None,
        };
        let (times, extra) = match times.split_once(';') {
            Some((times, extra)) => (times, Some(extra)),
            None => (times, None),
        };
        let times = parse_times(times).ok_or("auth record times are malformed")?;
        let (proofs, bound) = match extra {
            Some(extra) => {
                parse_extra(extra, times.signed_in).ok_or("auth record factors are malformed")?
            }
            None => (None, Vec::new()),
        };
        let user_id = serde_json::from_str(id).map_err(|_| "auth record id is malformed")?;
        packed.truncate(STORED_HASH_LEN);
        Ok(Self {
            user_id,
            claim: Claim {
                auth_hash: packed,
                epoch,
                handle,
                times,
                proofs,
                bound,
            },
        })
    }
}

/// The user id's JSON in a record's stored form: what follows the first
/// colon after the hash. `None` when the text is no record.
pub(crate) fn id_json(packed: &str) -> Option<&str> {
    if !packed.is_char_boundary(STORED_HASH_LEN) {
        return None;
    }
    Some(packed[STORED_HASH_LEN..].split_once(':')?.1)
}

impl<Id: Serialize> Serialize for AuthRecord<Id> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.pack().map_err(ser::Error::custom)?)
    }
}

impl<'de, Id: DeserializeOwned> Deserialize<'de> for AuthRecord<Id> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// `{tier}{signed_in}.{authenticated}.{active}`, the last two after the first.
fn parse_times(text: &str) -> Option<RecordTimes> {
    let remembered = match text.as_bytes().first()? {
        b's' => false,
        b'r' => true,
        _ => return None,
    };
    let mut fields = text[1..]
        .split('.')
        .map(|field| i64::try_from(number(field)?).ok());
    let signed_in = fields.next()??;
    let authenticated = signed_in.checked_add(fields.next()??)?;
    let active = signed_in.checked_add(fields.next()??)?;
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

/// The optional sections after the times, in this order:
/// `amr={factor}.{ms after signed_in}+…` and `;cred={id}.{tag}+…`.
fn parse_extra(text: &str, signed_in: UnixMillis) -> Option<(Proofs, Vec<Bound>)> {
    let mut sections = text.split(';');
    let mut section = sections.next();
    let proofs = match section.and_then(|text| text.strip_prefix("amr=")) {
        Some(list) => {
            section = sections.next();
            let proofs = list
                .split('+')
                .map(|item| {
                    let (name, after) = item.split_once('.')?;
                    Some(Proof {
                        factor: Factor::from_name(name)?,
                        at: signed_in.checked_add(i64::try_from(number(after)?).ok()?)?,
                    })
                })
                .collect::<Option<Box<[Proof]>>>()?;
            Some(proofs)
        }
        None => None,
    };
    let bound = match section.map(|text| text.strip_prefix("cred=")) {
        Some(Some(list)) => list
            .split('+')
            .map(|item| {
                let (credential, tag) = item.split_once('.')?;
                let base64url = |text: &str| {
                    !text.is_empty()
                        && text.bytes().all(|byte| {
                            byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
                        })
                };
                (base64url(credential) && tag.len() == STORED_HASH_LEN && base64url(tag)).then(
                    || Bound {
                        credential: credential.to_owned(),
                        tag: tag.to_owned(),
                    },
                )
            })
            .collect::<Option<Vec<Bound>>>()?,
        Some(None) => return None,
        None => Vec::new(),
    };
    // Nothing more, and not nothing at all.
    let complete = sections.next().is_none() && (proofs.is_some() || !bound.is_empty());
    complete.then_some((proofs, bound))
}

/// A decimal `u64` as the record writes it: digits only (`u64::from_str`
/// takes a leading `+`), no leading zero.
fn number(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// Why the layer ended a session.
///
/// Read it on the request where it happened through
/// [`SessionEnded`](crate::SessionEnded), and in the
/// [events](crate::events::AuthEvent). It says nothing about other accounts.
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
    /// [`Lifetimes`](crate::times::Lifetimes)).
    Expired,
    /// A credential the session depends on (the passkey it signed in with,
    /// say) was removed or replaced
    /// ([`SessionUser::credential_version`](crate::SessionUser::credential_version)).
    CredentialRemoved,
    /// A device-bound session failed to prove its device: a refresh signed
    /// by another key, or (when so configured) its cookie without the
    /// bound cookie. See [device-bound sessions](crate#device-bound-sessions).
    DeviceUnproven,
}

impl EndReason {
    /// A short, stable name: `credential_changed`, `epoch_changed`,
    /// `user_gone`, `malformed`, `revoked`, `expired`,
    /// `credential_removed` or `device_unproven`; for logs, metrics and
    /// JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialChanged => "credential_changed",
            Self::EpochChanged => "epoch_changed",
            Self::UserGone => "user_gone",
            Self::Malformed => "malformed",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::CredentialRemoved => "credential_removed",
            Self::DeviceUnproven => "device_unproven",
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
/// session. The service calls it once the handler has run, with its
/// response.
///
/// Such a request is often one that started before `login` or
/// `update_session_auth_hash` of the same browser changed the id: by the
/// time it reads the store, the old record is gone. tower-sessions 0.14
/// then drops the id (a load that finds no record sets it to `None`), and a
/// session with no id and no data ends the request with a `Set-Cookie` that
/// removes the cookie, whatever its value is by then: if that response
/// reaches the browser after the rotation's, it removes the new cookie.
///
/// Giving the session an id again, that of an empty record created here,
/// makes it not empty; as it is not modified either, tower-sessions neither
/// saves it nor sets a cookie. The record is deleted once the response is
/// done with (its body dropped), after tower-sessions' own save: under
/// `with_always_save(true)` tower-sessions saves every session, and a
/// store that only updates existing keys (Redis' `SET … XX`) would fail on
/// a record deleted before, answering `500`. Two store writes, on this path
/// only. A failure leaves the removal in place.
pub(crate) async fn keep_cookie_of_missing_record(
    session: &Session,
    response: Response,
) -> Response {
    if let Err(error) = session.save().await {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            "could not keep the cookie of a session without a record"
        );
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = DeleteWhenDone {
        body,
        session: Some(session.clone()),
    };
    Response::from_parts(parts, Body::new(body))
}

/// A response body that deletes the session's placeholder record when it
/// is dropped.
struct DeleteWhenDone {
    body: Body,
    session: Option<Session>,
}

impl HttpBody for DeleteWhenDone {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for DeleteWhenDone {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Outside a runtime the record stays until the store expires it.
            tracing::warn!("no runtime to delete a placeholder session record");
            return;
        };
        runtime.spawn(async move {
            if let Err(error) = session.delete().await {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "could not delete a placeholder session record"
                );
            }
        });
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

    const T0: i64 = 1_764_270_000_123;

    fn record<Id>(user_id: Id, epoch: u64) -> AuthRecord<Id> {
        AuthRecord {
            user_id,
            claim: Claim {
                epoch,
                handle: None,
                auth_hash: HASH.to_owned(),
                times: RecordTimes::signed_in_at(T0, false),
                proofs: None,
                bound: Vec::new(),
            },
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
        with_handle.claim.handle = Some(HANDLE.to_owned());
        let stored = serde_json::to_value(&with_handle).unwrap();
        assert_eq!(stored, json!(format!("{HASH}3.{HANDLE}@s{T0}.0.0:42")));
        let back: AuthRecord<u64> = decode(stored).unwrap();
        assert_eq!(
            (back.user_id, back.claim.epoch, back.claim.handle.as_deref()),
            (42, 3, Some(HANDLE))
        );
    }

    #[test]
    fn factors_and_bound_credentials_follow_the_times() {
        let mut proved = record(7_u64, 0);
        proved.claim.proofs = Some(Box::new([
            Proof {
                factor: Factor::HWK,
                at: T0,
            },
            Proof {
                factor: Factor::USER,
                at: T0 + 250,
            },
        ]));
        proved.claim.bound = vec![
            Bound {
                credential: "AQID".to_owned(),
                tag: HASH.to_owned(),
            },
            Bound {
                credential: "q3Xc-_".to_owned(),
                tag: HASH.to_owned(),
            },
        ];
        let stored = serde_json::to_value(&proved).unwrap();
        assert_eq!(
            stored,
            json!(format!(
                "{HASH}0@s{T0}.0.0;amr=hwk.0+user.250;cred=AQID.{HASH}+q3Xc-_.{HASH}:7"
            ))
        );
        let back: AuthRecord<u64> = decode(stored).unwrap();
        assert_eq!(back.claim, proved.claim);
        let factors: Vec<_> = back.claim.proofs().map(|proof| proof.factor).collect();
        assert_eq!(factors, [Factor::HWK, Factor::USER]);

        // Either section alone.
        let bound_only = format!("{HASH}0@s{T0}.0.0;cred=AQID.{HASH}:7");
        let back: AuthRecord<u64> = decode(json!(bound_only)).unwrap();
        assert_eq!((back.claim.proofs, back.claim.bound.len()), (None, 1));
    }

    #[test]
    fn a_record_from_before_factors_was_proved_by_its_password() {
        let back: AuthRecord<u64> = decode(json!(format!("{HASH}0@s{T0}.5.9:7"))).unwrap();
        assert_eq!(back.claim.proofs, None);
        assert!(back.claim.bound.is_empty());
        let proofs: Vec<_> = back.claim.proofs().collect();
        assert_eq!(
            proofs,
            [Proof {
                factor: Factor::PWD,
                at: T0 + 5
            }]
        );
    }

    #[test]
    fn times_round_trip_as_offsets_from_sign_in() {
        let mut timed = record(7_u64, 1);
        timed.claim.times = RecordTimes {
            signed_in: T0,
            authenticated: T0 + 600_000,
            active: T0 + 3_599_999,
            remembered: true,
        };
        let stored = serde_json::to_value(&timed).unwrap();
        assert_eq!(stored, json!(format!("{HASH}1@r{T0}.600000.3599999:7")));
        let back: AuthRecord<u64> = decode(stored).unwrap();
        assert_eq!(back.claim.times, timed.claim.times);
        // The largest times survive; an earlier "later" time (a clock that
        // went back) is stored as the sign-in time.
        timed.claim.times = RecordTimes {
            signed_in: i64::MAX - 1,
            authenticated: i64::MAX,
            active: 0,
            remembered: false,
        };
        let back: AuthRecord<u64> = decode(serde_json::to_value(&timed).unwrap()).unwrap();
        assert_eq!(
            (back.claim.times.authenticated, back.claim.times.active),
            (i64::MAX, i64::MAX - 1)
        );
    }

    #[test]
    fn round_trips_ids_of_any_serde_type() {
        let back: AuthRecord<u64> = decode(json!(format!("{HASH}7@s{T0}.0.0:42"))).unwrap();
        assert_eq!(
            (
                back.user_id,
                back.claim.epoch,
                back.claim.auth_hash.as_str()
            ),
            (42, 7, HASH)
        );
        let id = "7f0c2a9e-3d4b-4c61-9a57-2b8e1f6d0c33:x".to_owned();
        let stored = serde_json::to_value(record(id.clone(), 3)).unwrap();
        let back: AuthRecord<String> = decode(stored).unwrap();
        assert_eq!((back.user_id, back.claim.epoch), (id, 3));
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
            // Factors and credentials: known names, numbers, in order.
            json!(format!("{HASH}0@s{T0}.0.0;:1")),
            json!(format!("{HASH}0@s{T0}.0.0;amr=:1")),
            json!(format!("{HASH}0@s{T0}.0.0;amr=pass.0:1")),
            json!(format!("{HASH}0@s{T0}.0.0;amr=pwd:1")),
            json!(format!("{HASH}0@s{T0}.0.0;amr=pwd.-1:1")),
            json!(format!("{HASH}0@s{T0}.0.0;amr=pwd.0+:1")),
            json!(format!("{HASH}0@s{T0}.0.0;cred=AQID:1")),
            json!(format!("{HASH}0@s{T0}.0.0;cred=AQID.short:1")),
            json!(format!("{HASH}0@s{T0}.0.0;cred=.{HASH}:1")),
            json!(format!("{HASH}0@s{T0}.0.0;cred=A/ID.{HASH}:1")),
            json!(format!("{HASH}0@s{T0}.0.0;cred=AQID.{HASH};amr=pwd.0:1")),
            json!(format!("{HASH}0@s{T0}.0.0;amr=pwd.0;amr=pwd.0:1")),
            json!(format!("{HASH}0@s{T0}.0.0;other=1:1")),
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

        let response =
            keep_cookie_of_missing_record(&session, Response::new(Body::from("hi"))).await;
        let id = session.id().expect("an id again");
        assert!(!session.is_empty().await, "the cookie is not removed");
        assert!(!session.is_modified(), "nothing is saved, no cookie set");
        // Until the response is done with, the placeholder record exists:
        // tower-sessions' save under always-save finds it.
        assert!(store.load(&id).await.unwrap().is_some());
        session.save().await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 16)
            .await
            .unwrap();
        assert_eq!(body, "hi", "the body is passed on");
        for _ in 0..100 {
            if store.load(&id).await.unwrap().is_none() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the placeholder record was left behind");
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
            EndReason::CredentialRemoved,
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
                "expired",
                "credential_removed"
            ]
        );
    }
}
