//! The external services of the demo's tests: Postgres and Redis, when
//! configured, with clean-up.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::{future::Future, sync::Arc};

use tower_sessions_auth_demo::{admin::Stores, Config};

use super::{
    client::{self, Browser},
    unique, Server,
};

/// The URL in `name`, or `None` (with the reason printed) when unset
/// outside CI. In CI (`CI=true`) a missing service fails the test.
pub fn service_url(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{name} must be set in CI: this test needs the service"
            );
            eprintln!("skipped: {name} is not set (set it to run this test against the service)");
            None
        }
    }
}

/// Where the sessions of [`two_on_postgres`] live besides the users'
/// database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionsIn {
    Postgres,
    Redis,
    /// The Redis Cluster of `REDIS_CLUSTER_URL`.
    RedisCluster,
}

/// Runs `test` on two demo servers that share one fresh Postgres schema
/// (users, registry and, with [`SessionsIn::Postgres`], sessions) or keep
/// their sessions in Redis (one server or a cluster); skipped as [`service_url`] says when a service
/// is not configured. `test` gets the servers and the stores they share
/// (what the demo's command reads from the environment), and returns the
/// browsers whose sessions a Redis run deletes afterwards.
pub async fn two_on_postgres<F, Fut>(sessions: SessionsIn, test: F)
where
    F: FnOnce(Arc<Server>, Arc<Server>, Stores) -> Fut + Send + 'static,
    Fut: Future<Output = Vec<Browser>> + Send + 'static,
{
    two_on_postgres_with(sessions, |_| {}, test).await;
}

/// [`two_on_postgres`] with `adjust` applied to both servers'
/// configuration.
pub async fn two_on_postgres_with<A, F, Fut>(sessions: SessionsIn, adjust: A, test: F)
where
    A: Fn(&mut Config) + Send + Sync + 'static,
    F: FnOnce(Arc<Server>, Arc<Server>, Stores) -> Fut + Send + 'static,
    Fut: Future<Output = Vec<Browser>> + Send + 'static,
{
    let Some(database_url) = service_url("DATABASE_URL") else {
        return;
    };
    let redis_url = match sessions {
        SessionsIn::Postgres => None,
        SessionsIn::Redis | SessionsIn::RedisCluster => {
            let var = if sessions == SessionsIn::Redis {
                "REDIS_URL"
            } else {
                "REDIS_CLUSTER_URL"
            };
            match service_url(var) {
                Some(url) => Some(url),
                None => return,
            }
        }
    };
    let url = database_url.clone();
    with_postgres_schema(&database_url, move |schema| async move {
        let stores = Stores {
            database_url: url,
            session_store_url: redis_url,
            postgres_schema: Some(schema),
        };
        let start = || {
            let mut config = config_on(&stores);
            adjust(&mut config);
            Server::start(config)
        };
        let (a, b) = (Arc::new(start().await), Arc::new(start().await));
        let browsers = test(a.clone(), b, stores.clone()).await;
        if let Some(redis_url) = &stores.session_store_url {
            let browsers: Vec<&Browser> = browsers.iter().collect();
            delete_redis_sessions(redis_url, &browsers, &a).await;
        }
    })
    .await;
}

/// The test configuration of a demo on `stores`.
pub fn config_on(stores: &Stores) -> Config {
    let mut config = client::config(&stores.database_url);
    config.postgres_schema.clone_from(&stores.postgres_schema);
    config
        .session_store_url
        .clone_from(&stores.session_store_url);
    config
}

/// Runs `test` with a fresh Postgres schema, then drops the schema whether
/// or not the test passed.
pub async fn with_postgres_schema<F, Fut>(database_url: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schema = unique("demo_http");
    let outcome = tokio::spawn(test(schema.clone())).await;
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// Deletes the sessions these browsers still hold from Redis.
pub async fn delete_redis_sessions(redis_url: &str, browsers: &[&Browser], server: &Server) {
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, KeysInterface, Pool};
    let pool = Pool::new(Config::from_url(redis_url).unwrap(), None, None, None, 1).unwrap();
    pool.init().await.unwrap();
    for browser in browsers {
        if let Some(id) = browser.session_id(server) {
            let _: i64 = pool.del(id).await.unwrap();
        }
    }
    pool.quit().await.unwrap();
}
