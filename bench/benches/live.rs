//! Live sessions (issue #10): what a watched connection costs, how fast a
//! password change closes the user's other connections, on one instance
//! and across two (Redis pub/sub, Postgres LISTEN/NOTIFY), and what the
//! backstop re-check costs an idle server.
//!
//! `cargo bench -p tower-sessions-auth-bench --bench live`
//!
//! Needs Redis (`LIVE_REDIS_URL`, default `redis://127.0.0.1:6379`) and
//! Postgres (`LIVE_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`); `LIVE_ROUNDS` (default 50),
//! `LIVE_WATCHES` (default 10000) and `LIVE_IDLE_SECS` (default 70) set
//! the size of the run. Writes `bench/results/live-<date>.md` and `.csv`.
//!
//! Everything runs in this process, on a tokio runtime of two workers:
//! requests go through `Router::oneshot`, and "two instances" are two
//! routers sharing one `MemoryStore`, one `MemoryRegistry` and one user
//! table, each with its own `LiveSessions` and channel. A connection's
//! close is the end of its SSE body, read by a task of its own.

use std::{
    collections::HashMap,
    convert::Infallible,
    fmt::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, Request, StatusCode},
    response::{
        sse::{Event, Sse},
        Response,
    },
    routing::{get, post},
    Router,
};
use futures_util::{stream, Stream, StreamExt as _};
use tokio::sync::mpsc;
use tower::ServiceExt as _;
use tower_sessions::MemoryStore;
use tower_sessions_auth::{
    live::{LiveSessions, PostgresChannel, RedisChannel, SessionWatch},
    registry::{MemoryRegistry, SessionRegistry},
    AuthKeys, AuthLayer, AuthSession, UserBackend,
};
use tower_sessions_auth_bench::{session_layer, today, User, SECRET};
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Makes every new password hash unique, across instances.
static PASSWORDS: AtomicU64 = AtomicU64::new(1);

/// Users changed by the latency rounds: one fresh user per round, so that
/// no round inherits the registry entries of the previous ones.
const FIRST_CHANGED: u64 = 1;
/// Users holding the other connections.
const FIRST_OTHER: u64 = 100_000;

/// How long a round waits for every connection to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------- the app

/// A user table the password handler can change.
#[derive(Clone)]
struct Table(Arc<RwLock<HashMap<u64, User>>>);

impl Table {
    fn new() -> Self {
        Self(Arc::new(RwLock::new(HashMap::new())))
    }

    fn get(&self, id: u64) -> Option<User> {
        let users = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        users.get(&id).cloned()
    }

    /// Creates users on first use: the benchmark signs in thousands.
    fn get_or_create(&self, id: u64) -> User {
        let mut users = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        users
            .entry(id)
            .or_insert_with(|| User::generate(id))
            .clone()
    }

    fn set_password(&self, id: u64) -> Option<User> {
        let n = PASSWORDS.fetch_add(1, Ordering::Relaxed);
        let mut users = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let user = users.get_mut(&id)?;
        user.password_hash = format!("$argon2id$v=19$m=19456,t=2,p=1${id:022}${n:043}");
        Some(user.clone())
    }
}

impl UserBackend for Table {
    type User = User;
    type Error = Infallible;

    async fn get_user(&self, id: &u64) -> Result<Option<User>, Infallible> {
        Ok(self.get(*id))
    }
}

/// What the instances of the application share.
#[derive(Clone)]
struct Shared {
    store: MemoryStore,
    registry: SessionRegistry,
    users: Table,
}

impl Shared {
    fn new() -> Self {
        Self {
            store: MemoryStore::default(),
            registry: SessionRegistry::new(MemoryRegistry::default()),
            users: Table::new(),
        }
    }
}

#[derive(Clone)]
struct AppState {
    users: Table,
    handout: mpsc::UnboundedSender<SessionWatch>,
}

/// One instance: `POST /login/{id}`, `POST /password/{id}`, `GET /events`
/// (SSE that ends with the session) and `GET /watch` (hands the bare
/// `SessionWatch` out through `handout`).
fn app(
    shared: &Shared,
    live: LiveSessions,
    handout: mpsc::UnboundedSender<SessionWatch>,
) -> Router {
    let keys = AuthKeys::new(SECRET).expect("the benchmark secret is long enough");
    Router::new()
        .route("/login/{id}", post(login))
        .route("/password/{id}", post(password))
        .route("/events", get(events))
        .route("/watch", get(watch))
        .with_state(AppState {
            users: shared.users.clone(),
            handout,
        })
        .layer(
            AuthLayer::new(shared.users.clone(), keys)
                .with_registry(shared.registry.clone().with_live_sessions(live)),
        )
        .layer(session_layer(shared.store.clone()))
}

async fn login(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    mut auth: AuthSession<User>,
) -> StatusCode {
    let user = state.users.get_or_create(id);
    match auth.login(&user).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn password(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    mut auth: AuthSession<User>,
) -> StatusCode {
    let Some(user) = state.users.set_password(id) else {
        return StatusCode::NOT_FOUND;
    };
    match auth.update_session_auth_hash(&user).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn events(watch: SessionWatch) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(watch.sse(stream::pending::<Result<Event, Infallible>>()))
}

async fn watch(State(state): State<AppState>, watch: SessionWatch) -> StatusCode {
    let _ = state.handout.send(watch);
    StatusCode::NO_CONTENT
}

// ------------------------------------------------------------- the client

async fn send(app: &Router, request: Request<Body>) -> Response {
    app.clone().oneshot(request).await.expect("infallible")
}

fn request(method: &str, uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::empty()).expect("a valid request")
}

async fn sign_in(app: &Router, id: u64) -> String {
    let response = send(app, request("POST", &format!("/login/{id}"), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "sign-in of {id}");
    response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

async fn open(app: &Router, path: &str, cookie: &str) -> Body {
    let response = send(app, request("GET", path, Some(cookie))).await;
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.into_body()
}

/// Reads `body` to its end in a task, then sends the time.
fn read_to_end(body: Body, ends: mpsc::UnboundedSender<Instant>) {
    tokio::spawn(async move {
        let mut data = body.into_data_stream();
        while let Some(chunk) = data.next().await {
            if chunk.is_err() {
                break;
            }
        }
        let _ = ends.send(Instant::now());
    });
}

/// Signs `user` in on `app` in a session of its own and changes the
/// password there; returns when the response arrived.
async fn change_password(app: &Router, user: u64) -> Instant {
    let cookie = sign_in(app, user).await;
    let response = send(
        app,
        request("POST", &format!("/password/{user}"), Some(&cookie)),
    )
    .await;
    let at = Instant::now();
    assert_eq!(response.status(), StatusCode::OK, "password change");
    at
}

// ---------------------------------------------------------- the instances

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    One,
    Redis,
    Postgres,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::One => "one instance",
            Self::Redis => "two instances, Redis",
            Self::Postgres => "two instances, Postgres",
        }
    }

    fn goal(self) -> Duration {
        match self {
            Self::One => Duration::from_millis(50),
            _ => Duration::from_millis(250),
        }
    }
}

struct Urls {
    redis: String,
    postgres: String,
}

/// The instance the password changes on, and the one watching.
struct Pair {
    changer: Router,
    watcher: Router,
    watching: LiveSessions,
}

async fn pair(shared: &Shared, transport: Transport, urls: &Urls) -> Result<Pair, Error> {
    let (handout, _) = mpsc::unbounded_channel();
    let (changing, watching) = match transport {
        Transport::One => {
            let live = LiveSessions::new();
            (live.clone(), live)
        }
        Transport::Redis => {
            let mut channels = Vec::new();
            for _ in 0..2 {
                let pool = Pool::new(Config::from_url(&urls.redis)?, None, None, None, 2)?;
                pool.init().await?;
                channels.push(LiveSessions::new().with_channel(RedisChannel::new(pool)));
            }
            let watching = channels.pop().expect("two");
            (channels.pop().expect("two"), watching)
        }
        Transport::Postgres => {
            let mut channels = Vec::new();
            for _ in 0..2 {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect(&urls.postgres)
                    .await?;
                channels.push(LiveSessions::new().with_channel(PostgresChannel::new(pool)));
            }
            let watching = channels.pop().expect("two");
            (channels.pop().expect("two"), watching)
        }
    };
    let changer = app(shared, changing, handout.clone());
    let watcher = if transport == Transport::One {
        changer.clone()
    } else {
        app(shared, watching.clone(), handout)
    };
    Ok(Pair {
        changer,
        watcher,
        watching,
    })
}

// ---------------------------------------------------------------- latency

/// Which connections are open while the password changes.
#[derive(Clone, Copy)]
struct Load {
    /// Connections of the changed user, all of which must close.
    of_user: usize,
    /// Connections of other users, which stay open.
    others: usize,
}

impl Load {
    fn name(self) -> String {
        if self.others == 0 {
            format!("{} of the user", self.of_user)
        } else {
            format!("{} of the user + {} of others", self.of_user, self.others)
        }
    }
}

struct Latencies {
    /// Per round: from the password change's response to the last close.
    last: Vec<Duration>,
    /// Per round: to the first close.
    first: Vec<Duration>,
    /// Rounds where not every connection closed within the timeout.
    timeouts: usize,
}

/// Sessions a user's connections are spread over (tabs per session =
/// connections / sessions).
fn sessions_for(connections: usize) -> usize {
    connections.clamp(1, 100)
}

async fn latency(
    transport: Transport,
    load: Load,
    rounds: usize,
    urls: &Urls,
    next_user: &mut u64,
) -> Result<Latencies, Error> {
    let shared = Shared::new();
    let pair = pair(&shared, transport, urls).await?;

    // Connections of other users: ten per user, one session each.
    let (others_end, _others_ended) = mpsc::unbounded_channel();
    for index in 0..load.others.div_ceil(10) {
        let cookie = sign_in(&pair.watcher, FIRST_OTHER + index as u64).await;
        for _ in 0..10.min(load.others - index * 10) {
            read_to_end(
                open(&pair.watcher, "/events", &cookie).await,
                others_end.clone(),
            );
        }
    }

    let mut result = Latencies {
        last: Vec::new(),
        first: Vec::new(),
        timeouts: 0,
    };
    // Round 0 warms up (the channel's listener connects on the first watch).
    for round in 0..=rounds {
        let user = *next_user;
        *next_user += 1;
        let sessions = sessions_for(load.of_user);
        let mut cookies = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            cookies.push(sign_in(&pair.watcher, user).await);
        }
        let (ends, mut ended) = mpsc::unbounded_channel();
        for index in 0..load.of_user {
            let body = open(&pair.watcher, "/events", &cookies[index % sessions]).await;
            read_to_end(body, ends.clone());
        }
        drop(ends);
        assert_eq!(pair.watching.watch_count(), load.of_user + load.others);
        // Let the check each new watch gets run out.
        let settle = 50 + (load.of_user + load.others) as u64 / 40;
        tokio::time::sleep(Duration::from_millis(settle)).await;
        if round == 0 {
            // The listener of the watching instance needs a moment.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        let changed = change_password(&pair.changer, user).await;
        let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
        let (mut first, mut last, mut closed) = (None, changed, 0);
        while closed < load.of_user {
            match tokio::time::timeout_at(deadline, ended.recv()).await {
                Ok(Some(at)) => {
                    first.get_or_insert(at);
                    last = last.max(at);
                    closed += 1;
                }
                Ok(None) | Err(_) => break,
            }
        }
        if round == 0 {
            continue;
        }
        if closed < load.of_user {
            result.timeouts += 1;
            continue;
        }
        result.last.push(last.saturating_duration_since(changed));
        result
            .first
            .push(first.map_or(Duration::ZERO, |at| at.saturating_duration_since(changed)));
    }
    Ok(result)
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

// ----------------------------------------------------------------- memory

/// Resident set size, from `/proc/self/statm` (pages of 4 KiB).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

struct Memory {
    watch: f64,
    sse: f64,
}

/// Bytes per bare `SessionWatch`, then per SSE response on top of 10k
/// watches: RSS deltas while everything is kept.
async fn memory(count: usize) -> Memory {
    let shared = Shared::new();
    let (handout, mut handed) = mpsc::unbounded_channel();
    let router = app(&shared, LiveSessions::new(), handout);
    let cookie = sign_in(&router, 1).await;
    // Warm the allocator and the tables up, then let go.
    {
        let mut warm = Vec::new();
        for _ in 0..1000 {
            warm.push(open(&router, "/events", &cookie).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before = rss_bytes();
    let mut watches = Vec::with_capacity(count);
    for _ in 0..count {
        drop(open(&router, "/watch", &cookie).await);
        watches.push(handed.recv().await.expect("a watch"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_watches = rss_bytes();
    let mut bodies = Vec::with_capacity(count);
    for _ in 0..count {
        bodies.push(open(&router, "/events", &cookie).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_sse = rss_bytes();
    drop((watches, bodies));
    #[allow(clippy::cast_precision_loss)]
    Memory {
        watch: with_watches.saturating_sub(before) as f64 / count as f64,
        sse: with_sse.saturating_sub(with_watches) as f64 / count as f64,
    }
}

// -------------------------------------------------------------------- CPU

/// CPU time of this process (user + system), from `/proc/self/stat`
/// (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Share of one core this process used over `wait`.
async fn cpu_share(wait: Duration) -> f64 {
    let (cpu, wall) = (cpu_time(), Instant::now());
    tokio::time::sleep(wait).await;
    (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64()
}

struct Idle {
    period: Duration,
    watches: usize,
    seconds: u64,
    share: f64,
}

/// CPU share with `count` watches (each of its own user and session) and
/// the backstop at `period`, over `seconds`, after the set-up.
async fn idle(count: usize, period: Duration, seconds: u64) -> Idle {
    let shared = Shared::new();
    let (handout, _) = mpsc::unbounded_channel();
    let router = app(
        &shared,
        LiveSessions::new().with_recheck_period(period),
        handout,
    );
    let mut bodies = Vec::with_capacity(count);
    for index in 0..count {
        let cookie = sign_in(&router, FIRST_OTHER + index as u64).await;
        bodies.push(open(&router, "/events", &cookie).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let share = cpu_share(Duration::from_secs(seconds)).await;
    drop(bodies);
    Idle {
        period,
        watches: count,
        seconds,
        share,
    }
}

// ----------------------------------------------------------------- report

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Error> {
    let rounds: usize = env_or("LIVE_ROUNDS", 50);
    let count: usize = env_or("LIVE_WATCHES", 10_000);
    let idle_secs: u64 = env_or("LIVE_IDLE_SECS", 70);
    let urls = Urls {
        redis: env_or("LIVE_REDIS_URL", "redis://127.0.0.1:6379".to_owned()),
        postgres: env_or(
            "LIVE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test".to_owned(),
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let mut md = String::new();
    let mut csv = String::from("section,configuration,metric,value\n");

    // The idle process first: nothing has run yet.
    eprintln!("idle: 0 watches");
    let baseline = runtime.block_on(cpu_share(Duration::from_secs(10)));
    eprintln!("memory: {count} watches");
    let memory = runtime.block_on(memory(count));

    let mut latencies = Vec::new();
    let mut next_user = FIRST_CHANGED;
    let loads = [
        Load {
            of_user: 1,
            others: 0,
        },
        Load {
            of_user: count,
            others: 0,
        },
        Load {
            of_user: 10,
            others: count - 10,
        },
    ];
    for transport in [Transport::One, Transport::Redis, Transport::Postgres] {
        for load in loads {
            eprintln!("latency: {}, {}", transport.name(), load.name());
            let result =
                runtime.block_on(latency(transport, load, rounds, &urls, &mut next_user))?;
            latencies.push((transport, load, result));
        }
    }

    eprintln!("idle: {count} watches, 30 s and 1 s periods");
    let idles = [
        runtime.block_on(idle(count, Duration::from_secs(30), idle_secs)),
        runtime.block_on(idle(count, Duration::from_secs(1), 10)),
    ];

    // The report.
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(
        md,
        "Command: `cargo bench -p tower-sessions-auth-bench --bench live` \
         (LIVE_ROUNDS={rounds}, LIVE_WATCHES={count}, LIVE_IDLE_SECS={idle_secs})  \n\
         In process, tokio multi-thread runtime with 2 workers; took {} s; \
         /proc/loadavg before: {}, after: {}.\n",
        started.elapsed().as_secs(),
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load_after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );

    let _ = writeln!(md, "### Memory per connection ({count} open, RSS deltas)\n");
    let _ = writeln!(md, "| what | bytes per connection |\n|---|--:|");
    let _ = writeln!(
        md,
        "| bare `SessionWatch` (handed out of the handler) | {:.0} |",
        memory.watch
    );
    let _ = writeln!(
        md,
        "| SSE response (`watch.sse`, body kept, unread) | {:.0} |",
        memory.sse
    );
    let _ = writeln!(
        md,
        "| of which the HTTP/SSE response beyond the watch | {:.0} |\n",
        memory.sse - memory.watch
    );
    let _ = writeln!(csv, "memory,watch,bytes_per_connection,{:.0}", memory.watch);
    let _ = writeln!(csv, "memory,sse,bytes_per_connection,{:.0}", memory.sse);

    let _ = writeln!(
        md,
        "### From the password change's response to the close of every connection of the user\n\n\
         {rounds} rounds per row (after one warm-up round); the user's connections are spread \
         over up to 100 sessions; other users hold 10 connections per session.\n"
    );
    let _ = writeln!(
        md,
        "| instances | open connections | p50 last close ms | p99 last close ms | max ms | p50 first close ms | timeouts | goal | verdict |\n\
         |---|---|--:|--:|--:|--:|--:|--:|---|"
    );
    for (transport, load, result) in &latencies {
        let p99 = percentile(&result.last, 99.0);
        let met = result.timeouts == 0 && !result.last.is_empty() && p99 <= transport.goal();
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | p99 ≤ {} ms | {} |",
            transport.name(),
            load.name(),
            ms(percentile(&result.last, 50.0)),
            ms(p99),
            ms(percentile(&result.last, 100.0)),
            ms(percentile(&result.first, 50.0)),
            result.timeouts,
            transport.goal().as_millis(),
            if met { "met" } else { "missed" },
        );
        let config = format!("{} / {}", transport.name(), load.name());
        for (metric, value) in [
            ("p50_last_ms", ms(percentile(&result.last, 50.0))),
            ("p99_last_ms", ms(p99)),
            ("max_last_ms", ms(percentile(&result.last, 100.0))),
            ("p50_first_ms", ms(percentile(&result.first, 50.0))),
        ] {
            let _ = writeln!(csv, "latency,{config},{metric},{value:.3}");
        }
        let _ = writeln!(csv, "latency,{config},timeouts,{}", result.timeouts);
    }

    let _ = writeln!(
        md,
        "\n### Idle cost of the backstop (each watch of its own user and session)\n\n\
         | watches | period | measured over | CPU, % of one core | minus the idle process | goal |\n\
         |--:|--:|--:|--:|--:|---|\n\
         | 0 | – | 10 s | {:.2} | – | |",
        baseline * 100.0
    );
    for idle in &idles {
        let _ = writeln!(
            md,
            "| {} | {} s | {} s | {:.2} | {:.2} | {} |",
            idle.watches,
            idle.period.as_secs(),
            idle.seconds,
            idle.share * 100.0,
            (idle.share - baseline) * 100.0,
            if idle.period == Duration::from_secs(30) {
                if idle.share - baseline < 0.02 {
                    "< 2%: met"
                } else {
                    "< 2%: missed"
                }
            } else {
                ""
            },
        );
        let _ = writeln!(
            csv,
            "idle,{} watches / period {} s,cpu_share_percent,{:.3}",
            idle.watches,
            idle.period.as_secs(),
            idle.share * 100.0
        );
    }
    let _ = writeln!(
        csv,
        "idle,0 watches,cpu_share_percent,{:.3}",
        baseline * 100.0
    );

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/results");
    let stem = format!("{dir}/live-{}", today());
    std::fs::write(format!("{stem}.md"), &md)?;
    std::fs::write(format!("{stem}.csv"), &csv)?;
    println!("{md}");
    eprintln!("wrote {stem}.md and {stem}.csv");
    Ok(())
}
