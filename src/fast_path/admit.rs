//! Whether a pass signs its request in: the validity rule, with the
//! registry's answer taken from what this process heard.

use tower_sessions::session;

use super::{pass::Pass, FastPath};
use crate::{
    backend::{SessionUser, UserBackend},
    live::LiveSessions,
    times::UnixMillis,
    validity::{judge, Entry, Evidence, Rules, Signed, Verdict},
};

/// What the fast path made of a pass.
pub(crate) enum Admission<U> {
    /// The session holds for this user, as the pass says.
    Admitted(U),
    /// The pass cannot decide: the full path does.
    FullPath,
}

/// Judges the session of `pass`, presented with the session cookie
/// `session_id`, at `now`. Only a pass of this very session, within its
/// lifetime, whose activity needs no recording yet, issued after the last
/// change this process heard of its user, while the push is healthy, and
/// whose session the rule finds holding under the current secret, is
/// admitted.
///
/// # Errors
///
/// The backend's: the request fails closed, as on the full path.
pub(crate) async fn admit<B: UserBackend>(
    backend: &B,
    rules: Rules<'_>,
    live: &LiveSessions,
    fast: &FastPath,
    pass: &Pass<<B::User as SessionUser>::Id>,
    session_id: Option<session::Id>,
    now: UnixMillis,
) -> Result<Admission<B::User>, B::Error> {
    let changes = live.changes();
    let times = &pass.record.claim.times;
    // A pass from a process whose clock runs ahead is up to the skew "in
    // the future". One whose session's activity is due to be recorded goes
    // down the full path, which records it: the idle timeout stays as
    // exact as without the fast path.
    let admissible = session_id.is_some_and(|id| id.0 == pass.session)
        && pass.issued_at <= now.saturating_add(fast.skew_ms())
        && now < pass.expires_at
        && !times.activity_is_due(rules.times, now)
        && changes.healthy(now)
        && !changes.predates_change(&pass.user_key, pass.issued_at, fast.skew_ms());
    if !admissible {
        return Ok(Admission::FullPath);
    }
    let mut evidence = OnPass {
        backend,
        user_id: &pass.record.user_id,
    };
    let verdict = judge(rules, &pass.record.claim, None, now, &mut evidence).await?;
    Ok(match verdict {
        Verdict::Holds {
            user,
            signed: Signed::Current,
        } => Admission::Admitted(user),
        _ => Admission::FullPath,
    })
}

/// The evidence of a pass: the user from the backend; the registry entry
/// lives, since no change was heard since the pass was issued, when it did.
struct OnPass<'a, B: UserBackend> {
    backend: &'a B,
    user_id: &'a <B::User as SessionUser>::Id,
}

impl<B: UserBackend> Evidence<B::User> for OnPass<'_, B> {
    type Error = B::Error;
    type Found = B::User;

    fn claim_is_current(&self) -> bool {
        true
    }

    async fn user(&mut self) -> Result<Option<B::User>, B::Error> {
        self.backend.get_user(self.user_id).await
    }

    async fn entry(&mut self, _: &str) -> Result<Entry, B::Error> {
        Ok(Entry::Lives { last_seen: None })
    }

    /// A mismatch is never settled here: the full path re-reads the record.
    async fn superseded(&mut self) -> Result<bool, B::Error> {
        Ok(false)
    }
}
