//! Whether a pass signs its request in: the validity rule, with the
//! registry's answer taken from what this process heard.

use tower_sessions::session;

use super::{pass::Pass, FastPath};
use crate::{
    backend::{SessionUser, UserBackend},
    config::Config,
    times::UnixMillis,
    validity::{judge, Entry, Evidence, Signed, Verdict},
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
/// lifetime, issued after the last change this process heard of its user,
/// while the push is healthy, whose recorded activity is not due for a
/// rewrite, and whose session the rule finds holding under the current
/// secret, is admitted.
///
/// The fast path records no activity: once the session's is due, the
/// full path writes it (and issues a new pass), as it would without a
/// fast path, so that a session in use never reaches its idle timeout.
///
/// # Errors
///
/// The backend's: the request fails closed, as on the full path.
pub(crate) async fn admit<B: UserBackend>(
    backend: &B,
    config: &Config,
    fast: &FastPath,
    pass: &Pass<<B::User as SessionUser>::Id>,
    session_id: Option<session::Id>,
    now: UnixMillis,
) -> Result<Admission<B::User>, B::Error> {
    let Some(live) = config.live() else {
        return Ok(Admission::FullPath);
    };
    let changes = live.changes();
    let admissible = session_id.is_some_and(|id| id.0 == pass.session)
        && pass.issued_at <= now
        && now < pass.expires_at
        && !pass.record.claim.times.activity_is_due(&config.times, now)
        && changes.healthy(now)
        && !changes.predates_change(&pass.user_key, pass.issued_at, fast.skew_ms());
    if !admissible {
        return Ok(Admission::FullPath);
    }
    let mut evidence = OnPass {
        backend,
        user_id: &pass.record.user_id,
    };
    let verdict = judge(config.rules(), &pass.record.claim, None, now, &mut evidence).await?;
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
