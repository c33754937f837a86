//! `serve`: one server under test.
//!
//! It builds the router, signs the sessions in through the router's own
//! login route, writes their cookies to a file, prints `ready <port>` and
//! serves until its standard input closes. Then it deletes the sessions it
//! created (they may live in a shared Redis) and exits. Seeding happens
//! before `ready`, so it is never inside a measurement.

use std::{io::Write as _, str::FromStr, time::Duration};

use tokio::io::AsyncReadExt as _;
use tower_sessions::{session::Id, MemoryStore, SessionStore};
use tower_sessions_auth::{
    live::{LiveSessions, PostgresChannel, RedisChannel},
    registry::{PostgresRegistry, RedisRegistry, SessionRegistry},
};
use tower_sessions_auth_bench::{check_in_process, memory_registry, router, sign_in, Kind, Users};
use tower_sessions_redis_store::{
    fred::prelude::{ClientLike as _, Config, Pool},
    RedisStore,
};
use tower_sessions_sqlx_store::{sqlx::PgPool, PostgresStore};

use crate::{Error, Options};

const USAGE: &str = "\
tower-sessions-auth-bench serve: one server under test

  --kind K          axum | tower-sessions | axum-login | tower-sessions-auth
                    | tower-sessions-auth+registry | tower-sessions-auth+fast
                    (or a-f)
  --store S         memory | redis | postgres (default memory)
  --sessions N      live sessions to create (default 1)
  --users N         users in the backend (default: as many as sessions)
  --cookies PATH    where to write the cookies, one `Cookie` header value a
                    line (required)
  --prefix P        what names this server's data in a shared store:
                    Redis registry keys `P:registry:`, the live-session
                    channel `P_live` (Redis pub/sub or Postgres NOTIFY), the
                    Postgres schema `P`; lower-case letters, digits and `_`
                    (default tsa_bench_<pid>: its own). Servers given the
                    same prefix are instances of one application.
  --redis-url URL   default $BENCH_REDIS_URL or redis://127.0.0.1:6379/9
                    (database 9, away from the tests' database 0)
  --database-url U  default $BENCH_DATABASE_URL or
                    postgres://postgres@127.0.0.1:5432/test";

/// How long the registries' entries live: sessions left by a killed run
/// expire within the hour, as the session layer's do.
const ENTRY_LIFETIME: Duration = Duration::from_secs(3600);

/// Where the session store lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Memory,
    Redis,
    Postgres,
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(Self::Memory),
            "redis" => Ok(Self::Redis),
            "postgres" => Ok(Self::Postgres),
            other => Err(format!(
                "unknown store {other:?}; expected memory, redis or postgres"
            )),
        }
    }
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Postgres => "postgres",
        }
    }
}

/// The Redis URL of the benchmark: `--redis-url`, `$BENCH_REDIS_URL` or
/// database 9 of the local server.
pub(crate) fn redis_url(options: &Options<'_>) -> String {
    options.get("redis-url").map_or_else(
        || {
            std::env::var("BENCH_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/9".to_owned())
        },
        str::to_owned,
    )
}

/// The Postgres URL of the benchmark: `--database-url`,
/// `$BENCH_DATABASE_URL` or the local `test` database.
pub(crate) fn database_url(options: &Options<'_>) -> String {
    options.get("database-url").map_or_else(
        || {
            std::env::var("BENCH_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
        },
        str::to_owned,
    )
}

/// Whether `prefix` can name a Postgres schema and a channel unquoted.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), Error> {
    let plain = prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain && prefix.len() <= 40 {
        Ok(())
    } else {
        Err(format!(
            "--prefix {prefix:?}: lower-case letters, digits and `_`, starting with a letter, \
             40 at most"
        )
        .into())
    }
}

pub(crate) fn main(args: &[String]) -> Result<(), Error> {
    let options = Options::new(args, USAGE)?;
    let kind: Kind = options.parse("kind", Kind::Tsa)?;
    let store: StoreKind = options.parse("store", StoreKind::Memory)?;
    let sessions: u64 = options.parse("sessions", 1)?;
    let users: u64 = options.parse("users", sessions.max(1))?;
    let cookies_path = options.get("cookies").ok_or("--cookies PATH is required")?;
    let prefix = options.get("prefix").map_or_else(
        || format!("tsa_bench_{}", std::process::id()),
        str::to_owned,
    );
    check_prefix(&prefix)?;
    let channel = format!("{prefix}_live");

    // One thread: the server is pinned to one core, and a current-thread
    // runtime is what such a server should run; every kind gets the same.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("tokio runtime: {err}"))?;
    runtime.block_on(async {
        let users = Users::generate(users);
        match store {
            StoreKind::Memory => {
                let registry = memory_registry(kind);
                let store = MemoryStore::default();
                run(kind, users, sessions, store, registry, cookies_path).await
            }
            StoreKind::Redis => {
                let redis_url = redis_url(&options);
                let config = Config::from_url(&redis_url)
                    .map_err(|err| format!("redis url {redis_url:?}: {err}"))?;
                let pool = Pool::new(config, None, None, None, 1)
                    .map_err(|err| format!("redis pool: {err}"))?;
                pool.init()
                    .await
                    .map_err(|err| format!("redis at {redis_url}: {err}"))?;
                // Keys of their own, deleted at the end like the sessions,
                // and expiring within the hour anyway.
                let mut registry = SessionRegistry::new(
                    RedisRegistry::new(pool.clone()).with_key_prefix(format!("{prefix}:registry:")),
                )
                .with_lifetime(ENTRY_LIFETIME);
                if kind == Kind::TsaFast {
                    // Its own channel: no other application's notices.
                    let channel = RedisChannel::new(pool.clone()).with_channel_name(channel);
                    registry =
                        registry.with_live_sessions(LiveSessions::new().with_channel(channel));
                }
                let store = RedisStore::new(pool);
                run(kind, users, sessions, store, registry, cookies_path).await
            }
            StoreKind::Postgres => {
                let database_url = database_url(&options);
                let pool = PgPool::connect(&database_url)
                    .await
                    .map_err(|err| format!("postgres at {database_url}: {err}"))?;
                // Everything in the schema `prefix`, which whoever chose the
                // prefix drops at the end.
                let store = PostgresStore::new(pool.clone()).with_schema_name(&prefix)?;
                store
                    .migrate()
                    .await
                    .map_err(|err| format!("session table: {err}"))?;
                let registry_store = PostgresRegistry::new(pool.clone())
                    .with_table_name(&format!("{prefix}.tsa_session_registry"))
                    .map_err(|err| format!("registry table: {err}"))?;
                registry_store
                    .migrate()
                    .await
                    .map_err(|err| format!("registry table: {err}"))?;
                let mut registry =
                    SessionRegistry::new(registry_store).with_lifetime(ENTRY_LIFETIME);
                if kind == Kind::TsaFast {
                    let channel = PostgresChannel::new(pool).with_channel_name(channel);
                    registry =
                        registry.with_live_sessions(LiveSessions::new().with_channel(channel));
                }
                run(kind, users, sessions, store, registry, cookies_path).await
            }
        }
    })
}

async fn run<S: SessionStore + Clone>(
    kind: Kind,
    users: Users,
    sessions: u64,
    store: S,
    registry: SessionRegistry,
    cookies_path: &str,
) -> Result<(), Error> {
    let user_count = users.count();
    let app = router(kind, users, store.clone(), registry.clone());
    let cookies = if kind.has_sessions() {
        sign_in(kind, &app, 1..=sessions).await?
    } else {
        vec!["id=none".to_owned()]
    };
    let first = cookies.first().ok_or("--sessions must be at least 1")?;
    check_in_process(&app, first).await?;
    write_cookies(cookies_path, &cookies)?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|err| format!("bind 127.0.0.1:0: {err}"))?;
    let port = listener
        .local_addr()
        .map_err(|err| format!("local address: {err}"))?
        .port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("ready {port}");
    std::io::stdout()
        .flush()
        .map_err(|err| format!("stdout: {err}"))?;

    // Serve until the driver closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;

    if kind.has_sessions() {
        for cookie in &cookies {
            let session = cookie
                .split(';')
                .next()
                .and_then(|pair| pair.strip_prefix("id="));
            if let Some(Ok(id)) = session.map(str::parse::<Id>) {
                store
                    .delete(&id)
                    .await
                    .map_err(|err| format!("deleting a benchmark session: {err}"))?;
            }
        }
    }
    if kind.has_registry() {
        // Every user: other clients (the staleness run) sign users in too.
        for id in 1..=user_count {
            registry
                .revoke_all(&id)
                .await
                .map_err(|err| format!("deleting a benchmark registry entry: {err}"))?;
        }
    }
    Ok(())
}

fn write_cookies(path: &str, cookies: &[String]) -> Result<(), Error> {
    let mut text = cookies.join("\n");
    text.push('\n');
    std::fs::write(path, text).map_err(|err| format!("writing cookies to {path}: {err}").into())
}
