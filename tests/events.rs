//! The events hook and "say why": what the application is told, on the
//! request path and afterwards, when sessions begin and end.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{http::header, routing::get, Router};
use common::{keys, load_record, routes, serve, Client, UserTable, Users, SECRET_A, SECRET_B};
use reqwest::StatusCode;
use serde_json::json;
use tower_sessions::{MemoryStore, SessionManagerLayer, SessionStore};
use tower_sessions_auth::{
    events::{AuthEvent, AuthEventKind, EventHook, Events},
    AuthKeys, AuthLayer, EndReason, SessionEnded,
};

type Seen = Arc<Mutex<Vec<AuthEvent<u64>>>>;

/// A hook that records every event.
fn recorder() -> (Seen, impl EventHook<u64>) {
    let seen = Seen::default();
    let hook = {
        let seen = seen.clone();
        move |event| {
            seen.lock().unwrap().push(event);
            async {}
        }
    };
    (seen, hook)
}

/// The test application with `events`, plus `GET /why`, which says why the
/// layer ended the session on that very request.
fn app_with<H: EventHook<u64>>(
    store: MemoryStore,
    users: Users,
    keys: AuthKeys,
    events: Events<H>,
) -> Router {
    routes(users.clone())
        .route(
            "/why",
            get(|ended: Option<SessionEnded>| async move {
                ended.map_or("none", |ended| ended.reason().as_str())
            }),
        )
        .layer(AuthLayer::new(users, keys).with_events(events))
        .layer(SessionManagerLayer::new(store).with_secure(false))
}

/// Waits until `seen` holds `count` events, and returns them.
async fn events(seen: &Seen, count: usize) -> Vec<(AuthEventKind, Option<u64>)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events: Vec<_> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|event| (event.kind, event.user_id))
            .collect();
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A client that sends its own `User-Agent`.
fn client_with_agent(agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(agent)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_kind_of_event_reaches_the_hook_with_the_user_and_chosen_details() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let (seen, hook) = recorder();
    let events_config = Events::new(hook).capture_header(header::USER_AGENT);
    let base = serve(app_with(
        store.clone(),
        users.clone(),
        keys(SECRET_A, &[]),
        events_config,
    ))
    .await;
    let url = |path: &str| format!("{base}{path}");

    // Signed in, with the user agent the application asked for.
    let laptop = client_with_agent("laptop browser");
    laptop.post(url("/login/1")).send().await.unwrap();
    let phone = Client::new();
    phone.post(&url("/login/1"), "").await;
    assert_eq!(
        events(&seen, 2).await,
        [(AuthEventKind::SignedIn, Some(1)); 2]
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0].request.headers[header::USER_AGENT],
            "laptop browser"
        );
        assert_eq!(seen[0].request.headers.len(), 1, "only the chosen header");
        assert_eq!(
            seen[0].request.peer_addr, None,
            "the address was not chosen"
        );
    }

    // The password changes on the laptop: the phone's session ends.
    laptop
        .post(url("/password/1"))
        .body("new")
        .send()
        .await
        .unwrap();
    assert_eq!(
        phone.get(&url("/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Sign out everywhere else: an epoch change.
    phone.post(&url("/login/1"), "").await;
    laptop.post(url("/logout-others")).send().await.unwrap();
    assert_eq!(
        phone.get(&url("/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Bob signs in and is deleted.
    let bob = Client::new();
    bob.post(&url("/login/2"), "").await;
    users.delete(2).await;
    assert_eq!(bob.get(&url("/me")).await.status, StatusCode::UNAUTHORIZED);
    // The user database is down.
    users.set_down(true);
    assert_eq!(
        laptop.get(url("/me")).send().await.unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    users.set_down(false);
    // Signed out.
    laptop.post(url("/logout")).send().await.unwrap();

    assert_eq!(
        events(&seen, 9).await,
        [
            (AuthEventKind::SignedIn, Some(1)),
            (AuthEventKind::SignedIn, Some(1)),
            (
                AuthEventKind::SessionEnded(EndReason::CredentialChanged),
                Some(1)
            ),
            (AuthEventKind::SignedIn, Some(1)),
            (
                AuthEventKind::SessionEnded(EndReason::EpochChanged),
                Some(1)
            ),
            (AuthEventKind::SignedIn, Some(2)),
            (AuthEventKind::SessionEnded(EndReason::UserGone), Some(2)),
            (AuthEventKind::FailedClosed, Some(1)),
            (AuthEventKind::SignedOut, Some(1)),
        ]
    );
}

#[tokio::test]
async fn malformed_and_resigned_sessions_are_events_too() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let (seen, hook) = recorder();
    // Signed in under secret B, verified by a layer where B is a fallback.
    let old = serve(app_with(
        store.clone(),
        users.clone(),
        keys(SECRET_B, &[]),
        Events::new(|_: AuthEvent<u64>| async {}),
    ))
    .await;
    let rotated = serve(app_with(
        store.clone(),
        users.clone(),
        keys(SECRET_A, &[SECRET_B]),
        Events::new(hook),
    ))
    .await;
    let client = Client::new();
    client.post(&format!("{old}/login/1"), "").await;
    assert_eq!(client.get(&format!("{rotated}/me")).await.body, "alice");

    let id = client.session_id(&rotated).unwrap();
    let mut record = load_record(&store, id).await;
    record
        .data
        .insert("_auth".to_owned(), json!("not a record"));
    store.save(&record).await.unwrap();
    assert_eq!(
        client.get(&format!("{rotated}/why")).await.body,
        "malformed"
    );

    assert_eq!(
        events(&seen, 2).await,
        [
            (AuthEventKind::Rehashed, Some(1)),
            (AuthEventKind::SessionEnded(EndReason::Malformed), None),
        ]
    );
}

#[tokio::test]
async fn the_request_that_ends_a_session_can_say_why() {
    let (store, users) = (MemoryStore::default(), Users::with_defaults());
    let hook = Events::new(|_: AuthEvent<u64>| async {});
    let base = serve(app_with(store, users.clone(), keys(SECRET_A, &[]), hook)).await;
    let (laptop, phone) = (Client::new(), Client::new());
    for client in [&laptop, &phone] {
        client.post(&format!("{base}/login/1"), "").await;
    }
    assert_eq!(phone.get(&format!("{base}/why")).await.body, "none");

    laptop.post(&format!("{base}/password/1"), "new").await;
    assert_eq!(
        phone.get(&format!("{base}/why")).await.body,
        "credential_changed"
    );
    // Only on that request: the next one is plainly anonymous.
    assert_eq!(phone.get(&format!("{base}/why")).await.body, "none");
    assert_eq!(laptop.get(&format!("{base}/why")).await.body, "none");
    assert_eq!(laptop.get(&format!("{base}/me")).await.body, "alice");
}

#[tokio::test]
async fn a_hook_that_never_finishes_or_panics_does_not_hold_up_requests() {
    for hook_kind in ["stuck", "panicking"] {
        let (store, users) = (MemoryStore::default(), Users::with_defaults());
        let events_config = Events::new(move |_: AuthEvent<u64>| async move {
            if hook_kind == "stuck" {
                std::future::pending::<()>().await;
            } else {
                panic!("the application's hook fails");
            }
        })
        .with_capacity(4);
        let base = serve(app_with(store, users, keys(SECRET_A, &[]), events_config)).await;
        let client = Client::new();
        // Far more events than the queue holds.
        for round in 0..20 {
            let login = tokio::time::timeout(
                Duration::from_secs(5),
                client.post(&format!("{base}/login/1"), ""),
            )
            .await
            .unwrap_or_else(|_| panic!("{hook_kind}: sign-in {round} was held up"));
            assert_eq!(login.status, StatusCode::OK, "{hook_kind}");
            assert_eq!(client.get(&format!("{base}/me")).await.body, "alice");
            client.post(&format!("{base}/logout"), "").await;
        }
    }
}
