//! Run with `REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis`, then
//! follow the `curl` commands it logs.
//!
//! Sessions in Redis (tower-sessions-redis-store, on fred), users in memory
//! with argon2 password hashes. Optional settings: `PORT` (default 3002),
//! `SESSION_SECRET` (32 bytes or more) and `SESSION_SECRET_OLD` (a fallback
//! during a rotation).
//!
//! Several copies on different ports can share the Redis sessions, as
//! instances behind a load balancer do, if they share the secret. Their
//! users live in memory here, so a password change is seen only by the
//! instance that made it: a real deployment shares its user table too.

// The application of the `basic` example; only the session store differs.
#[path = "basic.rs"]
#[allow(dead_code)]
mod basic;

use std::time::Duration;

use tower_sessions::SessionManagerLayer;
use tower_sessions_redis_store::{
    fred::prelude::{Builder, ClientLike, Config, ReconnectPolicy},
    RedisStore,
};

#[tokio::main]
async fn main() -> Result<(), basic::BoxError> {
    let redis_url = std::env::var("REDIS_URL")
        .map_err(|_| "REDIS_URL must be set, e.g. REDIS_URL=redis://127.0.0.1:6379")?;

    // Short timeouts: when Redis is out of reach, requests with a session
    // fail (500) within a second instead of hanging, and the pool reconnects
    // by itself (forever, backing off up to 2 s) when Redis is back.
    let pool = Builder::from_config(Config::from_url(&redis_url)?)
        .with_performance_config(|performance| {
            performance.default_command_timeout = Duration::from_secs(1);
        })
        .with_connection_config(|connection| {
            connection.connection_timeout = Duration::from_secs(1);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build_pool(4)?;
    pool.init().await?;

    // `with_secure(false)` only because this example serves plain HTTP.
    let sessions = SessionManagerLayer::new(RedisStore::new(pool)).with_secure(false);
    basic::serve(basic::app()?.layer(sessions), basic::port(3002)?).await
}
