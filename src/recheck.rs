//! The live check of open connections: the layer's validity rule, for
//! the watches of one user, without a request.

use std::collections::HashMap;

use crate::{
    backend::{SessionUser, UserBackend},
    config::Context,
    live::{CheckError, CheckFuture, Probe, Verdict, Verify},
    record::EndReason,
    registry::{RegistryEntry, RegistryError},
    validity::{judge, Entry, Evidence, Signed, Verdict as Ruling},
};

/// The layer's backend and configuration, as a [`Verify`].
pub(crate) struct BackendCheck<B> {
    pub(crate) backend: B,
    pub(crate) context: Context,
}

impl<B: UserBackend> Verify for BackendCheck<B> {
    fn check<'a>(&'a self, user: &'a str, probes: &'a [Probe]) -> CheckFuture<'a> {
        Box::pin(async move {
            let Ok(id) = serde_json::from_str::<<B::User as SessionUser>::Id>(user) else {
                return Ok(probes
                    .iter()
                    .map(|_| Verdict::Ended(EndReason::Malformed))
                    .collect());
            };
            let context = &self.context;
            let now = context.times.clock.now_ms();
            let mut evidence = Shared {
                backend: &self.backend,
                context,
                id: &id,
                key: user,
                now,
                user: None,
                entries: None,
            };
            let mut verdicts = Vec::with_capacity(probes.len());
            for probe in probes {
                let ruling = judge(
                    context.rules(),
                    &probe.claim,
                    probe.announced.as_deref(),
                    now,
                    &mut evidence,
                )
                .await?;
                verdicts.push(match ruling {
                    Ruling::Holds {
                        signed: Signed::Announced { hash, epoch },
                        ..
                    } => Verdict::Holds {
                        adopt: Some((hash, epoch)),
                    },
                    Ruling::Holds { .. } => Verdict::Holds { adopt: None },
                    Ruling::Ended(reason) => Verdict::Ended(reason),
                    // A watch is never told it was superseded (see
                    // `Shared::superseded`); a mismatch it is.
                    Ruling::Superseded => Verdict::Ended(EndReason::CredentialChanged),
                });
            }
            Ok(verdicts)
        })
    }
}

/// The evidence of one check, looked up once for all the watches of the
/// user, and only if a watch's verdict depends on it.
struct Shared<'a, B: UserBackend> {
    backend: &'a B,
    context: &'a Context,
    id: &'a <B::User as SessionUser>::Id,
    key: &'a str,
    now: i64,
    user: Option<Option<B::User>>,
    entries: Option<HashMap<String, RegistryEntry>>,
}

impl<B: UserBackend> Evidence<B::User> for Shared<'_, B> {
    type Error = CheckError;
    type Found = B::User;

    fn claim_is_current(&self) -> bool {
        false
    }

    async fn user(&mut self) -> Result<Option<B::User>, CheckError> {
        if self.user.is_none() {
            self.user = Some(self.backend.get_user(self.id).await?);
        }
        Ok(self.user.clone().flatten())
    }

    async fn entry(&mut self, handle: &str) -> Result<Entry, CheckError> {
        if self.entries.is_none() {
            let registry = self
                .context
                .registry
                .as_ref()
                .ok_or_else(|| RegistryError::backend("no session registry"))?;
            let listed = registry.store().list(self.key, self.now).await?;
            self.entries = Some(
                listed
                    .into_iter()
                    .map(|entry| (entry.handle.clone(), entry))
                    .collect(),
            );
        }
        Ok(
            match self
                .entries
                .as_ref()
                .and_then(|entries| entries.get(handle))
            {
                Some(entry) => Entry::Lives {
                    last_seen: Some(entry.last_seen_at),
                },
                None => Entry::Gone,
            },
        )
    }

    /// A watch does not know whether its session's browser moved on; the
    /// hub's grace and the announced hash of `update_session_auth_hash`
    /// keep such a watch instead.
    async fn superseded(&mut self) -> Result<bool, CheckError> {
        Ok(false)
    }
}
