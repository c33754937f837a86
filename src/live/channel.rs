//! How processes tell each other that a user's sessions changed.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// A failure to publish on, or listen to, a [`LiveChannel`].
#[derive(Debug, thiserror::Error)]
#[error("live-session channel failed")]
pub struct ChannelError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl ChannelError {
    /// Wraps the channel's own error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

/// What a channel's listener reports to [`LiveSessions`](crate::live::LiveSessions).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// A notice that some process published.
    Notice(String),
    /// The subscription broke: notices may be lost until it is restored.
    Lost,
    /// The subscription works again (after [`Lost`](Self::Lost)): every
    /// watch is checked again, since notices may have been missed.
    Restored,
}

/// A broadcast between the processes of one application: Redis pub/sub
/// ([`RedisChannel`](crate::live::RedisChannel)) or Postgres `LISTEN/NOTIFY`
/// ([`PostgresChannel`](crate::live::PostgresChannel)), or one of your own.
///
/// Delivery may be lossy: the periodic re-check covers what is lost.
#[async_trait]
pub trait LiveChannel: std::fmt::Debug + Send + Sync + 'static {
    /// Sends `notice` to every process listening, this one included or not.
    async fn publish(&self, notice: &str) -> Result<(), ChannelError>;

    /// Starts listening: spawns a task that sends every notice received,
    /// and every loss and restoration of the subscription, to `signals`,
    /// until `signals` is closed (then it unsubscribes and ends).
    fn listen(&self, signals: mpsc::Sender<Signal>);
}

/// The name of the Redis channel and the Postgres notification channel.
#[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
pub(crate) const CHANNEL_NAME: &str = "tsa_live_sessions";

/// What one process tells the others: check the watches of `user` again,
/// and, after `update_session_auth_hash`, let the session `keep` carry its
/// new hash. The hash is as secret as the session store that holds it, and
/// a watch adopts it only after it verifies against the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Notice {
    /// The user's id as JSON, as the registry keys it, or [`EVERYONE`].
    pub(crate) user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) keep: Option<Kept>,
    /// The process that sent it, which has acted on it already.
    pub(crate) from: u64,
}

/// The `user` of a notice that concerns every user ("sign everyone out"):
/// a bare `*` is no JSON value, so no user id is written so.
pub(crate) const EVERYONE: &str = "*";

/// The `user` of a process's heartbeat, which tells it that the channel
/// carries its notices (see [`Changes`](super::changes::Changes)): no user
/// id's JSON is empty. Processes that know no heartbeat check no watch for
/// it.
pub(crate) const HEARTBEAT: &str = "";

/// The session that made a change and stays signed in, with its new hash.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Kept {
    pub(crate) handle: String,
    pub(crate) hash: String,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_debug_hides_the_kept_session() {
        let notice = Notice {
            user: "42".to_owned(),
            keep: Some(Kept {
                handle: "q3XcA9-_kLmN0pQrStUvWx".to_owned(),
                hash: "iJrSgUXLcbJg1N3uQ7LHtXFof-5f7ILEYAvztu6gh3U".to_owned(),
            }),
            from: 7,
        };
        let text = serde_json::to_string(&notice).unwrap();
        let back: Notice = serde_json::from_str(&text).unwrap();
        assert_eq!(back.user, "42");
        assert_eq!(back.from, 7);
        assert_eq!(back.keep.as_ref().unwrap().handle, "q3XcA9-_kLmN0pQrStUvWx");
        let printed = format!("{back:?}");
        assert!(
            printed.contains("keep: Some(Kept(<redacted>))")
                && !printed.contains("q3Xc")
                && !printed.contains("iJrS"),
            "{printed}"
        );

        let plain: Notice = serde_json::from_str(r#"{"user":"\"a\"","from":1}"#).unwrap();
        assert!(plain.keep.is_none());
        assert!(serde_json::from_str::<Notice>(r#"{"user":1,"from":1}"#).is_err());
    }
}
