//! Revocation sticks: a request that loaded the session before a logout or
//! a revoke, and saves it back afterwards, does not bring the session back.
//!
//! Deterministic: a gate in front of the session store holds the save of
//! the slow request until the revocation has returned. Run on the four
//! session stores, each with the registry of the same kind (memory, SQLite,
//! Postgres, Redis), with and without `with_always_save(true)`, for logout
//! (another tab of the same session), a revoke from another session,
//! revoke-all, and an administrator's revoke outside any request. A control
//! shows the hole the registry closes: without it, on the memory store, the
//! logged-out session comes back.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
#[cfg(feature = "postgres")]
use common::services::{drop_schema_on_drop, pg_pool, postgres_store};
#[cfg(feature = "redis")]
use common::services::{redis_pool, redis_store, Tracker};
#[cfg(feature = "sqlite")]
use common::services::{sqlite_memory_pool, sqlite_store};
use common::{
    app, keys, registry_app::registry_app, serve, services::OnDrop, Client, Users, SECRET_A,
};
#[cfg(any(feature = "postgres", feature = "redis"))]
use common::{service_url, services::unique_name};
use reqwest::StatusCode;
use tokio::sync::oneshot;
use tower_sessions::{
    session::{Id, Record},
    session_store, MemoryStore, SessionStore,
};
#[cfg(feature = "postgres")]
use tower_sessions_auth::registry::PostgresRegistry;
#[cfg(feature = "redis")]
use tower_sessions_auth::registry::RedisRegistry;
#[cfg(feature = "sqlite")]
use tower_sessions_auth::registry::SqliteRegistry;
use tower_sessions_auth::registry::{MemoryRegistry, SessionRegistry};

/// A session store whose next save, once armed, waits for a release.
#[derive(Clone, Debug)]
struct Gated<S> {
    inner: S,
    gate: Arc<Mutex<Option<Gate>>>,
}

#[derive(Debug)]
struct Gate {
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

impl<S> Gated<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            gate: Arc::default(),
        }
    }

    /// Holds the next save; returns (reached, release).
    fn arm(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.gate.lock().unwrap() = Some(Gate {
            reached: reached_tx,
            release: release_rx,
        });
        (reached_rx, release_tx)
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for Gated<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            let _ = gate.reached.send(());
            let _ = gate.release.await;
        }
        self.inner.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await
    }
}

/// How the session is ended while the slow request waits.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// `POST /logout` with the same cookie: another tab.
    Logout,
    /// Another session of the user revokes it by handle.
    Revoke,
    /// Another session of the user revokes every session.
    RevokeAll,
    /// An administrator, outside any request.
    Admin,
}

const ENDINGS: [Ending; 4] = [
    Ending::Logout,
    Ending::Revoke,
    Ending::RevokeAll,
    Ending::Admin,
];

/// Signs alice in twice; holds a request of the first session at its save;
/// ends the first session as `ending` says; lets the save through; then
/// asks who the first session is. Returns the status of `GET /me` with the
/// first session's cookie afterwards.
async fn race<S: SessionStore + Clone>(
    store: Gated<S>,
    registry: Option<SessionRegistry>,
    always_save: bool,
    ending: Ending,
) -> StatusCode {
    let users = Users::with_defaults();
    let router = match &registry {
        Some(registry) => registry_app(
            store.clone(),
            users.clone(),
            keys(SECRET_A, &[]),
            registry.clone(),
            always_save,
        ),
        None => app(store.clone(), users, keys(SECRET_A, &[])),
    };
    let base = serve(router).await;
    let victim = Client::new();
    assert_eq!(
        victim.post(&format!("{base}/login/1"), "").await.status,
        StatusCode::OK
    );
    let other = Client::new();
    other.post(&format!("{base}/login/1"), "").await;
    let handle = match &registry {
        Some(_) => Some(own_handle(&victim, &base).await),
        None => None,
    };

    // The slow request: writes to the session (or, with always-save, only
    // reads it), and is held at its save.
    let (reached, release) = store.arm();
    let slow = {
        let (victim, base) = (victim.clone(), base.clone());
        tokio::spawn(async move {
            if always_save {
                victim.get(&format!("{base}/me")).await
            } else {
                victim.post(&format!("{base}/cart"), "kept").await
            }
        })
    };
    reached.await.unwrap();

    match ending {
        Ending::Logout => {
            let reply = victim.post(&format!("{base}/logout"), "").await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        Ending::Revoke => {
            let handle = handle.clone().unwrap();
            let reply = other.post(&format!("{base}/revoke/{handle}"), "").await;
            assert_eq!(reply.body, "revoked");
        }
        Ending::RevokeAll => {
            let reply = other.post(&format!("{base}/revoke-all"), "").await;
            assert_eq!(reply.body, "2");
        }
        Ending::Admin => {
            let registry = registry.clone().unwrap();
            assert_eq!(registry.revoke_all(&1_u64).await.unwrap(), 2);
        }
    }
    release.send(()).unwrap();
    // Answered as alice (it verified before the revocation), or a 500 where
    // the store refuses to save a deleted session (Redis' `SET XX`).
    let slow = slow.await.unwrap();
    assert!(
        slow.status.is_success() || slow.status == StatusCode::INTERNAL_SERVER_ERROR,
        "{:?}",
        slow.status
    );

    // The slow request's save may have written the record back (memory
    // and SQL stores upsert); the session must be over all the same. Replay
    // the cookie the victim held before the logout, as a stolen one would
    // be.
    let replay = Client::new();
    if let Some(id) = victim.session_id(&base) {
        replay.set_session_id(&base, id);
    }
    replay.get(&format!("{base}/me")).await.status
}

async fn own_handle(client: &Client, base: &str) -> String {
    let reply = client.get(&format!("{base}/sessions")).await;
    let listed: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["handle"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every ending, with and without always-save, on one store kind.
async fn every_race<S, F, Fut>(make: F)
where
    S: SessionStore + Clone,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (Gated<S>, SessionRegistry, Option<OnDrop>)>,
{
    for always_save in [false, true] {
        for ending in ENDINGS {
            let (store, registry, _guard) = make().await;
            let status = race(store, Some(registry), always_save, ending).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{ending:?}, always_save={always_save}: the ended session answered as alice"
            );
        }
    }
}

#[tokio::test]
async fn without_a_registry_a_logout_can_be_undone_on_the_memory_store() {
    // The control: this is the hole the registry closes.
    let store = Gated::new(MemoryStore::default());
    let status = race(store, None, false, Ending::Logout).await;
    assert_eq!(status, StatusCode::OK, "the logged-out session came back");
}

#[tokio::test]
async fn revocation_sticks_on_memory() {
    every_race(|| async {
        let registry = SessionRegistry::new(MemoryRegistry::default());
        (Gated::new(MemoryStore::default()), registry, None)
    })
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn revocation_sticks_on_sqlite() {
    every_race(|| async {
        let store = sqlite_store().await;
        let registry = SqliteRegistry::new(sqlite_memory_pool(1).await);
        registry.migrate().await.unwrap();
        (Gated::new(store), SessionRegistry::new(registry), None)
    })
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn revocation_sticks_on_postgres() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    every_race(|| async {
        let schema = unique_name();
        let guard = drop_schema_on_drop(&url, &schema);
        let store = postgres_store(&url, &schema).await;
        let registry = PostgresRegistry::new(pg_pool(&url, 4).await)
            .with_table_name(&format!("{schema}.registry"))
            .unwrap();
        registry.migrate().await.unwrap();
        (
            Gated::new(store),
            SessionRegistry::new(registry),
            Some(guard),
        )
    })
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn revocation_sticks_on_redis() {
    use tower_sessions_auth::registry::RegistryStore as _;

    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let tracker = Tracker::redis(&url);
    let pool = redis_pool(&url).await;
    every_race(|| async {
        let store = redis_store(&url, &tracker).await;
        let prefix = format!("{}:", unique_name());
        let registry = RedisRegistry::new(pool.clone()).with_key_prefix(prefix.clone());
        // Alice's entries go when the race ends (the session keys go with
        // the tracker); on a runtime of its own, so with a pool of its own.
        let url = url.clone();
        let guard = OnDrop::new(move || async move {
            let registry = RedisRegistry::new(redis_pool(&url).await).with_key_prefix(prefix);
            let _ = registry.remove_all("1", None).await;
        });
        (
            Gated::new(store),
            SessionRegistry::new(registry),
            Some(guard),
        )
    })
    .await;
}
