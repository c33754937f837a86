//! Live-session notices over Redis pub/sub.

use std::fmt;

use async_trait::async_trait;
use fred::{
    clients::{Pool, SubscriberClient},
    interfaces::{ClientLike as _, EventInterface as _, PubsubInterface as _},
    types::config::ReconnectPolicy,
};
use tokio::sync::mpsc;

use super::channel::{ChannelError, LiveChannel, Signal, CHANNEL_NAME};

/// Milliseconds between the subscriber's attempts to reconnect.
const RECONNECT_DELAY_MS: u32 = 500;

/// Notices between processes over Redis pub/sub, on the fred pool that the
/// session store (tower-sessions-redis-store) or the
/// [`RedisRegistry`](crate::RedisRegistry) already uses.
///
/// Publishing goes through the pool; listening uses one connection of its
/// own per process, made from the pool's settings, that reconnects by
/// itself. Pub/sub delivers to the processes connected at the time, at most
/// once; what a broken connection misses, the periodic re-check covers.
///
/// ```no_run
/// # async fn run() -> Result<(), fred::error::Error> {
/// use fred::{clients::Pool, interfaces::ClientLike as _, types::config::Config};
/// use tower_sessions_auth::{LiveSessions, RedisChannel};
///
/// let pool = Pool::new(Config::from_url("redis://127.0.0.1:6379")?, None, None, None, 4)?;
/// pool.init().await?;
/// let live = LiveSessions::new().with_channel(RedisChannel::new(pool));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisChannel {
    pool: Pool,
}

impl RedisChannel {
    /// Notices over the Redis server of `pool` (which must be connected).
    pub fn new(pool: Pool) -> Self {
        Self { pool }
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
            .publish::<(), _, _>(CHANNEL_NAME, notice)
            .await
            .map_err(ChannelError::new)
    }

    fn listen(&self, signals: mpsc::Sender<Signal>) {
        let subscriber = self.subscriber();
        tokio::spawn(async move {
            listen(&subscriber, &signals).await;
            // Leaves the server's list of subscribers; the process is
            // shutting down its watches, so a failure changes nothing.
            let _ = subscriber.quit().await;
        });
    }
}

/// Subscribes, then forwards notices, losses and restorations until
/// `signals` closes.
async fn listen(subscriber: &SubscriberClient, signals: &mpsc::Sender<Signal>) {
    let mut messages = subscriber.message_rx();
    let mut errors = subscriber.error_rx();
    let mut reconnects = subscriber.reconnect_rx();
    let mut up = match subscribe(subscriber).await {
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
                // Lagged behind the broadcast buffer: notices were dropped.
                Err(_) => Signal::Restored,
            },
            error = errors.recv() => {
                if error.is_err() || !up {
                    continue;
                }
                up = false;
                Signal::Lost
            }
            reconnect = reconnects.recv() => {
                if reconnect.is_err() {
                    continue;
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
async fn subscribe(subscriber: &SubscriberClient) -> Result<(), fred::error::Error> {
    // A second `init` of a connected client fails; ignore that case.
    if !subscriber.is_connected() {
        subscriber.init().await?;
    }
    subscriber.subscribe(CHANNEL_NAME).await
}
