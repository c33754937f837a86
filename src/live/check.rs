//! Checking the watches of one user again: the same questions the layer
//! asks on a request, without a request.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
};

use crate::{
    backend::{SessionUser, UserBackend},
    hash::{AuthKeys, Verification},
    record::EndReason,
    registry::{now, SessionRegistry},
};

/// What a check knows of one watch.
pub(crate) struct Probe {
    pub(crate) handle: String,
    pub(crate) hash: String,
    /// A newer hash announced for this session by `update_session_auth_hash`.
    pub(crate) candidate: Option<String>,
    pub(crate) epoch: u64,
}

/// What a check decided about one watch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The session holds; with the announced hash and the user's epoch
    /// when that hash is the one that verifies now.
    Holds {
        adopt: Option<(String, u64)>,
    },
    Ended(EndReason),
}

/// A check that could not decide (the backend or the registry failed).
pub(crate) type CheckError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) type CheckFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Verdict>, CheckError>> + Send + 'a>>;

/// Checks the watches of one user (keyed by the id as JSON). Type-erased
/// over the backend, so that [`LiveSessions`](crate::LiveSessions) needs
/// no type parameter.
pub(crate) trait Verify: Send + Sync + 'static {
    fn check<'a>(&'a self, user: &'a str, probes: &'a [Probe]) -> CheckFuture<'a>;
}

/// The layer's backend, secrets and registry, as a [`Verify`].
pub(crate) struct BackendCheck<B> {
    pub(crate) backend: B,
    pub(crate) keys: AuthKeys,
    pub(crate) registry: SessionRegistry,
}

impl<B: UserBackend> Verify for BackendCheck<B> {
    fn check<'a>(&'a self, user: &'a str, probes: &'a [Probe]) -> CheckFuture<'a> {
        Box::pin(async move {
            let ended = |reason| probes.iter().map(|_| Verdict::Ended(reason)).collect();
            let Ok(id) = serde_json::from_str::<<B::User as SessionUser>::Id>(user) else {
                return Ok(ended(EndReason::Malformed));
            };
            let Some(found) = self.backend.get_user(&id).await? else {
                return Ok(ended(EndReason::UserGone));
            };
            let live: HashSet<String> = self
                .registry
                .store()
                .list(user, now())
                .await?
                .into_iter()
                .map(|entry| entry.handle)
                .collect();
            // A session's connections share its hash: verify each hash once.
            let mut verified = HashMap::new();
            Ok(probes
                .iter()
                .map(|probe| self.verdict(&found, probe, &live, &mut verified))
                .collect())
        })
    }
}

impl<B: UserBackend> BackendCheck<B> {
    /// The layer's order of questions: the hash first (so a password change
    /// is named as such), then the registry entry.
    fn verdict<'p>(
        &self,
        user: &B::User,
        probe: &'p Probe,
        live: &HashSet<String>,
        verified: &mut HashMap<&'p str, bool>,
    ) -> Verdict {
        let mut holds = |hash: &'p str| {
            *verified
                .entry(hash)
                .or_insert_with(|| self.keys.verify(user, hash) != Verification::Mismatch)
        };
        let adopt = if holds(&probe.hash) {
            None
        } else if let Some(candidate) = probe.candidate.as_ref().filter(|hash| holds(hash)) {
            Some((candidate.clone(), user.session_epoch()))
        } else if probe.epoch == user.session_epoch() {
            return Verdict::Ended(EndReason::CredentialChanged);
        } else {
            return Verdict::Ended(EndReason::EpochChanged);
        };
        if live.contains(&probe.handle) {
            Verdict::Holds { adopt }
        } else {
            Verdict::Ended(EndReason::Revoked)
        }
    }
}
