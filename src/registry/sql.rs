//! The registry in Postgres or SQLite, through sqlx: one table, created by
//! `migrate`, on a pool that tower-sessions-sqlx-store may share.
//!
//! The two engines run the same statements (`$n` placeholders work in
//! both); only the table's DDL and the lock that makes a limited insert
//! atomic differ. Expired rows are skipped by every read and deleted by
//! [`SessionRegistry::remove_expired`](super::SessionRegistry::remove_expired):
//! run it periodically, as tower-sessions' `ExpiredDeletion` does.
//!
//! The factors are one text column, their names comma-separated
//! (`hwk,user`). A table made before factors existed lacks it: `migrate`
//! adds it, and its rows (`NULL`) read as proved by a password.

use async_trait::async_trait;

use super::{Insertion, LimitPolicy, RegistryEntry, RegistryError, RegistryStore, SessionLimit};
use crate::credential::Factor;

/// The default table name.
const DEFAULT_TABLE: &str = "tsa_session_registry";

/// A table name that [`with_table_name`](PostgresRegistry::with_table_name)
/// refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid table name {0:?}: use letters, digits and _ (and one `.` after a schema)")]
pub struct InvalidTableName(String);

/// `name`, or (where the engine has schemas) `schema.name`, quoted; only
/// letters, digits and `_`.
fn quoted_table(
    name: &str,
    with_schemas: bool,
) -> Result<(Option<String>, String), InvalidTableName> {
    let valid_part = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && part.len() <= 63
    };
    let (schema, table) = match name.split_once('.') {
        Some((schema, table)) if with_schemas => (Some(schema), table),
        Some(_) => return Err(InvalidTableName(name.to_owned())),
        None => (None, name),
    };
    if !valid_part(table) || !schema.map_or(true, valid_part) {
        return Err(InvalidTableName(name.to_owned()));
    }
    Ok(match schema {
        Some(schema) => (
            Some(format!("\"{schema}\"")),
            format!("\"{schema}\".\"{table}\""),
        ),
        None => (None, format!("\"{table}\"")),
    })
}

/// What the engines' table definitions differ in.
struct Ddl {
    /// The columns of `CREATE TABLE`.
    columns: &'static str,
    /// Counts the table's columns named `factors`; `$1` is the table's
    /// name, quoted (a `regclass`) or bare (SQLite's `pragma_table_info`).
    count_factors: &'static str,
    /// Whether `count_factors` takes the quoted name.
    quoted_lookup: bool,
}

/// The statements of one table, made once.
#[derive(Debug, Clone)]
struct Statements {
    schema: Option<String>,
    table: String,
    /// The table's name as [`Ddl::count_factors`] takes it.
    lookup: String,
    index: String,
    create: String,
    count_factors: String,
    add_factors: String,
    expire_user: String,
    count: String,
    evict: String,
    insert: String,
    read: String,
    refresh: String,
    set_factors: String,
    list: String,
    remove: String,
    remove_all: String,
    remove_all_but: String,
    remove_expired: String,
    remove_everyone: String,
}

impl Statements {
    fn new(name: &str, ddl: &Ddl, with_schemas: bool) -> Result<Self, InvalidTableName> {
        let (schema, table) = quoted_table(name, with_schemas)?;
        let index_name = format!("\"{}_expires_at\"", name.rsplit('.').next().unwrap_or(name));
        const COLUMNS: &str =
            "handle, created_at, last_seen_at, expires_at, user_agent, ip, label, factors";
        Ok(Self {
            lookup: if ddl.quoted_lookup {
                table.clone()
            } else {
                name.to_owned()
            },
            index: format!("CREATE INDEX IF NOT EXISTS {index_name} ON {table} (expires_at)"),
            create: format!("CREATE TABLE IF NOT EXISTS {table} ({})", ddl.columns),
            count_factors: ddl.count_factors.to_owned(),
            add_factors: format!("ALTER TABLE {table} ADD COLUMN factors TEXT"),
            expire_user: format!("DELETE FROM {table} WHERE user_key = $1 AND expires_at <= $2"),
            count: format!("SELECT COUNT(*) FROM {table} WHERE user_key = $1"),
            evict: format!(
                "DELETE FROM {table} WHERE user_key = $1 AND handle IN (SELECT handle FROM \
                 {table} WHERE user_key = $1 ORDER BY last_seen_at, created_at LIMIT $2)"
            ),
            insert: format!(
                "INSERT INTO {table} (user_key, {COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            read: format!(
                "SELECT last_seen_at, expires_at FROM {table} WHERE user_key = $1 AND handle = $2"
            ),
            refresh: format!(
                "UPDATE {table} SET last_seen_at = $3, expires_at = $4 \
                 WHERE user_key = $1 AND handle = $2"
            ),
            set_factors: format!(
                "UPDATE {table} SET factors = $3, last_seen_at = $4, expires_at = $5 \
                 WHERE user_key = $1 AND handle = $2 AND expires_at > $4"
            ),
            list: format!("SELECT {COLUMNS} FROM {table} WHERE user_key = $1 AND expires_at > $2"),
            remove: format!("DELETE FROM {table} WHERE user_key = $1 AND handle = $2"),
            remove_all: format!("DELETE FROM {table} WHERE user_key = $1"),
            remove_all_but: format!("DELETE FROM {table} WHERE user_key = $1 AND handle <> $2"),
            remove_expired: format!("DELETE FROM {table} WHERE expires_at <= $1"),
            remove_everyone: format!("DELETE FROM {table}"),
            schema,
            table,
        })
    }
}

/// A row as the list query returns it.
type Row = (
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn entry(
    (handle, created_at, last_seen_at, expires_at, user_agent, ip, label, factors): Row,
) -> RegistryEntry {
    let entry = RegistryEntry::new(
        handle,
        created_at,
        last_seen_at,
        expires_at,
        user_agent,
        ip,
        label,
    );
    // `NULL`: a row from before factors, proved by a password (`new`'s).
    match factors {
        Some(names) => entry.with_factors(names.split(',').filter_map(Factor::from_name)),
        None => entry,
    }
}

/// The factors as the column holds them: `hwk,user`.
fn factor_names(factors: &[Factor]) -> String {
    let names: Vec<&str> = factors.iter().map(|factor| factor.as_str()).collect();
    names.join(",")
}

/// One registry type per engine: the same code over its pool type. `$lock`
/// is the statement that serializes the limited inserts of one user.
macro_rules! sql_registry {
    (
        $(#[$doc:meta])*
        $name:ident, $pool:ty, $feature:literal, $ddl:expr, $lock:expr, $schemas:expr
    ) => {
        $(#[$doc])*
        #[cfg(feature = $feature)]
        #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
        #[derive(Debug, Clone)]
        pub struct $name {
            pool: $pool,
            sql: std::sync::Arc<Statements>,
        }

        #[cfg(feature = $feature)]
        impl $name {
            /// The registry in the table `tsa_session_registry` of `pool`'s
            /// database. Call [`migrate`](Self::migrate) once at start.
            #[must_use]
            pub fn new(pool: $pool) -> Self {
                let sql = Statements::new(DEFAULT_TABLE, &$ddl, $schemas)
                    .unwrap_or_else(|_| unreachable!("the default table name is valid"));
                Self {
                    pool,
                    sql: std::sync::Arc::new(sql),
                }
            }

            /// Uses the table `name` instead (on Postgres also
            /// `schema.table`).
            ///
            /// # Errors
            ///
            /// When `name` holds anything but ASCII letters, digits and `_`
            /// (and, on Postgres, one `.`).
            pub fn with_table_name(mut self, name: &str) -> Result<Self, InvalidTableName> {
                self.sql = std::sync::Arc::new(Statements::new(name, &$ddl, $schemas)?);
                Ok(self)
            }

            /// Creates the table and its index (and the schema, on
            /// Postgres) if they do not exist, and adds the `factors`
            /// column to a table made before it existed (its rows read as
            /// proved by a password). Safe to run at every start, by
            /// several processes at once: the table is altered only when
            /// the column is missing.
            ///
            /// # Errors
            ///
            /// When the database fails.
            pub async fn migrate(&self) -> Result<(), sqlx::Error> {
                if let Some(schema) = &self.sql.schema {
                    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                        .execute(&self.pool)
                        .await?;
                }
                sqlx::query(&self.sql.create).execute(&self.pool).await?;
                if !self.has_factors().await? {
                    let added = sqlx::query(&self.sql.add_factors).execute(&self.pool).await;
                    // Another process may have added it meanwhile.
                    if let Err(error) = added {
                        if !self.has_factors().await? {
                            return Err(error);
                        }
                    }
                }
                sqlx::query(&self.sql.index).execute(&self.pool).await?;
                Ok(())
            }

            /// Whether the table has the `factors` column.
            async fn has_factors(&self) -> Result<bool, sqlx::Error> {
                let (count,): (i64,) = sqlx::query_as(&self.sql.count_factors)
                    .bind(&self.sql.lookup)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(count > 0)
            }

            /// The quoted name of the table.
            #[must_use]
            pub fn table_name(&self) -> &str {
                &self.sql.table
            }
        }

        #[cfg(feature = $feature)]
        #[async_trait]
        impl RegistryStore for $name {
            async fn insert(
                &self,
                user: &str,
                entry: &RegistryEntry,
                limit: Option<SessionLimit>,
                now: i64,
            ) -> Result<Insertion, RegistryError> {
                let sql = &self.sql;
                let mut tx = self.pool.begin().await.map_err(RegistryError::backend)?;
                let mut evicted = 0;
                if let Some(limit) = limit {
                    if let Some(lock) = $lock {
                        sqlx::query(lock)
                            .bind(user)
                            .execute(&mut *tx)
                            .await
                            .map_err(RegistryError::backend)?;
                    }
                    sqlx::query(&sql.expire_user)
                        .bind(user)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(RegistryError::backend)?;
                    let (held,): (i64,) = sqlx::query_as(&sql.count)
                        .bind(user)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(RegistryError::backend)?;
                    let max = i64::try_from(limit.max).unwrap_or(i64::MAX);
                    if held >= max {
                        if limit.policy == LimitPolicy::RefuseNew {
                            return Ok(Insertion::Refused);
                        }
                        let done = sqlx::query(&sql.evict)
                            .bind(user)
                            .bind(held - max + 1)
                            .execute(&mut *tx)
                            .await
                            .map_err(RegistryError::backend)?;
                        evicted = usize::try_from(done.rows_affected()).unwrap_or(usize::MAX);
                    }
                }
                sqlx::query(&sql.insert)
                    .bind(user)
                    .bind(&entry.handle)
                    .bind(entry.created_at)
                    .bind(entry.last_seen_at)
                    .bind(entry.expires_at)
                    .bind(&entry.user_agent)
                    .bind(&entry.ip)
                    .bind(&entry.label)
                    .bind(factor_names(&entry.factors))
                    .execute(&mut *tx)
                    .await
                    .map_err(RegistryError::backend)?;
                tx.commit().await.map_err(RegistryError::backend)?;
                Ok(Insertion::Added { evicted })
            }

            async fn touch(
                &self,
                user: &str,
                handle: &str,
                now: i64,
                stale_before: i64,
                expires_at: i64,
            ) -> Result<bool, RegistryError> {
                let found: Option<(i64, i64)> = sqlx::query_as(&self.sql.read)
                    .bind(user)
                    .bind(handle)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(RegistryError::backend)?;
                match found {
                    Some((_, expires)) if expires <= now => Ok(false),
                    Some((last_seen, _)) if last_seen < stale_before => {
                        let done = sqlx::query(&self.sql.refresh)
                            .bind(user)
                            .bind(handle)
                            .bind(now)
                            .bind(expires_at)
                            .execute(&self.pool)
                            .await
                            .map_err(RegistryError::backend)?;
                        // Revoked between the read and the write: gone.
                        Ok(done.rows_affected() > 0)
                    }
                    Some(_) => Ok(true),
                    None => Ok(false),
                }
            }

            async fn set_factors(
                &self,
                user: &str,
                handle: &str,
                factors: &[Factor],
                now: i64,
                expires_at: i64,
            ) -> Result<bool, RegistryError> {
                let done = sqlx::query(&self.sql.set_factors)
                    .bind(user)
                    .bind(handle)
                    .bind(factor_names(factors))
                    .bind(now)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(RegistryError::backend)?;
                Ok(done.rows_affected() > 0)
            }

            async fn list(&self, user: &str, now: i64) -> Result<Vec<RegistryEntry>, RegistryError> {
                let rows: Vec<Row> = sqlx::query_as(&self.sql.list)
                    .bind(user)
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(RegistryError::backend)?;
                Ok(rows.into_iter().map(entry).collect())
            }

            async fn remove(&self, user: &str, handle: &str) -> Result<bool, RegistryError> {
                let done = sqlx::query(&self.sql.remove)
                    .bind(user)
                    .bind(handle)
                    .execute(&self.pool)
                    .await
                    .map_err(RegistryError::backend)?;
                Ok(done.rows_affected() > 0)
            }

            async fn remove_all(
                &self,
                user: &str,
                except: Option<&str>,
            ) -> Result<u64, RegistryError> {
                let done = match except {
                    Some(handle) => {
                        sqlx::query(&self.sql.remove_all_but)
                            .bind(user)
                            .bind(handle)
                            .execute(&self.pool)
                            .await
                    }
                    None => sqlx::query(&self.sql.remove_all).bind(user).execute(&self.pool).await,
                };
                Ok(done.map_err(RegistryError::backend)?.rows_affected())
            }

            async fn remove_everyone(&self) -> Result<u64, RegistryError> {
                let done = sqlx::query(&self.sql.remove_everyone)
                    .execute(&self.pool)
                    .await
                    .map_err(RegistryError::backend)?;
                Ok(done.rows_affected())
            }

            async fn remove_expired(&self, now: i64) -> Result<u64, RegistryError> {
                let done = sqlx::query(&self.sql.remove_expired)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(RegistryError::backend)?;
                Ok(done.rows_affected())
            }
        }
    };
}

/// Columns of the table; the same types mean the same on both engines.
/// `factors` came later: `migrate` adds it to an older table.
const COLUMNS_DDL: &str = "user_key TEXT NOT NULL, handle TEXT NOT NULL, \
     created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, \
     user_agent TEXT, ip TEXT, label TEXT, factors TEXT, PRIMARY KEY (user_key, handle)";

/// Postgres: the table as a name resolves in a query, so that the search
/// path (and a quoted name's case) count as they do there.
#[cfg(feature = "postgres")]
const POSTGRES: Ddl = Ddl {
    columns: COLUMNS_DDL,
    count_factors: "SELECT COUNT(*) FROM pg_attribute \
         WHERE attrelid = to_regclass($1) AND attname = 'factors' AND NOT attisdropped",
    quoted_lookup: true,
};

#[cfg(feature = "sqlite")]
const SQLITE: Ddl = Ddl {
    columns: COLUMNS_DDL,
    count_factors: "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = 'factors'",
    quoted_lookup: false,
};

sql_registry!(
    /// The session registry in Postgres.
    ///
    /// A limited insert takes a transaction-scoped advisory lock on the
    /// user, so that two sign-ins at once cannot both pass the limit.
    ///
    /// ```no_run
    /// # async fn run(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
    /// use tower_sessions_auth::registry::{PostgresRegistry, SessionRegistry};
    ///
    /// let store = PostgresRegistry::new(pool);
    /// store.migrate().await?;
    /// let registry = SessionRegistry::new(store);
    /// # Ok(()) }
    /// ```
    PostgresRegistry,
    sqlx::PgPool,
    "postgres",
    POSTGRES,
    Some("SELECT pg_advisory_xact_lock(hashtext($1))"),
    true
);

sql_registry!(
    /// The session registry in SQLite.
    ///
    /// SQLite runs one writing transaction at a time, so a limited insert is
    /// atomic without a lock of its own; give the pool a busy timeout.
    ///
    /// ```no_run
    /// # async fn run(pool: sqlx::SqlitePool) -> Result<(), sqlx::Error> {
    /// use tower_sessions_auth::registry::{SessionRegistry, SqliteRegistry};
    ///
    /// let store = SqliteRegistry::new(pool);
    /// store.migrate().await?;
    /// let registry = SessionRegistry::new(store);
    /// # Ok(()) }
    /// ```
    SqliteRegistry,
    sqlx::SqlitePool,
    "sqlite",
    SQLITE,
    None::<&str>,
    false
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert_eq!(
            quoted_table("sessions", true).unwrap(),
            (None, "\"sessions\"".to_owned())
        );
        assert_eq!(
            quoted_table("app.sessions", true).unwrap(),
            (
                Some("\"app\"".to_owned()),
                "\"app\".\"sessions\"".to_owned()
            )
        );
        for bad in ["", "1st", "a-b", "a.b.c", "x\"; DROP TABLE users; --", "a."] {
            assert!(quoted_table(bad, true).is_err(), "{bad}");
        }
        assert!(
            quoted_table("app.sessions", false).is_err(),
            "SQLite has no schemas"
        );
    }
}
