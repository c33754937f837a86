//! The registry in Redis, on the fred pool that tower-sessions-redis-store
//! uses.
//!
//! One hash per user, `tsa:registry:{<user id as JSON>}`: a field per
//! session handle, its entry as JSON (the factors a list of names; an
//! entry written before factors existed has none and reads as a
//! password). Every operation
//! is one command or one Lua script, atomic; checking a session is one
//! `HGET`, and once per touch interval also the script that refreshes its
//! last-seen time. Expired
//! fields are dropped by the scripts that meet them (insert, list), and a
//! user's hash expires with the last of its entries (`PEXPIREAT … GT`,
//! Redis 7.0 or later), so nothing needs a sweep.
//!
//! # Redis Cluster
//!
//! On a cluster a script may touch the keys of one hash slot only. Each
//! script here touches one key, the user's hash, and the braces make the
//! user part that key's hash tag: whatever the prefix, all of a user's
//! entries live in the slot of `{<user id>}`, on one shard, and users spread
//! over the shards. The pool follows `MOVED` and `ASK` redirections and a
//! failover by itself (fred); the scripts are loaded again on a node that
//! does not know them (a promoted replica). Only
//! [`remove_everyone`](RegistryStore::remove_everyone) reads several
//! shards: it scans every master.

use async_trait::async_trait;
use fred::{
    clients::Pool,
    interfaces::{ClientLike as _, HashesInterface, KeysInterface},
    types::{scripts::Script, Key},
};
use futures_util::TryStreamExt as _;

use super::{Insertion, LimitPolicy, RegistryEntry, RegistryError, RegistryStore, SessionLimit};
use crate::credential::Factor;

/// Drops the user's expired entries, applies the limit, adds the entry and
/// extends the hash's expiry. Returns the number evicted, or -1 when the
/// limit refused the entry.
const INSERT: &str = r"
local key, handle, entry = KEYS[1], ARGV[1], ARGV[2]
local now, max, refuse, expires = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local fields = redis.call('HGETALL', key)
local live = {}
for i = 1, #fields, 2 do
  local e = cjson.decode(fields[i + 1])
  if e.expires_at <= now then
    redis.call('HDEL', key, fields[i])
  else
    live[#live + 1] = { fields[i], e.last_seen_at, e.created_at }
  end
end
local evicted = 0
if max > 0 and #live >= max then
  if refuse then return -1 end
  table.sort(live, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[3] < b[3]
  end)
  for i = 1, #live - max + 1 do
    redis.call('HDEL', key, live[i][1])
    evicted = evicted + 1
  end
end
redis.call('HSET', key, handle, entry)
if redis.call('PEXPIREAT', key, expires, 'GT') == 0 and redis.call('PTTL', key) < 0 then
  redis.call('PEXPIREAT', key, expires)
end
return evicted
";

/// 1 when the entry lives, 0 when not; refreshes last-seen and the expiry
/// when last-seen is stale.
const TOUCH: &str = r"
local key, handle = KEYS[1], ARGV[1]
local now, stale_before, expires = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local raw = redis.call('HGET', key, handle)
if not raw then return 0 end
local e = cjson.decode(raw)
if e.expires_at <= now then
  redis.call('HDEL', key, handle)
  return 0
end
if e.last_seen_at < stale_before then
  e.last_seen_at = now
  e.expires_at = expires
  redis.call('HSET', key, handle, cjson.encode(e))
  redis.call('PEXPIREAT', key, expires, 'GT')
end
return 1
";

/// 1 when the entry lives, and then sets its factors (ARGV[2], a JSON
/// list), last-seen and the expiry; 0 when not.
const SET_FACTORS: &str = r"
local key, handle, factors = KEYS[1], ARGV[1], ARGV[2]
local now, expires = tonumber(ARGV[3]), tonumber(ARGV[4])
local raw = redis.call('HGET', key, handle)
if not raw then return 0 end
local e = cjson.decode(raw)
if e.expires_at <= now then
  redis.call('HDEL', key, handle)
  return 0
end
e.factors = cjson.decode(factors)
e.last_seen_at = now
e.expires_at = expires
redis.call('HSET', key, handle, cjson.encode(e))
redis.call('PEXPIREAT', key, expires, 'GT')
return 1
";

/// The live entries; drops the expired ones on the way.
const LIST: &str = r"
local key, now = KEYS[1], tonumber(ARGV[1])
local fields = redis.call('HGETALL', key)
local live = {}
for i = 1, #fields, 2 do
  local e = cjson.decode(fields[i + 1])
  if e.expires_at <= now then
    redis.call('HDEL', key, fields[i])
  else
    live[#live + 1] = fields[i + 1]
  end
end
return live
";

/// Removes every field but ARGV[1] (when given); returns how many.
const REMOVE_ALL: &str = r"
local key, keep = KEYS[1], ARGV[1]
local removed = 0
for _, handle in ipairs(redis.call('HKEYS', key)) do
  if handle ~= keep then
    redis.call('HDEL', key, handle)
    removed = removed + 1
  end
end
return removed
";

/// The session registry in Redis (feature `redis`), on one server or a
/// Redis Cluster; see the module docs.
///
/// ```no_run
/// # async fn run() -> Result<(), fred::error::Error> {
/// use fred::prelude::{ClientLike, Config, Pool};
/// use tower_sessions_auth::registry::{RedisRegistry, SessionRegistry};
///
/// let pool = Pool::new(Config::from_url("redis://127.0.0.1:6379")?, None, None, None, 4)?;
/// pool.init().await?;
/// let registry = SessionRegistry::new(RedisRegistry::new(pool.clone()));
/// # Ok(()) }
/// ```
///
/// On a cluster, only the URL changes (fred's form: a first node, then
/// more as `node=` parameters), and each user's entries share one hash
/// slot:
///
/// ```
/// # fn run() -> Result<(), fred::error::Error> {
/// use fred::{prelude::{Config, Pool}, util::redis_keyslot};
/// use tower_sessions_auth::registry::RedisRegistry;
///
/// let url = "redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001&node=127.0.0.1:7002";
/// let pool = Pool::new(Config::from_url(url)?, None, None, None, 4)?;
/// let store = RedisRegistry::new(pool).with_key_prefix("app:");
/// // The hash tag is the part in braces: the user's id as JSON.
/// assert_eq!(store.key("42"), "app:{42}");
/// assert_eq!(redis_keyslot(store.key("42").as_bytes()), redis_keyslot(b"42"));
/// # Ok(()) }
/// # run().unwrap();
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Clone)]
pub struct RedisRegistry {
    pool: Pool,
    prefix: String,
    insert: Script,
    touch: Script,
    set_factors: Script,
    list: Script,
    remove_all: Script,
}

impl RedisRegistry {
    /// The registry on `pool`, under keys `tsa:registry:{…}`.
    #[must_use]
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            prefix: "tsa:registry:".to_owned(),
            insert: Script::from_lua(INSERT),
            touch: Script::from_lua(TOUCH),
            set_factors: Script::from_lua(SET_FACTORS),
            list: Script::from_lua(LIST),
            remove_all: Script::from_lua(REMOVE_ALL),
        }
    }

    /// Puts the keys under `prefix` instead of `tsa:registry:` (one per
    /// application sharing a Redis, or per test run).
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key of `user`'s entries.
    #[must_use]
    pub fn key(&self, user: &str) -> String {
        format!("{}{{{user}}}", self.prefix)
    }

    async fn run<R: fred::types::FromValue>(
        &self,
        script: &Script,
        user: &str,
        args: Vec<fred::types::Value>,
    ) -> Result<R, RegistryError> {
        script
            .evalsha_with_reload(self.pool.next(), self.key(user), args)
            .await
            .map_err(RegistryError::backend)
    }
}

impl std::fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RegistryStore for RedisRegistry {
    async fn insert(
        &self,
        user: &str,
        entry: &RegistryEntry,
        limit: Option<SessionLimit>,
        now: i64,
    ) -> Result<Insertion, RegistryError> {
        let json = serde_json::to_string(entry).map_err(RegistryError::backend)?;
        let (max, refuse) = limit.map_or((0, false), |limit| {
            (
                i64::try_from(limit.max).unwrap_or(i64::MAX),
                limit.policy == LimitPolicy::RefuseNew,
            )
        });
        let args = vec![
            entry.handle.as_str().into(),
            json.into(),
            now.into(),
            max.into(),
            if refuse { "1" } else { "0" }.into(),
            entry.expires_at.into(),
        ];
        let evicted: i64 = self.run(&self.insert, user, args).await?;
        Ok(match usize::try_from(evicted) {
            Ok(evicted) => Insertion::Added { evicted },
            Err(_) => Insertion::Refused,
        })
    }

    async fn touch(
        &self,
        user: &str,
        handle: &str,
        now: i64,
        stale_before: i64,
        expires_at: i64,
    ) -> Result<bool, RegistryError> {
        // The common case is a plain HGET: most requests find last-seen
        // fresh, and a script costs Redis (and, waiting for it, the server)
        // more than a read. Only a stale entry takes the script, which
        // checks again and writes.
        let raw: Option<String> = self
            .pool
            .hget(self.key(user), handle)
            .await
            .map_err(RegistryError::backend)?;
        let Some(raw) = raw else {
            return Ok(false);
        };
        let entry: RegistryEntry = serde_json::from_str(&raw).map_err(RegistryError::backend)?;
        if entry.expires_at <= now {
            return Ok(false);
        }
        if entry.last_seen_at >= stale_before {
            return Ok(true);
        }
        let args = vec![
            handle.into(),
            now.into(),
            stale_before.into(),
            expires_at.into(),
        ];
        let alive: i64 = self.run(&self.touch, user, args).await?;
        Ok(alive == 1)
    }

    async fn set_factors(
        &self,
        user: &str,
        handle: &str,
        factors: &[Factor],
        now: i64,
        expires_at: i64,
    ) -> Result<bool, RegistryError> {
        let names: Vec<&str> = factors.iter().map(|factor| factor.as_str()).collect();
        let names = serde_json::to_string(&names).map_err(RegistryError::backend)?;
        let args = vec![handle.into(), names.into(), now.into(), expires_at.into()];
        let alive: i64 = self.run(&self.set_factors, user, args).await?;
        Ok(alive == 1)
    }

    async fn list(&self, user: &str, now: i64) -> Result<Vec<RegistryEntry>, RegistryError> {
        let raw: Vec<String> = self.run(&self.list, user, vec![now.into()]).await?;
        raw.iter()
            .map(|json| serde_json::from_str(json).map_err(RegistryError::backend))
            .collect()
    }

    async fn remove(&self, user: &str, handle: &str) -> Result<bool, RegistryError> {
        let removed: i64 = self
            .pool
            .hdel(self.key(user), handle)
            .await
            .map_err(RegistryError::backend)?;
        Ok(removed > 0)
    }

    async fn remove_all(&self, user: &str, except: Option<&str>) -> Result<u64, RegistryError> {
        let keep = except.unwrap_or("");
        let removed: i64 = self.run(&self.remove_all, user, vec![keep.into()]).await?;
        Ok(u64::try_from(removed).unwrap_or(0))
    }

    /// Nothing to do: expired fields go when a script meets them, and a
    /// user's hash expires with its last entry.
    async fn remove_expired(&self, _now: i64) -> Result<u64, RegistryError> {
        Ok(0)
    }

    /// Finds the users' hashes with `SCAN` (never `KEYS`, which blocks the
    /// server), then counts and deletes each: an entry added meanwhile to a
    /// hash already deleted survives, as a sign-in after the call would.
    ///
    /// On a cluster the scan runs on every master (users' hashes spread
    /// over the shards); a resharding during the scan may miss a hash.
    async fn remove_everyone(&self) -> Result<u64, RegistryError> {
        let client = self.pool.next();
        let pattern = format!("{}{{*", glob_escape(&self.prefix));
        let keys: Vec<Key> = if client.is_clustered() {
            let keys = client.scan_cluster_buffered(pattern, Some(500), None);
            keys.try_collect().await
        } else {
            client
                .scan_buffered(pattern, Some(500), None)
                .try_collect()
                .await
        }
        .map_err(RegistryError::backend)?;
        let mut removed = 0_u64;
        for key in keys {
            let entries: u64 = client.hlen(&key).await.map_err(RegistryError::backend)?;
            let _: i64 = client.del(&key).await.map_err(RegistryError::backend)?;
            removed = removed.saturating_add(entries);
        }
        Ok(removed)
    }
}

/// `text` as a `SCAN` pattern that matches only itself.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use fred::types::{config::Config, Builder};

    use super::*;

    /// A registry on a pool that never connects: whatever reaches Redis
    /// fails.
    fn unconnected() -> RedisRegistry {
        let config = Config::from_url("redis://someone:a-password@cache.example:6379").unwrap();
        RedisRegistry::new(Builder::from_config(config).build_pool(1).unwrap())
    }

    #[test]
    fn a_scan_pattern_matches_the_prefix_literally() {
        assert_eq!(glob_escape("tsa:registry:"), "tsa:registry:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn debug_shows_the_prefix_and_nothing_of_the_connection() {
        let registry = unconnected().with_key_prefix("app:");
        assert_eq!(
            format!("{registry:?}"),
            r#"RedisRegistry { prefix: "app:", .. }"#
        );
        assert_eq!(registry.key("42"), "app:{42}");
    }

    #[tokio::test]
    async fn cleanup_is_left_to_redis_and_costs_no_round_trip() {
        assert_eq!(unconnected().remove_expired(i64::MAX).await.unwrap(), 0);
    }
}
