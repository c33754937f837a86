//! Passkeys: WebAuthn credentials that sign a user in without a password,
//! or confirm a sensitive action, each one a credential the session
//! depends on.
//!
//! The relying party is [webauthn-rs](https://docs.rs/webauthn-rs) (the
//! best-known Rust one, pure Rust since 0.6): it builds the options the
//! browser's `navigator.credentials` calls take and verifies what they
//! return. This module stores the passkeys ([`store`]), derives the relying
//! party from the site's origin ([`relying_party`]), and serves the JSON
//! ceremonies ([`api`]) and the `/passkeys` page ([`pages`]).
//!
//! A session signed in (or confirmed) with a passkey records the factors
//! the authenticator reported (`hwk` or `swk`, and `user`) and depends on
//! that passkey: [`User::passkeys`](crate::users::User::passkeys) carries
//! the user's credential ids on every request, so removing a passkey ends
//! the sessions it proved on their next request, on every instance, and
//! the live connections at once through the live sessions' channel.

pub(crate) mod api;
pub(crate) mod pages;
pub(crate) mod relying_party;
pub(crate) mod store;

use tower_sessions_auth::{credential::Factor, live::LiveSessions};

pub(crate) use super::users::encode_id;
use super::{error::AppError, users::User, AppState};

/// The RFC 8176 factors a passkey proves: a key that may be synced to
/// other devices (backup-eligible) is software-held (`swk`), one that
/// cannot leave its authenticator hardware-held (`hwk`); and user presence
/// (`user`), which the relying party always requires.
pub(crate) fn factors(backup_eligible: bool) -> [Factor; 2] {
    let key = if backup_eligible {
        Factor::SWK
    } else {
        Factor::HWK
    };
    [key, Factor::USER]
}

/// What became of a passkey to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    Removed,
    /// The user has no passkey by that id (another user's is never
    /// touched).
    NotFound,
    /// It is the only way into an account without a password: kept, or
    /// nobody could ever sign in to it again.
    LastWayIn,
}

/// The answer when the last way into an account is to be removed.
pub(crate) const LAST_WAY_IN: &str =
    "this passkey is the only way to sign in to the account: set a password or add another \
     passkey first";

/// Removes `user`'s passkey `id`, unless it is their last way in.
///
/// The sessions it proved end on their next request (the user no longer
/// carries it); their open event streams and sockets, in every process,
/// are checked again at once rather than at the next periodic check.
pub(crate) async fn remove(state: &AppState, user: &User, id: &str) -> Result<Removal, AppError> {
    let theirs = user.passkeys.iter().any(|raw| encode_id(raw) == id);
    if theirs && !user.has_password() && user.passkeys.len() == 1 {
        return Ok(Removal::LastWayIn);
    }
    if !state.users.remove_passkey(user.id, id).await? {
        return Ok(Removal::NotFound);
    }
    notify(&state.live, user.id).await;
    Ok(Removal::Removed)
}

/// Asks every process to check `user`'s live connections again. A channel
/// that fails to publish is logged, not fatal: the periodic check still
/// ends those connections within its period.
async fn notify(live: &LiveSessions, user: i64) {
    if let Err(err) = live.notify(&user).await {
        tracing::warn!(error = %err, "could not announce a removed passkey");
    }
}
