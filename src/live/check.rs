//! What the hub asks when it checks the watches of one user again; the
//! layer answers with its validity rule (`src/recheck.rs`).

use std::{future::Future, pin::Pin};

use crate::record::{Claim, EndReason};

/// What a check knows of one watch: its session's claim, and a newer hash
/// the session announced after changing its own password.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) claim: Claim,
    pub(crate) announced: Option<String>,
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
/// over the backend, so that [`LiveSessions`](crate::live::LiveSessions) needs
/// no type parameter.
pub(crate) trait Verify: Send + Sync + 'static {
    fn check<'a>(&'a self, user: &'a str, probes: &'a [Probe]) -> CheckFuture<'a>;
}
