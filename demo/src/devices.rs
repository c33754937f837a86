//! "Signed-in devices": the user's sessions from tower-sessions-auth's
//! session registry, as the `/sessions` page and `/api/sessions` show them.

use std::time::SystemTime;

use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use tower_sessions_auth::AuthSession;

use super::{error::AppError, times::SessionTimes, users::User};

/// One session, ready to show.
pub(crate) struct Device {
    pub(crate) handle: String,
    pub(crate) current: bool,
    /// RFC 3339, UTC.
    pub(crate) created_at: String,
    pub(crate) last_seen_at: String,
    /// When it ends if it is not used again (see [`SessionTimes::ends_at`]).
    pub(crate) expires_at: String,
    /// Signed in with "keep me signed in".
    pub(crate) remembered: bool,
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<String>,
}

/// The signed-in user's sessions, most recently seen first, without those
/// past their deadline: the layer ends such a session, and removes its
/// entry, only on its next request, which may never come.
pub(crate) async fn listed(
    auth: &AuthSession<User>,
    times: &SessionTimes,
) -> Result<Vec<Device>, AppError> {
    let now = SystemTime::now();
    Ok(auth
        .sessions()
        .await?
        .into_iter()
        .filter_map(|session| {
            let ends_at = times.ends_at(&session);
            // The current session is in use right now.
            (session.current || ends_at > now).then_some((session, ends_at))
        })
        .map(|(session, ends_at)| Device {
            handle: session.handle.to_string(),
            current: session.current,
            remembered: SessionTimes::is_remembered(&session),
            created_at: rfc3339(session.created_at),
            last_seen_at: rfc3339(session.last_seen_at),
            expires_at: rfc3339(ends_at),
            user_agent: session.user_agent,
            ip: session.ip.map(|ip| ip.to_string()),
        })
        .collect())
}

/// `at` as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .replace_nanosecond(0)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
