//! The session registry through the layer and `AuthSession`, on
//! `MemoryStore` and `MemoryRegistry`: listing, revoking one, the others
//! or all, handles that survive id rotation, limits, sessions from before
//! the registry, and a failing registry.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use async_trait::async_trait;
use axum::{
    extract::{Path, State},
    routing::post,
    Router,
};
use common::{
    app, keys,
    registry_app::{
        a_session_lists_the_factors_that_proved_it, listed_factors, registry_app, registry_routes,
    },
    serve, Client, TestUser, UserTable, Users, COOKIE, SECRET_A,
};
use reqwest::StatusCode;
use serde_json::Value;
use tower_sessions::{MemoryStore, SessionManagerLayer};
use tower_sessions_auth::{
    registry::{
        Insertion, LimitPolicy, MemoryRegistry, RegistryEntry, RegistryError, RegistryStore,
        SessionLimit, SessionRegistry,
    },
    AuthError, AuthLayer, AuthSession,
};

async fn start(store: &MemoryStore, users: &Users, registry: SessionRegistry) -> String {
    serve(registry_app(
        store.clone(),
        users.clone(),
        keys(SECRET_A, &[]),
        registry,
        false,
    ))
    .await
}

async fn signed_in(base: &str, user: u64) -> Client {
    let client = Client::new();
    let reply = client.post(&format!("{base}/login/{user}"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    client
}

/// The client's sessions as `/sessions` lists them.
async fn sessions(client: &Client, base: &str) -> Vec<Value> {
    let reply = client.get(&format!("{base}/sessions")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    serde_json::from_str::<Value>(&reply.body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The handle of the client's own session.
async fn own_handle(client: &Client, base: &str) -> String {
    let listed = sessions(client, base).await;
    let current: Vec<_> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{listed:?}");
    current[0]["handle"].as_str().unwrap().to_owned()
}

async fn me(client: &Client, base: &str) -> StatusCode {
    client.get(&format!("{base}/me")).await.status
}

fn memory_registry() -> SessionRegistry {
    SessionRegistry::new(MemoryRegistry::default())
}

#[tokio::test]
async fn every_session_is_listed_with_this_one_marked() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    let laptop = signed_in(&base, 1).await;
    let phone = signed_in(&base, 1).await;
    signed_in(&base, 2).await;

    let listed = sessions(&laptop, &base).await;
    assert_eq!(
        listed.len(),
        2,
        "alice's two sessions, not bob's: {listed:?}"
    );
    let laptop_handle = own_handle(&laptop, &base).await;
    let phone_handle = own_handle(&phone, &base).await;
    assert_ne!(laptop_handle, phone_handle);
    assert!(laptop_handle.len() >= 16);
    assert!(laptop_handle
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    // Most recently seen first; both were just seen.
    for session in &listed {
        assert_eq!(session["ip"], Value::Null, "served without ConnectInfo");
        assert!(session["user_agent"].is_null(), "reqwest sends none");
        assert!(session["label"].is_null(), "signed in without a label");
    }
    // The handle is not the cookie.
    let cookie = laptop.session_id(&base).unwrap().to_string();
    assert!(!listed.iter().any(|s| s["handle"] == cookie.as_str()));
}

#[tokio::test]
async fn a_sign_in_label_is_listed_with_its_session() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    let client = Client::new();
    let reply = client.post(&format!("{base}/login/1/passkey"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let listed = sessions(&client, &base).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["label"], "passkey");
    assert_eq!(listed[0]["current"], true);
}

#[tokio::test]
async fn a_session_lists_its_factors() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    a_session_lists_the_factors_that_proved_it(&base).await;
}

/// A store written before `RegistryStore::set_factors` existed (this one
/// does not implement it) keeps a stepped-up session, listing the factors
/// of its sign-in.
#[tokio::test]
async fn a_store_without_set_factors_keeps_the_session_through_a_step_up() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(
        &store,
        &users,
        SessionRegistry::new(FlakyRegistry::default()),
    )
    .await;
    let client = signed_in(&base, 1).await;
    let before = listed_factors(&client, &base).await;
    assert_eq!(before.len(), 1);
    assert_eq!((before[0].1, before[0].2.as_str()), (true, "pwd"));
    let reply = client.post(&format!("{base}/passkey-step-up"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(me(&client, &base).await, StatusCode::OK);
    assert_eq!(listed_factors(&client, &base).await, before);
}

#[tokio::test]
async fn revoking_another_session_ends_it_and_only_it() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    let laptop = signed_in(&base, 1).await;
    let phone = signed_in(&base, 1).await;
    let phone_handle = own_handle(&phone, &base).await;

    let reply = laptop
        .post(&format!("{base}/revoke/{phone_handle}"), "")
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "revoked")
    );
    assert_eq!(phone.get(&format!("{base}/why")).await.body, "revoked");
    assert_eq!(me(&phone, &base).await, StatusCode::UNAUTHORIZED);
    assert_eq!(phone.session_id(&base), None, "cookie removed");
    assert_eq!(me(&laptop, &base).await, StatusCode::OK);
    assert_eq!(sessions(&laptop, &base).await.len(), 1);
    // Revoking it again finds nothing.
    let reply = laptop
        .post(&format!("{base}/revoke/{phone_handle}"), "")
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_users_handle_is_not_found_and_nothing_happens() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    let alice = signed_in(&base, 1).await;
    let bob = signed_in(&base, 2).await;
    let bob_handle = own_handle(&bob, &base).await;

    let reply = alice.post(&format!("{base}/revoke/{bob_handle}"), "").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(me(&bob, &base).await, StatusCode::OK);
    assert_eq!(sessions(&bob, &base).await.len(), 1);
    for garbage in ["x", "not-a-handle!", &"a".repeat(100)] {
        let reply = alice.post(&format!("{base}/revoke/{garbage}"), "").await;
        assert!(
            reply.status.is_client_error(),
            "{garbage}: {}",
            reply.status
        );
    }
    // Anonymous requests revoke nothing.
    let reply = Client::new()
        .post(&format!("{base}/revoke/{bob_handle}"), "")
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(me(&bob, &base).await, StatusCode::OK);
}

#[tokio::test]
async fn revoking_this_sessions_handle_signs_it_out() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    let laptop = signed_in(&base, 1).await;
    let handle = own_handle(&laptop, &base).await;
    let reply = laptop.post(&format!("{base}/revoke/{handle}"), "").await;
    assert_eq!(reply.body, "signed_out");
    assert_eq!(me(&laptop, &base).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoke_others_keeps_this_session_and_revoke_all_ends_every_one() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    let laptop = signed_in(&base, 1).await;
    let id_before = laptop.session_id(&base);
    let others = [signed_in(&base, 1).await, signed_in(&base, 1).await];

    let reply = laptop.post(&format!("{base}/revoke-others"), "").await;
    assert_eq!(reply.body, "2");
    for other in &others {
        assert_eq!(me(other, &base).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(me(&laptop, &base).await, StatusCode::OK);
    assert_eq!(
        laptop.session_id(&base),
        id_before,
        "nothing about it changed"
    );

    let phone = signed_in(&base, 1).await;
    let reply = laptop.post(&format!("{base}/revoke-all"), "").await;
    assert_eq!(reply.body, "2");
    assert_eq!(me(&laptop, &base).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&phone, &base).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_handle_survives_id_rotation_and_a_password_change_clears_the_others() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    let laptop = signed_in(&base, 1).await;
    let phone = signed_in(&base, 1).await;
    let handle = own_handle(&laptop, &base).await;
    let id = laptop.session_id(&base);

    // Signing in again as the same user: new id, same handle.
    laptop.post(&format!("{base}/login/1"), "").await;
    assert_ne!(laptop.session_id(&base), id);
    assert_eq!(own_handle(&laptop, &base).await, handle);

    // A password change: new id, same handle, and the phone's entry is gone
    // from the list before the phone makes another request.
    let id = laptop.session_id(&base);
    laptop.post(&format!("{base}/password/1"), "new").await;
    assert_ne!(laptop.session_id(&base), id);
    let listed = sessions(&laptop, &base).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["handle"], handle.as_str());
    assert_eq!(me(&phone, &base).await, StatusCode::UNAUTHORIZED);

    // Signing in as another user starts a new entry.
    laptop.post(&format!("{base}/login/2"), "").await;
    assert_ne!(own_handle(&laptop, &base).await, handle);
}

/// `POST /revoke-own-then-login/{id}`: revokes this session's entry
/// behind the layer's back (as another request or an administrator would,
/// while this one is under way), then signs in as user `id`.
async fn revoke_own_then_login(
    State((users, registry)): State<(Users, SessionRegistry)>,
    Path(id): Path<u64>,
    mut auth: AuthSession<TestUser>,
) -> Result<StatusCode, AuthError> {
    let own = auth.sessions().await?.into_iter().find(|s| s.current);
    assert!(registry.revoke(&id, &own.unwrap().handle).await.unwrap());
    auth.login(&users.find(id).await.unwrap()).await?;
    Ok(StatusCode::OK)
}

#[tokio::test]
async fn signing_in_again_after_a_revoke_under_way_gets_a_new_entry() {
    let (store, users, registry) = (
        MemoryStore::default(),
        Users::with_defaults(),
        memory_registry(),
    );
    let base = serve(
        registry_routes(users.clone())
            .merge(
                Router::new()
                    .route("/revoke-own-then-login/{id}", post(revoke_own_then_login))
                    .with_state((users.clone(), registry.clone())),
            )
            .layer(AuthLayer::new(users, keys(SECRET_A, &[])).with_registry(registry))
            .layer(SessionManagerLayer::new(store).with_secure(false)),
    )
    .await;
    let laptop = signed_in(&base, 1).await;
    let revoked = own_handle(&laptop, &base).await;

    let reply = laptop
        .post(&format!("{base}/revoke-own-then-login/1"), "")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(me(&laptop, &base).await, StatusCode::OK, "signed in");
    let listed = sessions(&laptop, &base).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_ne!(listed[0]["handle"], revoked.as_str(), "a new entry");
    assert_eq!(listed[0]["current"], true);
}

#[tokio::test]
async fn logout_and_ended_sessions_leave_the_list() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let registry = MemoryRegistry::default();
    let base = start(&store, &users, SessionRegistry::new(registry.clone())).await;
    let laptop = signed_in(&base, 1).await;
    let phone = signed_in(&base, 1).await;
    phone.post(&format!("{base}/logout"), "").await;
    assert_eq!(sessions(&laptop, &base).await.len(), 1);
    // Bob is deleted: his session ends on its next request, and its entry
    // with it.
    let bob = signed_in(&base, 2).await;
    users.delete(2).await;
    assert_eq!(me(&bob, &base).await, StatusCode::UNAUTHORIZED);
    assert_eq!(registry.len(), 1, "only alice's laptop is left");
}

#[tokio::test]
async fn a_handle_sent_as_the_cookie_is_anonymous() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let base = start(&store, &users, memory_registry()).await;
    let laptop = signed_in(&base, 1).await;
    let handle = own_handle(&laptop, &base).await;
    let forger = Client::new();
    let reply = reqwest::Client::new()
        .get(format!("{base}/me"))
        .header("cookie", format!("{COOKIE}={handle}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&forger, &base).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_limit_evicts_the_least_recently_seen_or_refuses() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let evicting = memory_registry().with_limit(2, LimitPolicy::EvictLeastRecentlySeen);
    let base = start(&store, &users, evicting).await;
    let first = signed_in(&base, 1).await;
    let second = signed_in(&base, 1).await;
    let third = signed_in(&base, 1).await;
    // All seen in the same second: the oldest goes.
    assert_eq!(me(&first, &base).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&second, &base).await, StatusCode::OK);
    assert_eq!(me(&third, &base).await, StatusCode::OK);

    let refusing = memory_registry().with_limit(1, LimitPolicy::RefuseNew);
    let base = start(&MemoryStore::default(), &users, refusing).await;
    let first = signed_in(&base, 1).await;
    let second = Client::new();
    let reply = second.post(&format!("{base}/login/1"), "").await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert!(reply.body.contains("too many active sessions"));
    assert_eq!(me(&second, &base).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&first, &base).await, StatusCode::OK);
    // The same browser signing in again is not a new session.
    assert_eq!(
        first.post(&format!("{base}/login/1"), "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sessions_from_before_the_registry_end_once() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let without = serve(app(store.clone(), users.clone(), keys(SECRET_A, &[]))).await;
    let client = signed_in(&without, 1).await;
    let registry = MemoryRegistry::default();
    let with = start(&store, &users, SessionRegistry::new(registry.clone())).await;

    // It has no entry, so no list shows it and no revocation could reach
    // it: it ends, and says why.
    assert_eq!(client.get(&format!("{with}/why")).await.body, "revoked");
    assert_eq!(me(&client, &with).await, StatusCode::UNAUTHORIZED);
    assert!(registry.is_empty());
    // Signing in again gives it an entry like any other.
    client.post(&format!("{with}/login/1"), "").await;
    assert_eq!(me(&client, &with).await, StatusCode::OK);
    assert_eq!(registry.len(), 1);
}

#[test]
#[should_panic(expected = "at least twice the touch interval")]
fn a_lifetime_shorter_than_two_touch_intervals_is_refused() {
    let registry = memory_registry()
        .with_touch_interval(std::time::Duration::from_secs(3600))
        .with_lifetime(std::time::Duration::from_secs(1800));
    let _ = tower_sessions_auth::AuthLayer::new(Users::with_defaults(), keys(SECRET_A, &[]))
        .with_registry(registry);
}

/// A registry that fails while `down` is set.
#[derive(Debug, Clone, Default)]
struct FlakyRegistry {
    inner: MemoryRegistry,
    down: Arc<AtomicBool>,
}

impl FlakyRegistry {
    fn check(&self) -> Result<(), RegistryError> {
        if self.down.load(Ordering::SeqCst) {
            Err(RegistryError::backend("registry unavailable"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl RegistryStore for FlakyRegistry {
    async fn insert(
        &self,
        user: &str,
        entry: &RegistryEntry,
        limit: Option<SessionLimit>,
        now: i64,
    ) -> Result<Insertion, RegistryError> {
        self.check()?;
        self.inner.insert(user, entry, limit, now).await
    }
    async fn touch(
        &self,
        user: &str,
        handle: &str,
        now: i64,
        stale_before: i64,
        expires_at: i64,
    ) -> Result<bool, RegistryError> {
        self.check()?;
        self.inner
            .touch(user, handle, now, stale_before, expires_at)
            .await
    }
    async fn list(&self, user: &str, now: i64) -> Result<Vec<RegistryEntry>, RegistryError> {
        self.check()?;
        self.inner.list(user, now).await
    }
    async fn remove(&self, user: &str, handle: &str) -> Result<bool, RegistryError> {
        self.check()?;
        self.inner.remove(user, handle).await
    }
    async fn remove_all(&self, user: &str, except: Option<&str>) -> Result<u64, RegistryError> {
        self.check()?;
        self.inner.remove_all(user, except).await
    }
    async fn remove_expired(&self, now: i64) -> Result<u64, RegistryError> {
        self.check()?;
        self.inner.remove_expired(now).await
    }
    async fn remove_everyone(&self) -> Result<u64, RegistryError> {
        self.check()?;
        self.inner.remove_everyone().await
    }
}

#[tokio::test]
async fn a_failing_registry_fails_closed_and_the_session_survives_it() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let flaky = FlakyRegistry::default();
    let base = start(&store, &users, SessionRegistry::new(flaky.clone())).await;
    let client = signed_in(&base, 1).await;
    let id = client.session_id(&base);

    flaky.down.store(true, Ordering::SeqCst);
    for path in ["/me", "/maybe", "/identity"] {
        let reply = client.get(&format!("{base}{path}")).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
    }
    let reply = client.post(&format!("{base}/logout"), "").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let reply = Client::new().post(&format!("{base}/login/1"), "").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(client.session_id(&base), id, "cookie kept");

    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(me(&client, &base).await, StatusCode::OK);
}
