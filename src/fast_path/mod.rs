//! Signed-in requests without a store round trip, ended within a notice's
//! delay.
//!
//! With a [`FastPath`] on the layer, every response that finds its session
//! holding also sets a short-lived credential cookie, a *pass*: the
//! session's record, sealed (encrypted and authenticated) under a key
//! derived from the current secret and bound to the session id. A request
//! that presents a pass still valid is signed in from it: the layer reads
//! neither the session store nor the session registry, and tower-sessions
//! loads the session only if the handler reads it. The user still comes
//! from the backend, and the [validity rule](crate#how-it-works) still judges
//! the session (the user exists, the auth hash verifies under the current
//! secret, the lifetimes hold); anything but "holds" sends the request
//! down the full path, which decides and issues a new pass.
//!
//! # What ends a pass
//!
//! A pass can outlive its session only for what the layer cannot see
//! without the store: a sign-out, a revocation, the end of all of a user's
//! sessions. Every one of those is announced through the registry's
//! [`LiveSessions`](crate::live::LiveSessions), in this process at once
//! and in the others through the [channel](crate::live::LiveChannel), and
//! each process refuses every pass of that user issued before it heard of
//! the change (less the allowed clock skew). So:
//!
//! - on the instance where the session ended, the very next request is
//!   refused;
//! - on another instance, the first request after the notice arrived (a
//!   few milliseconds on Redis or Postgres; measured in the repository's
//!   `BENCHMARKS.md`);
//! - a notice that is lost while the channel looks healthy costs at most
//!   the pass's lifetime (default one minute).
//!
//! The fast path is used only while the push is healthy: the channel's
//! listener is subscribed and the process heard its own heartbeat within
//! three heartbeat periods ([`LiveSessions::with_heartbeat`](crate::live::LiveSessions::with_heartbeat)).
//! Otherwise every request takes the full path, and a log event says so;
//! once the channel is back, every pass issued before is refused, since
//! notices may have been lost meanwhile. Without a channel, the process is
//! taken to be the only one and hears every change itself.
//!
//! # The user
//!
//! A pass holds the session's claim, not the user: every admitted request
//! still asks [`UserBackend::get_user`](crate::UserBackend::get_user), as
//! the full path does. That keeps a password changed or an account
//! disabled straight in the database refused at once, with no notice, and
//! costs what the application's lookup costs: with the benchmark's
//! in-memory users, under 1% of a fast-path request (sampled with `perf`).
//! A cache in the crate would save that lookup only to trade it for the
//! staleness of the cache; an application whose users live across the
//! network can cache inside its own backend, where it knows what changes
//! them.
//!
//! # When it is safe
//!
//! - Every instance must share the channel, and their clocks must agree
//!   within [`with_clock_skew`](FastPath::with_clock_skew) (default one
//!   second; NTP keeps servers within milliseconds).
//! - A change made outside the crate (a user deleted or their password set
//!   in the database) is seen at once, as the fast path asks the backend;
//!   a change of the registry by hand is not: announce it with
//!   [`LiveSessions::notify`](crate::live::LiveSessions::notify).
//! - tower-sessions' `with_always_save(true)` saves every session, which
//!   loads it: the fast path then saves the registry read, not the store's.
//!
//! # Security
//!
//! The pass is as powerful as the session cookie it is bound to, and is
//! sent beside it: `HttpOnly`, `SameSite=Lax`, `Secure` unless turned off
//! for plain-HTTP development. Forged, truncated, replayed with another
//! session's cookie, sealed under a retired secret, or expired: the request
//! takes the full path, never a 5xx and never another identity. Rotating
//! the secret refuses every pass at once (only the current secret opens
//! them).

mod admit;
mod cookie;
mod issue;
mod pass;

use std::time::Duration;

pub(crate) use self::{
    admit::{admit, Admission},
    cookie::{presented, Presented},
    issue::{pass_cookie, Found},
};
use crate::times::millis;

/// The fast path's settings; give them to
/// [`AuthLayer::with_fast_path`](crate::AuthLayer::with_fast_path).
///
/// ```
/// use std::time::Duration;
/// use tower_sessions_auth::fast_path::FastPath;
///
/// let fast = FastPath::new()
///     .with_cookie_name("app_pass")
///     .with_lifetime(Duration::from_secs(30));
/// assert_eq!(fast.lifetime(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct FastPath {
    pub(crate) cookie_name: String,
    pub(crate) lifetime: Duration,
    pub(crate) secure: bool,
    pub(crate) clock_skew: Duration,
}

impl FastPath {
    /// The longest lifetime a pass may have.
    pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);

    /// The largest clock skew the fast path allows for.
    pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

    /// A pass cookie named `tsa_pass`, living one minute, `Secure`, with
    /// clocks one second apart at most.
    pub fn new() -> Self {
        Self {
            cookie_name: "tsa_pass".to_owned(),
            lifetime: Duration::from_secs(60),
            secure: true,
            clock_skew: Duration::from_secs(1),
        }
    }

    /// Sets the pass cookie's name.
    ///
    /// # Panics
    ///
    /// When `name` is empty or holds anything but ASCII letters, digits,
    /// `-` and `_`.
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'),
            "FastPath::with_cookie_name: {name:?} is not a plain cookie name"
        );
        self.cookie_name = name;
        self
    }

    /// Sets how long a pass is trusted (default one minute): what a notice
    /// lost while the channel looks healthy can cost, and how often a
    /// session takes the full path. A pass also stops serving once the
    /// session's activity is due to be recorded
    /// ([`AuthLayer::with_activity_interval`](crate::AuthLayer::with_activity_interval),
    /// default one minute): the full path records it, so the idle timeout
    /// is as exact as without the fast path.
    ///
    /// # Panics
    ///
    /// When `lifetime` is under one second or over [`MAX_LIFETIME`](Self::MAX_LIFETIME).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        assert!(
            lifetime >= Duration::from_secs(1) && lifetime <= Self::MAX_LIFETIME,
            "FastPath::with_lifetime: {lifetime:?} is not between 1 s and 1 h"
        );
        self.lifetime = lifetime;
        self
    }

    /// Sets whether the pass cookie is `Secure` (default `true`): turn it
    /// off only as the session cookie is, for plain-HTTP development.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets how far apart the instances' clocks may be (default one
    /// second). After a change, every pass of the user issued up to this
    /// long after the process heard of it is refused too: a larger skew
    /// costs a few more full-path requests, never a session.
    ///
    /// # Panics
    ///
    /// Over [`MAX_CLOCK_SKEW`](Self::MAX_CLOCK_SKEW).
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        assert!(
            skew <= Self::MAX_CLOCK_SKEW,
            "FastPath::with_clock_skew: {skew:?} is over a minute"
        );
        self.clock_skew = skew;
        self
    }

    /// How long a pass is trusted.
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub(crate) fn lifetime_ms(&self) -> i64 {
        millis(self.lifetime)
    }

    pub(crate) fn skew_ms(&self) -> i64 {
        millis(self.clock_skew)
    }
}

impl Default for FastPath {
    fn default() -> Self {
        Self::new()
    }
}
