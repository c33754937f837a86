//! What a response says of the pass: a new one, its removal, or nothing.

use axum::http::HeaderValue;
use serde::Serialize;
use tower_sessions::{session, Session};

use super::{pass::seal, FastPath};
use crate::{
    hash::AuthKeys, live::LiveSessions, record::AuthRecord, registry::user_key, times::UnixMillis,
};

/// How the layer found the request, for [`pass_cookie`].
pub(crate) struct Found<Id> {
    /// The session id the request came with, before the handler ran.
    pub(crate) session: Option<session::Id>,
    /// When the layer began to judge the request: a new pass is issued as
    /// of then, so that a change heard while the request ran refuses it.
    pub(crate) started: UnixMillis,
    /// The request carried a pass cookie (readable or not).
    pub(crate) pass_seen: bool,
    /// The pass signed the request in.
    pub(crate) admitted: bool,
    /// The record the full path verified, when it found the session holding.
    pub(crate) verified: Option<AuthRecord<Id>>,
}

/// The `Set-Cookie` of the pass once the handler has run: a new pass for a
/// session the full path found holding, under the id it came with; the
/// removal of a pass the request carried when its session no longer holds
/// or changed its id; nothing when the pass admitted the request and the
/// handler left the session alone.
///
/// A session whose id the handler changed (a sign-in, a password change)
/// gets its pass on its next request: its new id exists only once
/// tower-sessions saves it, after this layer. No pass is issued that would
/// not be trusted.
pub(crate) fn pass_cookie<Id: Serialize>(
    fast: &FastPath,
    keys: &AuthKeys,
    live: Option<&LiveSessions>,
    session: &Session,
    found: Found<Id>,
) -> Option<HeaderValue> {
    let unchanged = session.id().filter(|&id| Some(id) == found.session);
    if found.admitted && unchanged.is_some() {
        return None;
    }
    // A pass the next request would refuse is not worth sealing: while the
    // push is unhealthy, or within the clock skew after a change of the
    // user (the first heartbeat heard counts as one for everybody).
    let trusted = |record: &AuthRecord<Id>| {
        live.is_some_and(|live| {
            let changes = live.changes();
            changes.healthy(found.started)
                && user_key(&record.user_id)
                    .is_ok_and(|key| !changes.predates_change(&key, found.started, fast.skew_ms()))
        })
    };
    let issued = match (found.verified, unchanged) {
        (Some(record), Some(id)) if trusted(&record) => {
            let expires = found.started.saturating_add(fast.lifetime_ms());
            seal(keys, id.0, found.started, expires, &record)
                .and_then(|value| fast.set_cookie(&value))
        }
        _ => None,
    };
    match issued {
        Some(cookie) => Some(cookie),
        None if found.pass_seen => fast.removal(),
        None => None,
    }
}
