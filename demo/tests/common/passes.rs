//! The fast path's pass in the demo's tests: waiting until a process
//! issues and admits one, replaying a browser's cookies, and waiting, with
//! a bound, until a notice refuses them.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use reqwest::{header, Client, Response, StatusCode};

use super::{
    client::{set_cookies, set_pass, touches_pass, Browser},
    Server,
};

/// The longest these tests wait for a process to hear its first heartbeat
/// (the fast path issues no pass before), for a change's clock-skew
/// margin to pass (one second), or for a notice to reach another process
/// (milliseconds on a local Redis or Postgres).
pub const NOTICE_WAIT: Duration = Duration::from_secs(5);

/// Pause between two polls.
const POLL: Duration = Duration::from_millis(50);

/// `GET /api/me` as `browser` on `server` until a response sets a pass;
/// returns that `Set-Cookie`, attributes and all.
pub async fn pass_issued(browser: &Browser, server: &Server) -> String {
    let deadline = Instant::now() + NOTICE_WAIT;
    loop {
        let response = browser.get(&server.url("/api/me")).await;
        assert_eq!(response.status(), StatusCode::OK);
        if let Some(pass) = set_pass(&response) {
            return pass;
        }
        assert!(
            Instant::now() < deadline,
            "{} issued no pass within {NOTICE_WAIT:?}",
            server.base
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `GET /api/me` as `browser` on `server` until its pass signs the request
/// in: a `200` that neither renews nor removes the pass. Returns the
/// browser's cookies then (session and pass), for a replay.
pub async fn admitted(browser: &Browser, server: &Server) -> String {
    admitted_on(browser, &[server]).await
}

/// [`admitted`] on every one of `servers` in a row, with the same pass.
///
/// A process refuses a pass, and the full path renews it, while the pass
/// may predate a change it heard of, with a second's margin for the clock
/// skew: after every sign-out or revocation of the pass's user, and after
/// the process first hears its own heartbeat or its channel comes back
/// (every pass issued before then). Two processes that started together
/// may be a heartbeat apart in that: a pass that one admits, the other may
/// still refuse for up to a second.
pub async fn admitted_on(browser: &Browser, servers: &[&Server]) -> String {
    let deadline = Instant::now() + NOTICE_WAIT;
    'round: loop {
        for server in servers {
            let held = browser.pass(server).is_some();
            let response = browser.get(&server.url("/api/me")).await;
            assert_eq!(response.status(), StatusCode::OK);
            if !held || touches_pass(&response) {
                assert!(
                    Instant::now() < deadline,
                    "{} admitted no pass within {NOTICE_WAIT:?}",
                    server.base
                );
                tokio::time::sleep(POLL).await;
                continue 'round;
            }
        }
        return browser.cookie_header(servers[0]);
    }
}

/// `GET /api/me` on `server` with exactly `cookies`, from a client without
/// a jar: what a thief of a browser's cookies sends.
pub async fn replay(server: &Server, cookies: &str) -> Response {
    Client::new()
        .get(server.url("/api/me"))
        .header(header::COOKIE, cookies)
        .send()
        .await
        .unwrap()
}

/// Asserts that `cookies` sign in on `server` by their pass: `200`, the
/// pass neither renewed nor removed.
pub async fn assert_admitted(server: &Server, cookies: &str) {
    let response = replay(server, cookies).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !touches_pass(&response),
        "the pass did not sign the request in: {:?}",
        set_cookies(&response)
    );
}

/// Replays `cookies` on `server` until they are anonymous, within
/// [`NOTICE_WAIT`] of the change (`what`); returns the response that
/// refused them. Without the notice, their pass would sign them in for
/// its whole lifetime, a minute.
pub async fn refused_within_notice(server: &Server, cookies: &str, what: &str) -> Response {
    let since = Instant::now();
    loop {
        let response = replay(server, cookies).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => {
                eprintln!(
                    "{what}: refused on {} after {:?}",
                    server.base,
                    since.elapsed()
                );
                return response;
            }
            StatusCode::OK => assert!(
                since.elapsed() < NOTICE_WAIT,
                "{what}: still signed in on {} after {NOTICE_WAIT:?}",
                server.base
            ),
            other => panic!("{what}: unexpected status {other}"),
        }
        tokio::time::sleep(POLL).await;
    }
}
