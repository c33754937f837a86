//! The test user table on Postgres: a `users` table in a schema of its own
//! per test, created with the default users and dropped when the test ends.

use std::sync::Arc;

use sqlx::PgPool;
use tower_sessions_auth::UserBackend;

use super::{
    default_users, fake_hash,
    services::{drop_schema_on_drop, drop_stale_schemas, pg_pool, unique_name, OnDrop, TIMEOUT},
    TestUser, UserTable,
};

/// Connections per pool: enough for the tests, small enough that several
/// instances and runs stay far below Postgres' `max_connections`.
const POOL_SIZE: u32 = 4;

/// A handle on one test's user table. Clones share the pool; [`connect`]
/// makes a handle on the same table over another pool (another instance, or
/// a connection through a proxy).
///
/// [`connect`]: Self::connect
#[derive(Clone, Debug)]
pub struct PgUsers {
    pool: PgPool,
    schema: Arc<Schema>,
}

#[derive(Debug)]
struct Schema {
    name: String,
    _drop: OnDrop,
}

/// Why the backend could not answer.
#[derive(Debug, thiserror::Error)]
pub enum PgUsersError {
    #[error("user query failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("user query timed out")]
    Timeout,
}

type Row = (i64, String, String, i64);

fn user_of((id, name, password_hash, epoch): Row) -> TestUser {
    TestUser {
        id: u64::try_from(id).expect("ids are positive"),
        name,
        password_hash,
        epoch: u64::try_from(epoch).expect("epochs are positive"),
    }
}

fn key(id: u64) -> i64 {
    i64::try_from(id).expect("test ids fit in bigint")
}

impl PgUsers {
    /// Creates a fresh schema with a `users` table holding the
    /// [`default_users`], dropped when the last handle on it drops.
    pub async fn create(url: &str) -> Self {
        let pool = pg_pool(url, POOL_SIZE).await;
        drop_stale_schemas(&pool).await;
        let name = unique_name();
        let guard = drop_schema_on_drop(url, &name);
        let create = format!(
            r#"create schema "{name}";
               create table "{name}".users (
                   id bigint primary key,
                   name text not null,
                   password_hash text not null,
                   epoch bigint not null
               )"#
        );
        sqlx::raw_sql(&create)
            .execute(&pool)
            .await
            .expect("create the users table");
        let users = Self {
            pool,
            schema: Arc::new(Schema { name, _drop: guard }),
        };
        for user in default_users() {
            let insert = users.sql("insert into {users} values ($1, $2, $3, $4)");
            sqlx::query(&insert)
                .bind(key(user.id))
                .bind(&user.name)
                .bind(&user.password_hash)
                .bind(key(user.epoch))
                .execute(&users.pool)
                .await
                .expect("insert a default user");
        }
        users
    }

    /// The same table over a new pool connected to `url`.
    pub async fn connect(&self, url: &str) -> Self {
        Self {
            pool: pg_pool(url, POOL_SIZE).await,
            schema: self.schema.clone(),
        }
    }

    /// The schema of this test; the session store may live there too.
    pub fn schema(&self) -> &str {
        &self.schema.name
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// `template` with `{users}` replaced by the qualified table name.
    fn sql(&self, template: &str) -> String {
        template.replace("{users}", &format!(r#""{}".users"#, self.schema()))
    }

    async fn fetch(&self, id: u64) -> Result<Option<TestUser>, sqlx::Error> {
        let select = self.sql("select id, name, password_hash, epoch from {users} where id = $1");
        let row: Option<Row> = sqlx::query_as(&select)
            .bind(key(id))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(user_of))
    }
}

impl UserBackend for PgUsers {
    type User = TestUser;
    type Error = PgUsersError;

    async fn get_user(&self, id: &u64) -> Result<Option<TestUser>, PgUsersError> {
        // The pool bounds getting a connection (`acquire_timeout`, which
        // covers the ping sqlx sends an idle connection before lending it);
        // this also bounds a query whose connection stops answering midway.
        tokio::time::timeout(TIMEOUT, self.fetch(*id))
            .await
            .map_err(|_| PgUsersError::Timeout)?
            .map_err(PgUsersError::Database)
    }
}

impl UserTable for PgUsers {
    async fn find(&self, id: u64) -> Option<TestUser> {
        self.fetch(id).await.expect("select a user")
    }

    async fn set_password(&self, id: u64, new_password: &str) -> Option<TestUser> {
        let name = self.fetch(id).await.expect("select a user")?.name;
        let update = self.sql(
            "update {users} set password_hash = $2 where id = $1 \
             returning id, name, password_hash, epoch",
        );
        let row: Option<Row> = sqlx::query_as(&update)
            .bind(key(id))
            .bind(fake_hash(&name, new_password))
            .fetch_optional(&self.pool)
            .await
            .expect("update a password");
        row.map(user_of)
    }

    async fn bump_epoch(&self, id: u64) -> Option<TestUser> {
        let update = self.sql(
            "update {users} set epoch = epoch + 1 where id = $1 \
             returning id, name, password_hash, epoch",
        );
        let row: Option<Row> = sqlx::query_as(&update)
            .bind(key(id))
            .fetch_optional(&self.pool)
            .await
            .expect("bump an epoch");
        row.map(user_of)
    }

    async fn delete(&self, id: u64) {
        let delete = self.sql("delete from {users} where id = $1");
        sqlx::query(&delete)
            .bind(key(id))
            .execute(&self.pool)
            .await
            .expect("delete a user");
    }
}
