//! Time in the session: the clock, the lifetimes of the two sign-in tiers,
//! the re-authentication window, and the options of a sign-in.

use crate::credential::Factor;
use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Where the layer reads the time: the system clock unless
/// [`AuthLayer::with_clock`](crate::AuthLayer::with_clock) set another.
///
/// Implemented for every `Fn() -> SystemTime`, so a test can drive the
/// layer with a clock of its own:
///
/// ```
/// use std::{sync::{atomic::{AtomicU64, Ordering}, Arc}, time::{Duration, UNIX_EPOCH}};
///
/// let seconds = Arc::new(AtomicU64::new(1_800_000_000));
/// let clock = {
///     let seconds = seconds.clone();
///     move || UNIX_EPOCH + Duration::from_secs(seconds.load(Ordering::SeqCst))
/// };
/// // AuthLayer::new(users, keys).with_clock(clock), then move time on:
/// seconds.fetch_add(600, Ordering::SeqCst);
/// # let _ = clock;
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

impl<F: Fn() -> SystemTime + Send + Sync + 'static> Clock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

/// The clock as the configuration holds it.
#[derive(Clone)]
pub(crate) struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    pub(crate) fn new(clock: impl Clock) -> Self {
        Self(Arc::new(clock))
    }

    /// The current time in Unix milliseconds (0 before 1970): the one unit
    /// of time of the session record, the registry and the live checks.
    pub(crate) fn now_ms(&self) -> UnixMillis {
        unix_millis(self.0.now())
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        Self::new(SystemTime::now)
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// A point in time as every part of the crate compares it: milliseconds
/// since the Unix epoch, never negative. The session record, the registry
/// and the live checks read the same clock in the same unit, so a rule
/// never mixes a second-rounded time with a millisecond one.
pub(crate) type UnixMillis = i64;

/// `time` in Unix milliseconds (0 before 1970).
pub(crate) fn unix_millis(time: SystemTime) -> UnixMillis {
    time.duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// A duration in milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The time of Unix milliseconds `at` (the epoch for a negative one).
pub(crate) fn from_unix_millis(at: UnixMillis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0))
}

/// How long a signed-in session lives: an idle timeout counted from its
/// last request, and an absolute lifetime counted from sign-in. Whole
/// seconds.
///
/// Give one per tier to [`AuthLayer::with_lifetimes`](crate::AuthLayer::with_lifetimes)
/// and [`AuthLayer::with_remembered_lifetimes`](crate::AuthLayer::with_remembered_lifetimes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    idle: u64,
    absolute: u64,
}

impl Lifetimes {
    /// A session ends `idle` after its last request, and `absolute` after
    /// sign-in however active it is.
    ///
    /// # Panics
    ///
    /// When either is under one second or over ten years, when they are
    /// not whole seconds, or when `idle` is longer than `absolute` (say so
    /// with an `idle` equal to `absolute`, which never ends a session
    /// before its absolute lifetime does).
    #[must_use]
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        let secs = |duration: Duration, name: &str| {
            assert!(
                duration.subsec_nanos() == 0,
                "Lifetimes::new: the {name} lifetime {duration:?} is not whole seconds"
            );
            assert!(
                (1..=MAX_LIFETIME).contains(&duration.as_secs()),
                "Lifetimes::new: the {name} lifetime {duration:?} is not between 1 s and 10 years"
            );
            duration.as_secs()
        };
        let (idle, absolute) = (secs(idle, "idle"), secs(absolute, "absolute"));
        assert!(
            idle <= absolute,
            "Lifetimes::new: the idle timeout ({idle} s) is longer than the absolute lifetime \
             ({absolute} s)"
        );
        Self { idle, absolute }
    }

    /// The idle timeout.
    #[must_use]
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle)
    }

    /// The absolute lifetime.
    #[must_use]
    pub fn absolute(&self) -> Duration {
        Duration::from_secs(self.absolute)
    }

    /// The idle timeout in milliseconds.
    pub(crate) fn idle_ms(&self) -> i64 {
        secs_to_ms(self.idle)
    }

    /// The absolute lifetime in milliseconds.
    pub(crate) fn absolute_ms(&self) -> i64 {
        secs_to_ms(self.absolute)
    }
}

const MAX_LIFETIME: u64 = 10 * 366 * 24 * 3600;

/// Whole seconds (at most ten years here) in milliseconds.
fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).map_or(i64::MAX, |secs| secs.saturating_mul(1000))
}

/// When a route guarded by [`RecentAuth`](crate::RecentAuth) asks for the
/// user's credentials again, and where it sends a browser to give them.
///
/// Set it with [`AuthLayer::with_reauth`](crate::AuthLayer::with_reauth).
/// Without it the window is 10 minutes and browsers go to the login URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReauthPolicy {
    pub(crate) window: u64,
    pub(crate) confirm_url: Option<String>,
}

impl ReauthPolicy {
    /// Credentials proven less than `window` ago (by sign-in or by
    /// [`reauthenticate`](crate::AuthSession::reauthenticate)) are recent.
    ///
    /// # Panics
    ///
    /// When `window` is under one second, over a year, or not whole
    /// seconds.
    #[must_use]
    pub fn new(window: Duration) -> Self {
        assert!(
            window.subsec_nanos() == 0 && (1..=366 * 24 * 3600).contains(&window.as_secs()),
            "ReauthPolicy::new: the window {window:?} is not whole seconds between 1 s and a year"
        );
        Self {
            window: window.as_secs(),
            confirm_url: None,
        }
    }

    /// Where browsers confirm their credentials: a path or an absolute URL,
    /// to which `next` is appended as [`LoginRequired`](crate::LoginRequired)
    /// appends it to the login URL. Default: the login URL.
    ///
    /// The URL is checked when the policy is given to the layer.
    #[must_use]
    pub fn with_confirm_url(mut self, url: impl Into<String>) -> Self {
        self.confirm_url = Some(url.into());
        self
    }

    /// The window.
    #[must_use]
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window)
    }
}

impl Default for ReauthPolicy {
    fn default() -> Self {
        Self::new(Duration::from_secs(600))
    }
}

/// The options of one sign-in, for [`AuthSession::login_with`](crate::AuthSession::login_with).
///
/// ```
/// use tower_sessions_auth::{credential::Factor, SignIn};
///
/// let options = SignIn::new().remember(true).label("password");
/// let passkey = SignIn::new()
///     .factors([Factor::HWK, Factor::USER])
///     .credential(b"credential id".to_vec());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct SignIn {
    pub(crate) remember: bool,
    pub(crate) label: Option<String>,
    /// Empty: a password.
    pub(crate) factors: Vec<Factor>,
    pub(crate) credential: Option<Vec<u8>>,
}

impl SignIn {
    /// A sign-in for this browser session only, without a label.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` ("keep me signed in"): the session lives by the remembered
    /// [`Lifetimes`], and its cookie persists until its absolute deadline.
    /// `false` (the default): the browser-session tier; the cookie ends
    /// with the browser.
    pub fn remember(mut self, remember: bool) -> Self {
        self.remember = remember;
        self
    }

    /// Names the sign-in in the session registry ("password", "passkey").
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The factors the user proved ([RFC 8176](https://www.rfc-editor.org/rfc/rfc8176)
    /// `amr` values): `[Factor::HWK, Factor::USER]` for a passkey that
    /// verified its user. Default: a password ([`Factor::PWD`]). The session
    /// keeps when each was last proved, for
    /// [`AuthSession::factors`](crate::AuthSession::factors) and routes that
    /// ask for a factor.
    pub fn factors(mut self, factors: impl IntoIterator<Item = Factor>) -> Self {
        self.factors = factors.into_iter().collect();
        self.factors.sort_unstable();
        self.factors.dedup();
        self
    }

    /// The credential that proved the user (a passkey's credential id, a
    /// one-time-password device's id): the session then depends on it, and
    /// ends when the user no longer has it at the version they had now
    /// ([`SessionUser::credential_version`](crate::SessionUser::credential_version)).
    /// An account without a password signs in this way.
    pub fn credential(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.credential = Some(id.into());
        self
    }
}

/// The layer's time settings, as the configuration holds them.
#[derive(Debug, Clone)]
pub(crate) struct TimeConfig {
    pub(crate) clock: SharedClock,
    pub(crate) session: Lifetimes,
    pub(crate) remembered: Lifetimes,
    /// Seconds: the recorded activity is rewritten only when older.
    pub(crate) activity_interval: u64,
    pub(crate) reauth: ReauthPolicy,
}

impl Default for TimeConfig {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        const DAY: u64 = 24 * HOUR;
        Self {
            clock: SharedClock::default(),
            // NIST SP 800-63B (AAL2): 30 minutes idle, 12 hours in all.
            session: Lifetimes::new(
                Duration::from_secs(30 * MINUTE),
                Duration::from_secs(12 * HOUR),
            ),
            remembered: Lifetimes::new(Duration::from_secs(7 * DAY), Duration::from_secs(30 * DAY)),
            activity_interval: MINUTE,
            reauth: ReauthPolicy::default(),
        }
    }
}

impl TimeConfig {
    pub(crate) fn lifetimes(&self, remembered: bool) -> Lifetimes {
        if remembered {
            self.remembered
        } else {
            self.session
        }
    }

    /// How old the recorded activity of a session of `lifetimes` may grow
    /// before a request rewrites it: the activity interval, or half the
    /// idle timeout if that is shorter (at least a second), so that a
    /// session never ends more than half its idle timeout early.
    pub(crate) fn activity_interval_ms(&self, lifetimes: Lifetimes) -> i64 {
        secs_to_ms(self.activity_interval.min(lifetimes.idle / 2).max(1))
    }

    /// The re-authentication window in milliseconds.
    pub(crate) fn reauth_window_ms(&self) -> i64 {
        secs_to_ms(self.reauth.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_refuse_mistakes() {
        let refused = |idle: u64, absolute: u64| {
            std::panic::catch_unwind(|| {
                Lifetimes::new(Duration::from_secs(idle), Duration::from_secs(absolute))
            })
            .is_err()
        };
        assert!(refused(0, 10));
        assert!(refused(11, 10));
        assert!(refused(1, MAX_LIFETIME + 1));
        assert!(refused(1, 11 * 366 * 86_400));
        assert!(!refused(10, 10));
        assert!(!refused(1, 10 * 365 * 86_400), "ten years are allowed");
        assert!(std::panic::catch_unwind(|| Lifetimes::new(
            Duration::from_millis(1500),
            Duration::from_secs(10)
        ))
        .is_err());
    }

    #[test]
    fn lifetimes_read_back_as_given_and_the_clock_debugs_without_a_time() {
        let lifetimes = Lifetimes::new(Duration::from_secs(90), Duration::from_secs(3600));
        assert_eq!(
            (lifetimes.idle(), lifetimes.absolute()),
            (Duration::from_secs(90), Duration::from_secs(3600))
        );
        assert_eq!(
            (lifetimes.idle_ms(), lifetimes.absolute_ms()),
            (90_000, 3_600_000)
        );
        assert_eq!(format!("{:?}", SharedClock::default()), "Clock");
    }

    #[test]
    fn sign_in_options_carry_the_tier_and_the_label() {
        let options = SignIn::new().remember(true).label("passkey");
        assert!(options.remember);
        assert_eq!(options.label.as_deref(), Some("passkey"));
        assert_eq!(SignIn::new(), SignIn::default());
    }

    #[test]
    fn the_activity_interval_is_at_most_half_the_idle_timeout() {
        let times = TimeConfig::default();
        let lifetimes = |idle| Lifetimes::new(Duration::from_secs(idle), Duration::from_secs(3600));
        assert_eq!(times.activity_interval_ms(lifetimes(1800)), 60_000);
        assert_eq!(times.activity_interval_ms(lifetimes(90)), 45_000);
        assert_eq!(times.activity_interval_ms(lifetimes(1)), 1_000);
        assert_eq!(ReauthPolicy::default().window(), Duration::from_secs(600));
    }

    #[test]
    fn a_clock_before_1970_reads_zero() {
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(unix_millis(from_unix_millis(42_001)), 42_001);
        assert_eq!(from_unix_millis(-1), UNIX_EPOCH);
    }
}
