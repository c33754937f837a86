//! "Recent activity": the account's sign-ins, sign-outs and ended sessions,
//! kept from tower-sessions-auth's events in the users' database (so every
//! demo process sharing it sees the same list) and shown on the home page.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::header;
use tower_sessions_auth::{
    events::{AuthEvent, AuthEventKind, EventHook, Events},
    EndReason,
};

use super::{devices::rfc3339, users::Users};

/// How many entries are kept (and shown) per user.
pub(crate) const KEPT_PER_USER: i64 = 10;

/// Longest user agent kept, in characters.
const MAX_AGENT_CHARS: usize = 256;

/// One line of the list, as the page shows it.
pub(crate) struct Entry {
    /// RFC 3339, UTC, to the second.
    pub(crate) at: String,
    pub(crate) what: String,
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<String>,
}

/// The events the demo listens to, with what it records of each request:
/// the user agent and the peer address of the TCP connection.
pub(crate) fn events(users: Users) -> Events<impl EventHook<i64>> {
    Events::new(move |event: AuthEvent<i64>| {
        let users = users.clone();
        async move {
            if let Err(err) = record(&users, &event).await {
                tracing::warn!(error = %err, "recent activity not recorded");
            }
        }
    })
    .capture_header(header::USER_AGENT)
    .capture_peer_addr()
}

/// Words for the user; `None` for events the list leaves out.
fn describe(kind: AuthEventKind) -> Option<&'static str> {
    Some(match kind {
        AuthEventKind::SignedIn => "Signed in",
        AuthEventKind::SignedOut => "Signed out",
        AuthEventKind::SessionEnded(EndReason::CredentialChanged) => {
            "A session was signed out after a password change"
        }
        AuthEventKind::SessionEnded(EndReason::EpochChanged) => {
            "A session was signed out by \"Sign out other devices\""
        }
        AuthEventKind::SessionEnded(EndReason::CredentialRemoved) => {
            "A session was signed out: its passkey was removed"
        }
        AuthEventKind::SessionEnded(EndReason::DeviceUnproven) => {
            "A session was signed out: it could not prove its device"
        }
        AuthEventKind::SessionEnded(_) => "A session was signed out",
        AuthEventKind::DeviceRegistered => "A session was bound to its device",
        AuthEventKind::DeviceProofMissing => {
            "A device-bound session's cookie was used without its device proof"
        }
        _ => return None,
    })
}

async fn record(users: &Users, event: &AuthEvent<i64>) -> Result<(), sqlx::Error> {
    let (Some(user_id), Some(what)) = (event.user_id, describe(event.kind)) else {
        return Ok(());
    };
    let at = event.at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
    });
    let user_agent = event
        .request
        .headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(MAX_AGENT_CHARS).collect::<String>());
    let ip = event.request.peer_addr.map(|addr| addr.ip().to_string());
    let entry = (at, what.to_owned(), user_agent, ip);
    users.add_activity(user_id, entry, KEPT_PER_USER).await
}

/// The user's most recent entries, newest first.
pub(crate) async fn recent(users: &Users, user_id: i64) -> Result<Vec<Entry>, sqlx::Error> {
    let rows = users.recent_activity(user_id, KEPT_PER_USER).await?;
    Ok(rows
        .into_iter()
        .map(|(at, what, user_agent, ip)| Entry {
            at: rfc3339(UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap_or(0))),
            what,
            user_agent,
            ip,
        })
        .collect())
}
