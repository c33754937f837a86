//! Several instances behind one load balancer: three real HTTP servers, each
//! with its own `AuthLayer`, router, store client and user-table pool,
//! sharing one session store (Redis or Postgres) and one Postgres user
//! table. One `Client` talking to two of them is one browser on a
//! load-balanced site: its cookie jar ignores ports.
//!
//! Needs `DATABASE_URL`, and `REDIS_URL` for the Redis variants.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{
    cluster::{assert_anonymous, assert_signed_in_as, signed_in, Site},
    keys, record_exists, Client, UserTable, SECRET_A, SECRET_B,
};
use tower_sessions::SessionStore;

const ALICE: u64 = 1;
const BOB: u64 = 2;

/// Runs each scenario on a Redis-backed and a Postgres-backed site.
macro_rules! on_each_store {
    ($($name:ident),*) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(site) = crate::common::cluster::redis_site().await else { return };
                    super::$name(site).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(site) = crate::common::cluster::postgres_site().await else { return };
                    super::$name(site).await;
                }
            )*
        }
    };
}

on_each_store!(
    one_session_is_served_by_every_instance,
    password_change_on_a_ends_sessions_on_b_and_c,
    logout_others_through_b_ends_the_session_on_a,
    rotation_while_instances_disagree_ends_upgraded_sessions,
    two_phase_rotation_keeps_everyone_signed_in
);

async fn one_session_is_served_by_every_instance<S: SessionStore + Clone>(site: Site<S>) {
    let a = site.start(0, keys(SECRET_A, &[])).await;
    let b = site.start(1, keys(SECRET_A, &[])).await;
    let c = site.start(2, keys(SECRET_A, &[])).await;

    let browser = signed_in(&a, ALICE).await;
    let id = browser.session_id(&a).unwrap();
    for base in [&b, &c, &a, &c] {
        assert_signed_in_as(&browser, base, "alice").await;
    }
    assert_eq!(browser.session_id(&b), Some(id), "no instance re-keys it");

    // Data written through one instance is read through another.
    browser.post(&format!("{b}/cart"), "2 pears").await;
    assert_eq!(browser.get(&format!("{c}/cart")).await.body, "2 pears");

    // Logging out through one instance ends the session for all of them.
    assert_eq!(
        browser.post(&format!("{c}/logout"), "").await.status,
        StatusCode::OK
    );
    assert!(!record_exists(&site.store, id).await);
    let replay = Client::new();
    replay.set_session_id(&a, id);
    assert_anonymous(&replay, &a).await;
    assert_anonymous(&replay, &b).await;
}

async fn password_change_on_a_ends_sessions_on_b_and_c<S: SessionStore + Clone>(site: Site<S>) {
    let a = site.start(0, keys(SECRET_A, &[])).await;
    let b = site.start(1, keys(SECRET_A, &[])).await;
    let c = site.start(2, keys(SECRET_A, &[])).await;

    // Four browsers of alice's, signed in through different instances, and
    // one of bob's.
    let laptop = signed_in(&a, ALICE).await;
    let phone = signed_in(&b, ALICE).await;
    let tablet = signed_in(&c, ALICE).await;
    let desktop = signed_in(&b, ALICE).await;
    let bob = signed_in(&c, BOB).await;
    let phone_id = phone.session_id(&b).unwrap();
    let tablet_id = tablet.session_id(&c).unwrap();
    let desktop_id = desktop.session_id(&b).unwrap();
    for (browser, base) in [(&laptop, &b), (&phone, &a), (&tablet, &b), (&desktop, &c)] {
        assert_signed_in_as(browser, base, "alice").await;
    }

    let reply = laptop
        .post(&format!("{a}/password/{ALICE}"), "new password")
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    // Each instance refuses on its own, from the shared user table: B and C
    // never saw the change, and each session's first request after it goes
    // to a different instance. The record is flushed from the shared store.
    for (browser, id, base) in [
        (&phone, phone_id, &b),
        (&tablet, tablet_id, &c),
        (&desktop, desktop_id, &a),
    ] {
        assert!(
            record_exists(&site.store, id).await,
            "not flushed before its next request"
        );
        assert_anonymous(browser, base).await;
        assert!(
            !record_exists(&site.store, id).await,
            "flushed from the shared store"
        );
        assert_eq!(browser.session_id(base), None, "cookie removed");
    }

    // The same cookies replayed to the other instances are refused too.
    for (id, bases) in [
        (phone_id, [&a, &c]),
        (tablet_id, [&a, &b]),
        (desktop_id, [&b, &c]),
    ] {
        let replay = Client::new();
        for base in bases {
            replay.set_session_id(base, id);
            assert_anonymous(&replay, base).await;
        }
    }

    // The session that changed the password lives on, on every instance;
    // bob is untouched.
    for base in [&a, &b, &c] {
        assert_signed_in_as(&laptop, base, "alice").await;
        assert_signed_in_as(&bob, base, "bob").await;
    }
}

async fn logout_others_through_b_ends_the_session_on_a<S: SessionStore + Clone>(site: Site<S>) {
    let a = site.start(0, keys(SECRET_A, &[])).await;
    let b = site.start(1, keys(SECRET_A, &[])).await;

    let laptop = signed_in(&a, ALICE).await;
    let phone = signed_in(&a, ALICE).await;
    let password_before = site.users.find(ALICE).await.unwrap().password_hash;

    let reply = phone.post(&format!("{b}/logout-others"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let alice = site.users.find(ALICE).await.unwrap();
    assert_eq!(alice.epoch, 1, "epoch bumped in the shared table");
    assert_eq!(alice.password_hash, password_before);

    assert_anonymous(&laptop, &a).await;
    assert_signed_in_as(&phone, &a, "alice").await;
    assert_signed_in_as(&phone, &b, "alice").await;
}

/// A rolling rotation done in one step: instance A already runs the new
/// secret (with the old one as fallback), B still runs only the old one.
///
/// A accepts B's sessions and re-signs them under the new secret. B cannot
/// verify the new signature, so to B such a session looks like a forged or
/// outdated one: B flushes it, and the browser is signed out everywhere (the
/// record is gone from the shared store). This lasts until B runs the new
/// secret too; the two-phase rotation below avoids it.
async fn rotation_while_instances_disagree_ends_upgraded_sessions<S: SessionStore + Clone>(
    site: Site<S>,
) {
    let a = site.start(0, keys(SECRET_B, &[SECRET_A])).await;
    let b = site.start(1, keys(SECRET_A, &[])).await;

    let browser = signed_in(&b, ALICE).await;
    let signed_by_b = browser.session_id(&b).unwrap();
    assert_signed_in_as(&browser, &b, "alice").await;

    // A upgrades the session: a new signature, in place under the same id.
    assert_signed_in_as(&browser, &a, "alice").await;
    assert_eq!(browser.session_id(&a), Some(signed_by_b));

    // B refuses the upgraded session and ends it for every instance.
    assert_anonymous(&browser, &b).await;
    assert!(!record_exists(&site.store, signed_by_b).await);
    assert_anonymous(&browser, &a).await;

    // Sessions begun on A are refused by B from the start.
    let fresh = signed_in(&a, BOB).await;
    assert_anonymous(&fresh, &b).await;
    assert_anonymous(&fresh, &a).await;

    // Once B runs the new secret as well, the instances agree again.
    let b = site.start(1, keys(SECRET_B, &[SECRET_A])).await;
    let browser = signed_in(&a, ALICE).await;
    assert_signed_in_as(&browser, &b, "alice").await;
    assert_signed_in_as(&browser, &a, "alice").await;
}

/// The rotation that signs nobody out: first every instance learns the new
/// secret as a fallback; then, instance by instance, the new secret becomes
/// the current one with the old as fallback; finally the old one is dropped.
async fn two_phase_rotation_keeps_everyone_signed_in<S: SessionStore + Clone>(site: Site<S>) {
    let old_a = site.start(0, keys(SECRET_A, &[])).await;
    let old_b = site.start(1, keys(SECRET_A, &[])).await;
    let browser = signed_in(&old_a, ALICE).await;
    assert_signed_in_as(&browser, &old_b, "alice").await;

    // Phase 1: the new secret is known everywhere, still unused for signing.
    let a = site.start(0, keys(SECRET_A, &[SECRET_B])).await;
    let b = site.start(1, keys(SECRET_A, &[SECRET_B])).await;
    let id = browser.session_id(&a).unwrap();
    assert_signed_in_as(&browser, &a, "alice").await;
    assert_signed_in_as(&browser, &b, "alice").await;
    assert_eq!(browser.session_id(&a), Some(id), "nothing to re-sign yet");

    // Phase 2, midway: A signs with the new secret, B still with the old,
    // each accepting the other's. A session moving between them is re-signed
    // at each switch, under the same id, and stays signed in.
    let a = site.start(0, keys(SECRET_B, &[SECRET_A])).await;
    let latecomer = signed_in(&b, BOB).await;
    for base in [&a, &b, &a, &b, &a] {
        assert_signed_in_as(&browser, base, "alice").await;
        assert_signed_in_as(&latecomer, base, "bob").await;
    }

    // Phase 2, done: everyone signs with the new secret.
    let b = site.start(1, keys(SECRET_B, &[SECRET_A])).await;
    assert_signed_in_as(&browser, &b, "alice").await;
    let settled = browser.session_id(&b).unwrap();
    assert_signed_in_as(&browser, &a, "alice").await;
    assert_eq!(browser.session_id(&a), Some(settled), "no more re-signing");

    // Phase 3: the old secret is dropped. Sessions seen since phase 2 are
    // signed with the new one and stay.
    let a = site.start(0, keys(SECRET_B, &[])).await;
    let b = site.start(1, keys(SECRET_B, &[])).await;
    for base in [&a, &b] {
        assert_signed_in_as(&browser, base, "alice").await;
        assert_signed_in_as(&latecomer, base, "bob").await;
    }
}
