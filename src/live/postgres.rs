//! Live-session notices over Postgres `LISTEN/NOTIFY`.

use std::{fmt, time::Duration};

use async_trait::async_trait;
use sqlx::{postgres::PgListener, PgPool};
use tokio::sync::mpsc;

use super::channel::{ChannelError, LiveChannel, Signal, CHANNEL_NAME};

/// Pause between attempts to listen again after the connection failed.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Notices between processes over Postgres `LISTEN/NOTIFY`, on the sqlx
/// pool the application already has (the session store's, say).
///
/// Publishing is one `SELECT pg_notify(…)` on the pool; listening holds one
/// connection of the pool per process, and reconnects by itself. A
/// notification reaches the listeners connected when it is committed;
/// what a broken connection misses, the periodic re-check covers.
///
/// ```no_run
/// # async fn run() -> Result<(), sqlx::Error> {
/// use sqlx::PgPool;
/// use tower_sessions_auth::live::{LiveSessions, PostgresChannel};
///
/// let pool = PgPool::connect("postgres://127.0.0.1/app").await?;
/// let live = LiveSessions::new().with_channel(PostgresChannel::new(pool));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresChannel {
    pool: PgPool,
    name: String,
}

impl PostgresChannel {
    /// Notices through the database of `pool`, on the notification channel
    /// `tsa_live_sessions`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            name: CHANNEL_NAME.to_owned(),
        }
    }

    /// Uses the notification channel `name`: one per application, when
    /// several share a database.
    #[must_use]
    pub fn with_channel_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl fmt::Debug for PostgresChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresChannel").finish_non_exhaustive()
    }
}

#[async_trait]
impl LiveChannel for PostgresChannel {
    async fn publish(&self, notice: &str) -> Result<(), ChannelError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.name)
            .bind(notice)
            .execute(&self.pool)
            .await
            .map_err(ChannelError::new)?;
        Ok(())
    }

    fn listen(&self, signals: mpsc::Sender<Signal>) {
        let pool = self.pool.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = signals.closed() => {}
                () = listen(&pool, &name, &signals) => {}
            }
        });
    }
}

/// Listens, forwarding notices, losses and restorations, for as long as
/// `signals` is open.
async fn listen(pool: &PgPool, name: &str, signals: &mpsc::Sender<Signal>) {
    let mut listener: Option<PgListener> = None;
    let mut up = true;
    loop {
        let current = match listener.as_mut() {
            Some(current) => current,
            None => match connect(pool, name).await {
                Ok(connected) => listener.insert(connected),
                Err(error) => {
                    if up {
                        tracing::warn!(
                            error = &error as &dyn std::error::Error,
                            "live sessions: cannot listen on Postgres; retrying"
                        );
                        up = false;
                        if signals.send(Signal::Lost).await.is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue;
                }
            },
        };
        if !up {
            up = true;
            if signals.send(Signal::Restored).await.is_err() {
                return;
            }
        }
        let signal = match current.try_recv().await {
            Ok(Some(notification)) => Signal::Notice(notification.payload().to_owned()),
            // The connection broke; sqlx has reconnected and listens again,
            // but what was sent in between is lost.
            Ok(None) => Signal::Restored,
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "live sessions: the Postgres listener failed"
                );
                listener = None;
                up = false;
                Signal::Lost
            }
        };
        if signals.send(signal).await.is_err() {
            return;
        }
    }
}

async fn connect(pool: &PgPool, name: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(name).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::PgPoolOptions;

    use super::*;

    #[tokio::test]
    async fn debug_names_the_type_and_nothing_of_the_connection() {
        let url = "postgres://someone:a-password@db.example/app";
        let pool = PgPoolOptions::new().connect_lazy(url).unwrap();
        let channel = PostgresChannel::new(pool).with_channel_name("app_notices");
        assert_eq!(format!("{channel:?}"), "PostgresChannel { .. }");
    }
}
