//! Reading the demo's event stream (`GET /api/events`) and asserting
//! how and when it ends: shared by the live-session and the
//! administrator's tests.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::{client::Browser, Server};

/// The contract: a connection outlives its session by 2 s at most.
pub const ENDS_WITHIN: Duration = Duration::from_secs(2);

/// How long a connection that must stay open is watched after the others
/// ended: longer than the library's 2 s grace before a hash that no longer
/// verifies ends a watch, so a wrong end would show.
pub const STAYS_FOR: Duration = Duration::from_millis(2500);

/// One block of an event stream.
#[derive(Debug, PartialEq)]
pub enum Item {
    /// An event, with its name (`message` when unnamed) and data.
    Event { name: String, data: String },
    /// Only comment lines (`:` …): the keep-alive.
    Comment,
}

/// `GET /api/events` as it arrives, block by block.
pub struct EventStream {
    response: Response,
    buffer: String,
}

impl EventStream {
    /// Reads the stream of `response` from its first block on.
    pub fn new(response: Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// Opens the stream for `browser` and reads its `hello`, so that the
    /// server watches the session once this returns.
    pub async fn open(browser: &Browser, server: &Server) -> Self {
        let response = browser.get(&server.url("/api/events")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut stream = Self::new(response);
        match stream.next().await {
            Some(Item::Event { name, .. }) if name == "hello" => stream,
            other => panic!("expected the hello event first, got {other:?}"),
        }
    }

    /// The next block as sent (up to and with its blank line), or `None`
    /// when the stream ended.
    pub async fn next_raw(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(block);
            }
            let chunk = self.response.chunk().await.unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event or keep-alive, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Item> {
        let block = self.next_raw().await?;
        let mut name = None;
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = Some(value.trim_start().to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            } else {
                assert!(
                    line.starts_with(':') || line.is_empty(),
                    "unexpected line {line:?}"
                );
            }
        }
        Some(match (name, data.is_empty()) {
            (None, true) => Item::Comment,
            (name, _) => Item::Event {
                name: name.unwrap_or_else(|| "message".to_owned()),
                data: data.join("\n"),
            },
        })
    }
}

/// How a connection ended: when, why, and whether it closed right after.
#[derive(Debug)]
pub struct Ended {
    pub at: Instant,
    pub reason: String,
    pub closed: bool,
}

/// Reads `stream` in a task until its `session-ended` event.
pub fn until_ended(mut stream: EventStream) -> JoinHandle<Ended> {
    tokio::spawn(async move {
        loop {
            match stream.next().await {
                Some(Item::Event { name, data }) if name == "session-ended" => {
                    let at = Instant::now();
                    let data: Value = serde_json::from_str(&data).unwrap();
                    let reason = data["reason"].as_str().unwrap().to_owned();
                    let rest = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
                    return Ended {
                        at,
                        reason,
                        closed: matches!(rest, Ok(None)),
                    };
                }
                Some(_) => {}
                None => panic!("the stream ended without session-ended"),
            }
        }
    })
}

/// Opens `browser`'s stream and reads it in a task until it ends.
pub async fn watched(browser: &Browser, server: &Server) -> JoinHandle<Ended> {
    until_ended(EventStream::open(browser, server).await)
}

/// Asserts that the connection read by `task` ended for `reason` and
/// closed, at most [`ENDS_WITHIN`] after `since` (the ending response).
pub async fn assert_ends(what: &str, task: JoinHandle<Ended>, since: Instant, reason: &str) {
    let ended = tokio::time::timeout(ENDS_WITHIN + Duration::from_secs(1), task)
        .await
        .unwrap_or_else(|_| panic!("{what}: still open {ENDS_WITHIN:?} after the response"))
        .unwrap();
    let after = ended.at.saturating_duration_since(since);
    match since.checked_duration_since(ended.at) {
        // The end can overtake the response that caused it.
        Some(before) if !before.is_zero() => {
            eprintln!(
                "{what}: ended ({}) {before:?} before the response",
                ended.reason
            );
        }
        _ => eprintln!(
            "{what}: ended ({}) {after:?} after the response",
            ended.reason
        ),
    }
    assert!(
        after <= ENDS_WITHIN,
        "{what}: ended {after:?} after the response"
    );
    assert_eq!(ended.reason, reason, "{what}");
    assert!(
        ended.closed,
        "{what}: the stream went on after session-ended"
    );
}

/// Asserts that the connections read by `tasks` are still open
/// [`STAYS_FOR`] from now, then stops reading them.
pub async fn assert_stay_open(what: &str, tasks: Vec<JoinHandle<Ended>>) {
    tokio::time::sleep(STAYS_FOR).await;
    for task in tasks {
        assert!(!task.is_finished(), "{what}: ended: {:?}", task.await);
        task.abort();
    }
}
