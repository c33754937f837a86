//! The external services of the demo's tests: Postgres and Redis, when
//! configured, with clean-up.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::future::Future;

use super::{client::Browser, unique, Server};

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
