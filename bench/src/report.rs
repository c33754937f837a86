//! The report of a driver run: a Markdown table with the ratios to
//! tower-sessions alone and the issue's targets, every raw sample as CSV,
//! and an SVG chart.
//!
//! The chart is plain SVG written here rather than drawn with a plotting
//! crate: a few bar groups need no font loading or native libraries, and
//! the file stays a readable, diffable text file in the repository.

use std::{fmt::Write as _, path::Path, time::Duration};

use tower_sessions_auth_bench::Kind;

use crate::{drive::Setup, redis_stats::CommandStats, Error};

/// One wrk run against one server.
pub(crate) struct Sample {
    /// Requests completed in the measured run.
    pub(crate) requests: u64,
    /// Its wall-clock length, in seconds.
    pub(crate) seconds: f64,
    /// What Redis served meanwhile, on a Redis setup.
    pub(crate) redis: Option<CommandStats>,
    /// (f): the pass no longer signed a request in after this run.
    pub(crate) pass_refused: bool,
    pub(crate) rps: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) cpu_us_per_request: f64,
    /// Server CPU seconds per wall second: near 1.0 when the server, not
    /// wrk, is the bottleneck.
    pub(crate) cpu_utilisation: f64,
    /// Non-2xx answers and socket errors: any makes the run suspect.
    pub(crate) failed: u64,
}

/// All rounds of one server.
pub(crate) struct Measurement {
    pub(crate) setup: Setup,
    pub(crate) kind: Kind,
    pub(crate) samples: Vec<Sample>,
}

/// The medians over the rounds.
#[derive(Clone, Copy)]
struct Summary {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu: f64,
    cpu_min: f64,
    cpu_max: f64,
    utilisation: f64,
    failed: u64,
    pass_refused: usize,
}

impl Measurement {
    fn summary(&self) -> Summary {
        let pick = |f: fn(&Sample) -> f64| median(self.samples.iter().map(f).collect());
        let cpus = self.samples.iter().map(|s| s.cpu_us_per_request);
        Summary {
            rps: pick(|s| s.rps),
            p50_us: pick(|s| s.p50_us as f64),
            p99_us: pick(|s| s.p99_us as f64),
            cpu: pick(|s| s.cpu_us_per_request),
            cpu_min: cpus.clone().fold(f64::INFINITY, f64::min),
            cpu_max: cpus.fold(0.0, f64::max),
            utilisation: pick(|s| s.cpu_utilisation),
            failed: self.samples.iter().map(|s| s.failed).sum(),
            pass_refused: self.samples.iter().filter(|s| s.pass_refused).count(),
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// What the run was, for the report's header.
pub(crate) struct Context {
    pub(crate) rounds: usize,
    pub(crate) duration: u64,
    pub(crate) warmup: u64,
    pub(crate) connections: u32,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) elapsed: Duration,
    pub(crate) pinned: String,
    pub(crate) command: String,
}

/// Prints the report and writes `latest.md`, `latest.csv` and `latest.svg`
/// into `out`.
pub(crate) fn write(
    out: &Path,
    context: &Context,
    measurements: &[Measurement],
) -> Result<(), Error> {
    let markdown = markdown(context, measurements);
    println!("\n{markdown}");
    std::fs::create_dir_all(out).map_err(|err| format!("creating {}: {err}", out.display()))?;
    for (name, text) in [
        ("latest.md", markdown),
        ("latest.csv", csv(measurements)),
        ("latest.svg", svg(measurements)),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|err| format!("writing {}: {err}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn find(measurements: &[Measurement], setup: Setup, kind: Kind) -> Option<Summary> {
    measurements
        .iter()
        .find(|m| m.setup == setup && m.kind == kind && !m.samples.is_empty())
        .map(Measurement::summary)
}

fn setups(measurements: &[Measurement]) -> Vec<Setup> {
    let mut setups: Vec<Setup> = Vec::new();
    for m in measurements {
        if !setups.contains(&m.setup) {
            setups.push(m.setup);
        }
    }
    setups
}

fn markdown(context: &Context, measurements: &[Measurement]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Command: `cargo run --release -p tower-sessions-auth-bench -- {}`  ",
        context.command
    );
    let _ = writeln!(
        md,
        "{} rounds × ({} s warm-up + {} s measured) per server, wrk -t1 -c{}, {}; \
         took {:.0} s; load average (1, 5, 15 min) before: {}, after: {}.\n",
        context.rounds,
        context.warmup,
        context.duration,
        context.connections,
        context.pinned,
        context.elapsed.as_secs_f64(),
        context.load_before,
        context.load_after,
    );
    // Only the load before counts: the load after includes the benchmark
    // itself (wrk and the server keep both cores busy, about 2).
    let busy = context
        .load_before
        .split_whitespace()
        .next()
        .and_then(|first| first.parse::<f64>().ok())
        .is_some_and(|first| first >= crate::drive::QUIET_LOAD);
    if busy {
        let _ = writeln!(
            md,
            "**Warning: the 1-minute load average was {} or more: other work shared the cores, \
             so these numbers are noisy. Rerun when the machine is quiet (`--wait-quiet 600`).**\n",
            crate::drive::QUIET_LOAD
        );
    }
    md.push_str(
        "| store, sessions | server | req/s | p50 µs | p99 µs | server CPU µs/req (min–max) | CPU busy | req/s ÷ (b) | p99 ÷ (b) | CPU ÷ (b) |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for setup in setups(measurements) {
        let baseline = find(measurements, setup, Kind::Sessions);
        for kind in Kind::ALL {
            let Some(s) = find(measurements, setup, kind) else {
                continue;
            };
            let ratio = |value: f64, base: fn(&Summary) -> f64| {
                baseline.map_or_else(|| "–".to_owned(), |b| format!("{:.2}", value / base(&b)))
            };
            let _ = writeln!(
                md,
                "| {} | ({}) {} | {:.0} | {:.0} | {:.0} | {:.2} ({:.2}–{:.2}) | {:.0}% | {} | {} | {} |{}",
                setup.label(),
                kind.letter(),
                kind.name(),
                s.rps,
                s.p50_us,
                s.p99_us,
                s.cpu,
                s.cpu_min,
                s.cpu_max,
                s.utilisation * 100.0,
                ratio(s.rps, |b| b.rps),
                ratio(s.p99_us, |b| b.p99_us),
                ratio(s.cpu, |b| b.cpu),
                if s.failed > 0 {
                    format!(" **{} failed responses**", s.failed)
                } else {
                    String::new()
                },
            );
            if s.pass_refused > 0 {
                md.pop();
                let _ = writeln!(
                    md,
                    " **the pass no longer signed in after {} of the rounds**",
                    s.pass_refused
                );
            }
        }
    }
    md.push('\n');
    md.push_str(&commands(measurements));
    md.push_str(&targets(measurements));
    md
}

/// The commands Redis served during a server's measured runs, summed over
/// its rounds.
fn redis_totals(m: &Measurement) -> Option<(CommandStats, u64, f64)> {
    let mut total = CommandStats::default();
    let (mut requests, mut seconds) = (0, 0.0);
    for sample in &m.samples {
        total.add(sample.redis.as_ref()?);
        requests += sample.requests;
        seconds += sample.seconds;
    }
    (!m.samples.is_empty()).then_some((total, requests, seconds))
}

/// Commands that are not a request's: the fast path's heartbeat (a
/// `PUBLISH` a second from the (f) server, whichever server is measured)
/// and the driver's own `INFO` (one per run).
const NOT_PER_REQUEST: [&str; 2] = ["publish", "info"];

/// The table of Redis commands per request, when there were Redis runs.
fn commands(measurements: &[Measurement]) -> String {
    let rows: Vec<_> = measurements
        .iter()
        .filter_map(|m| redis_totals(m).map(|totals| (m, totals)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "Redis commands during the measured runs (`INFO commandstats` before and after each run, \
         every client of the server; summed over the rounds):\n\n\
         | store, sessions | server | requests | commands | per request | per request without PUBLISH and INFO | PUBLISH per second | by command |\n\
         |---|---|--:|--:|--:|--:|--:|---|\n",
    );
    for (m, (stats, requests, seconds)) in rows {
        let others: u64 = NOT_PER_REQUEST.iter().map(|name| stats.calls(name)).sum();
        let per_request = |calls: u64| calls as f64 / requests.max(1) as f64;
        let _ = writeln!(
            md,
            "| {} | ({}) {} | {requests} | {} | {:.4} | {:.4} | {:.2} | {} |",
            m.setup.label(),
            m.kind.letter(),
            m.kind.name(),
            stats.total(),
            per_request(stats.total()),
            per_request(stats.total() - others),
            stats.calls("publish") as f64 / seconds.max(1e-9),
            stats.describe(),
        );
    }
    md.push('\n');
    md
}

/// The issue's targets, each with the measured ratio.
fn targets(measurements: &[Measurement]) -> String {
    let mut lines = String::from("| target | measured | verdict |\n|---|--:|---|\n");
    let mut check = |what: String, value: Option<f64>, ok: fn(f64) -> bool| {
        let (measured, verdict) = match value {
            Some(v) if v.is_finite() => (format!("{v:.3}"), if ok(v) { "met" } else { "missed" }),
            _ => ("–".to_owned(), "not measured"),
        };
        let _ = writeln!(lines, "| {what} | {measured} | {verdict} |");
    };
    let all = setups(measurements);
    for setup in all.iter().copied() {
        let get = |kind| find(measurements, setup, kind);
        let (b, c, d) = (get(Kind::Sessions), get(Kind::AxumLogin), get(Kind::Tsa));
        let ratio = |x: Option<Summary>, y: Option<Summary>, f: fn(&Summary) -> f64| {
            x.zip(y).map(|(x, y)| f(&x) / f(&y))
        };
        let label = setup.label();
        check(
            format!("{label}: CPU/req (d) ÷ (b) ≤ 1.10"),
            ratio(d, b, |s| s.cpu),
            |v| v <= 1.10,
        );
        // Issue #19: the fast path against tower-sessions alone, and the
        // registry's check without it on Redis.
        let (e, f) = (get(Kind::TsaRegistry), get(Kind::TsaFast));
        if f.is_some() {
            match setup.store {
                crate::serve::StoreKind::Memory => check(
                    format!("{label}: CPU/req (f) ÷ (b) ≤ 1.00"),
                    ratio(f, b, |s| s.cpu),
                    |v| v <= 1.00,
                ),
                crate::serve::StoreKind::Redis => check(
                    format!("{label}: CPU/req (f) ÷ (b) ≤ 0.50"),
                    ratio(f, b, |s| s.cpu),
                    |v| v <= 0.50,
                ),
                // The issue sets no target on Postgres.
                crate::serve::StoreKind::Postgres => {}
            }
        }
        if e.is_some() && setup.store == crate::serve::StoreKind::Redis {
            check(
                format!("{label}: CPU/req (e) ÷ (b) ≤ 1.20"),
                ratio(e, b, |s| s.cpu),
                |v| v <= 1.20,
            );
        }
        let fast_commands = measurements
            .iter()
            .find(|m| m.setup == setup && m.kind == Kind::TsaFast)
            .and_then(redis_totals);
        if let Some((stats, requests, _)) = fast_commands {
            let others: u64 = NOT_PER_REQUEST.iter().map(|name| stats.calls(name)).sum();
            check(
                format!(
                    "{label}: Redis commands per (f) request, without PUBLISH and INFO, = 0 \
                     ({} over {requests} requests)",
                    stats.total() - others
                ),
                Some((stats.total() - others) as f64 / requests.max(1) as f64),
                |v| v == 0.0,
            );
        }
        if c.is_some() {
            check(
                format!("{label}: req/s (d) ÷ (b) ≥ 0.90"),
                ratio(d, b, |s| s.rps),
                |v| v >= 0.90,
            );
            check(
                format!("{label}: req/s (d) ÷ (c) ≥ 1.4"),
                ratio(d, c, |s| s.rps),
                |v| v >= 1.4,
            );
            check(
                format!("{label}: p99 (d) ÷ (b) ≤ 1.15"),
                ratio(d, b, |s| s.p99_us),
                |v| v <= 1.15,
            );
        }
    }
    let mut stores: Vec<_> = all.iter().map(|s| s.store).collect();
    stores.dedup();
    for store in stores {
        let small = all.iter().find(|s| s.store == store && s.sessions == 1);
        let large = all
            .iter()
            .filter(|s| s.store == store && s.sessions > 1)
            .max_by_key(|s| s.sessions);
        if let (Some(&small), Some(&large)) = (small, large) {
            let cpu = |setup| find(measurements, setup, Kind::Tsa).map(|s| s.cpu);
            check(
                format!(
                    "(d) CPU/req, {} ÷ {} − 1 within ±10%",
                    large.label(),
                    small.label()
                ),
                cpu(large).zip(cpu(small)).map(|(l, s)| l / s - 1.0),
                |v| v.abs() < 0.10,
            );
        }
    }
    lines
}

fn csv(measurements: &[Measurement]) -> String {
    let mut csv = String::from(
        "store,sessions,server,round,rps,p50_us,p99_us,cpu_us_per_request,cpu_utilisation,failed,\
         requests,redis_commands,redis_commands_by_name,pass_refused_after\n",
    );
    for m in measurements {
        for (round, s) in m.samples.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{},{},{:.1},{},{},{:.3},{:.3},{},{},{},{},{}",
                m.setup.store.name(),
                m.setup.sessions,
                m.kind.name(),
                round + 1,
                s.rps,
                s.p50_us,
                s.p99_us,
                s.cpu_us_per_request,
                s.cpu_utilisation,
                s.failed,
                s.requests,
                s.redis
                    .as_ref()
                    .map_or_else(String::new, |stats| stats.total().to_string()),
                s.redis
                    .as_ref()
                    .map_or_else(String::new, CommandStats::describe),
                s.pass_refused,
            );
        }
    }
    csv
}

fn colour(kind: Kind) -> &'static str {
    match kind {
        Kind::Axum => "#9e9e9e",
        Kind::Sessions => "#4e79a7",
        Kind::AxumLogin => "#f28e2b",
        Kind::Tsa => "#59a14f",
        Kind::TsaRegistry => "#b07aa1",
        Kind::TsaFast => "#e15759",
    }
}

/// A round step for axis ticks: 1, 2 or 5 times a power of ten.
fn nice_step(max: f64) -> f64 {
    let raw = max / 5.0;
    let power = 10_f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(power * 10.0)
}

/// Two bar charts side by side: server CPU per request and req/s, one group
/// per store and session count, one bar per server.
fn svg(measurements: &[Measurement]) -> String {
    const WIDTH: f64 = 1000.0;
    const HEIGHT: f64 = 440.0;
    let setups = setups(measurements);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
"##
    );
    // Legend: the kinds measured, three to a line.
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|&kind| measurements.iter().any(|m| m.kind == kind))
        .collect();
    for (index, kind) in kinds.iter().enumerate() {
        let x = 70.0 + (index % 3) as f64 * 290.0;
        let y = 14.0 + (index / 3) as f64 * 18.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{y}" width="14" height="14" fill="{}"/><text x="{}" y="{}">({}) {}</text>"#,
            colour(*kind),
            x + 20.0,
            y + 12.0,
            kind.letter(),
            kind.name()
        );
    }
    type Metric = (&'static str, fn(&Summary) -> f64);
    let panels: [Metric; 2] = [
        ("Server CPU per request (µs, lower is better)", |s| s.cpu),
        ("Requests per second, thousands (higher is better)", |s| {
            s.rps / 1000.0
        }),
    ];
    for (index, (title, value)) in panels.iter().enumerate() {
        let left = 60.0 + index as f64 * WIDTH / 2.0;
        let (top, bottom, width) = (80.0, HEIGHT - 60.0, WIDTH / 2.0 - 90.0);
        let max = measurements
            .iter()
            .filter(|m| !m.samples.is_empty())
            .map(|m| value(&m.summary()))
            .fold(0.0, f64::max)
            .max(1e-9);
        let step = nice_step(max);
        let top_value = (max / step).ceil() * step;
        let y_of = |v: f64| bottom - v / top_value * (bottom - top);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="62" font-size="14" font-weight="bold">{title}</text>"#,
            left
        );
        let mut tick = 0.0;
        while tick <= top_value + step / 2.0 {
            let y = y_of(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
                left + width,
                left - 6.0,
                y + 4.0,
                if step < 1.0 {
                    format!("{tick:.1}")
                } else {
                    format!("{tick:.0}")
                }
            );
            tick += step;
        }
        let group_width = width / setups.len().max(1) as f64;
        for (g, setup) in setups.iter().enumerate() {
            let bars: Vec<(Kind, Summary)> = Kind::ALL
                .into_iter()
                .filter_map(|kind| find(measurements, *setup, kind).map(|s| (kind, s)))
                .collect();
            let bar_width = (group_width - 16.0) / bars.len().max(4) as f64;
            let start =
                left + g as f64 * group_width + (group_width - bar_width * bars.len() as f64) / 2.0;
            for (b, (kind, summary)) in bars.iter().enumerate() {
                let v = value(summary);
                let x = start + b as f64 * bar_width;
                let y = y_of(v);
                let label = if index == 0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.0}")
                };
                let _ = writeln!(
                    svg,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{label}</text>"#,
                    x + 1.0,
                    bar_width - 2.0,
                    bottom - y,
                    colour(*kind),
                    x + bar_width / 2.0,
                    y - 3.0,
                );
            }
            // Store on one line, session count below: long labels would
            // run into the next group.
            let label = setup.label();
            let (store, sessions) = label.split_once(", ").unwrap_or((&label, ""));
            let centre = left + (g as f64 + 0.5) * group_width;
            let _ = writeln!(
                svg,
                r#"<text x="{centre:.1}" y="{:.1}" text-anchor="middle">{store}</text><text x="{centre:.1}" y="{:.1}" text-anchor="middle">{sessions}</text>"#,
                bottom + 16.0,
                bottom + 30.0,
            );
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#333"/>"##,
            left + width
        );
    }
    svg.push_str("</svg>\n");
    svg
}
