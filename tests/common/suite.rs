//! The behaviour every session store must show, written once and run per
//! store by `store_suite!`.
//!
//! Each function takes a fresh store and a user table holding the
//! [`default_users`](super::default_users).

use axum::http::StatusCode;
use tower_sessions::SessionStore;

use super::{app, keys, load_record, record_exists, serve, Client, UserTable, SECRET_A, SECRET_B};

/// Runs every suite function as a `#[tokio::test]`. `$fixture` is an async
/// fn returning `Option<(store, user table)>`: `None` skips (outside CI, a
/// service that is not configured).
#[allow(unused_macros)]
macro_rules! store_suite {
    ($fixture:path) => {
        store_suite!(@each $fixture;
            anonymous_requests_are_anonymous,
            login_signs_in_and_keeps_the_session,
            login_rotates_the_session_id,
            login_as_another_user_flushes,
            logout_flushes,
            password_change_ends_other_sessions,
            admin_changing_another_password_stays_admin,
            logout_others_keeps_this_session,
            key_rotation_upgrades_lazily,
            unknown_secret_ends_the_session,
            deleted_user_ends_the_session
        );
    };
    (@each $fixture:path; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((store, users)) = $fixture().await else { return };
                crate::common::suite::$name(store, users).await;
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use store_suite;

const ALICE: &str = "1";
const BOB: &str = "2";
const ADMIN: &str = "3";

async fn start<S: SessionStore + Clone, T: UserTable>(store: &S, users: &T) -> String {
    serve(app(store.clone(), users.clone(), keys(SECRET_A, &[]))).await
}

async fn signed_in(base: &str, user: &str) -> Client {
    let client = Client::new();
    let reply = client.post(&format!("{base}/login/{user}"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "login as {user}");
    client
}

async fn assert_signed_in_as(client: &Client, base: &str, name: &str) {
    let reply = client.get(&format!("{base}/me")).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, name));
}

async fn assert_anonymous(client: &Client, base: &str) {
    let reply = client.get(&format!("{base}/me")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    let reply = client.get(&format!("{base}/maybe")).await;
    assert_eq!(reply.body, "anonymous");
}

pub async fn anonymous_requests_are_anonymous<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let base = start(&store, &users).await;
    let client = Client::new();
    assert_anonymous(&client, &base).await;
    assert_eq!(
        client.get(&format!("{base}/identity")).await.body,
        "anonymous"
    );
    assert_eq!(client.session_id(&base), None, "no session was created");
}

pub async fn login_signs_in_and_keeps_the_session<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let base = start(&store, &users).await;
    let client = signed_in(&base, ALICE).await;
    let id = client.session_id(&base).expect("a session cookie");
    for _ in 0..3 {
        assert_signed_in_as(&client, &base, "alice").await;
    }
    assert_eq!(
        client.get(&format!("{base}/identity")).await.body,
        "authenticated:alice"
    );
    assert_eq!(client.session_id(&base), Some(id), "no change, no new id");

    let record = load_record(&store, id).await;
    let stored = serde_json::to_string(&record.data).unwrap();
    let user = users.find(1).await.unwrap();
    assert!(
        !stored.contains(&user.password_hash),
        "the store must not see the password hash: {stored}"
    );
}

pub async fn login_rotates_the_session_id<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let base = start(&store, &users).await;
    let client = Client::new();
    client.post(&format!("{base}/cart"), "3 apples").await;
    let anonymous_id = client.session_id(&base).expect("anonymous session");

    client.post(&format!("{base}/login/{ALICE}"), "").await;
    let first_id = client.session_id(&base).unwrap();
    assert_ne!(first_id, anonymous_id);
    assert!(!record_exists(&store, anonymous_id).await);
    assert_eq!(
        client.get(&format!("{base}/cart")).await.body,
        "3 apples",
        "an anonymous session keeps its data across login"
    );

    // Signing in again as the same user still changes the id (ASVS 7.2.4).
    client.post(&format!("{base}/login/{ALICE}"), "").await;
    let second_id = client.session_id(&base).unwrap();
    assert_ne!(second_id, first_id);
    assert!(!record_exists(&store, first_id).await);
    assert_signed_in_as(&client, &base, "alice").await;

    // A fixated id is worth nothing after login.
    let attacker = Client::new();
    attacker.set_session_id(&base, anonymous_id);
    assert_anonymous(&attacker, &base).await;
}

pub async fn login_as_another_user_flushes<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let base = start(&store, &users).await;
    let client = signed_in(&base, ALICE).await;
    client.post(&format!("{base}/cart"), "alice's cart").await;
    let alice_id = client.session_id(&base).unwrap();

    client.post(&format!("{base}/login/{BOB}"), "").await;
    assert_ne!(client.session_id(&base).unwrap(), alice_id);
    assert!(!record_exists(&store, alice_id).await);
    assert_signed_in_as(&client, &base, "bob").await;
    assert_eq!(client.get(&format!("{base}/cart")).await.body, "");
}

pub async fn logout_flushes<S: SessionStore + Clone, T: UserTable>(store: S, users: T) {
    let base = start(&store, &users).await;
    let client = signed_in(&base, ALICE).await;
    client.post(&format!("{base}/cart"), "something").await;
    let id = client.session_id(&base).unwrap();

    let reply = client.post(&format!("{base}/logout"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!record_exists(&store, id).await, "record deleted");
    assert_eq!(client.session_id(&base), None, "cookie removed");
    assert_anonymous(&client, &base).await;
    assert_eq!(client.get(&format!("{base}/cart")).await.body, "");

    let replay = Client::new();
    replay.set_session_id(&base, id);
    assert_anonymous(&replay, &base).await;

    // Data stored after logout lives under a new id, never the ended one.
    client.post(&format!("{base}/cart"), "new cart").await;
    let new_id = client.session_id(&base).expect("a new anonymous session");
    assert_ne!(new_id, id);
}

pub async fn password_change_ends_other_sessions<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let base = start(&store, &users).await;
    let laptop = signed_in(&base, ALICE).await;
    let phone = signed_in(&base, ALICE).await;
    let bob = signed_in(&base, BOB).await;
    let laptop_old_id = laptop.session_id(&base).unwrap();
    let phone_id = phone.session_id(&base).unwrap();

    let reply = laptop
        .post(&format!("{base}/password/{ALICE}"), "new password")
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    // The session that changed the password lives on, under a new id.
    let laptop_new_id = laptop.session_id(&base).unwrap();
    assert_ne!(laptop_new_id, laptop_old_id);
    assert!(!record_exists(&store, laptop_old_id).await);
    assert_signed_in_as(&laptop, &base, "alice").await;

    // Every other session of the user ends on its next request.
    assert!(record_exists(&store, phone_id).await);
    assert_anonymous(&phone, &base).await;
    assert!(!record_exists(&store, phone_id).await, "record flushed");
    assert_eq!(phone.session_id(&base), None, "cookie removed");

    // Other users are untouched.
    assert_signed_in_as(&bob, &base, "bob").await;

    // The pre-change id of the surviving session is dead too.
    let replay = Client::new();
    replay.set_session_id(&base, laptop_old_id);
    assert_anonymous(&replay, &base).await;
    assert_signed_in_as(&laptop, &base, "alice").await;
}

pub async fn admin_changing_another_password_stays_admin<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let base = start(&store, &users).await;
    let admin = signed_in(&base, ADMIN).await;
    let bob = signed_in(&base, BOB).await;
    let admin_id = admin.session_id(&base).unwrap();

    let reply = admin
        .post(&format!("{base}/password/{BOB}"), "reset by admin")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_ne!(admin.session_id(&base).unwrap(), admin_id, "id rotated");
    assert_signed_in_as(&admin, &base, "admin").await;
    assert_anonymous(&bob, &base).await;
}

pub async fn logout_others_keeps_this_session<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let base = start(&store, &users).await;
    let laptop = signed_in(&base, ALICE).await;
    let phone = signed_in(&base, ALICE).await;
    let password_before = users.find(1).await.unwrap().password_hash;

    let reply = laptop.post(&format!("{base}/logout-others"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        users.find(1).await.unwrap().password_hash,
        password_before,
        "no password change needed"
    );
    assert_signed_in_as(&laptop, &base, "alice").await;
    assert_anonymous(&phone, &base).await;
}

pub async fn key_rotation_upgrades_lazily<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let old = serve(app(store.clone(), users.clone(), keys(SECRET_A, &[]))).await;
    let rotating = serve(app(
        store.clone(),
        users.clone(),
        keys(SECRET_B, &[SECRET_A]),
    ))
    .await;
    let rotated = serve(app(store.clone(), users.clone(), keys(SECRET_B, &[]))).await;

    let client = signed_in(&old, ALICE).await;
    let old_id = client.session_id(&old).unwrap();

    // Under the new secret with the old one as fallback: accepted, and
    // re-signed in place, under the same id.
    let stored = |record: tower_sessions::session::Record| record.data["_auth"].clone();
    let signed_with_a = stored(load_record(&store, old_id).await);
    assert_signed_in_as(&client, &rotating, "alice").await;
    assert_eq!(client.session_id(&rotating), Some(old_id));
    assert_ne!(stored(load_record(&store, old_id).await), signed_with_a);

    // Once upgraded, the fallback is no longer needed.
    assert_signed_in_as(&client, &rotated, "alice").await;
    assert_signed_in_as(&client, &rotating, "alice").await;
    assert_eq!(client.session_id(&rotated), Some(old_id));
}

pub async fn unknown_secret_ends_the_session<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let old = serve(app(store.clone(), users.clone(), keys(SECRET_A, &[]))).await;
    let rotated = serve(app(store.clone(), users.clone(), keys(SECRET_B, &[]))).await;

    let client = signed_in(&old, ALICE).await;
    let id = client.session_id(&old).unwrap();
    assert_anonymous(&client, &rotated).await;
    assert!(!record_exists(&store, id).await);
    // The flush is final: the old secret does not bring it back.
    assert_anonymous(&client, &old).await;
}

pub async fn deleted_user_ends_the_session<S: SessionStore + Clone, T: UserTable>(
    store: S,
    users: T,
) {
    let base = start(&store, &users).await;
    let client = signed_in(&base, BOB).await;
    let id = client.session_id(&base).unwrap();
    users.delete(2).await;
    assert_anonymous(&client, &base).await;
    assert!(!record_exists(&store, id).await);
    assert_eq!(client.session_id(&base), None);
}
