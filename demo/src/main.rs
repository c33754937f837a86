//! Run with `cargo run -p tower-sessions-auth-demo`, then open the URL it
//! prints.
//!
//! A small complete web application on tower-sessions-auth: sign up, sign
//! in, change the password (every other session of the user ends, this one
//! stays), sign out other devices, delete the account; HTML pages and a
//! small JSON API. Users and sessions live in SQLite by default, or in
//! Postgres and Redis.
//!
//! Configuration, all optional:
//!
//! - `DEMO_ADDR`: listen address, default `127.0.0.1:3000`.
//! - `DATABASE_URL`: the users' database, `sqlite://…` (default
//!   `sqlite://demo.sqlite?mode=rwc`) or `postgres://…`.
//! - `SESSION_STORE_URL`: the session store, `redis://…`,
//!   `redis-cluster://host:port?node=host:port&node=host:port` (a Redis
//!   Cluster: one node, then others as `node=` parameters), `postgres://…`
//!   or `sqlite://…`; default: the users' database.
//! - `SESSION_SECRET`: at least 32 bytes. Unset, a random secret is
//!   generated once and kept in `demo-secret.key` beside the SQLite file
//!   (in the current directory for Postgres).
//! - `SESSION_SECRET_FALLBACKS`: older secrets, comma-separated (so no
//!   secret may hold a comma), still accepted while sessions move to the
//!   new one.
//! - `DEMO_SECURE_COOKIES=1`: `Secure` session cookie (serve over HTTPS),
//!   and `Secure` pass cookie.
//! - `DEMO_FAST_PATH=0`: turns the fast path off. On by default (`1`) with
//!   a Redis or Postgres session store: a signed-in response sets a pass
//!   beside the session cookie (`demo_pass`, `__Host-demo_pass` with
//!   secure cookies), a sealed cookie trusted for a minute, and a request
//!   that brings it is signed in without reading the session store or the
//!   registry. Every sign-out, revocation and password change reaches the
//!   other processes through the store's channel and refuses the older
//!   passes there. Never on SQLite, whatever the variable says: SQLite has
//!   no channel between processes. Any value but `0` and `1` is refused.
//! - `DEMO_ORIGIN`: the site's origin (`https://demo.example`) for the
//!   cross-site `POST` check; default: the request's `Host`.
//! - `DEMO_PG_SCHEMA`: a Postgres schema for the demo's tables.
//! - `DEMO_MAX_SESSIONS`: the most sessions per user; signing in one more
//!   ends the least recently seen. Default: no limit.
//! - `DEMO_RECHECK_SECS`: how often, in seconds, every open event stream
//!   and WebSocket is checked again (decimals allowed, at least 0.1):
//!   the longest one outlives its session when no notice reached this
//!   process. Default: 30.
//! - `DEMO_IDLE_SECS`: a signed-in session unused this many seconds ends.
//!   Default: 1800 (30 minutes), or `DEMO_MAX_AGE_SECS` when that is
//!   shorter. A remembered session ("Keep me signed in") ends after a week
//!   unused instead. Set longer than `DEMO_MAX_AGE_SECS` (or than its
//!   default), the demo refuses to start.
//! - `DEMO_MAX_AGE_SECS`: a signed-in session ends this many seconds after
//!   sign-in, however active. Default: 43200 (12 hours). A remembered
//!   session lives `DEMO_REMEMBER_DAYS` instead.
//! - `DEMO_REMEMBER_DAYS`: how many days a remembered session and its
//!   cookie live. Default: 30.
//! - `DEMO_SUDO_SECS`: signing other devices out needs a sign-in or a
//!   password confirmation (`/confirm`) this many seconds old at most.
//!   Default: 600.
//! - `DEMO_DBSC=1`: device-bound sessions. A sign-in offers the browser
//!   to bind the session to a key it keeps (`Secure-Session-Registration`,
//!   registration at `/dbsc/register`); once bound, the session is signed
//!   in only with the short-lived `demo_bound` cookie, which the browser
//!   renews at `/dbsc/refresh` by signing a challenge with that key, and
//!   its session cookie alone is anonymous. Any value but `0` and `1` is
//!   refused. Default: off.
//! - `DEMO_BOUND_SECS`: how many seconds the `demo_bound` cookie lives.
//!   Default: 600.
//! - `RUST_LOG`: log filter, default `info`.
//!
//! An administrator's commands, on the same stores (same variables),
//! announced to the running servers through the session store's channel:
//!
//! - `tower-sessions-auth-demo sign-out USERNAME`: ends every session of
//!   the user; their open event streams and WebSockets end too. Prints how
//!   many sessions ended; an unknown user is an error (exit 1).
//! - `tower-sessions-auth-demo sign-out --all`: the same for every user.

use std::{env, io::IsTerminal as _, time::Duration};

use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use tower_sessions_auth_demo::{
    admin, build, secret, serve, Config, StartError, DEFAULT_BOUND_LIFETIME, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_KEEP_ALIVE, DEFAULT_MAX_AGE, DEFAULT_RECHECK_PERIOD, DEFAULT_REMEMBER_DAYS,
    DEFAULT_SUDO_WINDOW,
};

/// Logs at `info`, but not Postgres' notices ("relation already exists,
/// skipping") that every start produces.
const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn";

#[tokio::main]
async fn main() -> Result<(), StartError> {
    let args: Vec<String> = env::args().skip(1).collect();
    match admin::parse(&args) {
        Ok(None) => {}
        Ok(Some(command)) => std::process::exit(administer(&command).await),
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_LOG_FILTER.into()),
        )
        // Colour codes only where a person reads them, not in a log file.
        .with_ansi(std::io::stdout().is_terminal())
        .init();

    let addr = var("DEMO_ADDR").unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let database_url = database_url();
    let keys = secret::load_keys(
        &database_url,
        var("SESSION_SECRET").as_deref(),
        var("SESSION_SECRET_FALLBACKS").as_deref(),
    )?;
    let (idle_timeout, max_age) = session_lengths(
        optional_whole_seconds("DEMO_IDLE_SECS")?,
        optional_whole_seconds("DEMO_MAX_AGE_SECS")?,
    )?;
    let config = Config {
        session_store_url: var("SESSION_STORE_URL"),
        postgres_schema: var("DEMO_PG_SCHEMA"),
        keys,
        secure_cookies: var("DEMO_SECURE_COOKIES").is_some_and(|value| value == "1"),
        fast_path: switch("DEMO_FAST_PATH", var("DEMO_FAST_PATH").as_deref(), true)?,
        origin: var("DEMO_ORIGIN"),
        argon2: argon2::Params::default(),
        max_sessions: match var("DEMO_MAX_SESSIONS") {
            Some(max) => Some(
                max.parse()
                    .ok()
                    .filter(|max| *max > 0)
                    .ok_or("DEMO_MAX_SESSIONS must be a whole number, 1 or more")?,
            ),
            None => None,
        },
        recheck_period: match var("DEMO_RECHECK_SECS") {
            Some(secs) => seconds(&secs)
                .ok_or("DEMO_RECHECK_SECS must be a number of seconds, 0.1 or more")?,
            None => DEFAULT_RECHECK_PERIOD,
        },
        keep_alive: DEFAULT_KEEP_ALIVE,
        idle_timeout,
        max_age,
        remember_days: match var("DEMO_REMEMBER_DAYS") {
            Some(days) => days
                .trim()
                .parse()
                .ok()
                .filter(|days| (1..=3650).contains(days))
                .ok_or("DEMO_REMEMBER_DAYS must be a whole number of days, 1 to 3650")?,
            None => DEFAULT_REMEMBER_DAYS,
        },
        sudo_window: whole_seconds("DEMO_SUDO_SECS", DEFAULT_SUDO_WINDOW)?,
        device_binding: match switch("DEMO_DBSC", var("DEMO_DBSC").as_deref(), false)? {
            true => Some(whole_seconds("DEMO_BOUND_SECS", DEFAULT_BOUND_LIFETIME)?),
            false => None,
        },
        database_url,
    };

    let router = build(config).await?;
    let listener = TcpListener::bind(&addr).await?;
    let url = format!("http://{}/", listener.local_addr()?);
    announce(&url);
    serve(listener, router, async {
        // Without a signal handler there is nothing to wait for; the
        // process then ends by being killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await?;
    Ok(())
}

/// Runs an administrator's command on the stores the server would use;
/// returns the exit code: 0 done, 1 refused or failed (one line on
/// standard error). Logs go to standard error too, warnings only, so that
/// standard output is the one line of the result.
#[allow(clippy::print_stdout, clippy::print_stderr)] // The command's interface.
async fn administer(command: &admin::SignOut) -> i32 {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let stores = admin::Stores {
        database_url: database_url(),
        session_store_url: var("SESSION_STORE_URL"),
        postgres_schema: var("DEMO_PG_SCHEMA"),
    };
    match admin::sign_out(command, &stores).await {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(error) => {
            eprintln!("sign-out: {error}");
            1
        }
    }
}

/// A period of `text` seconds (`30`, `0.5`), at least the 100 ms that
/// live sessions accept.
fn seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|period| *period >= Duration::from_millis(100))
}

/// An on/off variable `name`: `1` on, `0` off, unset `default`.
fn switch(name: &str, value: Option<&str>, default: bool) -> Result<bool, String> {
    match value.map(str::trim) {
        None => Ok(default),
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(_) => Err(format!(
            "{name} must be 0 (off) or 1 (on); the default is {}",
            u8::from(default)
        )),
    }
}

/// The whole seconds, 1 or more, in the variable `name`, else `default`.
fn whole_seconds(name: &str, default: Duration) -> Result<Duration, String> {
    Ok(optional_whole_seconds(name)?.unwrap_or(default))
}

/// The whole seconds, 1 or more, in the variable `name`; `None` when unset.
fn optional_whole_seconds(name: &str) -> Result<Option<Duration>, String> {
    var(name)
        .map(|secs| {
            secs.trim()
                .parse()
                .ok()
                .filter(|secs| *secs >= 1)
                .map(Duration::from_secs)
                .ok_or_else(|| format!("{name} must be a whole number of seconds, 1 or more"))
        })
        .transpose()
}

/// The idle timeout and the maximum age of a signed-in session, from
/// `DEMO_IDLE_SECS` and `DEMO_MAX_AGE_SECS` (`None` when unset).
///
/// An idle timeout nobody set yields to a shorter maximum age, which then
/// is the idle timeout too: `DEMO_MAX_AGE_SECS=5` alone is a plain setting.
/// An idle timeout that was set longer than the maximum age is refused,
/// whether that age was set or is the default: only the user knows which
/// of the two they meant.
fn session_lengths(
    idle: Option<Duration>,
    max_age: Option<Duration>,
) -> Result<(Duration, Duration), String> {
    let age = max_age.unwrap_or(DEFAULT_MAX_AGE);
    match idle {
        None => Ok((DEFAULT_IDLE_TIMEOUT.min(age), age)),
        Some(idle) if idle <= age => Ok((idle, age)),
        Some(idle) => {
            let age_source = if max_age.is_some() {
                ""
            } else {
                ", its default"
            };
            Err(format!(
                "DEMO_IDLE_SECS ({} s) must not be longer than DEMO_MAX_AGE_SECS ({} s{age_source}): \
                 shorten the first or lengthen the second",
                idle.as_secs(),
                age.as_secs(),
            ))
        }
    }
}

/// The users' database: `DATABASE_URL`, by default a SQLite file in the
/// current directory.
fn database_url() -> String {
    var("DATABASE_URL").unwrap_or_else(|| "sqlite://demo.sqlite?mode=rwc".to_owned())
}

/// An environment variable; unset and empty are the same.
fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|value| !value.is_empty())
}

/// Tells the user where to point the browser.
#[allow(clippy::print_stdout)] // Printing the URL is this program's interface.
fn announce(url: &str) {
    tracing::info!(%url, "demo listening");
    println!("Demo running at {url}  (Ctrl-C to stop)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recheck_seconds_are_whole_or_decimal_and_100_ms_at_least() {
        assert_eq!(seconds("30"), Some(Duration::from_secs(30)));
        assert_eq!(seconds(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(seconds("0.1"), Some(Duration::from_millis(100)));
        for refused in ["0.05", "0", "-1", "NaN", "inf", "1e30", "30s", ""] {
            assert_eq!(seconds(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn a_switch_is_1_or_0_or_its_default_and_other_values_are_refused() {
        for default in [true, false] {
            assert_eq!(switch("DEMO_X", None, default), Ok(default));
            assert_eq!(switch("DEMO_X", Some("1"), default), Ok(true));
            assert_eq!(switch("DEMO_X", Some(" 0 "), default), Ok(false));
            for refused in ["off", "false", "no", "2", "00"] {
                let error = switch("DEMO_X", Some(refused), default).unwrap_err();
                assert!(error.starts_with("DEMO_X must be"), "{refused:?}: {error}");
            }
        }
    }

    #[test]
    fn an_unset_idle_timeout_yields_to_a_shorter_maximum_age() {
        let secs = Duration::from_secs;
        let lengths = [
            (None, None, (DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_AGE)),
            (None, Some(secs(5)), (secs(5), secs(5))),
            (None, Some(secs(1800)), (secs(1800), secs(1800))),
            (None, Some(secs(7200)), (DEFAULT_IDLE_TIMEOUT, secs(7200))),
            (Some(secs(60)), None, (secs(60), DEFAULT_MAX_AGE)),
            (Some(secs(5)), Some(secs(5)), (secs(5), secs(5))),
            (Some(secs(2)), Some(secs(4)), (secs(2), secs(4))),
        ];
        for (idle, max_age, expected) in lengths {
            assert_eq!(
                session_lengths(idle, max_age),
                Ok(expected),
                "{idle:?} {max_age:?}"
            );
        }
    }

    #[test]
    fn an_idle_timeout_set_longer_than_the_maximum_age_is_refused_naming_both() {
        let secs = Duration::from_secs;
        assert_eq!(
            session_lengths(Some(secs(10)), Some(secs(5))),
            Err(
                "DEMO_IDLE_SECS (10 s) must not be longer than DEMO_MAX_AGE_SECS (5 s): \
                 shorten the first or lengthen the second"
                    .to_owned()
            )
        );
        assert_eq!(
            session_lengths(Some(secs(86_400)), None),
            Err(
                "DEMO_IDLE_SECS (86400 s) must not be longer than DEMO_MAX_AGE_SECS \
                 (43200 s, its default): shorten the first or lengthen the second"
                    .to_owned()
            )
        );
    }
}
