//! The user table, in SQLite or Postgres, and the `UserBackend` that lets
//! tower-sessions-auth load users on every signed-in request.

use std::{fmt, str::FromStr, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    PgPool, SqlitePool,
};
use tower_sessions_auth::{SessionUser, UserBackend};

use super::StartError;

/// A row of `demo_activity`: time, text, user agent, IP address.
pub(crate) type ActivityRow = (i64, String, Option<String>, Option<String>);

/// A row of `demo_users`, with the ids of the user's passkeys.
#[derive(Clone)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) username: String,
    /// The argon2 PHC string; empty for an account without a password
    /// (signed up with a passkey).
    pub(crate) password_hash: String,
    /// Bumped to sign the user out everywhere else without a password
    /// change.
    pub(crate) session_epoch: i64,
    /// The raw credential ids of the user's passkeys: a session signed in
    /// with one of them ends once it is no longer here.
    pub(crate) passkeys: Vec<Vec<u8>>,
}

impl User {
    /// Whether the account has a password (it may have only passkeys).
    pub(crate) fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }
}

impl fmt::Debug for User {
    /// Leaves out the password hash: it must not reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("passkeys", &self.passkeys.len())
            .finish_non_exhaustive()
    }
}

impl SessionUser for User {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    /// The password hash, or nothing for an account without a password:
    /// its sessions are bound to the passkey that signed them in.
    fn credential(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }

    fn session_epoch(&self) -> u64 {
        // The column is a signed integer (SQLite has no other); reinterpret
        // the bits, so that every change of the column changes the epoch.
        u64::from_ne_bytes(self.session_epoch.to_ne_bytes())
    }

    /// A passkey has one version for its whole life: replacing one gives a
    /// new credential id, and its signature counter is no version.
    fn credential_version(&self, id: &[u8]) -> Option<u64> {
        self.passkeys
            .iter()
            .any(|passkey| passkey.as_slice() == id)
            .then_some(1)
    }
}

/// A credential id as the routes and the table name it: base64url without
/// padding, the `id` of the browser's `PublicKeyCredential`.
pub(crate) fn encode_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// The raw credential id of `id`; `None` when it is no base64url.
pub(crate) fn decode_id(id: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(id).ok()
}

/// A user's row joined with one of their passkeys (or none): what the
/// `SELECT`s return, folded into [`User`]s.
type UserRow = (i64, String, String, i64, Option<String>);

/// Folds the rows of one user (one per passkey) into the user.
fn fold_user(rows: Vec<UserRow>) -> Option<User> {
    let mut rows = rows.into_iter();
    let (id, username, password_hash, session_epoch, first) = rows.next()?;
    let passkeys = std::iter::once(first)
        .chain(rows.map(|row| row.4))
        .flatten()
        .filter_map(|id| decode_id(&id))
        .collect();
    Some(User {
        id,
        username,
        password_hash,
        session_epoch,
        passkeys,
    })
}

/// The users' database. The same SQL runs on both engines (`$n`
/// placeholders in order work in SQLite too); only the DDL differs.
#[derive(Clone)]
pub(crate) enum Users {
    /// A SQLite file (or memory database).
    Sqlite(SqlitePool),
    /// A Postgres database.
    Postgres(PgPool),
}

/// Runs the same expression against whichever pool `users` holds.
macro_rules! on_pool {
    ($users:expr, $pool:ident => $body:expr) => {
        match $users {
            Users::Sqlite($pool) => $body,
            Users::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The user and their passkeys, in one query.
const SELECT_USER: &str = "SELECT u.id, u.username, u.password_hash, u.session_epoch, \
     p.credential_id FROM demo_users u LEFT JOIN demo_passkeys p ON p.user_id = u.id";

impl Users {
    /// Opens a pool for `url`. With `schema`, Postgres connections use it as
    /// their search path, so the unqualified table names below land in it.
    pub(crate) async fn connect(url: &str, schema: Option<&str>) -> Result<Self, StartError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(sqlite_pool(url).await?))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres(postgres_pool(url, schema).await?))
        } else {
            Err("DATABASE_URL must start with sqlite: or postgres:".into())
        }
    }

    /// Creates the table if it does not exist yet.
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS demo_users (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        username TEXT NOT NULL UNIQUE,
                        password_hash TEXT NOT NULL,
                        session_epoch INTEGER NOT NULL DEFAULT 0
                    )",
                )
                .execute(pool)
                .await?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS demo_activity (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        user_id INTEGER NOT NULL,
                        at INTEGER NOT NULL,
                        what TEXT NOT NULL,
                        user_agent TEXT,
                        ip TEXT
                    )",
                )
                .execute(pool)
                .await?;
            }
            Self::Postgres(pool) => {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS demo_users (
                        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                        username TEXT NOT NULL UNIQUE,
                        password_hash TEXT NOT NULL,
                        session_epoch BIGINT NOT NULL DEFAULT 0
                    )",
                )
                .execute(pool)
                .await?;
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS demo_activity (
                        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                        user_id BIGINT NOT NULL,
                        at BIGINT NOT NULL,
                        what TEXT NOT NULL,
                        user_agent TEXT,
                        ip TEXT
                    )",
                )
                .execute(pool)
                .await?;
            }
        }
        // The same DDL on both engines (SQLite reads BIGINT as INTEGER).
        on_pool!(self, pool => {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS demo_passkeys (
                    credential_id TEXT PRIMARY KEY,
                    user_id BIGINT NOT NULL,
                    user_handle TEXT NOT NULL,
                    name TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    passkey TEXT NOT NULL
                )",
            )
            .execute(pool)
            .await?;
            sqlx::query(
                "CREATE INDEX IF NOT EXISTS demo_passkeys_user ON demo_passkeys (user_id)",
            )
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Inserts a user; `None` when the username is taken. An empty
    /// `password_hash` makes an account without a password.
    pub(crate) async fn create(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<Option<User>, sqlx::Error> {
        let inserted = on_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO demo_users (username, password_hash) VALUES ($1, $2) RETURNING id",
            )
            .bind(username)
            .bind(password_hash)
            .fetch_one(pool)
            .await
        });
        match inserted {
            Ok(id) => self.by_id(id).await,
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Finds a user by name.
    pub(crate) async fn by_username(&self, username: &str) -> Result<Option<User>, sqlx::Error> {
        let sql = format!("{SELECT_USER} WHERE u.username = $1");
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, UserRow>(&sql).bind(username).fetch_all(pool).await
        })?;
        Ok(fold_user(rows))
    }

    /// Finds a user by id.
    pub(crate) async fn by_id(&self, id: i64) -> Result<Option<User>, sqlx::Error> {
        let sql = format!("{SELECT_USER} WHERE u.id = $1");
        let rows = on_pool!(self, pool => {
            sqlx::query_as::<_, UserRow>(&sql).bind(id).fetch_all(pool).await
        })?;
        Ok(fold_user(rows))
    }

    /// Stores a new password hash; returns the updated user, `None` if the
    /// user is gone.
    pub(crate) async fn set_password(
        &self,
        id: i64,
        password_hash: &str,
    ) -> Result<Option<User>, sqlx::Error> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE demo_users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        self.by_id(id).await
    }

    /// Bumps the session epoch, which ends every session signed with the
    /// old one; returns the updated user, `None` if the user is gone.
    pub(crate) async fn bump_session_epoch(&self, id: i64) -> Result<Option<User>, sqlx::Error> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE demo_users SET session_epoch = session_epoch + 1 WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        self.by_id(id).await
    }

    /// Deletes a user, their passkeys and their recent activity; `false`
    /// if there was no such user.
    pub(crate) async fn delete(&self, id: i64) -> Result<bool, sqlx::Error> {
        let done = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM demo_activity WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM demo_passkeys WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM demo_users WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            done
        });
        Ok(done > 0)
    }

    /// Adds an entry to a user's recent activity, if the user still exists,
    /// and keeps only their newest `keep` entries.
    pub(crate) async fn add_activity(
        &self,
        user_id: i64,
        entry: ActivityRow,
        keep: i64,
    ) -> Result<(), sqlx::Error> {
        let (at, what, user_agent, ip) = entry;
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO demo_activity (user_id, at, what, user_agent, ip) \
                 SELECT id, $2, $3, $4, $5 FROM demo_users WHERE id = $1",
            )
            .bind(user_id)
            .bind(at)
            .bind(what)
            .bind(user_agent)
            .bind(ip)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM demo_activity WHERE user_id = $1 AND id NOT IN \
                 (SELECT id FROM demo_activity WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
            )
            .bind(user_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }

    /// A user's newest activity entries, newest first: time (seconds since
    /// the epoch), text, user agent, IP address.
    pub(crate) async fn recent_activity(
        &self,
        user_id: i64,
        limit: i64,
    ) -> Result<Vec<ActivityRow>, sqlx::Error> {
        on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT at, what, user_agent, ip FROM demo_activity WHERE user_id = $1 \
                 ORDER BY id DESC LIMIT $2",
            )
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }
}

impl UserBackend for Users {
    type User = User;
    type Error = sqlx::Error;

    async fn get_user(&self, id: &i64) -> Result<Option<User>, sqlx::Error> {
        self.by_id(*id).await
    }
}

/// A SQLite pool. Files use WAL and a busy timeout, so that several demo
/// processes can share one file; a memory database gets one connection
/// that never closes, since each connection would see its own database.
pub(crate) async fn sqlite_pool(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?.busy_timeout(Duration::from_secs(5));
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if in_memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
    } else {
        SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.journal_mode(SqliteJournalMode::Wal))
            .await
    }
}

/// A Postgres pool, its connections confined to `schema` when given.
pub(crate) async fn postgres_pool(url: &str, schema: Option<&str>) -> Result<PgPool, StartError> {
    let mut options = PgConnectOptions::from_str(url)?;
    if let Some(schema) = schema {
        check_identifier(schema)?;
        options = options.options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        // The name was checked above: letters, digits and `_` only.
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&pool)
            .await?;
        return Ok(pool);
    }
    Ok(PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?)
}

/// Accepts only names that need no quoting: ASCII letters, digits and `_`,
/// not starting with a digit.
pub(crate) fn check_identifier(name: &str) -> Result<(), StartError> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!("invalid Postgres schema name {name:?}: use letters, digits and _").into())
    }
}
