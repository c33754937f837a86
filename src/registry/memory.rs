//! The registry in process memory: for one instance, tests and examples.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;

use super::{Insertion, LimitPolicy, RegistryEntry, RegistryError, RegistryStore, SessionLimit};
use crate::credential::Factor;

/// Entries in a map in memory, shared by clones. Pair it with
/// tower-sessions' `MemoryStore`: both belong to one process.
///
/// Expired entries are dropped when their user's entries are next written,
/// and for every user by [`SessionRegistry::remove_expired`](super::SessionRegistry::remove_expired).
#[derive(Clone, Default)]
pub struct MemoryRegistry {
    users: Arc<Mutex<HashMap<String, Vec<RegistryEntry>>>>,
}

/// Prints no user id (the map's keys): they are the users' data.
impl std::fmt::Debug for MemoryRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRegistry").finish_non_exhaustive()
    }
}

impl MemoryRegistry {
    fn with_users<T>(&self, f: impl FnOnce(&mut HashMap<String, Vec<RegistryEntry>>) -> T) -> T {
        f(&mut self.users.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl RegistryStore for MemoryRegistry {
    async fn insert(
        &self,
        user: &str,
        entry: &RegistryEntry,
        limit: Option<SessionLimit>,
        now: i64,
    ) -> Result<Insertion, RegistryError> {
        Ok(self.with_users(|users| {
            let entries = users.entry(user.to_owned()).or_default();
            entries.retain(|entry| entry.expires_at > now);
            let mut evicted = 0;
            if let Some(limit) = limit {
                while entries.len() >= limit.max {
                    if limit.policy == LimitPolicy::RefuseNew {
                        return Insertion::Refused;
                    }
                    let oldest = entries
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, entry)| (entry.last_seen_at, entry.created_at))
                        .map(|(index, _)| index);
                    if let Some(index) = oldest {
                        entries.swap_remove(index);
                        evicted += 1;
                    }
                }
            }
            entries.push(entry.clone());
            Insertion::Added { evicted }
        }))
    }

    async fn touch(
        &self,
        user: &str,
        handle: &str,
        now: i64,
        stale_before: i64,
        expires_at: i64,
    ) -> Result<bool, RegistryError> {
        Ok(self.with_users(|users| {
            let Some(entry) = live_entry(users, user, handle, now) else {
                return false;
            };
            if entry.last_seen_at < stale_before {
                entry.last_seen_at = now;
                entry.expires_at = expires_at;
            }
            true
        }))
    }

    async fn set_factors(
        &self,
        user: &str,
        handle: &str,
        factors: &[Factor],
        now: i64,
        expires_at: i64,
    ) -> Result<bool, RegistryError> {
        Ok(self.with_users(|users| {
            let Some(entry) = live_entry(users, user, handle, now) else {
                return false;
            };
            factors.clone_into(&mut entry.factors);
            entry.last_seen_at = now;
            entry.expires_at = expires_at;
            true
        }))
    }

    async fn list(&self, user: &str, now: i64) -> Result<Vec<RegistryEntry>, RegistryError> {
        Ok(self.with_users(|users| {
            users.get(user).map_or_else(Vec::new, |entries| {
                entries
                    .iter()
                    .filter(|entry| entry.expires_at > now)
                    .cloned()
                    .collect()
            })
        }))
    }

    async fn remove(&self, user: &str, handle: &str) -> Result<bool, RegistryError> {
        Ok(self.with_users(|users| {
            let Some(entries) = users.get_mut(user) else {
                return false;
            };
            let before = entries.len();
            entries.retain(|entry| entry.handle != handle);
            let removed = entries.len() < before;
            if entries.is_empty() {
                users.remove(user);
            }
            removed
        }))
    }

    async fn remove_all(&self, user: &str, except: Option<&str>) -> Result<u64, RegistryError> {
        Ok(self.with_users(|users| {
            let Some(entries) = users.get_mut(user) else {
                return 0;
            };
            let before = entries.len();
            entries.retain(|entry| Some(entry.handle.as_str()) == except);
            let removed = before - entries.len();
            if entries.is_empty() {
                users.remove(user);
            }
            u64::try_from(removed).unwrap_or(u64::MAX)
        }))
    }

    async fn remove_everyone(&self) -> Result<u64, RegistryError> {
        Ok(self.with_users(|users| {
            let removed: usize = users.values().map(Vec::len).sum();
            users.clear();
            u64::try_from(removed).unwrap_or(u64::MAX)
        }))
    }

    async fn remove_expired(&self, now: i64) -> Result<u64, RegistryError> {
        Ok(self.with_users(|users| {
            let mut removed = 0;
            users.retain(|_, entries| {
                let before = entries.len();
                entries.retain(|entry| entry.expires_at > now);
                removed += before - entries.len();
                !entries.is_empty()
            });
            u64::try_from(removed).unwrap_or(u64::MAX)
        }))
    }
}

/// The entry `handle` of `user`, unless it is missing or expired at `now`.
fn live_entry<'a>(
    users: &'a mut HashMap<String, Vec<RegistryEntry>>,
    user: &str,
    handle: &str,
    now: i64,
) -> Option<&'a mut RegistryEntry> {
    let entries = users.get_mut(user)?;
    let entry = entries.iter_mut().find(|entry| entry.handle == handle)?;
    (entry.expires_at > now).then_some(entry)
}

impl MemoryRegistry {
    /// How many entries the registry holds, expired ones included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.with_users(|users| users.values().map(Vec::len).sum())
    }

    /// Whether the registry holds no entry at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(handle: &str, expires_at: i64) -> RegistryEntry {
        RegistryEntry::new(handle.to_owned(), 0, 0, expires_at, None, None, None)
    }

    async fn handles(registry: &MemoryRegistry, user: &str) -> Vec<String> {
        let entries = registry.list(user, 0).await.unwrap();
        entries.into_iter().map(|entry| entry.handle).collect()
    }

    #[tokio::test]
    async fn cleanup_removes_what_expired_by_now_and_keeps_the_rest() {
        let registry = MemoryRegistry::default();
        assert!(registry.is_empty());
        for (user, handle, expires_at) in [("1", "a", 10), ("1", "b", 11), ("2", "c", 5)] {
            let entry = entry(handle, expires_at);
            registry.insert(user, &entry, None, 0).await.unwrap();
        }
        assert_eq!((registry.len(), registry.is_empty()), (3, false));

        // An entry is expired from its `expires_at` on.
        assert_eq!(registry.remove_expired(10).await.unwrap(), 2);
        assert_eq!(handles(&registry, "1").await, ["b"]);
        assert!(handles(&registry, "2").await.is_empty());
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.remove_expired(10).await.unwrap(), 0);
        assert_eq!(registry.remove_expired(11).await.unwrap(), 1);
        assert!(registry.is_empty());
    }
}
