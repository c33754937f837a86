//! A password change racing with a stream of requests from another session
//! of the same user, on two instances sharing the store and the user table:
//! instance B serves the victim session's requests from 8 concurrent tasks
//! while the password changes through instance A.
//!
//! Requests in flight when the change lands may still be served (the crate
//! documents this); every request that starts after A's response arrived
//! must be refused, none may fail with a 5xx, and nothing may panic.
//!
//! Needs `DATABASE_URL`, and `REDIS_URL` for the Redis variant.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::http::StatusCode;
use common::{
    cluster::{assert_anonymous, assert_signed_in_as, signed_in, Site},
    keys,
    panics::{count_panics, panics},
    record_exists, COOKIE, SECRET_A,
};
use tower_sessions::SessionStore;

const ALICE: u64 = 1;
const TASKS: usize = 8;
/// Requests each task sends before the change may happen.
const BEFORE: usize = 20;
/// Requests each task sends after it has seen the change.
const AFTER: usize = 100;
/// A task stops after this many requests whatever happened.
const MAX_REQUESTS: usize = 1_000;
const TIME_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis() {
    let Some(site) = common::cluster::redis_site().await else {
        return;
    };
    password_change_races_with_requests(site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(site) = common::cluster::postgres_site().await else {
        return;
    };
    password_change_races_with_requests(site).await;
}

/// What one task saw.
#[derive(Default, Debug)]
struct Tally {
    served_before: usize,
    refused_before: usize,
    refused_after: usize,
}

async fn password_change_races_with_requests<S: SessionStore + Clone>(site: Site<S>) {
    count_panics();
    let panics_before = panics();
    let a = site.start(0, keys(SECRET_A, &[])).await;
    let b = site.start(1, keys(SECRET_A, &[])).await;

    let changer = signed_in(&a, ALICE).await;
    let victim = signed_in(&b, ALICE).await;
    let victim_id = victim.session_id(&b).unwrap();
    assert_signed_in_as(&victim, &b, "alice").await;

    // The tasks replay the victim's cookie on every request, as an attacker
    // holding it would: a browser would drop it after the first refusal.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(TASKS)
        .build()
        .unwrap();
    let cookie = format!("{COOKIE}={victim_id}");
    let changed = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));

    let race = async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (http, cookie, url) = (http.clone(), cookie.clone(), format!("{b}/me"));
                let (changed, sent) = (changed.clone(), sent.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    for _ in 0..MAX_REQUESTS {
                        // Read before sending: `true` means this request
                        // starts after A's response arrived.
                        let after = changed.load(Ordering::SeqCst);
                        let response = http
                            .get(&url)
                            .header("cookie", &cookie)
                            .send()
                            .await
                            .unwrap();
                        let status = response.status();
                        let body = response.text().await.unwrap();
                        sent.fetch_add(1, Ordering::SeqCst);
                        match (after, status) {
                            (false, StatusCode::OK) => {
                                assert_eq!(body, "alice");
                                tally.served_before += 1;
                            }
                            (false, StatusCode::UNAUTHORIZED) => tally.refused_before += 1,
                            (true, StatusCode::UNAUTHORIZED) => {
                                tally.refused_after += 1;
                                if tally.refused_after == AFTER {
                                    break;
                                }
                            }
                            (true, status) => {
                                panic!("a request begun after the change got {status}: {body}")
                            }
                            (false, status) => panic!("unexpected {status}: {body}"),
                        }
                    }
                    tally
                })
            })
            .collect();

        // Change the password through A while the tasks are running on B.
        while sent.load(Ordering::SeqCst) < TASKS * BEFORE {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let reply = changer
            .post(&format!("{a}/password/{ALICE}"), "new password")
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        changed.store(true, Ordering::SeqCst);

        let mut total = Tally::default();
        for task in tasks {
            let tally = task.await.expect("a request task panicked");
            assert_eq!(tally.refused_after, AFTER, "every task saw the change");
            total.served_before += tally.served_before;
            total.refused_before += tally.refused_before;
            total.refused_after += tally.refused_after;
        }
        total
    };
    let total = tokio::time::timeout(TIME_LIMIT, race)
        .await
        .expect("the race ends within the time limit");
    eprintln!("race: {total:?}");

    assert!(
        total.served_before >= TASKS * BEFORE,
        "the session was in use when the password changed: {total:?}"
    );
    assert!(!record_exists(&site.store, victim_id).await);
    assert_anonymous(&victim, &b).await;
    assert_signed_in_as(&changer, &b, "alice").await;
    assert_signed_in_as(&changer, &a, "alice").await;
    assert_eq!(panics(), panics_before, "nothing panicked");
}
