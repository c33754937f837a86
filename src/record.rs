//! What the crate keeps in the session, and under which key.

use serde::{Deserialize, Serialize};

/// The session key of the [`AuthRecord`]. One key keeps the per-request work
/// to one lookup and one decode.
pub(crate) const SESSION_KEY: &str = "_auth";

/// The signed-in user of a session: the user id and the auth hash, a 43
/// character string. The password hash itself never reaches the store.
#[derive(Serialize, Deserialize)]
pub(crate) struct AuthRecord<Id> {
    #[serde(rename = "id")]
    pub(crate) user_id: Id,
    #[serde(rename = "hash")]
    pub(crate) auth_hash: String,
}
