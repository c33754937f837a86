//! Whether a signed-in session still holds: the one rule that every way of
//! checking a session asks, in one order.
//!
//! The request path ([`AuthService`](crate::service::AuthService)) and the live
//! check of open connections both hand [`judge`] what the session claims
//! ([`Claim`]) and a way to look up the rest ([`Evidence`]); the rule
//! decides, in this order, and asks for each piece of evidence only when
//! the answer still depends on it:
//!
//! 1. the absolute lifetime, and the idle timeout when the claim is the
//!    session's current record (no lookup: an expired session costs no
//!    backend call);
//! 2. the user: gone or refused by the backend ends the session;
//! 3. the auth hash, under the current secret, a fallback secret (holds,
//!    to be re-hashed) or a newer hash the session announced (holds, with
//!    that hash); a mismatch ends the session, unless the path finds that
//!    the session was superseded (its id rotated away by the same browser);
//!    then each credential the session depends on: gone or at another
//!    version ends it as `credential_removed`;
//! 4. the registry entry, when the layer keeps a registry: gone ends the
//!    session; then the idle timeout by the latest activity known, the
//!    claim's or the registry's last-seen time (a watch's copy of the
//!    claim does not see the session's later requests).
//!
//! All times are Unix milliseconds from the layer's clock.

use std::{borrow::Borrow, future::Future};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};

use crate::{
    backend::SessionUser,
    hash::{AuthKeys, Verification},
    record::{Claim, EndReason},
    times::{TimeConfig, UnixMillis},
};

/// The settings the rule reads: the layer's secrets and times, and the
/// registry's touch interval when the layer keeps a registry.
#[derive(Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub(crate) keys: &'a AuthKeys,
    pub(crate) times: &'a TimeConfig,
    /// `Some(touch interval in ms)` when every signed-in session must have
    /// a registry entry.
    pub(crate) registry: Option<i64>,
}

/// What the registry says of a session's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The entry lives; with its last-seen time when the path read it (a
    /// request's touch does not).
    Lives { last_seen: Option<UnixMillis> },
    /// No entry: signed out, revoked, or expired.
    Gone,
}

/// Where a path finds what the rule asks, when it asks.
pub(crate) trait Evidence<U> {
    /// A failure that must not decide: the request fails closed, the watch
    /// counts a failed check.
    type Error;
    /// The user as the path holds it.
    type Found: Borrow<U>;

    /// Whether the claim is the session's record as it is now (a request),
    /// rather than a copy made when a watch began, whose last activity is
    /// stale: only a current claim's activity can end a session before the
    /// registry's last-seen time is known.
    fn claim_is_current(&self) -> bool;

    /// The session's user, from the backend.
    fn user(&mut self) -> impl Future<Output = Result<Option<Self::Found>, Self::Error>> + Send;

    /// The registry entry `handle` of the session's user.
    fn entry(&mut self, handle: &str) -> impl Future<Output = Result<Entry, Self::Error>> + Send;

    /// After a hash mismatch: whether the session is no longer the
    /// browser's because the browser moved on to a new id (a parallel
    /// request of `update_session_auth_hash` rotated it away). Such a
    /// session is not ended: ending it would remove the browser's new
    /// cookie and the registry entry it still uses.
    fn superseded(&mut self) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// How the session's hash verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signed {
    /// Under the current secret.
    Current,
    /// Under a fallback secret: re-hash it under the current one.
    Fallback,
    /// A newer hash that this session announced (after its own password
    /// change) verifies; with the user's epoch to keep beside it.
    Announced { hash: String, epoch: u64 },
}

/// The rule's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict<F> {
    /// The session holds for `user`.
    Holds { user: F, signed: Signed },
    /// The session no longer holds: end it.
    Ended(EndReason),
    /// The session's id was rotated away by its own browser: nothing to
    /// end, and the request is anonymous.
    Superseded,
}

/// Decides whether the session claiming `claim` still holds at `now`.
/// `announced` is a newer hash the session itself announced, which a
/// watch may know before its copy of the claim does.
pub(crate) async fn judge<U, E>(
    rules: Rules<'_>,
    claim: &Claim,
    announced: Option<&str>,
    now: UnixMillis,
    evidence: &mut E,
) -> Result<Verdict<E::Found>, E::Error>
where
    U: SessionUser,
    E: Evidence<U>,
{
    let lifetimes = rules.times.lifetimes(claim.times.remembered);
    let absolute_end = claim
        .times
        .signed_in
        .saturating_add(lifetimes.absolute_ms());
    let idle_end = |active: UnixMillis| active.saturating_add(lifetimes.idle_ms());
    if now >= absolute_end || (evidence.claim_is_current() && now >= idle_end(claim.times.active)) {
        return Ok(Verdict::Ended(EndReason::Expired));
    }
    let Some(found) = evidence.user().await? else {
        return Ok(Verdict::Ended(EndReason::UserGone));
    };
    let user: &U = found.borrow();
    let bound = !claim.bound.is_empty();
    let signed = match rules.keys.verify_of(user, &claim.auth_hash, bound) {
        Verification::Current => Signed::Current,
        Verification::Fallback => Signed::Fallback,
        Verification::Mismatch => match announced {
            Some(hash) if rules.keys.verify_of(user, hash, bound) != Verification::Mismatch => {
                Signed::Announced {
                    hash: hash.to_owned(),
                    epoch: user.session_epoch(),
                }
            }
            _ if evidence.superseded().await? => return Ok(Verdict::Superseded),
            _ if claim.epoch == user.session_epoch() => {
                return Ok(Verdict::Ended(EndReason::CredentialChanged))
            }
            _ => return Ok(Verdict::Ended(EndReason::EpochChanged)),
        },
    };
    let signed = match bindings(rules.keys, user, claim) {
        Some(Verification::Current) => signed,
        Some(Verification::Fallback) if signed == Signed::Current => Signed::Fallback,
        Some(Verification::Fallback) => signed,
        Some(Verification::Mismatch) | None => {
            return Ok(Verdict::Ended(EndReason::CredentialRemoved))
        }
    };
    if let Some(touch_interval) = rules.registry {
        // A claim without a handle was signed in before the registry was
        // added: it ends too, once. Registering it here instead would let
        // it escape a revocation made before its next request.
        let Some(handle) = &claim.handle else {
            return Ok(Verdict::Ended(EndReason::Revoked));
        };
        let last_seen = match evidence.entry(handle).await? {
            Entry::Gone => return Ok(Verdict::Ended(EndReason::Revoked)),
            Entry::Lives { last_seen } => last_seen,
        };
        // The registry writes last-seen once per touch interval: the
        // session's last request is at most one interval after it.
        let seen = last_seen.map(|last_seen| last_seen.saturating_add(touch_interval));
        if now >= idle_end(claim.times.active.max(seen.unwrap_or(i64::MIN))) {
            return Ok(Verdict::Ended(EndReason::Expired));
        }
    } else if now >= idle_end(claim.times.active) {
        return Ok(Verdict::Ended(EndReason::Expired));
    }
    Ok(Verdict::Holds {
        user: found,
        signed,
    })
}

/// How the credentials the session depends on verify: `Current` when
/// every one does under the current secret (or there is none), `Fallback`
/// when one needs a fallback secret, `Mismatch` when one was replaced;
/// `None` when the user no longer has one.
fn bindings<U: SessionUser>(keys: &AuthKeys, user: &U, claim: &Claim) -> Option<Verification> {
    let mut verdict = Verification::Current;
    for bound in &claim.bound {
        // Written by this crate as base64url; unreadable is as gone.
        let id = URL_SAFE_NO_PAD.decode(&bound.credential).ok()?;
        let version = user.credential_version(&id)?;
        match keys.verify_binding(user, &id, version, &bound.tag) {
            Verification::Current => {}
            Verification::Fallback => verdict = Verification::Fallback,
            Verification::Mismatch => return Some(Verification::Mismatch),
        }
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        record::{Bound, RecordTimes},
        times::Lifetimes,
    };

    const T0: UnixMillis = 1_800_000_000_000;
    const SECOND: i64 = 1000;
    const TOUCH: i64 = 60 * SECOND;

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct User {
        credential: &'static str,
        epoch: u64,
        /// The version of the user's passkey [`PASSKEY`], if they have it.
        passkey: Option<u64>,
    }

    const PASSKEY: &[u8] = b"passkey credential id";

    impl SessionUser for User {
        type Id = u64;
        fn id(&self) -> u64 {
            7
        }
        fn credential(&self) -> &[u8] {
            self.credential.as_bytes()
        }
        fn session_epoch(&self) -> u64 {
            self.epoch
        }
        fn credential_version(&self, id: &[u8]) -> Option<u64> {
            self.passkey.filter(|_| id == PASSKEY)
        }
    }

    /// Evidence that answers from fixed facts and counts what was asked.
    #[derive(Default)]
    struct Facts {
        user: Option<User>,
        entry: Option<Entry>,
        superseded: bool,
        failing: bool,
        /// A watch's copy of the claim.
        copy: bool,
        asked: Vec<&'static str>,
    }

    impl Evidence<User> for Facts {
        type Error = &'static str;
        type Found = User;

        fn claim_is_current(&self) -> bool {
            !self.copy
        }

        async fn user(&mut self) -> Result<Option<User>, &'static str> {
            self.asked.push("user");
            if self.failing {
                return Err("backend down");
            }
            Ok(self.user.clone())
        }

        async fn entry(&mut self, _: &str) -> Result<Entry, &'static str> {
            self.asked.push("entry");
            Ok(self.entry.unwrap_or(Entry::Gone))
        }

        async fn superseded(&mut self) -> Result<bool, &'static str> {
            self.asked.push("superseded");
            Ok(self.superseded)
        }
    }

    const OLD_SECRET: &str = "an older secret of the validity tests, now a fallback";

    fn keys() -> AuthKeys {
        AuthKeys::new("the current secret of the validity tests").unwrap()
    }

    fn old_keys() -> AuthKeys {
        AuthKeys::new(OLD_SECRET).unwrap()
    }

    fn times() -> TimeConfig {
        TimeConfig {
            session: Lifetimes::new(Duration::from_secs(1800), Duration::from_secs(12 * 3600)),
            ..TimeConfig::default()
        }
    }

    const ALICE: User = User {
        credential: "argon2id$first",
        epoch: 0,
        passkey: None,
    };

    /// Alice with her passkey at version 1.
    const ALICE_WITH_PASSKEY: User = User {
        passkey: Some(1),
        ..ALICE
    };

    /// A claim of `user` bound to their passkey at `version`, its binding
    /// signed with `binding_keys`.
    fn bound_claim(user: &User, version: u64, binding_keys: &AuthKeys) -> Claim {
        Claim {
            auth_hash: keys().auth_hash_of(user, true).unwrap(),
            bound: vec![Bound {
                credential: URL_SAFE_NO_PAD.encode(PASSKEY),
                tag: binding_keys.binding_tag(user, PASSKEY, version).unwrap(),
            }],
            ..claim_for(&keys(), &ALICE)
        }
    }

    fn claim_for(keys: &AuthKeys, user: &User) -> Claim {
        Claim {
            auth_hash: keys.auth_hash(user).unwrap(),
            epoch: user.epoch,
            handle: Some("q3XcA9-_kLmN0pQrStUvWx".to_owned()),
            times: RecordTimes::signed_in_at(T0, false),
            proofs: None,
            bound: Vec::new(),
        }
    }

    /// Alice's claim, last active at `active`.
    fn active_at(active: UnixMillis) -> Claim {
        Claim {
            times: RecordTimes {
                active,
                ..RecordTimes::signed_in_at(T0, false)
            },
            ..claim_for(&keys(), &ALICE)
        }
    }

    /// Alice found, her entry last seen at `last_seen`; `copy` for a
    /// watch's copy of the claim.
    fn seen(last_seen: UnixMillis, copy: bool) -> Facts {
        Facts {
            user: Some(ALICE),
            entry: Some(Entry::Lives {
                last_seen: Some(last_seen),
            }),
            copy,
            ..Facts::default()
        }
    }

    /// One row: what the session claims and what the world says, then the
    /// verdict and the evidence the rule asked for, in order.
    struct Case {
        name: &'static str,
        claim: Claim,
        announced: Option<String>,
        now: UnixMillis,
        registry: bool,
        facts: Facts,
        verdict: Verdict<User>,
        asked: &'static [&'static str],
    }

    fn case(name: &'static str) -> Case {
        Case {
            name,
            claim: claim_for(&keys(), &ALICE),
            announced: None,
            now: T0 + SECOND,
            registry: true,
            facts: Facts {
                user: Some(ALICE),
                entry: Some(Entry::Lives { last_seen: None }),
                ..Facts::default()
            },
            verdict: Verdict::Holds {
                user: ALICE,
                signed: Signed::Current,
            },
            asked: &["user", "entry"],
        }
    }

    fn cases() -> Vec<Case> {
        let changed = User {
            credential: "argon2id$second",
            ..ALICE
        };
        let bumped = User { epoch: 1, ..ALICE };
        let ended = |reason| Verdict::Ended(reason);
        vec![
            case("a fresh session holds"),
            Case {
                registry: false,
                asked: &["user"],
                ..case("without a registry, no entry is asked")
            },
            Case {
                claim: claim_for(&old_keys(), &ALICE),
                verdict: Verdict::Holds {
                    user: ALICE,
                    signed: Signed::Fallback,
                },
                ..case("a fallback secret holds, to be re-hashed")
            },
            Case {
                now: T0 + 12 * 3600 * SECOND,
                verdict: ended(EndReason::Expired),
                asked: &[],
                ..case("the absolute lifetime ends it without a lookup")
            },
            Case {
                now: T0 + 12 * 3600 * SECOND - 1,
                claim: active_at(T0 + 12 * 3600 * SECOND - 10 * SECOND),
                ..case("the last millisecond of the lifetime still holds")
            },
            Case {
                now: T0 + 1800 * SECOND,
                verdict: ended(EndReason::Expired),
                asked: &[],
                ..case("the idle timeout ends it without a lookup")
            },
            Case {
                now: T0 + 1800 * SECOND,
                facts: seen(T0 + 1000 * SECOND, false),
                claim: active_at(T0 + 1000 * SECOND),
                ..case("recorded activity keeps it")
            },
            Case {
                now: T0 + 1800 * SECOND + TOUCH,
                facts: seen(T0, false),
                verdict: ended(EndReason::Expired),
                asked: &[],
                ..case("idle past the claim's activity, it ends before the registry is read")
            },
            Case {
                now: T0 + 1800 * SECOND + 10 * SECOND,
                claim: active_at(T0 + 20 * SECOND),
                facts: seen(T0 + 100 * SECOND, true),
                ..case("a watch's copy of the claim is kept alive by the registry's last-seen")
            },
            Case {
                now: T0 + 1800 * SECOND + 20 * SECOND + TOUCH,
                claim: active_at(T0 + 20 * SECOND),
                facts: seen(T0 + 20 * SECOND, true),
                verdict: ended(EndReason::Expired),
                ..case("and ends one touch interval after the last-seen time runs out")
            },
            Case {
                now: T0 + 1800 * SECOND,
                facts: Facts {
                    user: Some(ALICE),
                    entry: Some(Entry::Lives { last_seen: None }),
                    copy: true,
                    ..Facts::default()
                },
                verdict: ended(EndReason::Expired),
                ..case("a watch's copy idle by its own times and no last-seen ends after the entry")
            },
            Case {
                facts: Facts::default(),
                verdict: ended(EndReason::UserGone),
                asked: &["user"],
                ..case("a user gone or disabled ends it")
            },
            Case {
                facts: Facts {
                    user: Some(changed.clone()),
                    ..Facts::default()
                },
                verdict: ended(EndReason::CredentialChanged),
                asked: &["user", "superseded"],
                ..case("a changed password ends it before the registry is asked")
            },
            Case {
                facts: Facts {
                    user: Some(bumped.clone()),
                    ..Facts::default()
                },
                verdict: ended(EndReason::EpochChanged),
                asked: &["user", "superseded"],
                ..case("a new epoch ends it")
            },
            Case {
                facts: Facts {
                    user: Some(changed.clone()),
                    superseded: true,
                    ..Facts::default()
                },
                verdict: Verdict::Superseded,
                asked: &["user", "superseded"],
                ..case("a session its own browser rotated away is superseded, not ended")
            },
            Case {
                announced: Some(keys().auth_hash(&changed).unwrap()),
                facts: Facts {
                    user: Some(changed.clone()),
                    entry: Some(Entry::Lives { last_seen: None }),
                    ..Facts::default()
                },
                verdict: Verdict::Holds {
                    user: changed.clone(),
                    signed: Signed::Announced {
                        hash: keys().auth_hash(&changed).unwrap(),
                        epoch: 0,
                    },
                },
                ..case("the hash the session announced after its own change holds")
            },
            Case {
                announced: Some(keys().auth_hash(&ALICE).unwrap()),
                facts: Facts {
                    user: Some(changed.clone()),
                    ..Facts::default()
                },
                verdict: ended(EndReason::CredentialChanged),
                asked: &["user", "superseded"],
                ..case("an announced hash that does not verify does not keep it")
            },
            Case {
                claim: Claim {
                    auth_hash: "not a hash".to_owned(),
                    ..claim_for(&keys(), &ALICE)
                },
                facts: Facts {
                    user: Some(ALICE),
                    ..Facts::default()
                },
                verdict: ended(EndReason::CredentialChanged),
                asked: &["user", "superseded"],
                ..case("a hash that is not one never verifies")
            },
            Case {
                facts: Facts {
                    user: Some(ALICE),
                    entry: Some(Entry::Gone),
                    ..Facts::default()
                },
                verdict: ended(EndReason::Revoked),
                ..case("a revoked entry ends it")
            },
            Case {
                claim: Claim {
                    handle: None,
                    ..claim_for(&keys(), &ALICE)
                },
                verdict: ended(EndReason::Revoked),
                asked: &["user"],
                ..case("a claim from before the registry ends once")
            },
            Case {
                claim: Claim {
                    handle: None,
                    ..claim_for(&keys(), &ALICE)
                },
                registry: false,
                asked: &["user"],
                ..case("and holds without a registry")
            },
            Case {
                claim: bound_claim(&ALICE_WITH_PASSKEY, 1, &keys()),
                facts: facts_of(ALICE_WITH_PASSKEY),
                verdict: Verdict::Holds {
                    user: ALICE_WITH_PASSKEY,
                    signed: Signed::Current,
                },
                ..case("a session bound to a passkey the user still has holds")
            },
            Case {
                claim: bound_claim(&ALICE_WITH_PASSKEY, 1, &keys()),
                facts: facts_of(ALICE),
                verdict: ended(EndReason::CredentialRemoved),
                asked: &["user"],
                ..case("removing the passkey ends it, before the registry is asked")
            },
            Case {
                claim: bound_claim(&ALICE_WITH_PASSKEY, 1, &keys()),
                facts: facts_of(User {
                    passkey: Some(2),
                    ..ALICE
                }),
                verdict: ended(EndReason::CredentialRemoved),
                asked: &["user"],
                ..case("replacing it (a new version) ends it")
            },
            Case {
                claim: bound_claim(&ALICE_WITH_PASSKEY, 1, &old_keys()),
                facts: facts_of(ALICE_WITH_PASSKEY),
                verdict: Verdict::Holds {
                    user: ALICE_WITH_PASSKEY,
                    signed: Signed::Fallback,
                },
                ..case("a binding under a fallback secret holds, to be re-signed")
            },
            Case {
                claim: bound_claim(&ALICE_WITH_PASSKEY, 1, &keys()),
                facts: facts_of(User {
                    credential: "argon2id$second",
                    ..ALICE_WITH_PASSKEY
                }),
                verdict: ended(EndReason::CredentialChanged),
                asked: &["user", "superseded"],
                ..case("a changed password ends a passkey's session too (Django's rule)")
            },
            Case {
                claim: bound_claim(&PASSWORDLESS, 1, &keys()),
                facts: facts_of(PASSWORDLESS),
                verdict: Verdict::Holds {
                    user: PASSWORDLESS,
                    signed: Signed::Current,
                },
                ..case("an account without a password holds by its passkey")
            },
            Case {
                claim: Claim {
                    bound: Vec::new(),
                    ..bound_claim(&PASSWORDLESS, 1, &keys())
                },
                facts: facts_of(PASSWORDLESS),
                verdict: ended(EndReason::CredentialChanged),
                asked: &["user", "superseded"],
                ..case("and never by nothing: an empty credential unbound mismatches")
            },
            Case {
                claim: bound_claim(&PASSWORDLESS, 1, &keys()),
                facts: facts_of(User {
                    passkey: None,
                    ..PASSWORDLESS
                }),
                verdict: ended(EndReason::CredentialRemoved),
                asked: &["user"],
                ..case("its passkey removed, it ends")
            },
        ]
    }

    /// An account with a passkey and no password.
    const PASSWORDLESS: User = User {
        credential: "",
        ..ALICE_WITH_PASSKEY
    };

    /// `user` found, their entry living.
    fn facts_of(user: User) -> Facts {
        Facts {
            user: Some(user),
            entry: Some(Entry::Lives { last_seen: None }),
            ..Facts::default()
        }
    }

    #[tokio::test]
    async fn the_rule_decides_every_case_and_asks_only_what_it_needs() {
        let (keys, times) = (keys().with_fallback(OLD_SECRET).unwrap(), times());
        for mut case in cases() {
            let rules = Rules {
                keys: &keys,
                times: &times,
                registry: case.registry.then_some(TOUCH),
            };
            let verdict = judge(
                rules,
                &case.claim,
                case.announced.as_deref(),
                case.now,
                &mut case.facts,
            )
            .await;
            assert_eq!(verdict, Ok(case.verdict), "{}", case.name);
            assert_eq!(case.facts.asked, case.asked, "{}", case.name);
        }
    }

    #[tokio::test]
    async fn a_failed_lookup_decides_nothing() {
        let (keys, times) = (keys(), times());
        let rules = Rules {
            keys: &keys,
            times: &times,
            registry: Some(TOUCH),
        };
        let mut facts = Facts {
            failing: true,
            ..Facts::default()
        };
        let claim = claim_for(&keys, &ALICE);
        let verdict = judge(rules, &claim, None, T0, &mut facts).await;
        assert_eq!(verdict, Err("backend down"));
    }
}
