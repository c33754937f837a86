//! `staleness`: how long a fast-path pass outlives its session on another
//! instance.
//!
//! Two instances of the (f) application (`serve --kind f`, each its own
//! process) share the session store, the session registry and the
//! live-session channel: Redis (`RedisStore`, `RedisRegistry`,
//! `RedisChannel`) or Postgres (`PostgresStore`, `PostgresRegistry`,
//! `PostgresChannel`), under names of this run's own (a key prefix, a
//! channel, a schema) that are removed at the end. Then, once per ending,
//! with a fresh user each time (a change refuses every pass of its user
//! issued up to the clock skew after it, so a user is not signed in again
//! within a second of its ending):
//!
//! 1. a browser signs in on instance 1 (`POST /login`);
//! 2. its first `GET /me` on instance 2 takes the pass cookie, and a second
//!    one checks that the pass signs it in (no `Set-Cookie` in the answer);
//! 3. a poller sends `GET /me` with both cookies to instance 2 in a closed
//!    loop on one keep-alive connection;
//! 4. after a while (`--poll-before`), a second copy of the browser's
//!    cookies signs out on instance 1 (`POST /logout`);
//! 5. staleness is the time from the moment the sign-out's answer was
//!    read to the moment the first `401` from instance 2 was read; the
//!    requests instance 2 accepted in between are counted too.
//!
//! Both moments are read on this process's monotonic clock, on the same
//! machine as both instances. A `401` read before the sign-out's answer
//! (instance 2 heard the notice before the browser heard the answer) gives
//! a negative staleness, kept as measured.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{
        AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader as TokioBufReader,
    },
    net::TcpStream,
};
use tower_sessions_auth_bench::{today, PASS_COOKIE};

use crate::{
    drive::load_average,
    serve::{check_prefix, database_url, redis_url, StoreKind},
    Error, Options,
};

const USAGE: &str = "\
tower-sessions-auth-bench staleness: how long a fast-path pass outlives its
session on a second instance

  --store S         redis | postgres (default redis)
  --endings N       measured endings (default 1000)
  --warmup N        endings before, not measured (default 20)
  --poll-before MS  how long the poller runs before each ending (default 20)
  --timeout MS      how long to wait for the first refusal (default 5000)
  --out DIR         where the CSV and the summary go (default bench/results)
  --redis-url URL   default $BENCH_REDIS_URL or redis://127.0.0.1:6379/9
  --database-url U  default $BENCH_DATABASE_URL or
                    postgres://postgres@127.0.0.1:5432/test";

/// Responses the poller still reads after the first refusal: any `200`
/// among them would be a pass admitted again.
const AFTER_REFUSAL: usize = 20;

pub(crate) fn main(args: &[String]) -> Result<(), Error> {
    let options = Options::new(args, USAGE)?;
    let store: StoreKind = options.parse("store", StoreKind::Redis)?;
    if store == StoreKind::Memory {
        return Err("--store memory has one instance only: use redis or postgres".into());
    }
    let settings = Settings {
        endings: options.parse("endings", 1000)?,
        warmup: options.parse("warmup", 20)?,
        poll_before: Duration::from_millis(options.parse("poll-before", 20)?),
        timeout: Duration::from_millis(options.parse("timeout", 5000)?),
    };
    let out = options.get("out").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("results"),
        PathBuf::from,
    );
    let prefix = format!("tsa_stale_{}", std::process::id());
    check_prefix(&prefix)?;
    let urls = [
        "--redis-url".to_owned(),
        redis_url(&options),
        "--database-url".to_owned(),
        database_url(&options),
    ];
    let users = settings.warmup + settings.endings + 1;
    let work = std::env::temp_dir().join(format!("tsa-staleness-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|err| format!("creating {}: {err}", work.display()))?;

    let load_before = load_average();
    println!("load average before: {load_before}");
    let started = Instant::now();
    // One after the other: both create the schema and tables, which
    // Postgres does not do twice at once.
    let first = Instance::start(store, &prefix, users, &work.join("1.cookies"), &urls)?;
    let second = match Instance::start(store, &prefix, users, &work.join("2.cookies"), &urls) {
        Ok(second) => second,
        Err(err) => {
            first.stop();
            return Err(err);
        }
    };
    println!(
        "instances on ports {} and {} ({}, prefix {prefix})",
        first.port,
        second.port,
        store.name()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| format!("tokio runtime: {err}"))?;
    let result = runtime.block_on(measure(first.port, second.port, &settings));
    first.stop();
    second.stop();
    if store == StoreKind::Postgres {
        runtime.block_on(drop_schema(&database_url(&options), &prefix))?;
    }
    let _ = std::fs::remove_dir_all(&work);
    let rounds = result?;
    let load_after = load_average();
    println!("load average after: {load_after}");

    let context = Context {
        store,
        settings,
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        elapsed: started.elapsed(),
        load_before,
        load_after,
    };
    write(&out, &context, &rounds)
}

struct Settings {
    endings: usize,
    warmup: usize,
    poll_before: Duration,
    timeout: Duration,
}

/// One instance of the application: a `serve` process.
struct Instance {
    child: Child,
    port: u16,
}

impl Instance {
    fn start(
        store: StoreKind,
        prefix: &str,
        users: usize,
        cookies: &Path,
        urls: &[String],
    ) -> Result<Self, Error> {
        let exe = std::env::current_exe().map_err(|err| format!("own executable: {err}"))?;
        let mut child = Command::new(exe)
            .arg("serve")
            .args(["--kind", "f", "--store", store.name(), "--sessions", "1"])
            .args(["--users", &users.to_string(), "--prefix", prefix])
            .args(urls.iter())
            .arg("--cookies")
            .arg(cookies)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("starting an instance: {err}"))?;
        let stdout = child.stdout.take().ok_or("instance stdout not captured")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = read
            .ok()
            .and_then(|_| line.trim().strip_prefix("ready ")?.parse::<u16>().ok());
        let mut instance = Self { child, port: 0 };
        match port {
            Some(port) => {
                instance.port = port;
                Ok(instance)
            }
            None => {
                instance.stop();
                Err("an instance did not start; its stderr is above".into())
            }
        }
    }

    /// Closes its stdin: it removes its sessions and registry entries and
    /// exits; killed if still there after two minutes.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: an instance did not stop; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drops the run's schema: the session table and the registry's.
async fn drop_schema(url: &str, schema: &str) -> Result<(), Error> {
    use tower_sessions_sqlx_store::sqlx::{self, Connection as _};
    let mut connection = sqlx::PgConnection::connect(url)
        .await
        .map_err(|err| format!("postgres at {url}: {err}"))?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut connection)
        .await
        .map_err(|err| format!("dropping the schema {schema}: {err}"))?;
    Ok(())
}

/// One HTTP/1.1 keep-alive connection: enough for this application's
/// answers (a `Content-Length` body or none).
struct Connection {
    stream: TokioBufReader<TcpStream>,
}

struct Answer {
    status: u16,
    set_cookies: Vec<String>,
}

impl Connection {
    async fn open(port: u16) -> Result<Self, Error> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|err| format!("connecting to port {port}: {err}"))?;
        stream
            .set_nodelay(true)
            .map_err(|err| format!("TCP_NODELAY: {err}"))?;
        Ok(Self {
            stream: TokioBufReader::new(stream),
        })
    }

    async fn send(&mut self, method: &str, path: &str, cookie: &str) -> Result<Answer, Error> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nContent-Length: 0\r\n\r\n"
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(|err| format!("sending {method} {path}: {err}"))?;
        let mut line = String::new();
        self.read_line(&mut line).await?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
        let mut length = 0;
        let mut set_cookies = Vec::new();
        loop {
            line.clear();
            self.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => {
                    length = value
                        .parse()
                        .map_err(|err| format!("Content-Length {value:?}: {err}"))?;
                }
                "transfer-encoding" => {
                    return Err(format!("unexpected Transfer-Encoding: {value}").into())
                }
                "set-cookie" => set_cookies.push(value.to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|err| format!("reading an answer's body: {err}"))?;
        Ok(Answer {
            status,
            set_cookies,
        })
    }

    async fn read_line(&mut self, line: &mut String) -> Result<(), Error> {
        let read = self
            .stream
            .read_line(line)
            .await
            .map_err(|err| format!("reading an answer: {err}"))?;
        if read == 0 {
            return Err("the instance closed the connection".into());
        }
        Ok(())
    }
}

impl Answer {
    /// The `name=value` of the cookie `name` this answer sets, unless it
    /// removes it.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies
            .iter()
            .filter_map(|value| value.split(';').next())
            .find(|pair| {
                pair.split_once('=')
                    .is_some_and(|(key, value)| key == name && !value.is_empty())
            })
            .map(str::to_owned)
    }
}

/// One poller response.
struct Polled {
    sent: Instant,
    read: Instant,
    status: u16,
}

/// What one ending measured.
struct Round {
    user: usize,
    /// The sign-out's own round trip on instance 1.
    logout: Duration,
    /// From the sign-out's answer to the first `401` of instance 2, in
    /// milliseconds (negative when the `401` was read first); `None` when
    /// none came within the timeout.
    staleness_ms: Option<f64>,
    /// `200`s of requests sent after the sign-out's answer was read.
    accepted_sent_after: usize,
    /// `200`s read after the sign-out's answer, whenever sent.
    accepted_read_after: usize,
    /// `200`s after the first `401`: a pass admitted again (must be 0).
    accepted_after_refusal: usize,
    /// `401`s read before the sign-out was sent (must be 0).
    refused_before: usize,
    /// Answers other than `200` and `401`.
    other: usize,
    /// Poller requests in this round.
    polled: usize,
}

async fn measure(first: u16, second: u16, settings: &Settings) -> Result<Vec<Round>, Error> {
    let mut one = Connection::open(first).await?;
    let mut two = Connection::open(second).await?;
    let mut poller = Some(Connection::open(second).await?);
    let mut rounds = Vec::with_capacity(settings.endings);
    // User 1 holds each instance's own check session.
    let total = settings.warmup + settings.endings;
    for index in 0..total {
        let user = index + 2;
        let (round, back) = ending(
            &mut one,
            &mut two,
            poller.take().ok_or("no poller connection")?,
            user,
            settings,
        )
        .await?;
        poller = Some(back);
        if index >= settings.warmup {
            if (index - settings.warmup + 1).is_multiple_of(100) {
                println!(
                    "{} endings; last: {}",
                    index - settings.warmup + 1,
                    round
                        .staleness_ms
                        .map_or_else(|| "timed out".to_owned(), |ms| format!("{ms:.2} ms"))
                );
            }
            rounds.push(round);
        }
    }
    Ok(rounds)
}

/// One sign-in, pass, poll, sign-out and refusal, for `user`. Hands the
/// poller's connection back.
async fn ending(
    one: &mut Connection,
    two: &mut Connection,
    mut poller: Connection,
    user: usize,
    settings: &Settings,
) -> Result<(Round, Connection), Error> {
    let login = one.send("POST", &format!("/login?id={user}"), "").await?;
    let session = match (login.status, login.cookie("id")) {
        (204, Some(session)) => session,
        (status, _) => {
            return Err(format!("sign-in of user {user} on instance 1 answered {status}").into())
        }
    };
    let cookies = take_pass(two, &session, user).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + settings.poll_before + settings.timeout;
    let polling = {
        let (cookies, stop) = (cookies.clone(), stop.clone());
        tokio::spawn(async move {
            let mut polled = Vec::new();
            let mut refused = None;
            let result = loop {
                let sent = Instant::now();
                let answer = match poller.send("GET", "/me", &cookies).await {
                    Ok(answer) => answer,
                    Err(err) => break Err(err),
                };
                let read = Instant::now();
                if answer.status == 401 && refused.is_none() {
                    refused = Some(polled.len());
                }
                polled.push(Polled {
                    sent,
                    read,
                    status: answer.status,
                });
                let done = refused.is_some_and(|at| polled.len() > at + AFTER_REFUSAL);
                if done || read >= deadline || stop.load(Ordering::Relaxed) {
                    break Ok(());
                }
            };
            (result, polled, poller)
        })
    };
    tokio::time::sleep(settings.poll_before).await;
    let logout_sent = Instant::now();
    let logout = one.send("POST", "/logout", &cookies).await;
    let ended = Instant::now();
    if logout.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    let (polling, polled, poller) = polling
        .await
        .map_err(|err| format!("poller task failed: {err}"))?;
    polling?;
    match logout?.status {
        204 => {}
        status => {
            return Err(format!("sign-out of user {user} on instance 1 answered {status}").into())
        }
    }

    let first_refusal = polled.iter().position(|p| p.status == 401);
    let accepted = |p: &&Polled| p.status == 200;
    let round = Round {
        user,
        logout: ended - logout_sent,
        staleness_ms: first_refusal.map(|at| signed_ms(polled[at].read, ended)),
        accepted_sent_after: polled
            .iter()
            .filter(accepted)
            .filter(|p| p.sent >= ended)
            .count(),
        accepted_read_after: polled
            .iter()
            .filter(accepted)
            .filter(|p| p.read >= ended)
            .count(),
        accepted_after_refusal: first_refusal.map_or(0, |at| {
            polled[at..].iter().filter(|p| p.status == 200).count()
        }),
        refused_before: polled
            .iter()
            .filter(|p| p.status == 401 && p.read < logout_sent)
            .count(),
        other: polled
            .iter()
            .filter(|p| p.status != 200 && p.status != 401)
            .count(),
        polled: polled.len(),
    };
    Ok((round, poller))
}

/// `later − earlier` in milliseconds, negative when `later` came first.
fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(after) => after.as_secs_f64() * 1e3,
        None => -(earlier - later).as_secs_f64() * 1e3,
    }
}

/// The browser's first request on instance 2 after sign-in takes its
/// pass; a second checks that the pass signs it in (the fast path sets no
/// cookie then). Asks again while no pass comes (instance 2 not yet
/// hearing its heartbeat), for up to 10 s. Returns both cookies.
async fn take_pass(two: &mut Connection, session: &str, user: usize) -> Result<String, Error> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let first = two.send("GET", "/me", session).await?;
        if first.status != 200 {
            return Err(format!(
                "user {user}'s first GET /me on instance 2 answered {}",
                first.status
            )
            .into());
        }
        if let Some(pass) = first.cookie(PASS_COOKIE) {
            let cookies = format!("{session}; {pass}");
            let second = two.send("GET", "/me", &cookies).await?;
            if second.status == 200 && second.set_cookies.is_empty() {
                return Ok(cookies);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "instance 2 gave user {user} no pass that signs in within 10 s: is its channel \
                 healthy?"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the run was, for the summary's header.
struct Context {
    store: StoreKind,
    settings: Settings,
    command: String,
    elapsed: Duration,
    load_before: String,
    load_after: String,
}

/// The nearest-rank percentile `p` (1–100) of sorted `values`: the
/// smallest value with at least `p`% of the values at or below it.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn write(out: &Path, context: &Context, rounds: &[Round]) -> Result<(), Error> {
    let name = format!("fast-path-staleness-{}-{}", context.store.name(), today());
    let mut csv = String::from(
        "round,user,logout_ms,staleness_ms,accepted_sent_after_end,accepted_read_after_end,\
         accepted_after_refusal,refused_before_end,other_statuses,polled\n",
    );
    for (index, round) in rounds.iter().enumerate() {
        let _ = writeln!(
            csv,
            "{},{},{:.3},{},{},{},{},{},{},{}",
            index + 1,
            round.user,
            round.logout.as_secs_f64() * 1e3,
            round
                .staleness_ms
                .map_or_else(String::new, |ms| format!("{ms:.3}")),
            round.accepted_sent_after,
            round.accepted_read_after,
            round.accepted_after_refusal,
            round.refused_before,
            round.other,
            round.polled,
        );
    }
    let summary = summary(context, rounds);
    println!("\n{summary}");
    std::fs::create_dir_all(out).map_err(|err| format!("creating {}: {err}", out.display()))?;
    for (path, text) in [
        (out.join(format!("{name}.csv")), csv),
        (out.join(format!("{name}.md")), summary),
    ] {
        std::fs::write(&path, text).map_err(|err| format!("writing {}: {err}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn summary(context: &Context, rounds: &[Round]) -> String {
    let mut staleness: Vec<f64> = rounds.iter().filter_map(|r| r.staleness_ms).collect();
    staleness.sort_by(f64::total_cmp);
    let mut accepted: Vec<f64> = rounds
        .iter()
        .map(|r| r.accepted_sent_after as f64)
        .collect();
    accepted.sort_by(f64::total_cmp);
    let mut logout: Vec<f64> = rounds
        .iter()
        .map(|r| r.logout.as_secs_f64() * 1e3)
        .collect();
    logout.sort_by(f64::total_cmp);
    let timed_out = rounds.iter().filter(|r| r.staleness_ms.is_none()).count();
    let sum = |f: fn(&Round) -> usize| rounds.iter().map(f).sum::<usize>();
    let max = |values: &[f64]| values.last().copied().unwrap_or(f64::NAN);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Command: `cargo run --release -p tower-sessions-auth-bench -- {}`  ",
        context.command
    );
    let _ = writeln!(
        md,
        "{} endings after {} unmeasured, the poller running {} ms before each, on {}; took {:.0} s; \
         load average (1, 5, 15 min) before: {}, after: {}.\n",
        rounds.len(),
        context.settings.warmup,
        context.settings.poll_before.as_millis(),
        context.store.name(),
        context.elapsed.as_secs_f64(),
        context.load_before,
        context.load_after,
    );
    md.push_str(
        "| store | endings | staleness p50 ms | p99 ms | max ms | min ms | no refusal within the timeout | \
         accepted after the ending: total | p50 | p99 | max | accepted after the first 401 | 401 before the ending | other statuses | sign-out p50 ms |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let _ = writeln!(
        md,
        "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {timed_out} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {:.2} |",
        context.store.name(),
        rounds.len(),
        percentile(&staleness, 50),
        percentile(&staleness, 99),
        max(&staleness),
        staleness.first().copied().unwrap_or(f64::NAN),
        sum(|r| r.accepted_sent_after),
        percentile(&accepted, 50),
        percentile(&accepted, 99),
        max(&accepted),
        sum(|r| r.accepted_after_refusal),
        sum(|r| r.refused_before),
        sum(|r| r.other),
        percentile(&logout, 50),
    );
    md.push_str(
        "\nStaleness: from reading the sign-out's answer of instance 1 to reading instance 2's \
         first 401 (negative: the 401 was read first). Accepted: 200s of instance 2 to requests \
         sent after the sign-out's answer was read.\n",
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&values, 50), 500.0);
        assert_eq!(percentile(&values, 99), 990.0);
        assert_eq!(percentile(&values, 100), 1000.0);
        assert!(percentile(&[], 50).is_nan());
    }

    #[test]
    fn signed_milliseconds() {
        let now = Instant::now();
        let later = now + Duration::from_millis(3);
        assert!((signed_ms(later, now) - 3.0).abs() < 1e-9);
        assert!((signed_ms(now, later) + 3.0).abs() < 1e-9);
    }
}
