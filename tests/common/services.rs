//! The external services of the store tests (Postgres, Redis): clients with
//! short timeouts, names unique to one test, and clean-up when a test ends.

use std::{
    collections::HashSet,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::TryStreamExt as _;
use sqlx::{postgres::PgPoolOptions, sqlite::SqlitePoolOptions, PgPool, SqlitePool};
use tower_sessions::{
    session::{Id, Record},
    session_store, SessionStore,
};
use tower_sessions_redis_store::{
    fred::prelude::{
        Builder, Client, ClientLike, Config, Key, KeysInterface, Pool, ReconnectPolicy,
    },
    RedisStore,
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// How long a client waits for a database or store that does not answer:
/// a store that is gone fails the request within about this long.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Schemas made by these tests start with this, followed by their creation
/// time in Unix seconds.
const SCHEMA_PREFIX: &str = "tsa_test_";

/// Schemas older than this are from runs that could not clean up (a killed
/// process) and are dropped by the next run.
const STALE_AFTER: Duration = Duration::from_secs(3600);

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Runs an async clean-up job when dropped, on a thread and runtime of its
/// own: when the last handle drops, the test's runtime is shutting down.
pub struct OnDrop(Mutex<Option<Job>>);

impl OnDrop {
    pub fn new<F, Fut>(job: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self(Mutex::new(Some(Box::new(move || Box::pin(job())))))
    }
}

impl fmt::Debug for OnDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnDrop")
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        let Some(job) = self.0.get_mut().ok().and_then(Option::take) else {
            return;
        };
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for clean-up");
            runtime.block_on(async move {
                if tokio::time::timeout(Duration::from_secs(10), job())
                    .await
                    .is_err()
                {
                    eprintln!("clean-up timed out");
                }
            });
        });
        let _ = worker.join();
    }
}

/// A name no other test (of this run or another) uses.
pub fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{SCHEMA_PREFIX}{secs}_{}_{count}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A Postgres pool whose requests fail within [`TIMEOUT`] when the server is
/// out of reach.
pub async fn pg_pool(url: &str, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(TIMEOUT)
        .connect(url)
        .await
        .expect("connect to Postgres (DATABASE_URL)")
}

/// Drops the test schemas that earlier runs left behind (killed before their
/// clean-up ran). Only schemas older than an hour: younger ones may belong
/// to a run in progress.
pub async fn drop_stale_schemas(pool: &PgPool) {
    let names: Vec<String> =
        sqlx::query_scalar("select nspname::text from pg_namespace where starts_with(nspname, $1)")
            .bind(SCHEMA_PREFIX)
            .fetch_all(pool)
            .await
            .expect("list schemas");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    for name in names {
        let created = name[SCHEMA_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > STALE_AFTER.as_secs()) {
            let drop = format!(r#"drop schema if exists "{name}" cascade"#);
            sqlx::query(&drop).execute(pool).await.expect("drop schema");
        }
    }
}

/// Drops `schema` when the returned guard drops.
pub fn drop_schema_on_drop(url: &str, schema: &str) -> OnDrop {
    let url = url.to_owned();
    let drop = format!(r#"drop schema if exists "{schema}" cascade"#);
    OnDrop::new(move || async move {
        let Ok(pool) = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
        else {
            eprintln!("clean-up: cannot connect to Postgres");
            return;
        };
        if let Err(err) = sqlx::query(&drop).execute(&pool).await {
            eprintln!("clean-up: {err}");
        }
        pool.close().await;
    })
}

/// A Postgres session store in `schema` (a test's own, see
/// [`drop_schema_on_drop`]), on a pool of its own.
pub async fn postgres_store(url: &str, schema: &str) -> PostgresStore {
    let store = PostgresStore::new(pg_pool(url, 4).await)
        .with_schema_name(schema)
        .expect("a valid schema name");
    store.migrate().await.expect("migrate the session table");
    store
}

/// An SQLite database in memory, shared by the pool's connections and gone
/// with the pool. sqlx gives `sqlite::memory:` a shared-cache name, so every
/// connection of the pool sees one database; it lives while a connection is
/// open, and one always is.
pub async fn sqlite_memory_pool(max_connections: u32) -> SqlitePool {
    SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(max_connections)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .expect("open SQLite in memory")
}

/// An SQLite session store in memory (gone with its pool).
pub async fn sqlite_store() -> SqliteStore {
    let store = SqliteStore::new(sqlite_memory_pool(4).await);
    store.migrate().await.expect("migrate the SQLite store");
    store
}

/// A fred builder whose commands fail within [`TIMEOUT`] when the server
/// is out of reach, and whose clients reconnect by themselves (every 100 ms,
/// forever) when it is back.
pub fn redis_builder(url: &str) -> Builder {
    let config = Config::from_url(url).expect("a valid REDIS_URL");
    let mut builder = Builder::from_config(config);
    builder
        .with_performance_config(|performance| {
            performance.default_command_timeout = TIMEOUT;
        })
        .with_connection_config(|connection| {
            connection.connection_timeout = TIMEOUT;
            connection.internal_command_timeout = TIMEOUT;
        })
        .set_policy(ReconnectPolicy::new_constant(0, 100));
    builder
}

/// A Redis client (see [`redis_builder`]).
pub async fn redis_client(url: &str) -> Client {
    let client = redis_builder(url).build().expect("a Redis client");
    client.init().await.expect("connect to Redis (REDIS_URL)");
    client
}

/// A Redis pool of four clients (see [`redis_builder`]).
pub async fn redis_pool(url: &str) -> Pool {
    let pool = redis_builder(url).build_pool(4).expect("a Redis pool");
    pool.init().await.expect("connect to Redis (REDIS_URL)");
    pool
}

/// Every key under `prefix`; on a Redis Cluster, from every master.
pub async fn redis_keys(pool: &Pool, prefix: &str) -> Vec<String> {
    let client = pool.next();
    let pattern = format!("{prefix}*");
    let keys: Vec<Key> = if client.is_clustered() {
        let keys = client.scan_cluster_buffered(pattern, Some(1000), None);
        keys.try_collect().await
    } else {
        client
            .scan_buffered(pattern, Some(1000), None)
            .try_collect()
            .await
    }
    .expect("scan the test keys");
    keys.iter()
        .map(|key| key.as_str().expect("a text key").to_owned())
        .collect()
}

/// Deletes every key under `prefix` when the returned guard drops.
pub fn delete_redis_keys_on_drop(url: &str, prefix: &str) -> OnDrop {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    OnDrop::new(move || async move {
        let pool = redis_pool(&url).await;
        for key in redis_keys(&pool, &prefix).await {
            let _: Result<i64, _> = pool.del(key).await;
        }
    })
}

/// A Redis session store on its own client; see [`Tracked`] for clean-up.
pub async fn redis_store(url: &str, tracker: &Tracker) -> Tracked<RedisStore<Client>> {
    tracker.track(RedisStore::new(redis_client(url).await))
}

/// Remembers the session ids that stores wrapped by it wrote, and deletes
/// them from Redis when the last handle drops: tower-sessions-redis-store
/// keys records by their bare id, without a prefix to sweep.
#[derive(Debug, Clone)]
pub struct Tracker {
    ids: Arc<Mutex<HashSet<Id>>>,
    _cleanup: Arc<OnDrop>,
}

impl Tracker {
    pub fn redis(url: &str) -> Self {
        let ids = Arc::new(Mutex::new(HashSet::<Id>::new()));
        let written = ids.clone();
        let url = url.to_owned();
        let cleanup = OnDrop::new(move || async move {
            let keys: Vec<String> = written.lock().unwrap().iter().map(Id::to_string).collect();
            if keys.is_empty() {
                return;
            }
            let client = redis_client(&url).await;
            // One key per command: on a Redis Cluster the keys of one
            // command must share a hash slot, and session ids do not.
            for key in keys {
                if let Err(err) = client.del::<(), _>(key).await {
                    eprintln!("clean-up: {err}");
                }
            }
            let _ = client.quit().await;
        });
        Self {
            ids,
            _cleanup: Arc::new(cleanup),
        }
    }

    pub fn track<S: SessionStore>(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            tracker: self.clone(),
        }
    }

    fn remember(&self, id: Id) {
        self.ids.lock().unwrap().insert(id);
    }
}

/// A store that passes every call through to `inner`, noting the ids it
/// writes in its [`Tracker`].
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    tracker: Tracker,
}

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = session_store::Result<T>> + Send + 'a>>;

// `SessionStore` is an `async_trait`; these are its methods, desugared.
impl<S: SessionStore> SessionStore for Tracked<S> {
    fn create<'s, 'r, 'f>(&'s self, record: &'r mut Record) -> StoreFuture<'f, ()>
    where
        's: 'f,
        'r: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            self.inner.create(record).await?;
            self.tracker.remember(record.id);
            Ok(())
        })
    }

    fn save<'s, 'r, 'f>(&'s self, record: &'r Record) -> StoreFuture<'f, ()>
    where
        's: 'f,
        'r: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            self.tracker.remember(record.id);
            self.inner.save(record).await
        })
    }

    fn load<'s, 'i, 'f>(&'s self, id: &'i Id) -> StoreFuture<'f, Option<Record>>
    where
        's: 'f,
        'i: 'f,
        Self: 'f,
    {
        self.inner.load(id)
    }

    fn delete<'s, 'i, 'f>(&'s self, id: &'i Id) -> StoreFuture<'f, ()>
    where
        's: 'f,
        'i: 'f,
        Self: 'f,
    {
        self.inner.delete(id)
    }
}
