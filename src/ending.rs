//! Ending a session that no longer holds: on a request (the layer) and at
//! a device-bound session's refresh signed by another key.

use serde::Serialize;
use tower_sessions::{session, Session};

use crate::{
    config::Context,
    record::{end_session, AuthRecord, EndReason},
    registry::{user_key, RegistryError},
};

/// Why a session could not be ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EndFailure {
    #[error("session registry failed")]
    Registry(#[source] RegistryError),
    #[error("session store failed")]
    Store(#[source] session::Error),
}

/// Ends the session of `record` for `reason`: its registry entry is
/// removed (which tells its live connections, here and in the other
/// processes), its data and store record are deleted and the cookie
/// removed, and a warning is logged with a keyed fingerprint of the id.
pub(crate) async fn end<Id: Serialize>(
    context: &Context,
    session: &Session,
    reason: EndReason,
    record: Option<&AuthRecord<Id>>,
) -> Result<(), EndFailure> {
    let ended = fingerprint(context, session);
    let handle = record.and_then(|record| record.claim.handle.as_ref());
    if let (Some(registry), Some(record), Some(handle)) = (&context.registry, record, handle) {
        registry
            .end(&record.user_id, handle)
            .await
            .map_err(EndFailure::Registry)?;
    }
    end_session(session).await.map_err(EndFailure::Store)?;
    tracing::warn!(session = %ended, %reason, "session ended");
    // Without a registry entry to remove, the session's open connections
    // may still not have heard of what ended it (a password changed in the
    // database directly).
    if let (Some(live), Some(record), None) = (context.live(), record, handle) {
        if let Ok(user) = user_key(&record.user_id) {
            live.changed(user, None);
        }
    }
    Ok(())
}

/// What the logs may say of the session id: a keyed fingerprint of it.
pub(crate) fn fingerprint(context: &Context, session: &Session) -> String {
    session.id().map_or_else(
        || "none".to_owned(),
        |id| context.keys.log_fingerprint(&id.to_string()),
    )
}
