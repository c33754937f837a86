//! "Signed-in devices": the user's sessions from tower-sessions-auth's
//! session registry, as the `/sessions` page and `/api/sessions` show them.

use std::time::SystemTime;

use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use tower_sessions_auth::AuthSession;

use super::{error::AppError, users::User};

/// One session, ready to show.
pub(crate) struct Device {
    pub(crate) handle: String,
    pub(crate) current: bool,
    /// RFC 3339, UTC.
    pub(crate) created_at: String,
    pub(crate) last_seen_at: String,
    /// When it ends if it is not used again.
    pub(crate) expires_at: String,
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<String>,
}

/// The signed-in user's sessions, most recently seen first.
pub(crate) async fn listed(auth: &AuthSession<User>) -> Result<Vec<Device>, AppError> {
    Ok(auth
        .sessions()
        .await?
        .into_iter()
        .map(|session| Device {
            handle: session.handle.to_string(),
            current: session.current,
            created_at: rfc3339(session.created_at),
            last_seen_at: rfc3339(session.last_seen_at),
            expires_at: rfc3339(session.expires_at),
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
