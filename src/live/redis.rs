//! Live-session notices over Redis pub/sub.

use std::fmt;

use async_trait::async_trait;
use fred::{
    clients::{Pool, SubscriberClient},
    interfaces::{ClientLike as _, EventInterface as _, PubsubInterface as _},
    types::config::ReconnectPolicy,
};
use tokio::sync::{broadcast::error::RecvError, mpsc};

use super::channel::{ChannelError, LiveChannel, Signal, CHANNEL_NAME};

/// Milliseconds between the subscriber's attempts to reconnect.
const RECONNECT_DELAY_MS: u32 = 500;

/// Notices between processes over Redis pub/sub, on the fred pool that the
/// session store (tower-sessions-redis-store) or the
/// [`RedisRegistry`](crate::registry::RedisRegistry) already uses.
///
/// Publishing goes through the pool; listening uses one connection of its
/// own per process, made from the pool's settings, that reconnects by
/// itself. Pub/sub delivers to the processes connected at the time, at most
/// once; what a broken connection misses, the periodic re-check covers.
///
/// # Redis Cluster
///
/// On a cluster pool (a `redis-cluster://` URL) the channel works as it
/// is, with classic pub/sub (`PUBLISH`/`SUBSCRIBE`) rather than sharded
/// pub/sub (`SPUBLISH`/`SSUBSCRIBE`), for three reasons:
///
/// - The cluster forwards a classic message to every node, so a
///   subscriber hears it whichever node it is connected to, and a
///   resharding never moves its subscription. A sharded subscription
///   lives on the shard of the channel's slot: when that slot migrates,
///   Redis unsubscribes its subscribers, and fred 10 does not subscribe
///   again by itself, so notices would stop until the next failure.
/// - Sharding pays off with many channels spread over the shards; an
///   application has one channel, and its notices (one per sign-out,
///   password change or revocation, not per request) are a small load for
///   the cluster bus, even forwarded to every node.
/// - It needs no Redis 7 on a single server.
///
/// When the node the subscriber is connected to fails, fred reconnects to
/// the cluster as it now is (a replica promoted in its place) and the
/// listener subscribes again; until then it reports the channel lost, so
/// every watch is checked again once it is back.
///
/// ```no_run
/// # async fn run() -> Result<(), fred::error::Error> {
/// use fred::{clients::Pool, interfaces::ClientLike as _, types::config::Config};
/// use tower_sessions_auth::live::{LiveSessions, RedisChannel};
///
/// let pool = Pool::new(Config::from_url("redis://127.0.0.1:6379")?, None, None, None, 4)?;
/// pool.init().await?;
/// let live = LiveSessions::new().with_channel(RedisChannel::new(pool));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisChannel {
    pool: Pool,
    name: String,
}

impl RedisChannel {
    /// Notices over the Redis server of `pool` (which must be connected),
    /// on the pub/sub channel `tsa_live_sessions`.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            name: CHANNEL_NAME.to_owned(),
        }
    }

    /// Uses the pub/sub channel `name`: one per application, when several
    /// share a Redis server (their notices would only cost checks, but
    /// their user ids may mean other people).
    #[must_use]
    pub fn with_channel_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn subscriber(&self) -> SubscriberClient {
        let client = self.pool.next();
        SubscriberClient::new(
            client.client_config(),
            Some(client.perf_config()),
            Some(client.connection_config().clone()),
            Some(ReconnectPolicy::new_constant(0, RECONNECT_DELAY_MS)),
        )
    }
}

impl fmt::Debug for RedisChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisChannel").finish_non_exhaustive()
    }
}

#[async_trait]
impl LiveChannel for RedisChannel {
    async fn publish(&self, notice: &str) -> Result<(), ChannelError> {
        self.pool
            .next()
            .publish::<(), _, _>(self.name.as_str(), notice)
            .await
            .map_err(ChannelError::new)
    }

    fn listen(&self, signals: mpsc::Sender<Signal>) {
        let subscriber = self.subscriber();
        let name = self.name.clone();
        tokio::spawn(async move {
            listen(&subscriber, &name, &signals).await;
            // Leaves the server's list of subscribers; the process is
            // shutting down its watches, so a failure changes nothing.
            let _ = subscriber.quit().await;
        });
    }
}

/// Subscribes, then forwards notices, losses and restorations until
/// `signals` closes.
async fn listen(subscriber: &SubscriberClient, name: &str, signals: &mpsc::Sender<Signal>) {
    let mut messages = subscriber.message_rx();
    let mut errors = subscriber.error_rx();
    let mut reconnects = subscriber.reconnect_rx();
    let mut up = match subscribe(subscriber, name).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "live sessions: cannot subscribe to Redis yet; retrying"
            );
            if signals.send(Signal::Lost).await.is_err() {
                return;
            }
            false
        }
    };
    loop {
        let signal = tokio::select! {
            () = signals.closed() => return,
            message = messages.recv() => match message {
                Ok(message) => match message.value.as_string() {
                    Some(text) => Signal::Notice(text),
                    None => continue,
                },
                // Fell behind the client's buffer: notices were dropped.
                Err(RecvError::Lagged(_)) => Signal::Restored,
                // The client is gone; it cannot happen while it is held.
                Err(RecvError::Closed) => return,
            },
            error = errors.recv() => match error {
                Ok(_) if up => {
                    up = false;
                    Signal::Lost
                }
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            reconnect = reconnects.recv() => {
                match reconnect {
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
                if let Err(error) = subscriber.resubscribe_all().await {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "live sessions: Redis reconnected but resubscribing failed"
                    );
                    continue;
                }
                up = true;
                Signal::Restored
            }
        };
        if signals.send(signal).await.is_err() {
            return;
        }
    }
}

/// Connects the subscriber (it keeps reconnecting by itself afterwards)
/// and subscribes to the channel.
async fn subscribe(subscriber: &SubscriberClient, name: &str) -> Result<(), fred::error::Error> {
    // A second `init` of a connected client fails; ignore that case.
    if !subscriber.is_connected() {
        subscriber.init().await?;
    }
    subscriber.subscribe(name).await
}

#[cfg(test)]
mod tests {
    use fred::types::{config::Config, Builder};

    use super::*;

    #[test]
    fn debug_names_the_type_and_nothing_of_the_connection() {
        let config = Config::from_url("redis://someone:a-password@cache.example:6379").unwrap();
        let pool = Builder::from_config(config).build_pool(1).unwrap();
        let channel = RedisChannel::new(pool).with_channel_name("app_notices");
        assert_eq!(format!("{channel:?}"), "RedisChannel { .. }");
    }
}
