//! The fast path on one instance: a pass signs requests in without the
//! session store, every ending refuses it on the very next request, and no
//! cookie a client can make up signs anybody in.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use tokio::sync::mpsc;
use tower_sessions_auth::{
    live::{ChannelError, LiveChannel, LiveSessions, Signal},
    registry::{LimitPolicy, RegistryStore as _},
    times::Lifetimes,
};

use common::{
    fast_site::{cookie, removes_pass, sets_pass, Shared, Site, PASS},
    keys, Client, UserTable, SECRET_A, SECRET_B,
};

#[tokio::test]
async fn a_pass_signs_requests_in_without_reading_the_store() {
    let site = Site::start().await;
    let alice = site.signed_in(1).await;
    let (loads, writes) = (site.store.loads(), site.store.writes());
    for _ in 0..5 {
        let reply = alice.get(&site.url("/me")).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "alice")
        );
        assert!(reply.header("set-cookie").is_none(), "{reply:?}");
    }
    assert_eq!(
        site.store.loads(),
        loads,
        "no session load on the fast path"
    );
    assert_eq!(site.store.writes(), writes, "nor any write");

    // A handler that reads the session's data loads it, and only then.
    let reply = alice.get(&site.url("/cart")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(site.store.loads(), loads + 1);
}

/// The activity interval and the pass's lifetime are both a minute: at
/// 59 s the pass serves, at 60 s the request takes the full path, which
/// records the activity (the idle timeout's only write) and renews the
/// pass; the next request is fast again.
#[tokio::test]
async fn a_pass_serves_until_activity_is_due_then_is_renewed() {
    let site = Site::start().await;
    let alice = site.signed_in(1).await;
    let signed_in = site.clock.now();
    let (loads, writes) = (site.store.loads(), site.store.writes());
    site.clock.set(signed_in + 59);
    assert_eq!(alice.get(&site.url("/me")).await.body, "alice");
    assert_eq!(site.store.loads(), loads, "fast");

    site.clock.set(signed_in + 60);
    let reply = alice.get(&site.url("/me")).await;
    assert_eq!(reply.body, "alice");
    assert!(sets_pass(&reply), "a new pass: {reply:?}");
    assert_eq!(
        site.store.loads(),
        loads + 1,
        "the full path read the session"
    );
    assert_eq!(site.store.writes(), writes + 1, "and recorded the activity");

    let reply = alice.get(&site.url("/me")).await;
    assert_eq!(reply.body, "alice");
    assert_eq!(site.store.loads(), loads + 1, "the new pass is used");
}

#[tokio::test]
async fn a_pass_is_trusted_for_its_lifetime_only() {
    let mut shared = Shared::new();
    shared.fast_path = shared.fast_path.with_lifetime(Duration::from_secs(10));
    let site = shared.site(LiveSessions::new(), keys(SECRET_A, &[])).await;
    let alice = site.signed_in(1).await;
    let issued = site.clock.now();
    let loads = site.store.loads();
    site.clock.set(issued + 9);
    assert_eq!(alice.get(&site.url("/me")).await.body, "alice");
    assert_eq!(site.store.loads(), loads, "fast");
    site.clock.set(issued + 10);
    let reply = alice.get(&site.url("/me")).await;
    assert_eq!(reply.body, "alice");
    assert_eq!(site.store.loads(), loads + 1, "expired: the full path");
    assert!(sets_pass(&reply), "renewed");
}

/// On a site of its own, signs alice in twice (`tab`, and `other` for a
/// second browser), lets `end` end the session of `tab` through `other` or
/// the site, and checks that the cookies `tab` held before are refused at
/// once, without the clock moving: the pass must not outlive the session.
async fn ended_at_once<F, Fut>(end: F)
where
    F: FnOnce(Site, Client, Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let site = Site::start().await;
    let tab = site.signed_in(1).await;
    let other = site.signed_in(1).await;
    let held = tab.cookie_header(&site.base);
    let loads = site.store.loads();
    assert_eq!(site.me_with(&held).await.body, "alice", "{held}");
    assert_eq!(site.store.loads(), loads, "on the fast path");
    end(site.clone(), tab, other).await;
    let reply = site.me_with(&held).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert!(
        removes_pass(&reply),
        "the refused pass is removed: {reply:?}"
    );
}

#[tokio::test]
async fn a_sign_out_refuses_the_pass_of_another_tab() {
    ended_at_once(|site, tab, _| async move {
        let reply = tab.post(&site.url("/logout"), "").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(removes_pass(&reply), "{reply:?}");
    })
    .await;
}

#[tokio::test]
async fn a_revocation_from_another_browser_refuses_the_pass() {
    ended_at_once(|site, _, other| async move {
        let sessions = other.get(&site.url("/sessions")).await.body;
        let sessions: serde_json::Value = serde_json::from_str(&sessions).unwrap();
        let theirs = sessions
            .as_array()
            .unwrap()
            .iter()
            .find(|session| session["current"] == false)
            .unwrap()["handle"]
            .as_str()
            .unwrap()
            .to_owned();
        let reply = other
            .post(&site.url(&format!("/revoke/{theirs}")), "")
            .await;
        assert_eq!(reply.body, "revoked");
    })
    .await;
    ended_at_once(|site, _, other| async move {
        assert_eq!(other.post(&site.url("/revoke-others"), "").await.body, "1");
    })
    .await;
    ended_at_once(|site, _, other| async move {
        assert_eq!(other.post(&site.url("/revoke-all"), "").await.body, "2");
    })
    .await;
}

#[tokio::test]
async fn a_credential_change_refuses_the_passes_of_the_other_sessions() {
    ended_at_once(|site, _, other| async move {
        let reply = other.post(&site.url("/password/1"), "new").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(removes_pass(&reply), "bound to the id it no longer has");
        // Within the clock skew after the change, a pass would be refused:
        // none is handed out; then the session that changed it gets one.
        let reply = other.get(&site.url("/me")).await;
        assert_eq!(reply.body, "alice");
        assert!(!sets_pass(&reply), "{reply:?}");
        site.clock.set(site.clock.now() + 2);
        let reply = other.get(&site.url("/me")).await;
        assert_eq!(reply.body, "alice");
        assert!(
            sets_pass(&reply),
            "the session that changed it gets a new pass: {reply:?}"
        );
    })
    .await;
    ended_at_once(|site, _, other| async move {
        let reply = other.post(&site.url("/logout-others"), "").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(other.get(&site.url("/me")).await.body, "alice");
    })
    .await;
}

#[tokio::test]
async fn the_administrators_revocations_refuse_the_pass() {
    ended_at_once(|site, _, _| async move {
        assert_eq!(site.registry.revoke_all(&1_u64).await.unwrap(), 2);
    })
    .await;
    ended_at_once(|site, _, _| async move {
        let reply = Client::new()
            .post(&site.url("/admin/revoke-everyone"), "")
            .await;
        assert_eq!(reply.body, "2");
    })
    .await;
}

#[tokio::test]
async fn a_deleted_user_is_refused_without_any_notice() {
    ended_at_once(|site, _, _| async move {
        site.users.delete(1).await;
    })
    .await;
}

#[tokio::test]
async fn the_lifetimes_hold_on_the_fast_path() {
    let site = Site::start().await;
    let alice = site.signed_in(1).await;
    let held = alice.cookie_header(&site.base);
    // Idle for 30 minutes (the default): ended, whatever the pass says.
    site.clock.set(site.clock.now() + 30 * 60);
    let reply = site.me_with(&held).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// With an idle timeout shorter than two pass lifetimes, a session used
/// only through its passes must still record its activity (the full path
/// does it when it is due) and live on past the idle timeout.
#[tokio::test]
async fn a_session_in_use_on_the_fast_path_outlives_its_idle_timeout() {
    let lifetimes = Lifetimes::new(Duration::from_secs(40), Duration::from_secs(3600));
    let site = Shared::new()
        .site_tuned(
            LiveSessions::new(),
            keys(SECRET_A, &[]),
            |registry| registry,
            |layer| layer.with_lifetimes(lifetimes),
        )
        .await;
    let alice = site.signed_in(1).await;
    for _ in 0..8 {
        site.clock.set(site.clock.now() + 15);
        let reply = alice.get(&site.url("/me")).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
}

/// A sign-in beyond the session limit ends the least recently seen
/// session: its pass is refused at once, as after a revocation.
#[tokio::test]
async fn a_session_evicted_by_the_limit_refuses_its_pass() {
    let site = Shared::new()
        .site_tuned(
            LiveSessions::new(),
            keys(SECRET_A, &[]),
            |registry| registry.with_limit(1, LimitPolicy::EvictLeastRecentlySeen),
            |layer| layer,
        )
        .await;
    let tab = site.signed_in(1).await;
    let held = tab.cookie_header(&site.base);
    assert_eq!(site.me_with(&held).await.body, "alice");
    let newer = Client::new();
    assert_eq!(
        newer.post(&site.url("/login/1"), "").await.status,
        StatusCode::OK
    );
    let reply = site.me_with(&held).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert!(removes_pass(&reply), "{reply:?}");
}

/// Signing in again as the same user (or re-authenticating) changes the
/// session id: the old id's pass, captured before, is worth nothing.
#[tokio::test]
async fn a_new_id_for_the_same_user_refuses_the_old_ids_pass() {
    let site = Site::start().await;
    let alice = site.signed_in(1).await;
    let held = alice.cookie_header(&site.base);
    let reply = alice.post(&site.url("/login/1"), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = site.me_with(&held).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(alice.get(&site.url("/me")).await.body, "alice");
}

/// A process that starts trusts no pass issued before it: it heard
/// nothing of what ended meanwhile (here, an entry removed by hand while
/// no process listened).
#[tokio::test]
async fn a_restarted_process_refuses_passes_from_before_it_started() {
    let shared = Shared::new();
    let before = shared
        .site_in_real_time(LiveSessions::new(), keys(SECRET_A, &[]))
        .await;
    let alice = before.signed_in(1).await;
    let held = alice.cookie_header(&before.base);
    assert_eq!(shared.entries.remove_all("1", None).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after = shared
        .site_in_real_time(LiveSessions::new(), keys(SECRET_A, &[]))
        .await;
    let reply = after.me_with(&held).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
}

#[tokio::test]
async fn a_secret_rotated_without_fallback_refuses_every_pass() {
    let before = Site::start().await;
    let alice = before.signed_in(1).await;
    let pass = cookie(&alice.cookie_header(&before.base), PASS).to_owned();
    let after = Site::start_with(LiveSessions::new(), keys(SECRET_B, &[])).await;
    let reply = after.me_with(&format!("{PASS}={pass}")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(removes_pass(&reply));
}

#[tokio::test]
async fn a_registry_changed_by_hand_is_seen_once_the_pass_expires() {
    let site = Site::start().await;
    let alice = site.signed_in(1).await;
    // Entries removed straight from the store announce nothing: the pass
    // is trusted until it expires (the documented bound), then refused.
    assert_eq!(site.entries.remove_all(r#"1"#, None).await.unwrap(), 1);
    assert_eq!(alice.get(&site.url("/me")).await.body, "alice");
    site.clock.set(site.clock.now() + 60);
    assert_eq!(
        alice.get(&site.url("/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn no_made_up_or_borrowed_pass_signs_anybody_in() {
    let site = Site::start().await;
    let alice = site.signed_in(1).await;
    let bob = site.signed_in(2).await;
    let alice_cookies = alice.cookie_header(&site.base);
    let bob_cookies = bob.cookie_header(&site.base);
    let (alice_id, alice_pass) = (cookie(&alice_cookies, "id"), cookie(&alice_cookies, PASS));
    let (bob_id, bob_pass) = (cookie(&bob_cookies, "id"), cookie(&bob_cookies, PASS));

    // Bob's pass with Alice's session cookie: Alice, by the full path.
    let swapped = site
        .me_with(&format!("id={alice_id}; {PASS}={bob_pass}"))
        .await;
    assert_eq!(
        (swapped.status, swapped.body.as_str()),
        (StatusCode::OK, "alice")
    );
    assert!(sets_pass(&swapped), "replaced by Alice's own");
    // A pass without its session cookie, or with none at all.
    let alone = site.me_with(&format!("{PASS}={alice_pass}")).await;
    assert_eq!(alone.status, StatusCode::UNAUTHORIZED);
    assert!(removes_pass(&alone));

    let truncated = &bob_pass[..bob_pass.len() - 3];
    let mut flipped = bob_pass.as_bytes().to_vec();
    flipped[40] = if flipped[40] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let long = "A".repeat(5000);
    for forged in [
        truncated,
        flipped.as_str(),
        "",
        "!!!",
        long.as_str(),
        alice_pass,
    ] {
        let reply = site.me_with(&format!("id={bob_id}; {PASS}={forged}")).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "bob"),
            "{forged:.20}"
        );
    }
    let reply = site
        .me_with(&format!("id=not-an-id; {PASS}={bob_pass}"))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// A channel that never delivers anything, not even its own heartbeat:
/// what a subscription that died silently looks like.
#[derive(Debug)]
struct Silent;

#[async_trait]
impl LiveChannel for Silent {
    async fn publish(&self, _: &str) -> Result<(), ChannelError> {
        Ok(())
    }

    fn listen(&self, signals: mpsc::Sender<Signal>) {
        // Holds the sender, so the listener looks alive, and says nothing.
        tokio::spawn(async move {
            signals.closed().await;
        });
    }
}

#[tokio::test]
async fn a_silent_channel_sends_every_request_down_the_full_path() {
    let live = LiveSessions::new()
        .with_channel(Silent)
        .with_heartbeat(Duration::from_millis(20));
    let site = Site::start_with(live, keys(SECRET_A, &[])).await;
    let alice = Client::new();
    alice.post(&site.url("/login/1"), "").await;
    for _ in 0..3 {
        let loads = site.store.loads();
        let reply = alice.get(&site.url("/me")).await;
        assert_eq!(reply.body, "alice");
        assert!(!sets_pass(&reply));
        assert_eq!(site.store.loads(), loads + 1, "the full path");
    }
}
