//! How long sessions live, and how recent a sign-in the sensitive actions
//! need: the demo's settings for tower-sessions-auth's two tiers and its
//! re-authentication window.
//!
//! The session registry keeps one lifetime for every entry and does not say
//! which tier an entry's session is. The demo names the sign-in by its tier
//! (the registry's label), so that the list of signed-in devices can leave
//! out the sessions already past their deadlines (the layer removes their
//! entries only on their next request) and say when each one ends.

use std::time::{Duration, SystemTime};

use tower_sessions_auth::{
    registry::SessionInfo,
    times::{Lifetimes, ReauthPolicy},
    SignIn,
};

use super::StartError;

/// The default of [`Config::idle_timeout`](crate::Config::idle_timeout):
/// 30 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The default of [`Config::max_age`](crate::Config::max_age): 12 hours.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// The default of [`Config::remember_days`](crate::Config::remember_days).
pub const DEFAULT_REMEMBER_DAYS: u32 = 30;

/// The default of [`Config::sudo_window`](crate::Config::sudo_window): 10
/// minutes.
pub const DEFAULT_SUDO_WINDOW: Duration = Duration::from_secs(600);

/// The idle timeout of a remembered session ("keep me signed in"), capped
/// by its maximum age: a week unused ends it. Long enough to survive a
/// closed browser over a night or a weekend, which is what the checkbox
/// promises; the short idle timeout is for the browser-session tier.
const REMEMBERED_IDLE: Duration = Duration::from_secs(7 * 86_400);

/// The layer's default activity interval: the session record's last
/// request is rewritten at most this often.
const ACTIVITY_INTERVAL: Duration = Duration::from_secs(60);

const DAY: u64 = 86_400;

/// The registry label of a browser-session sign-in by password.
const LABEL_SESSION: &str = "password";

/// The registry label of a remembered sign-in by password.
const LABEL_REMEMBERED: &str = "password, kept signed in";

/// The lifetimes of both tiers and the re-authentication window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionTimes {
    session: Lifetimes,
    remembered: Lifetimes,
    sudo: Duration,
}

impl SessionTimes {
    /// Checks the settings: whole seconds, at least one; the idle timeout
    /// no longer than the maximum age; 1 to 3650 remembered days.
    pub(crate) fn new(
        idle: Duration,
        max_age: Duration,
        remember_days: u32,
        sudo: Duration,
    ) -> Result<Self, StartError> {
        let whole = |duration: Duration| duration.subsec_nanos() == 0 && duration.as_secs() >= 1;
        if !whole(idle) || !whole(max_age) || !whole(sudo) {
            return Err(
                "the idle timeout, the maximum age and the re-authentication window \
                        must be whole seconds, 1 or more"
                    .into(),
            );
        }
        if idle > max_age {
            return Err(format!(
                "the idle timeout ({} s) must not be longer than the maximum age ({} s)",
                idle.as_secs(),
                max_age.as_secs()
            )
            .into());
        }
        if !(1..=3650).contains(&remember_days) {
            return Err("the remembered days must be between 1 and 3650".into());
        }
        if sudo.as_secs() > 366 * DAY {
            return Err("the re-authentication window must be a year or less".into());
        }
        let remembered_age = Duration::from_secs(u64::from(remember_days) * DAY);
        Ok(Self {
            session: Lifetimes::new(idle, max_age),
            remembered: Lifetimes::new(REMEMBERED_IDLE.min(remembered_age), remembered_age),
            sudo,
        })
    }

    /// The browser-session tier's lifetimes.
    pub(crate) fn session(&self) -> Lifetimes {
        self.session
    }

    /// The remembered tier's lifetimes.
    pub(crate) fn remembered(&self) -> Lifetimes {
        self.remembered
    }

    /// The window, with `/confirm` as the confirmation page.
    pub(crate) fn reauth(&self) -> ReauthPolicy {
        ReauthPolicy::new(self.sudo).with_confirm_url("/confirm")
    }

    /// How often the registry rewrites a session's last-seen time: as
    /// often as the layer rewrites the session's last request (its default
    /// interval, or half a short idle timeout), so that the list's
    /// deadlines follow the layer's to within that interval.
    pub(crate) fn touch_interval(&self) -> Duration {
        ACTIVITY_INTERVAL.min(self.session.idle() / 2)
    }

    /// How long a registry entry lives after its last use: the longer
    /// idle timeout of the two tiers. Entries of the other tier are left
    /// out of the list by [`Self::ends_at`].
    pub(crate) fn registry_lifetime(&self) -> Duration {
        self.session.idle().max(self.remembered.idle())
    }

    /// The options of a password sign-in, remembered or not.
    pub(crate) fn sign_in(remember: bool) -> SignIn {
        let label = if remember {
            LABEL_REMEMBERED
        } else {
            LABEL_SESSION
        };
        SignIn::new().remember(remember).label(label)
    }

    /// Whether the session was signed in with "keep me signed in".
    pub(crate) fn is_remembered(info: &SessionInfo) -> bool {
        info.label.as_deref() == Some(LABEL_REMEMBERED)
    }

    /// When the session ends if it is not used again: its last use plus its
    /// tier's idle timeout, but no later than its sign-in plus its tier's
    /// maximum age.
    ///
    /// An approximation from what the registry keeps: the last use is the
    /// registry's last-seen time (written at most once per
    /// [`Self::touch_interval`]), the sign-in time the entry's creation,
    /// the tier the sign-in's label. The layer decides from the session
    /// record, whose last request may be up to one interval older.
    pub(crate) fn ends_at(&self, info: &SessionInfo) -> SystemTime {
        let lifetimes = if Self::is_remembered(info) {
            self.remembered
        } else {
            self.session
        };
        let idle_end = info.last_seen_at + lifetimes.idle();
        let absolute_end = info.created_at + lifetimes.absolute();
        idle_end.min(absolute_end)
    }
}
