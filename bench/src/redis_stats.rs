//! Redis' own count of the commands it served (`INFO commandstats`), read
//! by the driver around each measured run on Redis: what the servers under
//! test asked of Redis, counted where it cannot be missed.
//!
//! A plain RESP exchange over a socket (an inline `INFO commandstats`), no
//! client library: the driver is synchronous and needs nothing else.
//! `INFO` counts every client of the server, the driver's own `INFO`
//! included (one per run: the one read before is counted by the one
//! after), so a run shares the server with nothing else for the count to
//! be the servers' alone.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use crate::Error;

/// Where to read the counts.
pub(crate) struct RedisStats {
    address: String,
}

/// Calls per command name (`get`, `publish`, ...), as `INFO commandstats`
/// gives them, or their difference over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CommandStats(pub(crate) BTreeMap<String, u64>);

impl RedisStats {
    /// The server of `url`, `redis://HOST:PORT[/DB]`; an error for any
    /// other form (a password, a cluster), whose commands are not counted
    /// here.
    pub(crate) fn new(url: &str) -> Result<Self, Error> {
        let address = url
            .strip_prefix("redis://")
            .map(|rest| rest.split('/').next().unwrap_or(rest))
            .filter(|address| !address.is_empty() && !address.contains('@'))
            .ok_or_else(|| {
                format!(
                    "cannot count the Redis commands of {url:?}: the driver reads INFO \
                     commandstats of a plain redis://HOST:PORT/DB only"
                )
            })?;
        let address = if address.contains(':') {
            address.to_owned()
        } else {
            format!("{address}:6379")
        };
        let stats = Self { address };
        stats.read()?;
        Ok(stats)
    }

    /// The server's counts now.
    pub(crate) fn read(&self) -> Result<CommandStats, Error> {
        let mut stream = TcpStream::connect(&self.address)
            .map_err(|err| format!("connecting to Redis at {}: {err}", self.address))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|err| format!("socket timeout: {err}"))?;
        stream
            .write_all(b"INFO commandstats\r\n")
            .map_err(|err| format!("sending INFO to Redis: {err}"))?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader
            .read_line(&mut header)
            .map_err(|err| format!("reading INFO from Redis: {err}"))?;
        let length: usize = header
            .trim_end()
            .strip_prefix('$')
            .and_then(|length| length.parse().ok())
            .ok_or_else(|| format!("Redis answered INFO with {header:?}"))?;
        let mut body = vec![0; length];
        reader
            .read_exact(&mut body)
            .map_err(|err| format!("reading INFO from Redis: {err}"))?;
        Ok(CommandStats::parse(&String::from_utf8_lossy(&body)))
    }
}

impl CommandStats {
    /// The `cmdstat_NAME:calls=N,...` lines of an `INFO commandstats`.
    pub(crate) fn parse(info: &str) -> Self {
        Self(
            info.lines()
                .filter_map(|line| {
                    let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
                    let calls = fields
                        .split(',')
                        .find_map(|field| field.strip_prefix("calls="))?
                        .parse()
                        .ok()?;
                    Some((name.to_owned(), calls))
                })
                .collect(),
        )
    }

    /// The calls made between `before` and `after`, by name; names with
    /// none are left out.
    pub(crate) fn between(before: &Self, after: &Self) -> Self {
        Self(
            after
                .0
                .iter()
                .map(|(name, &calls)| {
                    let earlier = before.0.get(name).copied().unwrap_or(0);
                    (name.clone(), calls.saturating_sub(earlier))
                })
                .filter(|&(_, calls)| calls > 0)
                .collect(),
        )
    }

    /// These counts and `other`'s, summed.
    pub(crate) fn add(&mut self, other: &Self) {
        for (name, calls) in &other.0 {
            *self.0.entry(name.clone()).or_default() += calls;
        }
    }

    /// Every call.
    pub(crate) fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The calls of `name`.
    pub(crate) fn calls(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// `get=301234 publish=5 info=1`, the most called first.
    pub(crate) fn describe(&self) -> String {
        let mut by_calls: Vec<(&String, &u64)> = self.0.iter().collect();
        by_calls.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut text = String::new();
        for (name, calls) in by_calls {
            if !text.is_empty() {
                text.push(' ');
            }
            let _ = write!(text, "{name}={calls}");
        }
        if text.is_empty() {
            text.push_str("none");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# Commandstats\r\n\
        cmdstat_get:calls=10,usec=20,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=3,usec=300,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n";
    const AFTER: &str = "# Commandstats\r\n\
        cmdstat_get:calls=1010,usec=2000,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=4,usec=400,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_publish:calls=5,usec=50,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn counts_every_command_between_two_reads() {
        let run = CommandStats::between(&CommandStats::parse(BEFORE), &CommandStats::parse(AFTER));
        assert_eq!(run.calls("get"), 1000);
        assert_eq!(run.calls("info"), 1);
        assert_eq!(run.calls("publish"), 5, "a command first seen after");
        assert_eq!(run.total(), 1006);
        assert_eq!(run.describe(), "get=1000 publish=5 info=1");
        let mut sum = run.clone();
        sum.add(&run);
        assert_eq!(sum.total(), 2012);
        assert_eq!(CommandStats::default().describe(), "none");
    }

    #[test]
    fn only_plain_redis_urls_are_counted() {
        for url in [
            "redis-cluster://127.0.0.1:7000",
            "redis://:secret@127.0.0.1:6379/9",
            "rediss://127.0.0.1:6379",
        ] {
            assert!(RedisStats::new(url).is_err(), "{url}");
        }
    }
}
