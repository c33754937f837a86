//! "Signed-in devices": the user's sessions from tower-sessions-auth's
//! session registry, as the `/sessions` page and `/api/sessions` show them.
//!
//! People read "Chrome 156 on Linux" and "2 minutes ago": the page names
//! each device from its `User-Agent` (parsed by the `woothee` crate, whose
//! rules ship inside it) and says its times relative to now, the exact time
//! on hover.

use std::time::SystemTime;

use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use tower_sessions_auth::AuthSession;

use super::{error::AppError, times::SessionTimes, users::User};

/// One session, ready to show.
pub(crate) struct Device {
    pub(crate) handle: String,
    pub(crate) current: bool,
    pub(crate) created_at: Moment,
    pub(crate) last_seen_at: Moment,
    /// When it ends if it is not used again (see [`SessionTimes::ends_at`]).
    pub(crate) expires_at: Moment,
    /// Signed in with "keep me signed in".
    pub(crate) remembered: bool,
    /// "Chrome 156 on Linux"; `None` when the browser sent no `User-Agent`
    /// or one the parser does not know.
    pub(crate) name: Option<String>,
    /// The `User-Agent` as the browser sent it (at most 256 characters).
    pub(crate) user_agent: Option<String>,
    /// How it was proved: RFC 8176 factors (`pwd`, `hwk`, `user`…).
    pub(crate) factors: Vec<&'static str>,
    pub(crate) ip: Option<String>,
}

/// A moment of a session, in the three forms the page and the API use.
pub(crate) struct Moment {
    /// RFC 3339, UTC: the API's value and the `datetime` of `<time>`.
    pub(crate) rfc3339: String,
    /// "2026-12-04 14:03:12 UTC", shown on hover.
    pub(crate) exact: String,
    /// "2 minutes ago", "in 3 hours".
    pub(crate) relative: String,
}

impl Moment {
    pub(crate) fn new(at: SystemTime, now: SystemTime) -> Self {
        Self {
            rfc3339: rfc3339(at),
            exact: exact(at),
            relative: relative(at, now),
        }
    }
}

/// The signed-in user's sessions, most recently seen first, without those
/// past their deadline: the layer ends such a session, and removes its
/// entry, only on its next request, which may never come.
pub(crate) async fn listed(
    auth: &AuthSession<User>,
    times: &SessionTimes,
) -> Result<Vec<Device>, AppError> {
    let now = SystemTime::now();
    Ok(auth
        .sessions()
        .await?
        .into_iter()
        .filter_map(|session| {
            let ends_at = times.ends_at(&session);
            // The current session is in use right now.
            (session.current || ends_at > now).then_some((session, ends_at))
        })
        .map(|(session, ends_at)| Device {
            handle: session.handle.to_string(),
            current: session.current,
            remembered: SessionTimes::is_remembered(&session),
            created_at: Moment::new(session.created_at, now),
            last_seen_at: Moment::new(session.last_seen_at, now),
            expires_at: Moment::new(ends_at, now),
            name: session.user_agent.as_deref().and_then(device_name),
            factors: session
                .factors
                .iter()
                .map(|factor| factor.as_str())
                .collect(),
            user_agent: session.user_agent,
            ip: session.ip.map(|ip| ip.to_string()),
        })
        .collect())
}

/// "Chrome 156 on Linux" from a `User-Agent`: the browser, its major
/// version and the operating system, as far as the parser recognises them;
/// `None` when it does not recognise the browser.
pub(crate) fn device_name(user_agent: &str) -> Option<String> {
    const UNKNOWN: &str = "UNKNOWN";
    let parsed = woothee::parser::Parser::new().parse(user_agent)?;
    if parsed.name == UNKNOWN {
        return None;
    }
    let mut name = parsed.name.to_owned();
    if let Some(major) = parsed.version.split('.').next() {
        if !major.is_empty() && major != UNKNOWN {
            name = format!("{name} {major}");
        }
    }
    match parsed.os {
        UNKNOWN => {}
        // woothee's name for it predates Apple's renaming.
        "Mac OSX" => name.push_str(" on macOS"),
        os => name = format!("{name} on {os}"),
    }
    Some(name)
}

/// How far `at` is from `now`, rounded to the unit people use: "just now",
/// "2 minutes ago", "in 3 hours", "in 30 days".
pub(crate) fn relative(at: SystemTime, now: SystemTime) -> String {
    let (secs, past) = match now.duration_since(at) {
        Ok(ago) => (ago.as_secs(), true),
        Err(ahead) => (ahead.duration().as_secs(), false),
    };
    match (span(secs), past) {
        (None, true) => "just now".to_owned(),
        (None, false) => "in a few seconds".to_owned(),
        (Some(span), true) => format!("{span} ago"),
        (Some(span), false) => format!("in {span}"),
    }
}

/// `secs` in minutes, hours, days, months or years, rounded to the
/// nearest; `None` under 45 seconds.
fn span(secs: u64) -> Option<String> {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    // The average Gregorian month and year.
    const MONTH: u64 = 2_629_746;
    const YEAR: u64 = 12 * MONTH;
    let unit = if secs < 45 {
        return None;
    } else if secs < 45 * MINUTE {
        (MINUTE, "minute")
    } else if secs < 22 * HOUR {
        (HOUR, "hour")
    } else if secs < 45 * DAY {
        (DAY, "day")
    } else if secs < 548 * DAY {
        (MONTH, "month")
    } else {
        (YEAR, "year")
    };
    let (length, name) = unit;
    let count = (secs.saturating_add(length / 2) / length).max(1);
    Some(if count == 1 {
        format!("1 {name}")
    } else {
        format!("{count} {name}s")
    })
}

/// `at` in UTC to the second, as people read it: "2026-12-04 14:03:12 UTC".
fn exact(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `at` as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .replace_nanosecond(0)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn a_device_is_named_by_browser_major_version_and_system() {
        let names = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/156.0.0.0 Safari/537.36",
                Some("Chrome 156 on Linux"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
                Some("Firefox 128 on Windows 10"),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
                Some("Safari 17 on macOS"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
                Some("Edge 124 on Windows 10"),
            ),
            ("Laptop browser/1.0", None),
            ("", None),
        ];
        for (agent, expected) in names {
            assert_eq!(device_name(agent).as_deref(), expected, "{agent}");
        }
    }

    #[test]
    fn times_are_said_relative_to_now_in_the_nearest_unit() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let secs = Duration::from_secs;
        let past = [
            (0, "just now"),
            (44, "just now"),
            (45, "1 minute ago"),
            (150, "3 minutes ago"),
            (44 * 60, "44 minutes ago"),
            (45 * 60, "1 hour ago"),
            (3 * 3600 + 1700, "3 hours ago"),
            (22 * 3600, "1 day ago"),
            (2 * 86_400, "2 days ago"),
            (45 * 86_400, "1 month ago"),
            (600 * 86_400, "2 years ago"),
        ];
        for (ago, expected) in past {
            assert_eq!(relative(now - secs(ago), now), expected, "{ago} s ago");
        }
        let ahead = [
            (10, "in a few seconds"),
            (1799, "in 30 minutes"),
            (3 * 3600, "in 3 hours"),
            (30 * 86_400, "in 30 days"),
            (3650 * 86_400, "in 10 years"),
        ];
        for (ahead, expected) in ahead {
            assert_eq!(relative(now + secs(ahead), now), expected, "in {ahead} s");
        }
    }

    #[test]
    fn the_exact_time_is_utc_to_the_second() {
        let at = UNIX_EPOCH + Duration::from_millis(1_796_392_992_750);
        assert_eq!(exact(at), "2026-12-04 14:03:12 UTC");
        assert_eq!(rfc3339(at), "2026-12-04T14:03:12Z");
    }
}
