//! A Redis Cluster failover under traffic: two instances of the test
//! application keep their sessions (tower-sessions-redis-store), their
//! registry (`RedisRegistry`) and their live notices (`RedisChannel`) on
//! the cluster of `REDIS_CLUSTER_URL`, while workers sign in, read
//! `GET /me` on both instances, watch their session over SSE and end it
//! (sign-out, revocation from another session, password change). Then one
//! master stops answering (`DEBUG SLEEP`, longer than the cluster's node
//! timeout): its replica takes over, and the old master comes back as a
//! replica, so the cluster is whole again for the next test.
//!
//! The contract: no ending is lost (a session ended by an acknowledged
//! request never comes back signed in). What it costs is printed, per
//! failover (run with `--nocapture`): requests failed and over how long,
//! sessions lost (signed in, never ended, found anonymous), and how long
//! the streams of ended sessions took to end. BENCHMARKS.md has the
//! figures. `TSA_FAILOVERS` sets how many failovers (default 1).
//!
//! Needs `REDIS_CLUSTER_URL` (`.ci/redis-cluster` starts a cluster whose
//! nodes allow `DEBUG` from loopback, with a 2 s node timeout). Its own
//! test binary: no other test shares the cluster while a master sleeps.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::{btree_map::Entry, BTreeMap},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use common::{
    keys,
    live_app::{live_app, Events, SocketLog},
    serve, service_url,
    services::{delete_redis_keys_on_drop, redis_builder, unique_name, Tracker},
    Client, TestUser, Users, SECRET_A,
};
use serde_json::Value;
use tower_sessions::session::Id;
use tower_sessions_auth::{
    live::{LiveSessions, RedisChannel},
    registry::{RedisRegistry, SessionRegistry},
};
use tower_sessions_redis_store::{
    fred::{
        prelude::{Builder, Client as RedisClient, ClientLike, Config, Pool, ReconnectPolicy},
        types::{config::UnresponsiveConfig, ClusterHash, CustomCommand, Value as RedisValue},
    },
    RedisStore,
};

/// Concurrent browsers.
const WORKERS: u64 = 6;

/// How long the master stops answering: past the node timeout (2 s) and
/// the replica's election (about 1 s more), so a replica takes over.
const SLEEP_SECS: u64 = 8;

/// The backstop re-check of the instances' watches.
const RECHECK: Duration = Duration::from_secs(5);

/// Traffic before the first failover and after each recovery.
const STEADY: Duration = Duration::from_secs(3);

/// How long the cluster may take to change or heal before the test gives
/// up (a safety net, not a measure).
const PATIENCE: Duration = Duration::from_secs(60);

/// What the workers saw.
#[derive(Default)]
struct Log {
    /// Every request: when it was answered and whether it failed (a 5xx).
    requests: Vec<(Instant, bool)>,
    /// Sessions ended by an acknowledged request: their id.
    ended: Vec<Id>,
    /// When each acknowledged ending happened.
    endings: Vec<Instant>,
    /// Signed-in sessions, never ended, that a request found anonymous.
    sessions_lost: Vec<Instant>,
    /// Ended sessions that were still signed in right after the ending.
    endings_lost_at_once: usize,
    /// Per stream of an ended session: when the ending was acknowledged,
    /// and how long the stream took to say so (`None`: it never did within
    /// the wait).
    streams: Vec<(Instant, Option<Duration>, String)>,
    /// The tasks that read those streams.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

type Shared = Arc<Mutex<Log>>;

/// One of the two instances, as a separate process would run it: its own
/// store client, registry pool and channel pool.
async fn instance(
    url: &str,
    tracker: &Tracker,
    prefix: &str,
    channel: &str,
    users: &Users,
) -> String {
    let client = builder(url).build().unwrap();
    client.init().await.unwrap();
    let store = tracker.track(RedisStore::new(client));
    let registry =
        SessionRegistry::new(RedisRegistry::new(pool(url).await).with_key_prefix(prefix));
    let live = LiveSessions::new()
        .with_recheck_period(RECHECK)
        .with_channel(RedisChannel::new(pool(url).await).with_channel_name(channel));
    serve(live_app(
        store,
        users.clone(),
        keys(SECRET_A, &[]),
        registry,
        live,
        SocketLog::default(),
    ))
    .await
}

/// The tests' fred settings (1 s timeouts, reconnecting every 100 ms);
/// with `TSA_UNRESPONSIVE_MS` set, a connection whose command waits that
/// long is also closed and opened again (fred's `unresponsive` setting),
/// which makes the client find the cluster's new master without waiting
/// for the old one to answer.
fn builder(url: &str) -> Builder {
    let mut builder = redis_builder(url);
    let limit = std::env::var("TSA_UNRESPONSIVE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    if let Some(limit) = limit {
        builder.with_connection_config(|connection| {
            connection.unresponsive = UnresponsiveConfig {
                max_timeout: Some(limit),
                interval: limit / 4,
            };
        });
    }
    builder
}

async fn pool(url: &str) -> Pool {
    let pool = builder(url).build_pool(4).unwrap();
    pool.init().await.unwrap();
    pool
}

/// `GET /me`: `Some(true)` signed in, `Some(false)` anonymous, `None` a
/// failure; logged.
async fn me(client: &Client, base: &str, log: &Shared) -> Option<bool> {
    let reply = client.get(&format!("{base}/me")).await;
    record(log, reply.status);
    match reply.status {
        StatusCode::OK => Some(true),
        StatusCode::UNAUTHORIZED => Some(false),
        _ => None,
    }
}

fn record(log: &Shared, status: StatusCode) {
    let failed = status.is_server_error();
    log.lock().unwrap().requests.push((Instant::now(), failed));
}

/// A `POST`; whether it was acknowledged (200).
async fn post(client: &Client, url: &str, log: &Shared) -> bool {
    let reply = client.post(url, "").await;
    record(log, reply.status);
    reply.status == StatusCode::OK
}

/// The handle of the client's own session, or `None` on a failure.
async fn own_handle(client: &Client, base: &str, log: &Shared) -> Option<String> {
    let reply = client.get(&format!("{base}/sessions")).await;
    record(log, reply.status);
    if reply.status != StatusCode::OK {
        return None;
    }
    let listed: Value = serde_json::from_str(&reply.body).ok()?;
    listed
        .as_array()?
        .iter()
        .find(|session| session["current"] == true)?["handle"]
        .as_str()
        .map(str::to_owned)
}

/// A stream of the client's session on `base`, or `None` on a failure.
async fn stream(client: &Client, base: &str, log: &Shared) -> Option<Events> {
    let response = client.open(&format!("{base}/events")).await;
    record(log, response.status());
    (response.status() == StatusCode::OK).then_some(())?;
    Some(Events::open(response).await)
}

/// One worker: sign in on `a`, watch on `b`, read on both, then end the
/// session in turn by sign-out, revocation and password change, until
/// `stop`.
async fn worker(user: u64, a: String, b: String, log: Shared, stop: Arc<AtomicBool>) {
    let mut round = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let client = Client::new();
        if !post(&client, &format!("{a}/login/{user}"), &log).await {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let Some(id) = client.session_id(&a) else {
            continue;
        };
        let events = stream(&client, &b, &log).await;
        let mut lost = false;
        for base in [&a, &b, &a] {
            if me(&client, base, &log).await == Some(false) {
                lost = true;
                break;
            }
        }
        if lost {
            log.lock().unwrap().sessions_lost.push(Instant::now());
            continue;
        }
        let (ended, other) = match round % 3 {
            0 => (post(&client, &format!("{b}/logout"), &log).await, None),
            kind => {
                let other = Client::new();
                if !post(&other, &format!("{b}/login/{user}"), &log).await {
                    continue;
                }
                let ended = if kind == 1 {
                    match own_handle(&client, &a, &log).await {
                        Some(handle) => post(&other, &format!("{b}/revoke/{handle}"), &log).await,
                        None => false,
                    }
                } else {
                    post(&other, &format!("{b}/password/{user}"), &log).await
                };
                (ended, Some(other))
            }
        };
        if !ended {
            continue;
        }
        let at = Instant::now();
        {
            let mut log = log.lock().unwrap();
            log.ended.push(id);
            log.endings.push(at);
        }
        if let Some(mut events) = events {
            let shared = log.clone();
            let reader = tokio::spawn(async move {
                let reason = events.ended(RECHECK * 4).await;
                let took = reason.as_ref().map(|_| at.elapsed());
                let reason = reason.unwrap_or_else(|| "none".to_owned());
                shared.lock().unwrap().streams.push((at, took, reason));
            });
            log.lock().unwrap().readers.push(reader);
        }
        if me(&client, &a, &log).await == Some(true) {
            log.lock().unwrap().endings_lost_at_once += 1;
        }
        // The second session ends too, so that the user's sessions do not
        // pile up; its ending is not followed further.
        if let Some(other) = other {
            post(&other, &format!("{a}/logout"), &log).await;
        }
    }
}

/// One node of the cluster, as `CLUSTER NODES` describes it.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    address: String,
    master: bool,
    failing: bool,
    connected: bool,
    master_id: String,
}

/// A plain connection to one node (not a cluster client), with `timeout`
/// per command (zero: none), that reconnects by itself when `reconnect`
/// (otherwise never, and never sends a command twice: a `SHUTDOWN` sent
/// again would stop the node once more after its restart).
async fn node_client(address: &str, timeout: Duration, reconnect: bool) -> RedisClient {
    let config = Config::from_url(&format!("redis://{address}")).unwrap();
    let mut builder = Builder::from_config(config);
    builder.with_performance_config(|performance| {
        performance.default_command_timeout = timeout;
    });
    if reconnect {
        builder.set_policy(ReconnectPolicy::new_constant(0, 100));
    } else {
        builder.with_connection_config(|connection| connection.max_command_attempts = 1);
    }
    let client = builder.build().unwrap();
    client.init().await.unwrap();
    client
}

/// How a master fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// It stops answering for [`SLEEP_SECS`] (`DEBUG SLEEP`), as a process
    /// stalled by its machine would; awake, it finds itself replaced.
    Stall,
    /// It exits at once (`SHUTDOWN NOSAVE`), then is started again from
    /// its own settings (`redis-server` on the `PATH`) once its replica
    /// took over, and comes back as a replica.
    Crash,
}

/// `TSA_FAILOVER=crash` or (default) `stall`.
fn failure() -> Failure {
    match std::env::var("TSA_FAILOVER").as_deref() {
        Ok("crash") => Failure::Crash,
        Ok("stall") | Err(_) => Failure::Stall,
        Ok(other) => panic!("TSA_FAILOVER={other}: stall or crash"),
    }
}

/// The command line that starts the node of `client` again as it runs
/// now: the settings `.ci/redis-cluster` gives.
async fn command_line(client: &RedisClient) -> Vec<String> {
    let mut args = vec![
        "--daemonize".to_owned(),
        "yes".to_owned(),
        "--cluster-enabled".to_owned(),
        "yes".to_owned(),
        "--save".to_owned(),
        String::new(),
        "--appendonly".to_owned(),
        "no".to_owned(),
        "--enable-debug-command".to_owned(),
        "local".to_owned(),
    ];
    for name in [
        "port",
        "bind",
        "dir",
        "pidfile",
        "logfile",
        "cluster-config-file",
        "cluster-node-timeout",
    ] {
        let command = CustomCommand::new_static("CONFIG", ClusterHash::FirstKey, false);
        let pair: Vec<String> = client.custom(command, vec!["GET", name]).await.unwrap();
        args.push(format!("--{name}"));
        args.push(pair[1].clone());
    }
    args
}

async fn custom(client: &RedisClient, command: &'static str, args: Vec<&str>) -> Option<String> {
    let command = CustomCommand::new_static(command, ClusterHash::FirstKey, false);
    let value: RedisValue = client.custom(command, args).await.ok()?;
    value.as_string()
}

/// The cluster as seen by the first of `clients` that answers.
async fn cluster_nodes(clients: &BTreeMap<String, RedisClient>, skip: &str) -> Vec<Node> {
    for (address, client) in clients {
        if address == skip {
            continue;
        }
        let Some(text) = custom(client, "CLUSTER", vec!["NODES"]).await else {
            continue;
        };
        return text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let flags = *fields.get(2)?;
                Some(Node {
                    id: (*fields.first()?).to_owned(),
                    address: fields.get(1)?.split('@').next()?.to_owned(),
                    master: flags.contains("master"),
                    failing: flags.contains("fail"),
                    connected: *fields.get(7)? == "connected",
                    master_id: (*fields.get(3)?).to_owned(),
                })
            })
            .collect();
    }
    Vec::new()
}

/// Waits until `done` holds of the cluster (seen from a node other than
/// `skip`); returns when it did.
async fn until(
    clients: &BTreeMap<String, RedisClient>,
    skip: &str,
    what: &str,
    done: impl Fn(&[Node]) -> bool,
) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if done(&cluster_nodes(clients, skip).await) {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "the cluster never {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole cluster: three masters, each with a connected replica, none
/// failing, and every replica in sync.
async fn healthy(clients: &BTreeMap<String, RedisClient>) -> bool {
    let nodes = cluster_nodes(clients, "").await;
    let whole = nodes.len() == 6
        && nodes.iter().all(|node| node.connected && !node.failing)
        && nodes.iter().filter(|node| node.master).count() == 3;
    if !whole {
        return false;
    }
    for node in nodes.iter().filter(|node| !node.master) {
        let Some(client) = clients.get(&node.address) else {
            return false;
        };
        let info = custom(client, "INFO", vec!["replication"]).await;
        if !info.is_some_and(|info| info.contains("master_link_status:up")) {
            return false;
        }
    }
    true
}

async fn until_healthy(clients: &BTreeMap<String, RedisClient>) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    while !healthy(clients).await {
        assert!(Instant::now() < deadline, "the cluster never healed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Instant::now()
}

/// Puts the master at index `turn` (of the masters by address) to sleep;
/// returns when it was told to, when its replica took over and when the
/// cluster was whole again.
async fn fail_over(
    clients: &BTreeMap<String, RedisClient>,
    turn: usize,
) -> (Instant, Instant, Instant) {
    let nodes = cluster_nodes(clients, "").await;
    let mut masters: Vec<&Node> = nodes.iter().filter(|node| node.master).collect();
    masters.sort_by(|a, b| a.address.cmp(&b.address));
    let victim = masters[turn % masters.len()].clone();
    let replicas: Vec<String> = nodes
        .iter()
        .filter(|node| node.master_id == victim.id)
        .map(|node| node.id.clone())
        .collect();
    assert!(!replicas.is_empty(), "{} has no replica", victim.address);
    // The failing node answers late or never: a client of its own,
    // without a timeout, on a task of its own.
    let victim_client = node_client(&victim.address, Duration::ZERO, false).await;
    let restart = match failure() {
        Failure::Stall => None,
        Failure::Crash => Some(command_line(&victim_client).await),
    };
    let started = Instant::now();
    let crash = restart.is_some();
    tokio::spawn(async move {
        let seconds = SLEEP_SECS.to_string();
        let (command, args) = if crash {
            ("SHUTDOWN", vec!["NOSAVE"])
        } else {
            ("DEBUG", vec!["SLEEP", seconds.as_str()])
        };
        let _ = custom(&victim_client, command, args).await;
        let _ = victim_client.quit().await;
    });
    let promoted = until(clients, &victim.address, "promoted a replica", |nodes| {
        nodes
            .iter()
            .any(|node| replicas.contains(&node.id) && node.master && !node.failing)
    })
    .await;
    if let Some(args) = restart {
        let status = std::process::Command::new("redis-server")
            .args(&args)
            .status()
            .expect("start redis-server again");
        assert!(status.success(), "redis-server {args:?}");
    }
    let healed = until_healthy(clients).await;
    (started, promoted, healed)
}

/// What one failover cost, from the moment the master was put to sleep to
/// the next one (or the end).
fn report(
    turn: usize,
    log: &Log,
    (started, promoted, healed): (Instant, Instant, Instant),
    end: Instant,
) {
    let within = |at: &Instant| *at >= started && *at < end;
    let requests: Vec<&(Instant, bool)> =
        log.requests.iter().filter(|(at, _)| within(at)).collect();
    let failed: Vec<Instant> = requests
        .iter()
        .filter(|(_, failed)| *failed)
        .map(|(at, _)| *at)
        .collect();
    let window = match (failed.first(), failed.last()) {
        (Some(first), Some(last)) => format!(
            "{:.1} s (from {:.1} s to {:.1} s after the failure)",
            last.duration_since(*first).as_secs_f64(),
            first.duration_since(started).as_secs_f64(),
            last.duration_since(started).as_secs_f64()
        ),
        _ => "none".to_owned(),
    };
    let streams: Vec<_> = log.streams.iter().filter(|(at, _, _)| within(at)).collect();
    let slowest = streams
        .iter()
        .filter_map(|(_, took, _)| *took)
        .max()
        .map_or("-".to_owned(), |took| {
            format!("{:.2} s", took.as_secs_f64())
        });
    let beyond = streams
        .iter()
        .filter(|(_, took, _)| took.map_or(true, |took| took > RECHECK))
        .count();
    let lost: Vec<String> = log
        .sessions_lost
        .iter()
        .filter(|at| within(at))
        .map(|at| format!("{:.1}", at.duration_since(started).as_secs_f64()))
        .collect();
    let mut reasons = BTreeMap::<&str, usize>::new();
    for (_, _, reason) in &streams {
        *reasons.entry(reason.as_str()).or_default() += 1;
    }
    eprintln!(
        "failover {turn} ({:?}, unresponsive limit {:?} ms): replica promoted after {:.1} s, cluster whole after {:.1} s; \
         requests {} failed {} over {window}; endings {}; sessions lost {} (at {lost:?} s); \
         streams of ended sessions {}, slowest {slowest}, beyond the {} s backstop {beyond}, reasons {reasons:?}",
        failure(),
        std::env::var("TSA_UNRESPONSIVE_MS").ok(),
        promoted.duration_since(started).as_secs_f64(),
        healed.duration_since(started).as_secs_f64(),
        requests.len(),
        failed.len(),
        log.endings.iter().filter(|at| within(at)).count(),
        lost.len(),
        streams.len(),
        RECHECK.as_secs(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_traffic_loses_no_ending() {
    let Some(url) = service_url("REDIS_CLUSTER_URL") else {
        return;
    };
    let failovers: usize = std::env::var("TSA_FAILOVERS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1);

    // Plain connections to every node, to watch and to fail the cluster.
    let seed = url
        .trim_start_matches("redis-cluster://")
        .split(['?', '/'])
        .next()
        .unwrap()
        .to_owned();
    let seed_client = node_client(&seed, Duration::from_millis(500), true).await;
    let mut clients = BTreeMap::new();
    clients.insert(seed.clone(), seed_client);
    for node in cluster_nodes(&clients, "").await {
        if let Entry::Vacant(entry) = clients.entry(node.address) {
            let client = node_client(entry.key(), Duration::from_millis(500), true).await;
            entry.insert(client);
        }
    }
    until_healthy(&clients).await;

    let prefix = format!("{}:", unique_name());
    let _registry_keys = delete_redis_keys_on_drop(&url, &prefix);
    let tracker = Tracker::redis(&url);
    let channel = unique_name();
    let users = Users::with_defaults();
    for user in 100..100 + WORKERS {
        users.put(TestUser {
            id: user,
            name: format!("user{user}"),
            password_hash: common::fake_hash(&format!("user{user}"), "initial"),
            epoch: 0,
        });
    }
    let a = instance(&url, &tracker, &prefix, &channel, &users).await;
    let b = instance(&url, &tracker, &prefix, &channel, &users).await;

    let log: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (100..100 + WORKERS)
        .map(|user| {
            tokio::spawn(worker(
                user,
                a.clone(),
                b.clone(),
                log.clone(),
                stop.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(STEADY).await;
    let mut times = Vec::new();
    for turn in 0..failovers {
        times.push(fail_over(&clients, turn).await);
        tokio::time::sleep(STEADY).await;
    }
    let endings_before_stop = log.lock().unwrap().endings.len();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    // Let the streams of the last endings report.
    let readers = std::mem::take(&mut log.lock().unwrap().readers);
    for reader in readers {
        reader.await.unwrap();
    }

    // Every ended session, presented again, is anonymous on both instances.
    let ended = log.lock().unwrap().ended.clone();
    let log_again: Shared = Arc::default();
    let mut endings_lost = 0;
    for id in &ended {
        let client = Client::new();
        client.set_session_id(&a, *id);
        for base in [&a, &b] {
            if me(&client, base, &log_again).await == Some(true) {
                endings_lost += 1;
            }
        }
    }

    let log = log.lock().unwrap();
    let end = Instant::now();
    for (turn, window) in times.iter().enumerate() {
        let next = times.get(turn + 1).map_or(end, |next| next.0);
        report(turn, &log, *window, next);
    }
    let failed_again = log_again
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(_, failed)| *failed)
        .count();
    eprintln!(
        "in all: {} requests, {} endings, {} endings lost ({} at once), {} sessions lost",
        log.requests.len(),
        ended.len(),
        endings_lost,
        log.endings_lost_at_once,
        log.sessions_lost.len()
    );
    assert_eq!(
        failed_again, 0,
        "the cluster answers again after the failovers"
    );
    assert_eq!(endings_lost, 0, "an ended session came back signed in");
    assert_eq!(
        log.endings_lost_at_once, 0,
        "an ended session was still signed in"
    );
    let last_healed = times.last().map_or(end, |times| times.2);
    assert!(
        log.endings.iter().any(|at| *at > last_healed),
        "traffic resumed after the last failover ({endings_before_stop} endings in all)"
    );
}
