//! What every session-registry store must do, written once and run per
//! store by `registry_suite!`: the contract of `RegistryStore`, and that
//! 10,000 expired entries leave nothing behind after the store's cleanup.
//!
//! Times are real Unix milliseconds (Redis expires keys by them), and every test
//! uses users of its own, so that the suite can share a server.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tower_sessions_auth::{
    credential::Factor,
    registry::{
        Insertion, LimitPolicy, RegistryEntry, RegistryStore, SessionLimit, SessionRegistry,
    },
};

use super::services::unique_name;

/// Counts every entry the store holds, expired or not, for the growth test.
pub type Counter = Box<dyn Fn() -> Pin<Box<dyn Future<Output = usize> + Send>> + Send + Sync>;

/// Runs every suite function as a `#[tokio::test]`. `$fixture` is an async
/// fn returning `Option<(store, counter, guard)>`: `None` skips (outside
/// CI, a service that is not configured); the guard cleans up on drop.
#[allow(unused_macros)]
macro_rules! registry_suite {
    ($fixture:path) => {
        registry_suite!(@each $fixture;
            entries_are_kept_per_user,
            touch_writes_last_seen_only_when_stale,
            expired_entries_are_gone,
            remove_finds_only_the_users_own_entry,
            remove_all_keeps_only_the_exception,
            remove_everyone_empties_the_store,
            limit_evicts_the_least_recently_seen,
            limit_refuses_new_entries,
            factors_are_kept_and_set_on_a_live_entry,
            expired_entries_leave_nothing_after_cleanup
        );
    };
    (@each $fixture:path; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((store, counter, _guard)) = $fixture().await else { return };
                crate::common::registry_suite::$name(store, counter).await;
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use registry_suite;

/// Now, in Unix milliseconds, as the store keeps times.
pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// `n` seconds in milliseconds.
fn sec(n: i64) -> i64 {
    n * 1000
}

/// A user key no other test uses, shaped like the crate's (JSON).
fn user() -> String {
    format!("\"{}\"", unique_name())
}

fn entry(handle: &str, created_at: i64, last_seen_at: i64, expires_at: i64) -> RegistryEntry {
    RegistryEntry::new(
        handle.to_owned(),
        created_at,
        last_seen_at,
        expires_at,
        Some("Agent/1.0 (ünïcode)".to_owned()),
        Some("192.0.2.7".to_owned()),
        Some("password".to_owned()),
    )
}

pub fn handle(n: u32) -> String {
    format!("handle{n:0>16}")
}

async fn handles<S: RegistryStore>(store: &S, user: &str, now: i64) -> Vec<String> {
    let mut handles: Vec<String> = store
        .list(user, now)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.handle)
        .collect();
    handles.sort();
    handles
}

pub async fn entries_are_kept_per_user<S: RegistryStore>(store: S, _: Counter) {
    let (alice, bob, t) = (user(), user(), now());
    let first = entry(&handle(1), t, t, t + sec(3600));
    assert_eq!(
        store.insert(&alice, &first, None, t).await.unwrap(),
        Insertion::Added { evicted: 0 }
    );
    store
        .insert(&alice, &entry(&handle(2), t, t, t + sec(3600)), None, t)
        .await
        .unwrap();
    store
        .insert(&bob, &entry(&handle(3), t, t, t + sec(3600)), None, t)
        .await
        .unwrap();

    assert_eq!(handles(&store, &alice, t).await, [handle(1), handle(2)]);
    assert_eq!(handles(&store, &bob, t).await, [handle(3)]);
    let listed = store.list(&alice, t).await.unwrap();
    let listed = listed.iter().find(|e| e.handle == handle(1)).unwrap();
    assert_eq!(listed, &first, "every field round-trips");
    assert!(store
        .touch(&alice, &handle(1), t, t - sec(60), t + sec(3600))
        .await
        .unwrap());
    assert!(
        !store
            .touch(&alice, &handle(3), t, t - sec(60), t + sec(3600))
            .await
            .unwrap(),
        "bob's"
    );
    assert!(!store
        .touch(&alice, &handle(9), t, t - sec(60), t + sec(3600))
        .await
        .unwrap());
    assert!(store.list(&user(), t).await.unwrap().is_empty());
}

pub async fn touch_writes_last_seen_only_when_stale<S: RegistryStore>(store: S, _: Counter) {
    let (alice, t) = (user(), now());
    store
        .insert(&alice, &entry(&handle(1), t, t, t + sec(100)), None, t)
        .await
        .unwrap();
    // 30 s later, with a 60 s interval: fresh enough, nothing written.
    assert!(store
        .touch(&alice, &handle(1), t + sec(30), t - sec(30), t + sec(130))
        .await
        .unwrap());
    let seen = &store.list(&alice, t + sec(30)).await.unwrap()[0];
    assert_eq!((seen.last_seen_at, seen.expires_at), (t, t + sec(100)));
    // 60 s later: seen exactly at the edge is still fresh.
    assert!(store
        .touch(&alice, &handle(1), t + sec(60), t, t + sec(160))
        .await
        .unwrap());
    let seen = &store.list(&alice, t + sec(60)).await.unwrap()[0];
    assert_eq!((seen.last_seen_at, seen.expires_at), (t, t + sec(100)));
    // 70 s later: stale, so last-seen and the expiry move.
    assert!(store
        .touch(&alice, &handle(1), t + sec(70), t + sec(10), t + sec(170))
        .await
        .unwrap());
    let seen = &store.list(&alice, t + sec(70)).await.unwrap()[0];
    assert_eq!(
        (seen.last_seen_at, seen.expires_at),
        (t + sec(70), t + sec(170))
    );
    assert_eq!(seen.created_at, t);
}

pub async fn expired_entries_are_gone<S: RegistryStore>(store: S, _: Counter) {
    let (alice, t) = (user(), now());
    store
        .insert(&alice, &entry(&handle(1), t, t, t + sec(10)), None, t)
        .await
        .unwrap();
    store
        .insert(&alice, &entry(&handle(2), t, t, t + sec(3600)), None, t)
        .await
        .unwrap();
    assert_eq!(
        handles(&store, &alice, t + sec(9)).await,
        [handle(1), handle(2)]
    );
    assert_eq!(handles(&store, &alice, t + sec(10)).await, [handle(2)]);
    assert!(!store
        .touch(&alice, &handle(1), t + sec(10), t, t + sec(100))
        .await
        .unwrap());
    assert!(store
        .touch(&alice, &handle(2), t + sec(10), t, t + sec(100))
        .await
        .unwrap());
}

pub async fn remove_finds_only_the_users_own_entry<S: RegistryStore>(store: S, _: Counter) {
    let (alice, bob, t) = (user(), user(), now());
    for (user, n) in [(&alice, 1), (&alice, 2), (&bob, 3)] {
        store
            .insert(user, &entry(&handle(n), t, t, t + sec(3600)), None, t)
            .await
            .unwrap();
    }
    assert!(
        !store.remove(&alice, &handle(3)).await.unwrap(),
        "bob's handle"
    );
    assert_eq!(handles(&store, &bob, t).await, [handle(3)]);
    assert!(store.remove(&alice, &handle(1)).await.unwrap());
    assert!(
        !store.remove(&alice, &handle(1)).await.unwrap(),
        "already gone"
    );
    assert_eq!(handles(&store, &alice, t).await, [handle(2)]);
    assert!(!store
        .touch(&alice, &handle(1), t, t - sec(60), t + sec(3600))
        .await
        .unwrap());
}

pub async fn remove_all_keeps_only_the_exception<S: RegistryStore>(store: S, _: Counter) {
    let (alice, bob, t) = (user(), user(), now());
    for n in 1..=3 {
        store
            .insert(&alice, &entry(&handle(n), t, t, t + sec(3600)), None, t)
            .await
            .unwrap();
    }
    store
        .insert(&bob, &entry(&handle(4), t, t, t + sec(3600)), None, t)
        .await
        .unwrap();
    assert_eq!(store.remove_all(&alice, Some(&handle(2))).await.unwrap(), 2);
    assert_eq!(handles(&store, &alice, t).await, [handle(2)]);
    assert_eq!(store.remove_all(&alice, None).await.unwrap(), 1);
    assert!(handles(&store, &alice, t).await.is_empty());
    assert_eq!(handles(&store, &bob, t).await, [handle(4)], "bob untouched");
    assert_eq!(store.remove_all(&alice, None).await.unwrap(), 0);
}

/// Every entry of every user goes, expired ones too; the store takes new
/// entries afterwards.
pub async fn remove_everyone_empties_the_store<S: RegistryStore>(store: S, count: Counter) {
    let (alice, bob, t) = (user(), user(), now());
    for (n, who) in [(1, &alice), (2, &alice), (3, &bob)] {
        store
            .insert(who, &entry(&handle(n), t, t, t + sec(3600)), None, t)
            .await
            .unwrap();
    }
    store
        .insert(&bob, &entry(&handle(4), t, t, t + sec(1)), None, t)
        .await
        .unwrap();
    assert_eq!(count().await, 4);
    assert!(
        store.remove_everyone().await.unwrap() >= 3,
        "at least the live ones"
    );
    assert_eq!(count().await, 0);
    assert!(handles(&store, &alice, t).await.is_empty());
    assert!(handles(&store, &bob, t).await.is_empty());
    assert_eq!(store.remove_everyone().await.unwrap(), 0);
    store
        .insert(&bob, &entry(&handle(5), t, t, t + sec(3600)), None, t)
        .await
        .unwrap();
    assert_eq!(handles(&store, &bob, t).await, [handle(5)]);
}

pub async fn limit_evicts_the_least_recently_seen<S: RegistryStore>(store: S, _: Counter) {
    let (alice, t) = (user(), now());
    let limit = Some(SessionLimit {
        max: 2,
        policy: LimitPolicy::EvictLeastRecentlySeen,
    });
    // Handle 1 is the oldest but was seen last; handle 2 is the least
    // recently seen.
    store
        .insert(
            &alice,
            &entry(&handle(1), t - sec(50), t - sec(5), t + sec(3600)),
            limit,
            t,
        )
        .await
        .unwrap();
    store
        .insert(
            &alice,
            &entry(&handle(2), t - sec(40), t - sec(30), t + sec(3600)),
            limit,
            t,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .insert(&alice, &entry(&handle(3), t, t, t + sec(3600)), limit, t)
            .await
            .unwrap(),
        Insertion::Added { evicted: 1 }
    );
    assert_eq!(handles(&store, &alice, t).await, [handle(1), handle(3)]);
    // An expired entry makes room by itself.
    let short = entry(&handle(4), t, t, t + sec(5));
    store.remove(&alice, &handle(1)).await.unwrap();
    store.insert(&alice, &short, limit, t).await.unwrap();
    assert_eq!(
        store
            .insert(
                &alice,
                &entry(&handle(5), t, t, t + sec(3600)),
                limit,
                t + sec(5)
            )
            .await
            .unwrap(),
        Insertion::Added { evicted: 0 }
    );
    assert_eq!(
        handles(&store, &alice, t + sec(5)).await,
        [handle(3), handle(5)]
    );
}

pub async fn limit_refuses_new_entries<S: RegistryStore>(store: S, _: Counter) {
    let (alice, t) = (user(), now());
    let limit = Some(SessionLimit {
        max: 1,
        policy: LimitPolicy::RefuseNew,
    });
    store
        .insert(&alice, &entry(&handle(1), t, t, t + sec(3600)), limit, t)
        .await
        .unwrap();
    assert_eq!(
        store
            .insert(&alice, &entry(&handle(2), t, t, t + sec(3600)), limit, t)
            .await
            .unwrap(),
        Insertion::Refused
    );
    assert_eq!(handles(&store, &alice, t).await, [handle(1)]);
    // Without a limit, the same insert passes.
    store
        .insert(&alice, &entry(&handle(2), t, t, t + sec(3600)), None, t)
        .await
        .unwrap();
    assert_eq!(handles(&store, &alice, t).await, [handle(1), handle(2)]);
}

/// The factors of each of `user`'s entries at `now`, by handle.
async fn factors<S: RegistryStore>(store: &S, user: &str, now: i64) -> Vec<(String, Vec<Factor>)> {
    let mut listed: Vec<_> = store
        .list(user, now)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| (entry.handle, entry.factors))
        .collect();
    listed.sort();
    listed
}

pub async fn factors_are_kept_and_set_on_a_live_entry<S: RegistryStore>(store: S, _: Counter) {
    let (alice, bob, t) = (user(), user(), now());
    let by_password = entry(&handle(1), t, t, t + sec(3600));
    assert_eq!(by_password.factors, [Factor::PWD], "what `new` gives");
    let by_passkey =
        entry(&handle(2), t, t, t + sec(3600)).with_factors([Factor::USER, Factor::HWK]);
    for entry in [&by_password, &by_passkey] {
        store.insert(&alice, entry, None, t).await.unwrap();
    }
    store
        .insert(&bob, &entry(&handle(3), t, t, t + sec(3600)), None, t)
        .await
        .unwrap();
    assert_eq!(
        factors(&store, &alice, t).await,
        [
            (handle(1), vec![Factor::PWD]),
            (handle(2), vec![Factor::HWK, Factor::USER])
        ]
    );

    // A step-up: the factors, last-seen and the expiry change; nothing else.
    let stepped_up = [Factor::HWK, Factor::PWD, Factor::USER];
    assert!(store
        .set_factors(&alice, &handle(1), &stepped_up, t + sec(10), t + sec(3610))
        .await
        .unwrap());
    let listed = store.list(&alice, t + sec(10)).await.unwrap();
    let listed = listed.iter().find(|e| e.handle == handle(1)).unwrap();
    let mut expected = by_password.clone().with_factors(stepped_up);
    (expected.last_seen_at, expected.expires_at) = (t + sec(10), t + sec(3610));
    assert_eq!(listed, &expected);
    assert_eq!(
        factors(&store, &alice, t + sec(10)).await[1],
        (handle(2), vec![Factor::HWK, Factor::USER]),
        "the other entry is as it was"
    );
    // No factor named (a list a later version wrote and this one cannot
    // read, say) is kept as none.
    assert!(store
        .set_factors(&alice, &handle(2), &[], t + sec(10), t + sec(3610))
        .await
        .unwrap());
    assert_eq!(
        factors(&store, &alice, t + sec(10)).await[1],
        (handle(2), vec![])
    );

    // Only a live entry of the user's own.
    for (who, n) in [(&alice, 3), (&alice, 9), (&bob, 1)] {
        assert!(
            !store
                .set_factors(who, &handle(n), &stepped_up, t, t + sec(3600))
                .await
                .unwrap(),
            "handle {n}"
        );
    }
    assert_eq!(
        factors(&store, &bob, t).await,
        [(handle(3), vec![Factor::PWD])]
    );
    store
        .insert(&alice, &entry(&handle(4), t, t, t + sec(20)), None, t)
        .await
        .unwrap();
    assert!(!store
        .set_factors(&alice, &handle(4), &stepped_up, t + sec(20), t + sec(3620))
        .await
        .unwrap());
    assert!(!store
        .touch(&alice, &handle(4), t + sec(20), t, t + sec(3620))
        .await
        .unwrap());
}

/// The SQL registry's columns before factors, as the previous version
/// made its table.
pub const OLD_COLUMNS: &str = "user_key TEXT NOT NULL, handle TEXT NOT NULL, \
     created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, \
     user_agent TEXT, ip TEXT, label TEXT, PRIMARY KEY (user_key, handle)";

/// Reads the entries the caller wrote in its store's own format for the
/// user id `name` (a string), created at `t` and expiring an hour later:
/// handle 1 as the previous version wrote it, without factors; handle 2
/// with `hwk` and a name this version does not know (from a later one).
/// Then refreshes and steps them up as any other entry.
pub async fn entries_from_before_factors_read_as_a_password<S: RegistryStore + Clone>(
    store: S,
    name: &str,
    t: i64,
) {
    let user = format!("\"{name}\"");
    let before = factors(&store, &user, t).await;
    assert_eq!(
        before,
        [
            (handle(1), vec![Factor::PWD]),
            (handle(2), vec![Factor::HWK])
        ]
    );
    let registry = SessionRegistry::new(store.clone());
    let mut listed = registry.list(&name).await.unwrap();
    listed.sort_by_key(|info| info.handle.to_string());
    let listed: Vec<_> = listed.into_iter().map(|info| info.factors).collect();
    assert_eq!(listed, [vec![Factor::PWD], vec![Factor::HWK]]);

    // Read, refreshed and stepped up like any other.
    assert!(store
        .touch(&user, &handle(1), t + sec(70), t + sec(10), t + sec(3670))
        .await
        .unwrap());
    assert_eq!(factors(&store, &user, t + sec(70)).await, before);
    let stepped_up = [Factor::HWK, Factor::PWD];
    assert!(store
        .set_factors(&user, &handle(1), &stepped_up, t + sec(80), t + sec(3680))
        .await
        .unwrap());
    store
        .insert(
            &user,
            &entry(&handle(3), t, t, t + sec(3600)).with_factors([Factor::OTP]),
            None,
            t,
        )
        .await
        .unwrap();
    assert_eq!(
        factors(&store, &user, t + sec(80)).await,
        [
            (handle(1), stepped_up.to_vec()),
            (handle(2), vec![Factor::HWK]),
            (handle(3), vec![Factor::OTP])
        ]
    );
}

pub async fn expired_entries_leave_nothing_after_cleanup<S: RegistryStore>(
    store: S,
    count: Counter,
) {
    const USERS: u32 = 100;
    const PER_USER: u32 = 100;
    let store = &store;
    // Long enough for the inserts to finish before the first expires on
    // this machine; a slower run (a loaded CI machine took more than 4 s)
    // starts again with a longer one rather than counting expired entries.
    let mut lifetime = 4;
    let expiry = loop {
        let t = now();
        let users: Vec<String> = (0..USERS).map(|_| user()).collect();
        let mut inserts = Vec::new();
        for user in &users {
            for n in 0..PER_USER {
                inserts.push(async move {
                    store
                        .insert(user, &entry(&handle(n), t, t, t + sec(lifetime)), None, t)
                        .await
                        .unwrap();
                });
            }
        }
        futures_join_all(inserts, 64).await;
        let held = count().await;
        if now() < t + sec(lifetime) {
            assert!(
                held >= usize::try_from(USERS * PER_USER).unwrap(),
                "{held} entries after 10,000 sign-ins"
            );
            break t + sec(lifetime);
        }
        assert!(lifetime < 64, "10,000 sign-ins took more than a minute");
        lifetime *= 4;
    };

    // Past their expiry.
    let left = u64::try_from(expiry - now()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(left + 200)).await;
    store.remove_expired(now()).await.unwrap();
    assert_eq!(count().await, 0, "entries left after the cleanup");
}

/// Runs `futures` with at most `limit` at once.
async fn futures_join_all<F: Future<Output = ()>>(futures: Vec<F>, limit: usize) {
    use futures_util::StreamExt as _;
    futures_util::stream::iter(futures)
        .buffer_unordered(limit)
        .collect::<Vec<()>>()
        .await;
}
