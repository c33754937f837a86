//! Several instances of the test application, each with its own
//! `AuthLayer`, router, user-table pool and store client, sharing one
//! session store and one Postgres user table: a load-balanced site.

use axum::http::StatusCode;
use tower_sessions::SessionStore;
use tower_sessions_auth::AuthKeys;
use tower_sessions_redis_store::{fred::prelude::Client as RedisClient, RedisStore};
use tower_sessions_sqlx_store::PostgresStore;

use super::{
    app,
    pg_users::PgUsers,
    serve, service_url,
    services::{postgres_store, redis_store, Tracked, Tracker},
    Client,
};

/// How many instances a site has.
pub const INSTANCES: usize = 3;

pub type SharedRedis = Tracked<RedisStore<RedisClient>>;

/// One user table and, per instance, a store client and a user-table pool
/// of its own.
pub struct Site<S> {
    /// The user table, on a pool of the test's own.
    pub users: PgUsers,
    /// A store client of the test's own, to look at records.
    pub store: S,
    stores: Vec<S>,
    tables: Vec<PgUsers>,
}

impl<S: SessionStore + Clone> Site<S> {
    /// Starts instance `index` with `keys` and returns its base URL. Called
    /// again with the same index it stands for a restart of that instance
    /// with new settings (same pools, new layer and router).
    pub async fn start(&self, index: usize, keys: AuthKeys) -> String {
        serve(app(
            self.stores[index].clone(),
            self.tables[index].clone(),
            keys,
        ))
        .await
    }
}

/// A site on Redis sessions, or `None` when a service is not configured.
pub async fn redis_site() -> Option<Site<SharedRedis>> {
    let database = service_url("DATABASE_URL")?;
    let redis = service_url("REDIS_URL")?;
    let users = PgUsers::create(&database).await;
    let tracker = Tracker::redis(&redis);
    let mut stores = Vec::new();
    let mut tables = Vec::new();
    for _ in 0..INSTANCES {
        stores.push(redis_store(&redis, &tracker).await);
        tables.push(users.connect(&database).await);
    }
    Some(Site {
        users,
        store: redis_store(&redis, &tracker).await,
        stores,
        tables,
    })
}

/// A site on Postgres sessions (in the user table's schema), or `None` when
/// the service is not configured.
pub async fn postgres_site() -> Option<Site<PostgresStore>> {
    let database = service_url("DATABASE_URL")?;
    let users = PgUsers::create(&database).await;
    let mut stores = Vec::new();
    let mut tables = Vec::new();
    for _ in 0..INSTANCES {
        stores.push(postgres_store(&database, users.schema()).await);
        tables.push(users.connect(&database).await);
    }
    Some(Site {
        store: postgres_store(&database, users.schema()).await,
        users,
        stores,
        tables,
    })
}

/// A new browser, signed in as user `id` through `base`.
pub async fn signed_in(base: &str, id: u64) -> Client {
    let client = Client::new();
    let reply = client.post(&format!("{base}/login/{id}"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "login as {id} at {base}");
    client
}

/// `GET /me`: status and body.
pub async fn me(client: &Client, base: &str) -> (StatusCode, String) {
    let reply = client.get(&format!("{base}/me")).await;
    (reply.status, reply.body)
}

pub async fn assert_signed_in_as(client: &Client, base: &str, name: &str) {
    assert_eq!(
        me(client, base).await,
        (StatusCode::OK, name.to_owned()),
        "signed in as {name} at {base}"
    );
}

pub async fn assert_anonymous(client: &Client, base: &str) {
    let (status, body) = me(client, base).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "anonymous at {base}: {body}"
    );
}
