//! Where sessions live, and the session cookie.
//!
//! By default sessions share the users' database; `SESSION_STORE_URL` moves
//! them to Redis (one server or a Redis Cluster) or to another SQL
//! database. Every demo process that points
//! at the same store (and the same users and secret) serves the same
//! sessions, and hears of their changes through the same store
//! ([`Sessions::live_sessions`]). With that channel, signed-in requests
//! take tower-sessions-auth's fast path ([`Sessions::fast_path`]).

use std::time::Duration;

use axum::Router;
use sqlx::PgPool;
use tower_sessions::{
    cookie::{time, SameSite},
    session_store::ExpiredDeletion,
    Expiry, SessionManagerLayer, SessionStore,
};
use tower_sessions_auth::{
    fast_path::FastPath,
    live::{LiveSessions, PostgresChannel, RedisChannel},
    registry::{LimitPolicy, PostgresRegistry, SessionRegistry, SqliteRegistry},
};
use tower_sessions_redis_store::{
    fred::{
        prelude::{ClientLike, Config as RedisConfig, Pool as RedisPool},
        types::config::ReconnectPolicy,
    },
    RedisStore,
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{
    times::SessionTimes,
    users::{self, Users},
    StartError,
};

/// How often expired sessions are deleted from SQL stores (Redis expires
/// its keys itself).
const CLEANUP_PERIOD: Duration = Duration::from_secs(60 * 60);

/// An anonymous session (one that holds only a notice) not used for this
/// long ends. Signed-in sessions live by the lifetimes in [`SessionTimes`]:
/// the auth layer sets their cookie's lifetime.
const IDLE_TIMEOUT_DAYS: i64 = 14;

/// The session registry ("signed-in devices") in the users' database, so
/// that every demo process sharing it sees the same sessions, whichever
/// session store they use. Its entries live as long as an unused session of
/// the longer-lived tier, and their last-seen time is written as often as
/// the layer records activity ([`SessionTimes`]); expired ones are deleted
/// with the expired sessions. `max_sessions`
/// (`DEMO_MAX_SESSIONS`): a sign-in beyond it ends the user's least
/// recently seen session.
pub(crate) async fn session_registry(
    users: &Users,
    postgres_schema: Option<&str>,
    max_sessions: Option<usize>,
    times: &SessionTimes,
) -> Result<SessionRegistry, StartError> {
    let registry = registry_in(users, postgres_schema).await?;
    let registry = registry
        .with_touch_interval(times.touch_interval())
        .with_lifetime(times.registry_lifetime());
    let registry = match max_sessions {
        Some(max) => registry.with_limit(max, LimitPolicy::EvictLeastRecentlySeen),
        None => registry,
    };
    tokio::spawn(registry.clone().continuously_remove_expired(CLEANUP_PERIOD));
    Ok(registry)
}

/// The registry's store in the users' database, its table created if
/// missing, with the library's default settings.
pub(crate) async fn registry_in(
    users: &Users,
    postgres_schema: Option<&str>,
) -> Result<SessionRegistry, StartError> {
    Ok(match users {
        Users::Sqlite(pool) => {
            let store = SqliteRegistry::new(pool.clone());
            store.migrate().await?;
            SessionRegistry::new(store)
        }
        Users::Postgres(pool) => {
            let mut store = PostgresRegistry::new(pool.clone());
            if let Some(schema) = postgres_schema {
                store = store.with_table_name(&format!("{schema}.tsa_session_registry"))?;
            }
            store.migrate().await?;
            SessionRegistry::new(store)
        }
    })
}

/// Settings of the session cookie, and of the fast path's pass cookie
/// beside it.
pub(crate) struct CookieSettings {
    /// `Secure`, and the `__Host-` name prefix, which browsers accept only
    /// on secure cookies with `Path=/` and no `Domain`.
    pub(crate) secure: bool,
}

impl CookieSettings {
    /// The session cookie's name.
    fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-demo_session"
        } else {
            "demo_session"
        }
    }

    /// The pass cookie's name, after the session cookie's: the pass is
    /// `Path=/` without `Domain` too, so the `__Host-` prefix holds for it.
    fn pass_name(&self) -> &'static str {
        if self.secure {
            "__Host-demo_pass"
        } else {
            "demo_pass"
        }
    }

    /// The device-bound cookie's name, secured as the session cookie is.
    pub(crate) fn bound_name(&self) -> &'static str {
        if self.secure {
            "__Host-demo_bound"
        } else {
            "demo_bound"
        }
    }
}

/// The session store, connected and migrated, with the connection that
/// live sessions share with the other demo processes.
pub(crate) enum Sessions {
    /// SQLite: live-session notices stay in this process (other processes
    /// on the same file learn of changes by the periodic re-check only).
    Sqlite(SqliteStore),
    /// Postgres: notices through `LISTEN/NOTIFY` on the store's database.
    Postgres { store: PostgresStore, pool: PgPool },
    /// Redis, one server or a cluster: notices through pub/sub on the
    /// store's servers.
    Redis {
        store: RedisStore<RedisPool>,
        pool: RedisPool,
    },
}

impl Sessions {
    /// Connects to the store `url` names, or to the users' database when
    /// `url` is `None`, and creates its table.
    pub(crate) async fn connect(
        url: Option<&str>,
        users: &Users,
        postgres_schema: Option<&str>,
    ) -> Result<Self, StartError> {
        match url {
            None => match users {
                Users::Sqlite(pool) => sqlite(SqliteStore::new(pool.clone())).await,
                Users::Postgres(pool) => postgres(pool.clone(), postgres_schema).await,
            },
            // fred reads all three: one server, or a Redis Cluster
            // (`redis-cluster://host:port?node=host:port&node=…`), whose
            // pool follows redirections and failovers by itself.
            Some(url)
                if url.starts_with("redis:")
                    || url.starts_with("rediss:")
                    || url.starts_with("redis-cluster:") =>
            {
                let pool = RedisPool::new(
                    RedisConfig::from_url(url)?,
                    None,
                    None,
                    Some(ReconnectPolicy::new_exponential(0, 100, 5_000, 2)),
                    2,
                )?;
                pool.init().await?;
                Ok(Self::Redis {
                    store: RedisStore::new(pool.clone()),
                    pool,
                })
            }
            Some(url) if url.starts_with("sqlite:") => {
                let pool = users::sqlite_pool(url).await?;
                sqlite(SqliteStore::new(pool)).await
            }
            Some(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
                let pool = users::postgres_pool(url, None).await?;
                postgres(pool, postgres_schema).await
            }
            Some(_) => Err(
                "SESSION_STORE_URL must start with redis:, redis-cluster:, postgres: or sqlite:"
                    .into(),
            ),
        }
    }

    /// Live sessions re-checked every `recheck_period`, with a channel to
    /// the other processes that share this store: Redis pub/sub or
    /// Postgres `LISTEN/NOTIFY` on the store's own connection, none for
    /// SQLite (one process per file is the expected setup; several on one
    /// file rely on the re-check).
    pub(crate) fn live_sessions(&self, recheck_period: Duration) -> LiveSessions {
        let live = LiveSessions::new().with_recheck_period(recheck_period);
        match self {
            Self::Sqlite(_) => live,
            Self::Postgres { pool, .. } => live.with_channel(PostgresChannel::new(pool.clone())),
            Self::Redis { pool, .. } => live.with_channel(RedisChannel::new(pool.clone())),
        }
    }

    /// The fast path of signed-in requests, with its pass cookie named and
    /// secured as the session cookie is; `None` on SQLite.
    ///
    /// A pass is trusted only as long as every process hears of every
    /// sign-out and revocation, which takes the store's channel: Redis and
    /// Postgres have one. SQLite has none, and several processes may share
    /// one file: a pass would outlive its session there, on another
    /// process, for its whole lifetime.
    pub(crate) fn fast_path(&self, cookies: &CookieSettings) -> Option<FastPath> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres { .. } | Self::Redis { .. } => Some(
                FastPath::new()
                    .with_cookie_name(cookies.pass_name())
                    .with_secure(cookies.secure),
            ),
        }
    }

    /// Wraps `routes` in a `SessionManagerLayer` over this store.
    pub(crate) fn layer(self, routes: Router, cookies: &CookieSettings) -> Router {
        match self {
            Self::Sqlite(store) => with_cookie(routes, store, cookies),
            Self::Postgres { store, .. } => with_cookie(routes, store, cookies),
            Self::Redis { store, .. } => with_cookie(routes, store, cookies),
        }
    }
}

async fn sqlite(store: SqliteStore) -> Result<Sessions, StartError> {
    store.migrate().await?;
    tokio::spawn(delete_expired(store.clone()));
    Ok(Sessions::Sqlite(store))
}

/// Sessions in `pool`'s database, in `schema` when given.
async fn postgres(pool: PgPool, schema: Option<&str>) -> Result<Sessions, StartError> {
    let mut store = PostgresStore::new(pool.clone());
    if let Some(schema) = schema {
        store = store.with_schema_name(schema)?;
    }
    store.migrate().await?;
    tokio::spawn(delete_expired(store.clone()));
    Ok(Sessions::Postgres { store, pool })
}

/// The session layer with the demo's cookie: `HttpOnly` (no script reads
/// it), `SameSite=Lax` (not sent on cross-site `POST`s), `Path=/`,
/// `Secure` when configured, and an idle timeout for anonymous sessions.
fn with_cookie<S: SessionStore + Clone>(
    routes: Router,
    store: S,
    cookies: &CookieSettings,
) -> Router {
    routes.layer(
        SessionManagerLayer::new(store)
            .with_name(cookies.session_name())
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_secure(cookies.secure)
            .with_expiry(Expiry::OnInactivity(time::Duration::days(
                IDLE_TIMEOUT_DAYS,
            ))),
    )
}

/// Deletes expired sessions now and then; a failure is logged and retried
/// at the next period rather than ending the task.
async fn delete_expired<S: ExpiredDeletion>(store: S) {
    let mut interval = tokio::time::interval(CLEANUP_PERIOD);
    loop {
        interval.tick().await;
        if let Err(err) = store.delete_expired().await {
            tracing::warn!(error = %err, "deleting expired sessions failed");
        }
    }
}
