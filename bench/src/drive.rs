//! `drive`: starts every server, checks it, loads it with wrk in
//! interleaved rounds, and reports.
//!
//! Why it is built this way:
//! - wrk, not a Rust load generator: a well-known tool whose numbers others
//!   can compare, and whose cost stays off the server's core.
//! - CPU 1 for the servers, CPU 0 for wrk (and this driver): the server's
//!   CPU time per request is then not disturbed by the client, and req/s is
//!   bounded by one server core, as in the issue's reference numbers.
//! - CPU time from `/proc/<pid>/stat` (user + system), read right before and
//!   after each measured run: it counts the server's own work per request,
//!   kernel networking included, whatever else the machine does.
//! - Interleaved rounds, with the order rotated each round: a slow phase of
//!   the machine (other builds) spreads over all servers instead of hitting
//!   one; the report takes the median of the rounds.
//! - All servers start (and seed their sessions) before the first
//!   measurement and stay up, idle, between their turns: seeding 100,000
//!   sessions once instead of once per round keeps a full run short.
//! - On Redis, the server's `INFO commandstats` is read right before and
//!   after each measured run: every command Redis served meanwhile, from
//!   any client, by name. Nothing is left out: the fast path's heartbeat
//!   (a `PUBLISH` per second from the (f) server, measured or idle) and the
//!   driver's own `INFO` show up as what they are.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tower_sessions_auth_bench::{Kind, PASS_COOKIE};

use crate::{
    redis_stats::{CommandStats, RedisStats},
    report::{self, Measurement, Sample},
    serve::{redis_url, StoreKind},
    Error, Options,
};

const USAGE: &str = "\
tower-sessions-auth-bench drive: the macro benchmark

  --rounds N        rounds over all servers (default 5)
  --duration S      seconds of each measured wrk run (default 5)
  --warmup S        seconds of unmeasured load before each run (default 1)
  --connections N   wrk connections, one wrk thread (default 16)
  --configs LIST    comma-separated STORE-SESSIONS, e.g. memory-1,memory-100k,
                    redis-1,redis-100k (the default); SESSIONS sessions and as
                    many users; axum-login and plain axum run only on memory
  --kinds LIST      comma-separated servers (default axum,tower-sessions,
                    axum-login,tower-sessions-auth,tower-sessions-auth+registry,
                    tower-sessions-auth+fast; or letters, e.g. b,d,e,f)
  --redis-url URL   the servers' Redis, whose INFO commandstats is read around
                    each Redis run (default $BENCH_REDIS_URL or
                    redis://127.0.0.1:6379/9)
  --out DIR         where latest.md, latest.csv and latest.svg go
                    (default bench/results)
  --wait-quiet S    before starting, wait up to S seconds for the 1-minute
                    load average to fall under 0.5 (default 0: do not wait)";

/// The 1-minute load average under which a 2-core machine is quiet enough
/// for these numbers; above it the report carries a warning.
pub(crate) const QUIET_LOAD: f64 = 0.5;

/// The lua script wrk runs: pre-formats one request per session cookie,
/// cycles through them, and prints the exact numbers at the end (wrk's
/// human-readable summary rounds them).
const WRK_SCRIPT: &str = r#"
local prepared, count, at = {}, 0, 0
function init(args)
  for cookie in io.lines(args[1]) do
    count = count + 1
    prepared[count] = wrk.format("GET", "/me", { ["Cookie"] = cookie })
  end
end
function request()
  at = at % count + 1
  return prepared[at]
end
function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format("RESULT %.0f %.0f %.0f %.0f %.0f %.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#;

/// One store and session count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Setup {
    pub(crate) store: StoreKind,
    pub(crate) sessions: u64,
}

impl Setup {
    fn parse(text: &str) -> Result<Self, Error> {
        let (store, count) = text
            .split_once('-')
            .ok_or_else(|| format!("config {text:?}: expected STORE-SESSIONS, e.g. memory-100k"))?;
        let sessions = match count.strip_suffix('k') {
            Some(thousands) => thousands.parse::<u64>().map(|n| n * 1000),
            None => count.parse(),
        }
        .map_err(|err| format!("config {text:?}: {err}"))?;
        Ok(Self {
            store: store.parse()?,
            sessions,
        })
    }

    pub(crate) fn label(self) -> String {
        let count = if self.sessions >= 1000 && self.sessions.is_multiple_of(1000) {
            format!("{}k", self.sessions / 1000)
        } else {
            self.sessions.to_string()
        };
        format!(
            "{}, {count} session{}",
            self.store.name(),
            if self.sessions == 1 { "" } else { "s" }
        )
    }

    /// The kinds that make sense on this store: Redis (and Postgres) only
    /// for (b), (d), (e) and (f), and plain axum has no store at all.
    fn runs(self, kind: Kind) -> bool {
        match self.store {
            StoreKind::Memory => true,
            StoreKind::Redis | StoreKind::Postgres => matches!(
                kind,
                Kind::Sessions | Kind::Tsa | Kind::TsaRegistry | Kind::TsaFast
            ),
        }
    }
}

/// A running server under test.
struct Server {
    setup: Setup,
    kind: Kind,
    child: Child,
    port: u16,
    cookies: PathBuf,
}

pub(crate) fn main(args: &[String]) -> Result<(), Error> {
    let options = Options::new(args, USAGE)?;
    let rounds: usize = options.parse("rounds", 5)?;
    let duration: u64 = options.parse("duration", 5)?;
    let warmup: u64 = options.parse("warmup", 1)?;
    let connections: u32 = options.parse("connections", 16)?;
    let setups = options
        .get("configs")
        .unwrap_or("memory-1,memory-100k,redis-1,redis-100k")
        .split(',')
        .map(Setup::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let kinds = options.get("kinds").map_or_else(
        || Ok(Kind::ALL.to_vec()),
        |list| {
            list.split(',')
                .map(str::parse)
                .collect::<Result<Vec<Kind>, _>>()
        },
    )?;
    let out = options.get("out").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("results"),
        PathBuf::from,
    );

    let wait_quiet: u64 = options.parse("wait-quiet", 0)?;
    let redis = setups
        .iter()
        .any(|setup| setup.store == StoreKind::Redis)
        .then(|| RedisStats::new(&redis_url(&options)))
        .transpose()?;

    ensure_wrk()?;
    wait_for_quiet(Duration::from_secs(wait_quiet));
    let pinning = Pinning::detect();
    pinning.pin_self()?;
    let work = std::env::temp_dir().join(format!("tsa-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|err| format!("creating {}: {err}", work.display()))?;
    let script = work.join("cycle-cookies.lua");
    std::fs::write(&script, WRK_SCRIPT).map_err(|err| format!("writing the wrk script: {err}"))?;

    let load_before = load_average();
    println!("load average before: {load_before}");
    let started = Instant::now();

    let mut servers = Vec::new();
    let result = (|| -> Result<Vec<Measurement>, Error> {
        for &setup in &setups {
            for &kind in kinds.iter().filter(|&&kind| setup.runs(kind)) {
                let server = Server::start(setup, kind, &work, &pinning)?;
                server.check()?;
                println!(
                    "started {:<24} {:<22} port {} (checked: 200 with cookie, 401 without)",
                    kind.name(),
                    setup.label(),
                    server.port
                );
                servers.push(server);
            }
        }
        let mut measurements: Vec<Measurement> = servers
            .iter()
            .map(|server| Measurement {
                setup: server.setup,
                kind: server.kind,
                samples: Vec::new(),
            })
            .collect();
        let wrk = Wrk {
            script: &script,
            connections,
            pinning: &pinning,
            redis: redis.as_ref(),
        };
        for round in 0..rounds {
            // Rotate the order, so no server always runs first or last.
            let count = servers.len();
            for step in 0..count {
                let index = (step + round) % count;
                let server = &servers[index];
                wrk.run(server, warmup)?;
                let mut sample = wrk.measure(server, duration)?;
                if server.kind == Kind::TsaFast {
                    // A pass refused once (the channel silent for three
                    // heartbeats, say) stays refused: wrk's cookies would
                    // take the full path from then on.
                    if let Err(err) = server.check() {
                        println!("warning: after the run, {err}");
                        sample.pass_refused = true;
                    }
                }
                println!(
                    "round {}/{rounds} {:<24} {:<22} {:>8.0} req/s  p50 {:>5} µs  p99 {:>5} µs  {:>5.2} µs CPU/req{}{}",
                    round + 1,
                    server.kind.name(),
                    server.setup.label(),
                    sample.rps,
                    sample.p50_us,
                    sample.p99_us,
                    sample.cpu_us_per_request,
                    sample.redis.as_ref().map_or_else(String::new, |commands| format!(
                        "  Redis: {}",
                        commands.describe()
                    )),
                    if sample.failed > 0 {
                        format!("  ({} FAILED responses)", sample.failed)
                    } else {
                        String::new()
                    },
                );
                measurements[index].samples.push(sample);
            }
        }
        Ok(measurements)
    })();
    for server in servers {
        server.stop();
    }
    let measurements = result?;
    let _ = std::fs::remove_dir_all(&work);

    let load_after = load_average();
    println!("load average after: {load_after}");
    let context = report::Context {
        rounds,
        duration,
        warmup,
        connections,
        load_before,
        load_after,
        elapsed: started.elapsed(),
        pinned: pinning.describe(),
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
    };
    report::write(&out, &context, &measurements)
}

/// Installs wrk from Debian when it is missing and we may (root), or says
/// how to.
fn ensure_wrk() -> Result<(), Error> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    if !is_root {
        return Err("wrk is not installed: run `sudo apt-get install -y wrk`".into());
    }
    println!("wrk is missing: apt-get install -y wrk");
    let installed = |update: bool| -> bool {
        if update {
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        }
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    if installed(false) || installed(true) {
        Ok(())
    } else {
        Err("could not install wrk: run `apt-get install -y wrk`".into())
    }
}

/// Which CPUs the servers and wrk run on.
struct Pinning {
    /// `None` when taskset is missing or the machine has one CPU.
    cpus: Option<(usize, usize)>,
}

impl Pinning {
    fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let taskset = Command::new("taskset").arg("--version").output().is_ok();
        if !taskset {
            println!("warning: taskset (util-linux) is missing; nothing is pinned");
        }
        Self {
            cpus: (taskset && cores >= 2).then_some((0, 1)),
        }
    }

    fn describe(&self) -> String {
        match self.cpus {
            Some((client, server)) => {
                format!("server on CPU {server}, wrk and driver on CPU {client}")
            }
            None => "not pinned".to_owned(),
        }
    }

    /// Keeps the driver off the server's core.
    fn pin_self(&self) -> Result<(), Error> {
        if let Some((client, _)) = self.cpus {
            let status = Command::new("taskset")
                .args(["-pc", &client.to_string(), &std::process::id().to_string()])
                .stdout(Stdio::null())
                .status()
                .map_err(|err| format!("taskset: {err}"))?;
            if !status.success() {
                return Err("taskset could not pin the driver".into());
            }
        }
        Ok(())
    }

    /// A command that runs `program` on `cpu` (taskset execs it, so the
    /// child's pid is the program's).
    fn command(&self, cpu: fn((usize, usize)) -> usize, program: &Path) -> Command {
        match self.cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu(cpus).to_string()).arg(program);
                command
            }
            None => Command::new(program),
        }
    }
}

impl Server {
    fn start(setup: Setup, kind: Kind, work: &Path, pinning: &Pinning) -> Result<Self, Error> {
        let exe = std::env::current_exe().map_err(|err| format!("own executable: {err}"))?;
        let cookies = work.join(format!(
            "{}-{}-{}.cookies",
            setup.store.name(),
            setup.sessions,
            kind.name()
        ));
        let sessions = if kind.has_sessions() {
            setup.sessions
        } else {
            1
        };
        let mut child = pinning
            .command(|(_, server)| server, &exe)
            .arg("serve")
            .args(["--kind", kind.name(), "--store", setup.store.name()])
            .args(["--sessions", &sessions.to_string()])
            .args(["--users", &setup.sessions.to_string()])
            .arg("--cookies")
            .arg(&cookies)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("starting the {kind} server: {err}"))?;
        let stdout = child.stdout.take().ok_or("server stdout not captured")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = read
            .ok()
            .and_then(|_| line.trim().strip_prefix("ready ")?.parse::<u16>().ok());
        let mut server = Self {
            setup,
            kind,
            child,
            port: 0,
            cookies,
        };
        match port {
            Some(port) => {
                server.port = port;
                Ok(server)
            }
            None => {
                server.stop();
                Err(format!(
                    "the {kind} server ({}) did not start; its stderr is above",
                    setup.label()
                )
                .into())
            }
        }
    }

    /// Over real TCP, as wrk will ask: `200` and the user's name with the
    /// first session's cookie, `401` without a cookie.
    fn check(&self) -> Result<(), Error> {
        let first = std::fs::read_to_string(&self.cookies)
            .map_err(|err| format!("reading {}: {err}", self.cookies.display()))?;
        let cookie = first.lines().next().ok_or("no cookie written")?;
        let (status, headers, body) = http_get(self.port, Some(cookie))?;
        // Every kind signs user 1 into the first session (plain axum answers
        // user 1 to any cookie).
        let expected = "user1";
        if status != 200 || body != expected {
            return Err(format!(
                "{} ({}): GET /me with a valid cookie answered {status} {body:?}, expected 200 {expected:?}",
                self.kind,
                self.setup.label()
            )
            .into());
        }
        // The fast path sets no cookie when the pass signed the request
        // in; the full path would set a new pass (or remove it).
        let pass_sent = cookie.contains(&format!("{PASS_COOKIE}="));
        if self.kind == Kind::TsaFast && !pass_sent {
            return Err(format!("{}: the cookies carry no pass", self.setup.label()).into());
        }
        if pass_sent
            && headers
                .lines()
                .any(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
        {
            return Err(format!(
                "{} ({}): GET /me with a pass answered with a Set-Cookie: the fast path did not \
                 sign it in",
                self.kind,
                self.setup.label()
            )
            .into());
        }
        let (status, _, _) = http_get(self.port, None)?;
        if status != 401 {
            return Err(format!(
                "{} ({}): GET /me without a cookie answered {status}, expected 401",
                self.kind,
                self.setup.label()
            )
            .into());
        }
        Ok(())
    }

    fn cpu_ticks(&self) -> Result<u64, Error> {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|err| format!("reading /proc/{pid}/stat: {err}"))?;
        // Fields after the parenthesised command name start at field 3;
        // utime and stime are fields 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |n: usize| -> Result<u64, Error> {
            fields
                .get(n - 3)
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| format!("/proc/{pid}/stat: no field {n}").into())
        };
        Ok(field(14)? + field(15)?)
    }

    /// Closes the server's stdin (it then deletes its sessions and exits);
    /// kills it if it is still there after a minute.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: the {} server did not stop; killing it", self.kind);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-request HTTP/1.1 client: enough for the checks, no dependency.
/// Returns the status, the header lines and the body.
fn http_get(port: u16, cookie: Option<&str>) -> Result<(u16, String, String), Error> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .map_err(|err| format!("connecting to port {port}: {err}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|err| format!("socket timeout: {err}"))?;
    let cookie = cookie.map_or_else(String::new, |cookie| format!("Cookie: {cookie}\r\n"));
    write!(
        stream,
        "GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie}Connection: close\r\n\r\n"
    )
    .map_err(|err| format!("sending a check request: {err}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|err| format!("reading a check response: {err}"))?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((status, head.to_owned(), body.to_owned()))
}

/// How wrk is run.
struct Wrk<'a> {
    script: &'a Path,
    connections: u32,
    pinning: &'a Pinning,
    /// Where to count the Redis commands of Redis runs.
    redis: Option<&'a RedisStats>,
}

/// What one wrk run reported.
struct WrkResult {
    requests: u64,
    duration_us: u64,
    p50_us: u64,
    p99_us: u64,
    failed: u64,
}

impl Wrk<'_> {
    fn run(&self, server: &Server, seconds: u64) -> Result<WrkResult, Error> {
        let output = self
            .pinning
            .command(|(client, _)| client, Path::new("wrk"))
            .args(["-t1", "-c", &self.connections.to_string()])
            .args(["-d", &format!("{seconds}s"), "--timeout", "5s", "-s"])
            .arg(self.script)
            .arg(format!("http://127.0.0.1:{}/me", server.port))
            .arg("--")
            .arg(&server.cookies)
            .output()
            .map_err(|err| format!("running wrk: {err}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let numbers: Vec<u64> = stdout
            .lines()
            .find_map(|line| line.strip_prefix("RESULT "))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        match numbers[..] {
            [requests, duration_us, p50_us, p99_us, status_errors, socket_errors] => {
                Ok(WrkResult {
                    requests,
                    duration_us,
                    p50_us,
                    p99_us,
                    failed: status_errors + socket_errors,
                })
            }
            _ => Err(format!(
                "wrk printed no result: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into()),
        }
    }

    fn measure(&self, server: &Server, seconds: u64) -> Result<Sample, Error> {
        let redis = self
            .redis
            .filter(|_| server.setup.store == StoreKind::Redis);
        let commands_before = redis.map(RedisStats::read).transpose()?;
        let before = server.cpu_ticks()?;
        let result = self.run(server, seconds)?;
        let after = server.cpu_ticks()?;
        let commands = match (redis, commands_before) {
            (Some(redis), Some(before)) => Some(CommandStats::between(&before, &redis.read()?)),
            _ => None,
        };
        let cpu_seconds = after.saturating_sub(before) as f64 / clock_ticks_per_second();
        let requests = result.requests.max(1) as f64;
        let wall = result.duration_us.max(1) as f64 / 1e6;
        Ok(Sample {
            requests: result.requests,
            seconds: wall,
            redis: commands,
            pass_refused: false,
            rps: requests / wall,
            p50_us: result.p50_us,
            p99_us: result.p99_us,
            cpu_us_per_request: cpu_seconds * 1e6 / requests,
            cpu_utilisation: cpu_seconds / wall,
            failed: result.failed,
        })
    }
}

/// `CLK_TCK`, the unit of `/proc/<pid>/stat` times (100 on Linux).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Waits until the 1-minute load average is under [`QUIET_LOAD`], at most
/// `limit`: other builds on the same cores would be measured too.
fn wait_for_quiet(limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut said = false;
    while one_minute_load().is_some_and(|load| load >= QUIET_LOAD) && Instant::now() < deadline {
        if !said {
            println!(
                "waiting for the load average to fall under {QUIET_LOAD} (now {})",
                load_average()
            );
            said = true;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// The 1-minute load average, if readable.
fn one_minute_load() -> Option<f64> {
    load_average().split_whitespace().next()?.parse().ok()
}

/// The first three fields of `/proc/loadavg`.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
