//! The session index: every signed-in session of a user, listable and
//! revocable one by one (OWASP ASVS 5.0 7.5.2, 7.4.5).
//!
//! [`SessionRegistry`] wraps a [`RegistryStore`] ([`MemoryRegistry`], or
//! Redis, Postgres and SQLite behind the features `redis`, `postgres` and
//! `sqlite`) and the settings that go with it. Give it to
//! [`AuthLayer::with_registry`](crate::AuthLayer::with_registry); then the
//! layer checks on every signed-in request that the session's entry still
//! exists, and [`AuthSession`](crate::AuthSession) lists and revokes the
//! user's sessions.

mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use axum::{
    extract::ConnectInfo,
    http::{header, Extensions, HeaderMap},
};
use serde::Serialize;

pub use crate::handle::{InvalidHandle, SessionHandle};
use crate::{
    credential::Factor,
    live::{LiveSessions, EVERYONE},
    times::{from_unix_millis, millis, SharedClock},
};

pub use self::memory::MemoryRegistry;
#[cfg(feature = "redis")]
pub use self::redis::RedisRegistry;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use self::sql::InvalidTableName;
#[cfg(feature = "postgres")]
pub use self::sql::PostgresRegistry;
#[cfg(feature = "sqlite")]
pub use self::sql::SqliteRegistry;

/// What [`AuthSession::revoke_session`](crate::AuthSession::revoke_session) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// Another session of the user was revoked; it is anonymous from its
    /// next request on.
    Revoked,
    /// The handle was this session's: it is signed out, as by
    /// [`logout`](crate::AuthSession::logout).
    SignedOut,
    /// The user has no session with that handle (it is unknown, ended, or
    /// another user's): nothing happened.
    NotFound,
}

/// One signed-in session, as the application lists it.
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The handle to revoke it with.
    pub handle: SessionHandle,
    /// Whether it is the session of the request that listed it.
    pub current: bool,
    /// When the user signed in.
    pub created_at: SystemTime,
    /// When it was last used, to within the registry's touch interval.
    pub last_seen_at: SystemTime,
    /// When its entry ends if the session is not used again.
    pub expires_at: SystemTime,
    /// The `User-Agent` at sign-in, if recorded.
    pub user_agent: Option<String>,
    /// The peer address at sign-in, if recorded.
    pub ip: Option<IpAddr>,
    /// What the application named the sign-in ("password", "passkey").
    pub label: Option<String>,
    /// The factors the session proved ([RFC 8176](https://www.rfc-editor.org/rfc/rfc8176)
    /// `amr` values), sorted and without repeats: those of the sign-in
    /// ([`SignIn::factors`](crate::SignIn::factors); `[pwd]` for a sign-in
    /// that named none), and those a step-up
    /// ([`AuthSession::reauthenticate_with`](crate::AuthSession::reauthenticate_with))
    /// added. An entry written before the registry kept factors lists
    /// `[pwd]`; a name the crate does not know is left out.
    pub factors: Vec<Factor>,
}

impl fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionInfo")
            .field("current", &self.current)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("factors", &self.factors)
            .finish_non_exhaustive()
    }
}

/// One entry as a [`RegistryStore`] keeps it; times in Unix milliseconds
/// (so that "least recently seen" is well defined between sign-ins of the
/// same second).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RegistryEntry {
    /// The session's handle.
    pub handle: String,
    /// Sign-in time.
    pub created_at: i64,
    /// Last use, written at most once per touch interval.
    pub last_seen_at: i64,
    /// The entry is gone after this time.
    pub expires_at: i64,
    /// The `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// The peer IP address at sign-in.
    pub ip: Option<String>,
    /// The application's label of the sign-in.
    pub label: Option<String>,
    /// The factors the session proved, sorted and without repeats: set at
    /// sign-in, and again by [`RegistryStore::set_factors`] when a step-up
    /// adds one. A store keeps their names ([`Factor::as_str`]) and reads
    /// them back with [`with_factors`](Self::with_factors) and
    /// [`Factor::from_name`], leaving out a name it does not know; an
    /// entry stored without them (by an earlier version) reads as `[pwd]`,
    /// which [`new`](Self::new) gives. As JSON, a list of names; missing
    /// or `null`, `[pwd]`.
    #[serde(default = "password", with = "factor_names")]
    pub factors: Vec<Factor>,
}

impl RegistryEntry {
    /// An entry as a store read it back, proved by a password (`[pwd]`):
    /// give the factors the store kept with
    /// [`with_factors`](Self::with_factors).
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        handle: String,
        created_at: i64,
        last_seen_at: i64,
        expires_at: i64,
        user_agent: Option<String>,
        ip: Option<String>,
        label: Option<String>,
    ) -> Self {
        Self {
            handle,
            created_at,
            last_seen_at,
            expires_at,
            user_agent,
            ip,
            label,
            factors: password(),
        }
    }

    /// The entry with `factors` (sorted and deduplicated here) instead of
    /// its own.
    ///
    /// ```
    /// use tower_sessions_auth::{credential::Factor, registry::RegistryEntry};
    ///
    /// let stored = "user,hwk,a-name-from-the-future";
    /// let entry = RegistryEntry::new("q3XcA9-_kLmN0pQrStUvWx".into(), 1, 1, 2, None, None, None)
    ///     .with_factors(stored.split(',').filter_map(Factor::from_name));
    /// assert_eq!(entry.factors, [Factor::HWK, Factor::USER]);
    /// ```
    #[must_use]
    pub fn with_factors(mut self, factors: impl IntoIterator<Item = Factor>) -> Self {
        self.factors = sorted(factors);
        self
    }
}

impl fmt::Debug for RegistryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryEntry")
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .field("factors", &self.factors)
            .finish_non_exhaustive()
    }
}

/// The factors of a sign-in that named none, and of an entry stored
/// before entries kept factors: a password.
fn password() -> Vec<Factor> {
    vec![Factor::PWD]
}

/// `factors` sorted, each once.
fn sorted(factors: impl IntoIterator<Item = Factor>) -> Vec<Factor> {
    let mut factors: Vec<Factor> = factors.into_iter().collect();
    factors.sort_unstable();
    factors.dedup();
    factors
}

/// [`RegistryEntry::factors`] as a list of names. Reading never fails on
/// them: an entry that cannot be read fails every request of its session.
mod factor_names {
    use serde::{Deserialize as _, Deserializer, Serializer};
    use serde_json::Value;

    use super::{password, sorted, Factor};

    pub(super) fn serialize<S: Serializer>(
        factors: &[Factor],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(factors.iter().map(|factor| factor.as_str()))
    }

    /// The known names of a list; `null` is a password; anything else
    /// (Lua's cjson writes an empty list as `{}`) holds none.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Factor>, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Null => password(),
            Value::Array(names) => sorted(
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(Factor::from_name),
            ),
            _ => Vec::new(),
        })
    }
}

/// How many sessions a user may hold at once, and what a sign-in beyond
/// that does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    /// The most sessions per user (at least 1).
    pub max: usize,
    /// What happens to the sign-in that would exceed it.
    pub policy: LimitPolicy,
}

/// See [`SessionLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitPolicy {
    /// The new session is signed in; the user's least recently seen
    /// session is revoked to make room.
    EvictLeastRecentlySeen,
    /// The sign-in is refused ([`AuthError::TooManySessions`](crate::AuthError::TooManySessions));
    /// the user must end a session first.
    ///
    /// A session whose browser dropped its cookie still counts until its
    /// entry expires (the registry's lifetime after its last use): a user
    /// who cleared their cookies everywhere cannot sign in until then,
    /// unless an administrator revokes their sessions. Prefer
    /// [`EvictLeastRecentlySeen`](Self::EvictLeastRecentlySeen) unless the
    /// limit is a hard rule.
    RefuseNew,
}

/// What [`RegistryStore::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Insertion {
    /// The entry was added; `evicted` older entries were removed for it.
    Added {
        /// How many entries the limit removed.
        evicted: usize,
    },
    /// The limit refused the entry; nothing changed.
    Refused,
}

/// A failure of the registry's store. The layer answers it with a 5xx: a
/// session whose entry cannot be read is neither signed in nor anonymous.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The store failed.
    #[error("session registry store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl RegistryError {
    /// Wraps a store's error.
    pub fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Backend(error.into())
    }
}

/// Where a registry keeps its entries: one set of entries per user, keyed
/// by the user's id as JSON.
///
/// Implement it for a store this crate does not ship; each method's
/// documentation states what it must do. Every method is one atomic step
/// of the store (a transaction or a script when processes share it), all
/// times are Unix milliseconds, and an entry whose `expires_at` is not
/// after `now` is gone for [`touch`](Self::touch),
/// [`set_factors`](Self::set_factors) and [`list`](Self::list) even while
/// it is still stored. A store keeps every field of an entry, its
/// [`factors`](RegistryEntry::factors) included (see there for entries
/// stored before factors existed).
///
/// A store for one process, a map behind a mutex (as
/// [`MemoryRegistry`] is):
///
/// ```
/// use std::{collections::HashMap, sync::{Mutex, MutexGuard, PoisonError}};
///
/// use async_trait::async_trait;
/// use tower_sessions_auth::{
///     credential::Factor,
///     registry::{
///         Insertion, LimitPolicy, RegistryEntry, RegistryError, RegistryStore, SessionLimit,
///         SessionRegistry,
///     },
/// };
///
/// /// User key → handle → entry.
/// #[derive(Debug, Default)]
/// struct MapRegistry(Mutex<HashMap<String, HashMap<String, RegistryEntry>>>);
///
/// impl MapRegistry {
///     fn users(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, RegistryEntry>>> {
///         self.0.lock().unwrap_or_else(PoisonError::into_inner)
///     }
/// }
///
/// #[async_trait]
/// impl RegistryStore for MapRegistry {
///     async fn insert(
///         &self,
///         user: &str,
///         entry: &RegistryEntry,
///         limit: Option<SessionLimit>,
///         now: i64,
///     ) -> Result<Insertion, RegistryError> {
///         let mut users = self.users();
///         let entries = users.entry(user.to_owned()).or_default();
///         let mut evicted = 0;
///         if let Some(limit) = limit {
///             entries.retain(|_, entry| entry.expires_at > now);
///             while entries.len() >= limit.max {
///                 // A policy this store does not know refuses.
///                 if !matches!(limit.policy, LimitPolicy::EvictLeastRecentlySeen) {
///                     return Ok(Insertion::Refused);
///                 }
///                 let oldest = entries
///                     .values()
///                     .min_by_key(|entry| (entry.last_seen_at, entry.created_at))
///                     .map(|entry| entry.handle.clone());
///                 let Some(oldest) = oldest else { break };
///                 entries.remove(&oldest);
///                 evicted += 1;
///             }
///         }
///         entries.insert(entry.handle.clone(), entry.clone());
///         Ok(Insertion::Added { evicted })
///     }
///
///     async fn touch(
///         &self,
///         user: &str,
///         handle: &str,
///         now: i64,
///         stale_before: i64,
///         expires_at: i64,
///     ) -> Result<bool, RegistryError> {
///         let mut users = self.users();
///         let Some(entry) = users.get_mut(user).and_then(|entries| entries.get_mut(handle)) else {
///             return Ok(false);
///         };
///         if entry.expires_at <= now {
///             return Ok(false);
///         }
///         if entry.last_seen_at < stale_before {
///             entry.last_seen_at = now;
///             entry.expires_at = expires_at;
///         }
///         Ok(true)
///     }
///
///     async fn set_factors(
///         &self,
///         user: &str,
///         handle: &str,
///         factors: &[Factor],
///         now: i64,
///         expires_at: i64,
///     ) -> Result<bool, RegistryError> {
///         let mut users = self.users();
///         let Some(entry) = users.get_mut(user).and_then(|entries| entries.get_mut(handle)) else {
///             return Ok(false);
///         };
///         if entry.expires_at <= now {
///             return Ok(false);
///         }
///         entry.factors = factors.to_vec();
///         entry.last_seen_at = now;
///         entry.expires_at = expires_at;
///         Ok(true)
///     }
///
///     async fn list(&self, user: &str, now: i64) -> Result<Vec<RegistryEntry>, RegistryError> {
///         let users = self.users();
///         let entries = users.get(user).into_iter().flat_map(HashMap::values);
///         Ok(entries.filter(|entry| entry.expires_at > now).cloned().collect())
///     }
///
///     async fn remove(&self, user: &str, handle: &str) -> Result<bool, RegistryError> {
///         let mut users = self.users();
///         Ok(users.get_mut(user).and_then(|entries| entries.remove(handle)).is_some())
///     }
///
///     async fn remove_all(&self, user: &str, except: Option<&str>) -> Result<u64, RegistryError> {
///         let mut users = self.users();
///         let Some(entries) = users.get_mut(user) else { return Ok(0) };
///         let before = entries.len();
///         entries.retain(|handle, _| Some(handle.as_str()) == except);
///         Ok((before - entries.len()) as u64)
///     }
///
///     async fn remove_expired(&self, now: i64) -> Result<u64, RegistryError> {
///         let mut users = self.users();
///         let before: usize = users.values().map(HashMap::len).sum();
///         for entries in users.values_mut() {
///             entries.retain(|_, entry| entry.expires_at > now);
///         }
///         users.retain(|_, entries| !entries.is_empty());
///         Ok((before - users.values().map(HashMap::len).sum::<usize>()) as u64)
///     }
///
///     async fn remove_everyone(&self) -> Result<u64, RegistryError> {
///         let everyone = std::mem::take(&mut *self.users());
///         Ok(everyone.values().map(HashMap::len).sum::<usize>() as u64)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), RegistryError> {
/// # let store = MapRegistry::default();
/// # let entry = RegistryEntry::new("q3XcA9-_kLmN0pQrStUvWx".into(), 1_000, 1_000, 9_000, None, None, None);
/// # let one = Some(SessionLimit { max: 1, policy: LimitPolicy::RefuseNew });
/// # assert_eq!(store.insert("42", &entry, one, 1_000).await?, Insertion::Added { evicted: 0 });
/// # assert_eq!(store.insert("42", &entry, one, 2_000).await?, Insertion::Refused);
/// # assert!(store.touch("42", &entry.handle, 2_000, 1_500, 10_000).await?);
/// # assert!(!store.touch("42", &entry.handle, 10_000, 1_500, 20_000).await?);
/// # assert_eq!(store.list("42", 9_999).await?[0].factors, [Factor::PWD]);
/// # let stepped_up = [Factor::HWK, Factor::PWD, Factor::USER];
/// # assert!(store.set_factors("42", &entry.handle, &stepped_up, 3_000, 10_000).await?);
/// # assert_eq!(store.list("42", 9_999).await?[0].factors, stepped_up);
/// # assert!(!store.set_factors("42", &entry.handle, &stepped_up, 10_000, 20_000).await?);
/// # assert_eq!(store.remove_expired(10_000).await?, 1);
/// # store.insert("42", &entry, None, 1_000).await?;
/// # assert_eq!(store.remove_all("42", Some(&entry.handle)).await?, 0);
/// # assert_eq!(store.remove_everyone().await?, 1);
/// let registry = SessionRegistry::new(MapRegistry::default());
/// # Ok(()) }
/// ```
#[async_trait]
pub trait RegistryStore: fmt::Debug + Send + Sync + 'static {
    /// Adds `entry` for `user`. With a `limit`, first drops the user's
    /// expired entries (at `now`), then either evicts the least recently
    /// seen entries to make room or refuses, atomically with the insert.
    async fn insert(
        &self,
        user: &str,
        entry: &RegistryEntry,
        limit: Option<SessionLimit>,
        now: i64,
    ) -> Result<Insertion, RegistryError>;

    /// Whether `user` has an unexpired entry `handle` at `now`. When its
    /// last-seen time is before `stale_before`, also sets it to `now` and
    /// its expiry to `expires_at`. Called on every signed-in request, so
    /// make the common case (a fresh entry) one read: `RedisRegistry`
    /// answers it with one `HGET` and runs a script only for a stale entry.
    async fn touch(
        &self,
        user: &str,
        handle: &str,
        now: i64,
        stale_before: i64,
        expires_at: i64,
    ) -> Result<bool, RegistryError>;

    /// Whether `user` has an unexpired entry `handle` at `now`; if so,
    /// sets its [`factors`](RegistryEntry::factors) to `factors` (sorted,
    /// without repeats), its last-seen time to `now` and its expiry to
    /// `expires_at`. Called when the session's user proves themselves again
    /// and the session keeps its entry (a step-up, or the same user
    /// signing in again), never on an ordinary request: it is the one
    /// store call of that sign-in.
    ///
    /// The default leaves the factors as they were and refreshes the entry
    /// as [`touch`](Self::touch) does, so that a store written before
    /// entries kept factors still compiles and works; its list then shows
    /// the factors of the sign-in only. Override it.
    async fn set_factors(
        &self,
        user: &str,
        handle: &str,
        factors: &[Factor],
        now: i64,
        expires_at: i64,
    ) -> Result<bool, RegistryError> {
        let _ = factors;
        // Every last-seen time is before `i64::MAX`: always refreshed.
        self.touch(user, handle, now, i64::MAX, expires_at).await
    }

    /// The user's unexpired entries at `now`, in any order.
    async fn list(&self, user: &str, now: i64) -> Result<Vec<RegistryEntry>, RegistryError>;

    /// Removes the user's entry `handle`; `false` when there was none.
    async fn remove(&self, user: &str, handle: &str) -> Result<bool, RegistryError>;

    /// Removes every entry of the user but `except`; returns how many.
    async fn remove_all(&self, user: &str, except: Option<&str>) -> Result<u64, RegistryError>;

    /// Removes every user's entries whose `expires_at` is not after `now`;
    /// returns how many. Stores whose entries expire by themselves (Redis) may do
    /// nothing. [`SessionRegistry::continuously_remove_expired`] calls it
    /// periodically.
    async fn remove_expired(&self, now: i64) -> Result<u64, RegistryError>;

    /// Removes every entry of every user; returns how many. The
    /// administrator's "sign everyone out" (ASVS 5.0 7.4.5).
    async fn remove_everyone(&self) -> Result<u64, RegistryError>;
}

/// The session index and its settings.
///
/// # Why revocation sticks
///
/// The entry, not the session record, decides whether a session lives. A
/// request that loaded the session before a logout or a revoke and saves it
/// back afterwards (SQL and memory session stores save by upsert, and
/// `with_always_save(true)` saves on every request) brings the record back,
/// but not the entry: the next request carrying it ends it. Ending a
/// session never depends on knowing its id, so an administrator can revoke
/// sessions by handle from outside any request.
///
/// # Privacy
///
/// Handles, user agents and addresses are the user's data: no `Debug`
/// prints them and nothing logs them. By default the registry records the
/// `User-Agent` header (at most 256 characters) and the peer address of the
/// connection (axum's `ConnectInfo<SocketAddr>`) at sign-in;
/// [`SessionRegistry::without_user_agent`] and
/// [`SessionRegistry::without_peer_addr`] turn each off.
///
/// ```
/// use std::time::Duration;
/// use tower_sessions_auth::registry::{LimitPolicy, MemoryRegistry, SessionRegistry};
///
/// let registry = SessionRegistry::new(MemoryRegistry::default())
///     .with_lifetime(Duration::from_secs(14 * 24 * 3600))
///     .with_limit(5, LimitPolicy::EvictLeastRecentlySeen);
/// ```
#[derive(Clone)]
#[must_use]
pub struct SessionRegistry {
    store: Arc<dyn RegistryStore>,
    /// The layer's clock once the registry is given to the layer.
    pub(crate) clock: SharedClock,
    /// Told of every session this registry ends, so that its open
    /// connections end too, in this process and the others.
    pub(crate) live: Option<LiveSessions>,
    touch_interval: i64,
    lifetime: i64,
    limit: Option<SessionLimit>,
    record_user_agent: bool,
    record_peer_addr: bool,
}

/// Longest `User-Agent` recorded, in characters.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Longest entry lifetime: ten years.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

impl SessionRegistry {
    /// A registry in `store`: last-seen written at most once a minute,
    /// entries kept 14 days after their last use, no limit per user, user
    /// agent and peer address recorded.
    pub fn new(store: impl RegistryStore) -> Self {
        Self {
            store: Arc::new(store),
            clock: SharedClock::default(),
            live: None,
            touch_interval: 60_000,
            lifetime: 14 * 24 * 3600 * 1000,
            limit: None,
            record_user_agent: true,
            record_peer_addr: true,
        }
    }

    /// How often at most the last-seen time of a session is written (default
    /// 60 s). Requests in between only read the entry.
    ///
    /// # Panics
    ///
    /// When `interval` is longer than a year.
    pub fn with_touch_interval(mut self, interval: Duration) -> Self {
        assert!(
            interval <= Duration::from_secs(366 * 24 * 3600),
            "SessionRegistry::with_touch_interval: at most a year"
        );
        self.touch_interval = millis(interval);
        self
    }

    /// How long an entry lives after the session's last use (default 14
    /// days). Set it to the session store's inactivity expiry, so that the
    /// list shows no session whose record has expired.
    ///
    /// # Panics
    ///
    /// When `lifetime` is shorter than a second or longer than ten years.
    /// [`AuthLayer::with_registry`](crate::AuthLayer::with_registry) also
    /// refuses a lifetime under twice the touch interval: an active
    /// session's entry is extended only when its last-seen time is written,
    /// so it would expire in use.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        assert!(
            (Duration::from_secs(1)..=MAX_LIFETIME).contains(&lifetime),
            "SessionRegistry::with_lifetime: the lifetime must be between a second and ten years"
        );
        self.lifetime = millis(lifetime);
        self
    }

    /// Refuses settings that would end active sessions: see
    /// [`with_lifetime`](Self::with_lifetime).
    pub(crate) fn check(&self) {
        assert!(
            self.lifetime >= self.touch_interval.saturating_mul(2),
            "SessionRegistry: the lifetime ({} ms) must be at least twice the touch interval \
             ({} ms), or entries of sessions in use expire",
            self.lifetime,
            self.touch_interval
        );
    }

    /// At most `max` sessions per user, with `policy` for one more.
    ///
    /// # Panics
    ///
    /// When `max` is zero.
    pub fn with_limit(mut self, max: usize, policy: LimitPolicy) -> Self {
        assert!(
            max > 0,
            "SessionRegistry::with_limit: allow at least one session"
        );
        self.limit = Some(SessionLimit { max, policy });
        self
    }

    /// Does not record the `User-Agent` header at sign-in.
    pub fn without_user_agent(mut self) -> Self {
        self.record_user_agent = false;
        self
    }

    /// Does not record the peer address at sign-in.
    pub fn without_peer_addr(mut self) -> Self {
        self.record_peer_addr = false;
        self
    }

    /// Lists `user`'s sessions, most recently seen first (none marked
    /// current: outside a request there is none).
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn list<Id: Serialize>(&self, user: &Id) -> Result<Vec<SessionInfo>, RegistryError> {
        self.list_marked(&user_key(user)?, None).await
    }

    /// Ends the open connections (WebSockets, event streams) of the
    /// sessions this registry revokes, in every process: give it the
    /// process's [`LiveSessions`], whose channel reaches the others. The
    /// layer's [`SessionWatch`](crate::live::SessionWatch) needs it.
    ///
    /// A revocation then never depends on the caller remembering a second
    /// call: [`revoke`](Self::revoke), [`revoke_all`](Self::revoke_all) and
    /// [`revoke_everyone`](Self::revoke_everyone) announce themselves and
    /// return once the channel took the notice; every ending through the
    /// layer or [`AuthSession`](crate::AuthSession) announces itself too,
    /// without holding up its response.
    pub fn with_live_sessions(mut self, live: LiveSessions) -> Self {
        self.live = Some(live);
        self
    }

    /// Revokes one of `user`'s sessions: its next request is anonymous,
    /// and its open connections end. `false` when `user` has no such
    /// session (another user's handle, say): nothing happens then.
    ///
    /// `user` must be of the user type's [`Id`](crate::SessionUser::Id)
    /// type: entries are keyed by the id as JSON, so `"42"` does not find
    /// the sessions of user `42_u64`.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn revoke<Id: Serialize>(
        &self,
        user: &Id,
        handle: &SessionHandle,
    ) -> Result<bool, RegistryError> {
        let key = user_key(user)?;
        let removed = self.store.remove(&key, handle.as_str()).await?;
        if removed {
            self.publish(key).await;
        }
        Ok(removed)
    }

    /// Revokes every session of `user` (account deletion, an
    /// administrator's action); returns how many.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn revoke_all<Id: Serialize>(&self, user: &Id) -> Result<u64, RegistryError> {
        let key = user_key(user)?;
        let removed = self.store.remove_all(&key, None).await?;
        self.publish(key).await;
        Ok(removed)
    }

    /// Revokes every session of every user (ASVS 5.0 7.4.5: an
    /// administrator signs everyone out, after a breach say); returns how
    /// many. Every open connection of a watched session ends too.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn revoke_everyone(&self) -> Result<u64, RegistryError> {
        let removed = self.store.remove_everyone().await?;
        self.publish(EVERYONE.to_owned()).await;
        Ok(removed)
    }

    /// Removes the entries of every user that expired, for stores that do
    /// not expire them by themselves (memory, SQL): call it periodically,
    /// or let [`continuously_remove_expired`](Self::continuously_remove_expired)
    /// do it, as tower-sessions' `ExpiredDeletion` does for sessions.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn remove_expired(&self) -> Result<u64, RegistryError> {
        self.store.remove_expired(self.clock.now_ms()).await
    }

    /// Removes expired entries every `period`, for as long as the returned
    /// future runs: spawn it once per process next to the server. A
    /// failed pass is logged and retried at the next period.
    ///
    /// ```no_run
    /// # async fn run() {
    /// use std::time::Duration;
    /// use tower_sessions_auth::registry::{MemoryRegistry, SessionRegistry};
    ///
    /// let registry = SessionRegistry::new(MemoryRegistry::default());
    /// tokio::spawn(registry.clone().continuously_remove_expired(Duration::from_secs(600)));
    /// # }
    /// ```
    pub async fn continuously_remove_expired(self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.remove_expired().await {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "session registry: removing expired entries failed; retrying next period"
                );
            }
        }
    }

    /// Removes the entry `handle` of `user` and announces it.
    pub(crate) async fn end<Id: Serialize>(
        &self,
        user: &Id,
        handle: &str,
    ) -> Result<bool, RegistryError> {
        let key = user_key(user)?;
        let removed = self.store.remove(&key, handle).await?;
        if removed {
            self.announce(key);
        }
        Ok(removed)
    }

    /// Removes every entry of `user` but `except`, and announces it; with
    /// `keep`, the handle of the session that stays and its new hash, which
    /// that session's connections adopt.
    pub(crate) async fn end_all<Id: Serialize>(
        &self,
        user: &Id,
        except: Option<&str>,
        keep: Option<(&str, &str)>,
    ) -> Result<u64, RegistryError> {
        let key = user_key(user)?;
        let removed = self.store.remove_all(&key, except).await?;
        if let Some(live) = &self.live {
            let keep = keep.map(|(handle, hash)| (handle.to_owned(), hash.to_owned()));
            live.changed(key, keep);
        }
        Ok(removed)
    }

    /// Tells the open connections of `user` (keyed) to check again, and
    /// returns at once: a response of the request that ended the session
    /// is not held up by a slow or broken channel.
    pub(crate) fn announce(&self, user: String) {
        if let Some(live) = &self.live {
            live.changed(user, None);
        }
    }

    /// Tells the open connections of `user` (keyed) to check again, and
    /// waits until the channel took the notice: an administrator's call
    /// (or a command that exits next) must not lose it. A channel that
    /// fails is logged: the revocation holds anyway, and the other
    /// processes' backstop ends the connections within its period.
    async fn publish(&self, user: String) {
        let Some(live) = &self.live else {
            return;
        };
        if let Err(error) = live.announce(user).await {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "session registry: the revocation was not published; other processes end its \
                 connections at their re-check"
            );
        }
    }

    pub(crate) async fn list_marked(
        &self,
        user: &str,
        current: Option<&SessionHandle>,
    ) -> Result<Vec<SessionInfo>, RegistryError> {
        let mut entries = self.store.list(user, self.clock.now_ms()).await?;
        entries.sort_by_key(|entry| std::cmp::Reverse((entry.last_seen_at, entry.created_at)));
        Ok(entries
            .into_iter()
            .map(|entry| SessionInfo {
                current: current.is_some_and(|handle| handle.as_str() == entry.handle),
                created_at: from_unix_millis(entry.created_at),
                last_seen_at: from_unix_millis(entry.last_seen_at),
                expires_at: from_unix_millis(entry.expires_at),
                ip: entry.ip.and_then(|ip| ip.parse().ok()),
                user_agent: entry.user_agent,
                label: entry.label,
                factors: entry.factors,
                handle: SessionHandle::from_store(entry.handle),
            })
            .collect())
    }

    /// Adds a new session of `user`, with what was recorded at sign-in.
    pub(crate) async fn register(
        &self,
        user: &str,
        details: SignInDetails,
    ) -> Result<Option<SessionHandle>, RegistryError> {
        let handle = SessionHandle::generate().map_err(RegistryError::backend)?;
        let now = self.clock.now_ms();
        let entry = RegistryEntry {
            handle: handle.as_str().to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(self.lifetime),
            user_agent: details.user_agent,
            ip: details.ip.map(|ip| ip.to_string()),
            label: details.label,
            factors: sorted(details.factors),
        };
        match self.store.insert(user, &entry, self.limit, now).await? {
            Insertion::Added { evicted } => {
                if evicted > 0 {
                    // The evicted sessions ended: their open connections
                    // and fast-path passes must hear of it.
                    self.announce(user.to_owned());
                }
                Ok(Some(handle))
            }
            Insertion::Refused => Ok(None),
        }
    }

    /// Whether the session `handle` of `user` still lives, for a sign-in
    /// that keeps its entry (a step-up, the same user again); if so, its
    /// factors become `factors` and it counts as seen now. One store call,
    /// made only at a sign-in: the factors are written where they change.
    pub(crate) async fn set_factors(
        &self,
        user: &str,
        handle: &str,
        factors: &[Factor],
    ) -> Result<bool, RegistryError> {
        let now = self.clock.now_ms();
        let expires_at = now.saturating_add(self.lifetime);
        self.store
            .set_factors(
                user,
                handle,
                &sorted(factors.iter().copied()),
                now,
                expires_at,
            )
            .await
    }

    /// Whether the session `handle` of `user` still lives; refreshes its
    /// last-seen time once per touch interval.
    pub(crate) async fn touch(&self, user: &str, handle: &str) -> Result<bool, RegistryError> {
        let now = self.clock.now_ms();
        let stale_before = now.saturating_sub(self.touch_interval);
        let expires_at = now.saturating_add(self.lifetime);
        self.store
            .touch(user, handle, now, stale_before, expires_at)
            .await
    }

    /// The touch interval, in milliseconds.
    pub(crate) fn touch_interval_ms(&self) -> i64 {
        self.touch_interval
    }

    pub(crate) fn store(&self) -> &dyn RegistryStore {
        &*self.store
    }

    /// What this registry records of a request at sign-in.
    pub(crate) fn sign_in_details(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> SignInDetails {
        let user_agent = headers
            .get(header::USER_AGENT)
            .filter(|_| self.record_user_agent)
            .map(|agent| {
                String::from_utf8_lossy(agent.as_bytes())
                    .chars()
                    .take(MAX_USER_AGENT_CHARS)
                    .collect()
            });
        let ip = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .filter(|_| self.record_peer_addr)
            .map(|ConnectInfo(addr)| addr.ip());
        SignInDetails {
            user_agent,
            ip,
            ..SignInDetails::default()
        }
    }
}

impl fmt::Debug for SessionRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRegistry")
            .field("store", &self.store)
            .field("touch_interval", &self.touch_interval)
            .field("lifetime", &self.lifetime)
            .field("limit", &self.limit)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

/// What a sign-in records besides its times.
#[derive(Clone)]
pub(crate) struct SignInDetails {
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) label: Option<String>,
    /// The factors the sign-in proved.
    pub(crate) factors: Vec<Factor>,
}

/// Nothing recorded, proved by a password.
impl Default for SignInDetails {
    fn default() -> Self {
        Self {
            user_agent: None,
            ip: None,
            label: None,
            factors: password(),
        }
    }
}

/// The key of a user's entries: the id as JSON, as the session record
/// holds it.
pub(crate) fn user_key<Id: Serialize>(user: &Id) -> Result<String, RegistryError> {
    crate::backend::user_key(user).map_err(RegistryError::backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    fn registry() -> SessionRegistry {
        SessionRegistry::new(MemoryRegistry::default())
    }

    fn panics(build: impl FnOnce() -> SessionRegistry) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)).is_err()
    }

    #[test]
    fn a_handle_prints_as_itself_parses_back_and_never_debugs() {
        let handle = SessionHandle::generate().unwrap();
        assert_eq!(handle.as_str().len(), 22);
        assert_eq!(handle.to_string(), handle.as_str());
        assert_eq!(handle.as_str().parse::<SessionHandle>(), Ok(handle.clone()));
        assert_eq!(format!("{handle:?}"), "SessionHandle(<redacted>)");
        assert_ne!(SessionHandle::generate().unwrap(), handle);
    }

    #[test]
    fn only_16_to_64_url_safe_characters_are_a_handle() {
        for accepted in ["a".repeat(16), "Z9-_".repeat(4), "0".repeat(64)] {
            assert!(accepted.parse::<SessionHandle>().is_ok(), "{accepted}");
        }
        let sixteen = "a".repeat(16);
        for refused in [
            "a".repeat(15),
            "a".repeat(65),
            format!("{sixteen}."),
            format!("{sixteen}="),
            format!("{sixteen}/"),
            "é".repeat(8),
        ] {
            assert_eq!(
                refused.parse::<SessionHandle>(),
                Err(InvalidHandle),
                "{refused}"
            );
        }
    }

    #[test]
    fn settings_are_checked_when_they_are_made() {
        assert!(panics(
            || registry().with_lifetime(Duration::from_millis(999))
        ));
        assert!(panics(
            || registry().with_lifetime(Duration::from_secs(11 * 366 * DAY))
        ));
        assert!(!panics(
            || registry().with_lifetime(Duration::from_secs(10 * 365 * DAY))
        ));
        assert!(panics(
            || registry().with_touch_interval(Duration::from_secs(367 * DAY))
        ));
        assert!(panics(|| registry().with_limit(0, LimitPolicy::RefuseNew)));

        let short = || {
            registry()
                .with_touch_interval(Duration::from_secs(60))
                .with_lifetime(Duration::from_secs(119))
        };
        assert!(panics(|| {
            let registry = short();
            registry.check();
            registry
        }));
        let enough = registry()
            .with_touch_interval(Duration::from_secs(60))
            .with_lifetime(Duration::from_secs(120));
        enough.check();
        assert_eq!(enough.touch_interval_ms(), 60_000);
    }

    #[test]
    fn sign_in_records_what_it_is_allowed_to_and_no_more() {
        let mut headers = HeaderMap::new();
        headers.insert(header::USER_AGENT, "x".repeat(300).parse().unwrap());
        let mut extensions = Extensions::new();
        let peer: SocketAddr = "203.0.113.7:4000".parse().unwrap();
        extensions.insert(ConnectInfo(peer));

        let details = registry().sign_in_details(&headers, &extensions);
        assert_eq!(details.user_agent, Some("x".repeat(256)));
        assert_eq!(details.ip, Some(peer.ip()));
        let details = registry()
            .without_user_agent()
            .sign_in_details(&headers, &extensions);
        assert_eq!((details.user_agent, details.ip), (None, Some(peer.ip())));
        let details = registry()
            .without_peer_addr()
            .sign_in_details(&headers, &extensions);
        assert_eq!(
            (details.user_agent, details.ip),
            (Some("x".repeat(256)), None)
        );
    }

    #[tokio::test]
    async fn outside_a_request_it_lists_and_revokes_by_user() {
        let registry = registry().with_lifetime(Duration::from_secs(DAY));
        let key = user_key(&7_u64).unwrap();
        assert_eq!(key, "7");
        let before = from_unix_millis(crate::times::unix_millis(SystemTime::now()));
        let labelled = SignInDetails {
            label: Some("password".to_owned()),
            ..SignInDetails::default()
        };
        let first = registry.register(&key, labelled).await.unwrap().unwrap();
        let second = registry
            .register(&key, SignInDetails::default())
            .await
            .unwrap()
            .unwrap();
        let after = SystemTime::now();

        let listed = registry.list(&7_u64).await.unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.iter().all(|info| !info.current));
        let info = listed.iter().find(|info| info.handle == first).unwrap();
        assert_eq!(info.label.as_deref(), Some("password"));
        assert!((before..=after).contains(&info.created_at));
        assert_eq!(info.last_seen_at, info.created_at);
        assert_eq!(info.expires_at, info.created_at + Duration::from_secs(DAY));
        assert!(registry.list(&8_u64).await.unwrap().is_empty());

        assert!(registry.revoke(&7_u64, &first).await.unwrap());
        assert!(!registry.revoke(&7_u64, &first).await.unwrap());
        assert!(!registry.revoke(&8_u64, &second).await.unwrap());
        assert_eq!(registry.revoke_all(&7_u64).await.unwrap(), 1);
        assert_eq!(registry.revoke_all(&7_u64).await.unwrap(), 0);
    }

    #[test]
    fn factors_are_json_names_and_an_entry_without_them_was_proved_by_a_password() {
        let entry = RegistryEntry::new("h".to_owned(), 1, 2, 3, None, None, None).with_factors([
            Factor::USER,
            Factor::HWK,
            Factor::USER,
        ]);
        assert_eq!(entry.factors, [Factor::HWK, Factor::USER]);
        let json = serde_json::to_string(&entry).unwrap();
        assert!(json.ends_with(r#","factors":["hwk","user"]}"#), "{json}");
        assert_eq!(serde_json::from_str::<RegistryEntry>(&json).unwrap(), entry);

        let before = r#"{"handle":"h","created_at":1,"last_seen_at":2,"expires_at":3,"user_agent":null,"ip":null,"label":null"#;
        let read = |factors: &str| {
            let entry: RegistryEntry = serde_json::from_str(&format!("{before}{factors}}}"))
                .unwrap_or_else(|error| panic!("{factors}: {error}"));
            entry.factors
        };
        for (factors, expected) in [
            // Written by the version before factors.
            ("", vec![Factor::PWD]),
            (r#","factors":null"#, vec![Factor::PWD]),
            (
                r#","factors":["otp","pwd","otp"]"#,
                vec![Factor::OTP, Factor::PWD],
            ),
            // A name from a later version, or none at all: left out.
            (
                r#","factors":["x-later","swk",7,["hwk"]]"#,
                vec![Factor::SWK],
            ),
            // Lua's cjson writes an empty list as an object.
            (r#","factors":{}"#, vec![]),
            (r#","factors":"pwd""#, vec![]),
        ] {
            assert_eq!(read(factors), expected, "{factors}");
        }
    }

    #[tokio::test]
    async fn a_sign_in_lists_its_factors_and_a_kept_entry_takes_new_ones() {
        let registry = registry();
        let key = user_key(&7_u64).unwrap();
        let by_password = registry
            .register(&key, SignInDetails::default())
            .await
            .unwrap()
            .unwrap();
        let by_passkey = SignInDetails {
            factors: vec![Factor::USER, Factor::HWK],
            ..SignInDetails::default()
        };
        let by_passkey = registry.register(&key, by_passkey).await.unwrap().unwrap();
        let factors = |listed: &[SessionInfo], handle: &SessionHandle| {
            let info = listed.iter().find(|info| &info.handle == handle).unwrap();
            info.factors.clone()
        };
        let listed = registry.list(&7_u64).await.unwrap();
        assert_eq!(factors(&listed, &by_password), [Factor::PWD]);
        assert_eq!(factors(&listed, &by_passkey), [Factor::HWK, Factor::USER]);

        let stepped_up = [Factor::PWD, Factor::OTP];
        assert!(registry
            .set_factors(&key, by_password.as_str(), &stepped_up)
            .await
            .unwrap());
        let listed = registry.list(&7_u64).await.unwrap();
        assert_eq!(factors(&listed, &by_password), [Factor::OTP, Factor::PWD]);
        assert_eq!(factors(&listed, &by_passkey), [Factor::HWK, Factor::USER]);

        registry.revoke(&7_u64, &by_password).await.unwrap();
        assert!(!registry
            .set_factors(&key, by_password.as_str(), &stepped_up)
            .await
            .unwrap());
        assert_eq!(registry.list(&7_u64).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn expired_entries_of_every_user_are_removed() {
        let registry = registry();
        for (user, handle) in [("1", "a"), ("2", "b")] {
            let entry = RegistryEntry::new(handle.to_owned(), 1, 1, 2, None, None, None);
            registry
                .store()
                .insert(user, &entry, None, 1)
                .await
                .unwrap();
        }
        assert_eq!(registry.remove_expired().await.unwrap(), 2);
        assert_eq!(registry.remove_expired().await.unwrap(), 0);
    }

    #[test]
    fn debug_prints_times_and_settings_never_a_handle_or_what_was_recorded() {
        let entry = RegistryEntry::new(
            "the-handle-of-a-session".to_owned(),
            1,
            2,
            3,
            Some("Agent/1.0".to_owned()),
            Some("203.0.113.7".to_owned()),
            Some("passkey".to_owned()),
        );
        let printed = format!("{entry:?}");
        assert!(
            printed.starts_with("RegistryEntry")
                && printed.contains("created_at: 1")
                && printed.contains("expires_at: 3"),
            "{printed}"
        );
        let info = SessionInfo {
            handle: SessionHandle::from_store(entry.handle.clone()),
            current: true,
            created_at: from_unix_millis(1),
            last_seen_at: from_unix_millis(2),
            expires_at: from_unix_millis(3),
            user_agent: entry.user_agent.clone(),
            ip: Some("203.0.113.7".parse().unwrap()),
            label: entry.label.clone(),
            factors: entry.factors.clone(),
        };
        let printed_info = format!("{info:?}");
        assert!(
            printed_info.starts_with("SessionInfo")
                && printed_info.contains("current: true")
                && printed_info.contains("factors: [Factor(pwd)]"),
            "{printed_info}"
        );
        for printed in [&printed, &printed_info] {
            for secret in ["the-handle", "Agent", "203.0.113.7", "passkey"] {
                assert!(!printed.contains(secret), "{printed}");
            }
        }
        let registry = registry().with_limit(3, LimitPolicy::RefuseNew);
        let inserted = registry
            .store()
            .insert("\"alice@example.com\"", &entry, None, 0);
        futures_util::FutureExt::now_or_never(inserted)
            .unwrap()
            .unwrap();
        let printed = format!("{registry:?}");
        assert!(
            printed.starts_with("SessionRegistry")
                && printed.contains("MemoryRegistry")
                && printed.contains("touch_interval: 60000")
                && printed.contains("max: 3")
                && !printed.contains("alice"),
            "{printed}"
        );
    }

    #[test]
    fn a_store_error_keeps_its_source() {
        let error = RegistryError::backend("disk full");
        assert_eq!(error.to_string(), "session registry store failed");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk full"));
    }
}
