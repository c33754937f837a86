//! The macro benchmark of tower-sessions-auth: real servers under wrk.
//!
//! Run it (from the workspace root; about 7 minutes with the defaults):
//!
//! ```text
//! cargo run --release -p tower-sessions-auth-bench -- drive
//! ```
//!
//! `drive` (the default) starts one server per kind and configuration, pins
//! each server to CPU 1 and wrk to CPU 0, checks every server, then loads
//! them in turn for several rounds and reports req/s, latency and server CPU
//! time per request. `serve` is the server side; `drive` starts it from this
//! same executable, so the two always come from the same build.
//! `staleness` measures how long a fast-path pass outlives its session on
//! another instance. `--help` lists the options.

mod drive;
mod inproc;
mod redis_stats;
mod report;
mod serve;
mod staleness;

use std::process::ExitCode;

/// A boxed error with a message that says what failed.
type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mode = if args.first().is_some_and(|arg| !arg.starts_with('-')) {
        args.remove(0)
    } else {
        "drive".to_owned()
    };
    let result = match mode.as_str() {
        "drive" => drive::main(&args),
        "serve" => serve::main(&args),
        "inproc" => inproc::main(&args),
        "staleness" => staleness::main(&args),
        other => Err(format!(
            "unknown mode {other:?}; use `drive`, `serve`, `inproc` or `staleness`"
        )
        .into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Options as `--name value` pairs, and `--help`.
struct Options<'a> {
    args: &'a [String],
}

impl<'a> Options<'a> {
    fn new(args: &'a [String], usage: &str) -> Result<Self, Error> {
        if args.iter().any(|arg| arg == "--help" || arg == "-h") {
            println!("{usage}");
            std::process::exit(0);
        }
        if let Some(odd) = args.iter().step_by(2).find(|arg| !arg.starts_with("--")) {
            return Err(format!("unexpected argument {odd:?}\n\n{usage}").into());
        }
        Ok(Self { args })
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.args
            .iter()
            .position(|arg| arg.strip_prefix("--") == Some(name))
            .and_then(|at| self.args.get(at + 1))
            .map(String::as_str)
    }

    fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|err| format!("--{name} {value:?}: {err}").into()),
        }
    }
}
