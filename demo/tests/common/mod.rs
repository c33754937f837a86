//! What the demo's HTTP and browser tests share: unique names, temporary
//! directories, a test configuration and a running demo server.

// Harness code: a failed setup should panic. (Clippy's
// `allow-unwrap-in-tests` covers only the `#[test]` functions.)
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

pub mod authenticator;
pub mod client;
pub mod device;
pub mod events;
pub mod passes;
pub mod services;
pub mod virtual_authenticator;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use tokio::{net::TcpListener, task::JoinHandle};
use tower_sessions_auth::AuthKeys;
use tower_sessions_auth_demo::{
    build, serve, Config, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEP_ALIVE, DEFAULT_MAX_AGE,
    DEFAULT_RECHECK_PERIOD, DEFAULT_REMEMBER_DAYS, DEFAULT_SUDO_WINDOW,
};

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// A directory of its own under the temp directory, removed whole on drop.
/// (Removing only an SQLite file is not enough: a pool connection still
/// closing can recreate it.)
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The URL of an SQLite database in this directory.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.join("demo.sqlite").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration for `database_url` signed with `secret`, with cheap
/// argon2 parameters: the debug build hashes slowly and the cost is not
/// under test. The fast path is on, as `main` sets it by default: every
/// test on a Redis or Postgres session store runs with it.
pub fn config(database_url: &str, secret: &[u8]) -> Config {
    Config {
        database_url: database_url.to_owned(),
        session_store_url: None,
        postgres_schema: None,
        keys: AuthKeys::new(secret).unwrap(),
        secure_cookies: false,
        fast_path: true,
        origin: None,
        argon2: argon2::Params::new(1024, 1, 1, None).unwrap(),
        max_sessions: None,
        recheck_period: DEFAULT_RECHECK_PERIOD,
        keep_alive: DEFAULT_KEEP_ALIVE,
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        max_age: DEFAULT_MAX_AGE,
        remember_days: DEFAULT_REMEMBER_DAYS,
        sudo_window: DEFAULT_SUDO_WINDOW,
        device_binding: None,
    }
}

/// A demo server on a free loopback port, served as `main` serves it;
/// stopped on drop.
pub struct Server {
    pub base: String,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, config).await
    }

    /// The demo on `listener`, bound beforehand, for a configuration that
    /// needs the address (`origin`).
    pub async fn start_on(listener: TcpListener, config: Config) -> Self {
        let router = build(config).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let task = tokio::spawn(async move {
            serve(listener, router, std::future::pending())
                .await
                .unwrap();
        });
        Self { base, addr, task }
    }

    /// [`Server::start`], addressed as `http://localhost:<port>`: passkeys
    /// need a host name (an IP address is no WebAuthn relying party id).
    /// [`Server::ip_url`] reaches the same server by its address.
    pub async fn start_localhost(config: Config) -> Self {
        let mut server = Self::start(config).await;
        server.base = format!("http://localhost:{}", server.addr.port());
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `path` on this server by its IP address, whatever [`Server::base`]
    /// names it.
    pub fn ip_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
