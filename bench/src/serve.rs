//! `serve`: one server under test.
//!
//! It builds the router, signs the sessions in through the router's own
//! login route, writes their cookies to a file, prints `ready <port>` and
//! serves until its standard input closes. Then it deletes the sessions it
//! created (they may live in a shared Redis) and exits. Seeding happens
//! before `ready`, so it is never inside a measurement.

use std::{io::Write as _, str::FromStr};

use tokio::io::AsyncReadExt as _;
use tower_sessions::{session::Id, MemoryStore, SessionStore};
use tower_sessions_auth::registry::{MemoryRegistry, RedisRegistry, SessionRegistry};
use tower_sessions_auth_bench::{check_in_process, router, seed, Kind, Users};
use tower_sessions_redis_store::{
    fred::prelude::{ClientLike as _, Config, Pool},
    RedisStore,
};

use crate::{Error, Options};

const USAGE: &str = "\
tower-sessions-auth-bench serve: one server under test

  --kind K          axum | tower-sessions | axum-login | tower-sessions-auth
                    | tower-sessions-auth+registry (or a-e)
  --store S         memory | redis (default memory)
  --sessions N      live sessions to create (default 1)
  --users N         users in the backend (default: as many as sessions)
  --cookies PATH    where to write the cookies, one `id=...` a line (required)
  --redis-url URL   default $BENCH_REDIS_URL or redis://127.0.0.1:6379/9
                    (database 9, away from the tests' database 0)";

/// Where the session store lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Memory,
    Redis,
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(Self::Memory),
            "redis" => Ok(Self::Redis),
            other => Err(format!("unknown store {other:?}; expected memory or redis")),
        }
    }
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }
}

pub(crate) fn main(args: &[String]) -> Result<(), Error> {
    let options = Options::new(args, USAGE)?;
    let kind: Kind = options.parse("kind", Kind::Tsa)?;
    let store: StoreKind = options.parse("store", StoreKind::Memory)?;
    let sessions: u64 = options.parse("sessions", 1)?;
    let users: u64 = options.parse("users", sessions.max(1))?;
    let cookies_path = options.get("cookies").ok_or("--cookies PATH is required")?;
    let redis_url = options.get("redis-url").map_or_else(
        || {
            std::env::var("BENCH_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/9".to_owned())
        },
        str::to_owned,
    );

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
                let registry = SessionRegistry::new(MemoryRegistry::default());
                let store = MemoryStore::default();
                run(kind, users, sessions, store, registry, cookies_path).await
            }
            StoreKind::Redis => {
                let config = Config::from_url(&redis_url)
                    .map_err(|err| format!("redis url {redis_url:?}: {err}"))?;
                let pool = Pool::new(config, None, None, None, 1)
                    .map_err(|err| format!("redis pool: {err}"))?;
                pool.init()
                    .await
                    .map_err(|err| format!("redis at {redis_url}: {err}"))?;
                // Keys of their own, deleted at the end like the sessions,
                // and expiring within the hour anyway.
                let registry = SessionRegistry::new(
                    RedisRegistry::new(pool.clone()).with_key_prefix("bench:registry:"),
                )
                .with_lifetime(std::time::Duration::from_secs(3600));
                let store = RedisStore::new(pool);
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
    let app = router(kind, users, store.clone(), registry.clone());
    let cookies = if kind.has_sessions() {
        seed(&app, 1..=sessions).await?
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
            if let Some(Ok(id)) = cookie.strip_prefix("id=").map(str::parse::<Id>) {
                store
                    .delete(&id)
                    .await
                    .map_err(|err| format!("deleting a benchmark session: {err}"))?;
            }
        }
    }
    if kind == Kind::TsaRegistry {
        for id in 1..=sessions {
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
