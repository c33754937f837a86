//! What this process has heard of changes to users' sessions, and whether
//! it can trust that it hears of them: what the fast path asks before it
//! signs a request in without the session store.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicI64, Ordering},
        RwLock,
    },
    time::Duration,
};

use super::channel::EVERYONE;
use crate::times::{millis, SharedClock, UnixMillis};

/// How many heartbeat periods may pass without this process hearing its own
/// heartbeat before the push counts as broken.
const MISSED_HEARTBEATS: i64 = 3;

/// When each user last changed, as this process heard it, and the health
/// of the channel that tells it.
///
/// Times are the layer's clock when the notice reached this process: a
/// credential issued before then, by any process whose clock is at most
/// the fast path's skew apart, may predate the change and is refused.
pub(crate) struct Changes {
    /// The layer's clock; `None` until a layer with a fast path is applied,
    /// and nothing is recorded before (no fast path asks).
    clock: RwLock<Option<SharedClock>>,
    users: RwLock<HashMap<String, UnixMillis>>,
    /// The latest time in `users`: a credential issued after it (and the
    /// skew) predates no user's change, and the map need not be read.
    latest_user_change: AtomicI64,
    /// When this process began to hear changes: what was issued before, it
    /// may have missed the end of.
    started: AtomicI64,
    /// The last change of every user at once ("sign everyone out"), and
    /// the last time the push came back after it may have lost notices.
    everyone: AtomicI64,
    /// Whether notices cross processes at all: without a channel, this
    /// process is the only one and hears every change.
    has_channel: bool,
    /// The channel's listener is subscribed (no `Lost` since `Restored`).
    subscribed: AtomicBool,
    /// When this process last heard its own heartbeat back.
    last_echo: AtomicI64,
    heartbeat_ms: i64,
    /// What the last health check said, to log only its changes.
    was_healthy: AtomicBool,
}

impl Changes {
    pub(crate) fn new(has_channel: bool, heartbeat: Duration) -> Self {
        Self {
            clock: RwLock::new(None),
            users: RwLock::new(HashMap::new()),
            latest_user_change: AtomicI64::new(i64::MIN),
            started: AtomicI64::new(i64::MIN),
            everyone: AtomicI64::new(i64::MIN),
            has_channel,
            subscribed: AtomicBool::new(true),
            last_echo: AtomicI64::new(i64::MIN),
            heartbeat_ms: millis(heartbeat),
            was_healthy: AtomicBool::new(!has_channel),
        }
    }

    /// Reads time from `clock` from now on: the layer's. The first time,
    /// every credential issued before now is refused: this process heard
    /// nothing of what ended before it started (a restart).
    pub(crate) fn use_clock(&self, clock: SharedClock) {
        let now = clock.now_ms();
        *write(&self.clock) = Some(clock);
        let _ = self
            .started
            .compare_exchange(i64::MIN, now, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Whether a layer with a fast path asks this process: only then is a
    /// heartbeat worth publishing.
    pub(crate) fn in_use(&self) -> bool {
        read(&self.clock).is_some()
    }

    fn now(&self) -> Option<UnixMillis> {
        read(&self.clock).as_ref().map(SharedClock::now_ms)
    }

    /// Notes that `user` (keyed, or [`EVERYONE`]) changed now.
    pub(crate) fn record(&self, user: &str) {
        let Some(now) = self.now() else {
            return;
        };
        if user == EVERYONE {
            self.everyone.fetch_max(now, Ordering::SeqCst);
            return;
        }
        let mut users = write(&self.users);
        let at = users.entry(user.to_owned()).or_insert(now);
        *at = (*at).max(now);
        self.latest_user_change.fetch_max(now, Ordering::SeqCst);
    }

    /// This process heard its own heartbeat: the channel carries notices
    /// both ways. After a silence long enough to count as broken, notices
    /// may have been lost: every credential issued before now is refused.
    pub(crate) fn echo(&self) {
        let Some(now) = self.now() else {
            return;
        };
        // Raised before the echo makes the process healthy, so that no
        // request in between trusts what may predate a lost notice.
        if !self.fresh(self.last_echo.load(Ordering::SeqCst), now) {
            self.everyone.fetch_max(now, Ordering::SeqCst);
        }
        self.last_echo.store(now, Ordering::SeqCst);
    }

    /// The listener lost its subscription: notices may be lost from now on.
    pub(crate) fn lost(&self) {
        self.subscribed.store(false, Ordering::SeqCst);
    }

    /// The listener subscribed again: what was sent meanwhile may be lost,
    /// so every credential issued before now is refused.
    pub(crate) fn restored(&self) {
        if let Some(now) = self.now() {
            self.everyone.fetch_max(now, Ordering::SeqCst);
        }
        self.subscribed.store(true, Ordering::SeqCst);
    }

    fn fresh(&self, echo: UnixMillis, now: UnixMillis) -> bool {
        echo != i64::MIN
            && now.saturating_sub(echo) <= self.heartbeat_ms.saturating_mul(MISSED_HEARTBEATS)
    }

    /// Whether this process hears every change now: always without a
    /// channel; with one, while it is subscribed and its own heartbeat came
    /// back within the last three periods. Logs when the answer changes.
    pub(crate) fn healthy(&self, now: UnixMillis) -> bool {
        let healthy = !self.has_channel
            || (self.subscribed.load(Ordering::SeqCst)
                && self.fresh(self.last_echo.load(Ordering::SeqCst), now));
        // Read before written: every request asks, and a write on each
        // would bounce the line between cores.
        if self.was_healthy.load(Ordering::Relaxed) != healthy
            && self.was_healthy.swap(healthy, Ordering::Relaxed) != healthy
        {
            if healthy {
                tracing::info!("fast path: the live-session channel is healthy; in use again");
            } else {
                tracing::warn!(
                    "fast path: the live-session channel is down or silent; every request takes \
                     the full path until it is back"
                );
            }
        }
        healthy
    }

    /// Whether a credential of `user` issued at `issued_at` may predate a
    /// change this process heard of, given clocks up to `skew_ms` apart.
    pub(crate) fn predates_change(&self, user: &str, issued_at: UnixMillis, skew_ms: i64) -> bool {
        let predates = |changed: UnixMillis| issued_at <= changed.saturating_add(skew_ms);
        issued_at < self.started.load(Ordering::SeqCst)
            || predates(self.everyone.load(Ordering::SeqCst))
            || (predates(self.latest_user_change.load(Ordering::SeqCst))
                && read(&self.users).get(user).is_some_and(|&at| predates(at)))
    }

    /// Forgets the changes older than `keep_ms`: no credential issued
    /// before them is still valid.
    pub(crate) fn forget_older_than(&self, keep_ms: i64) {
        let Some(now) = self.now() else {
            return;
        };
        let horizon = now.saturating_sub(keep_ms);
        write(&self.users).retain(|_, at| *at >= horizon);
    }

    /// How many users' changes are remembered, for tests.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        read(&self.users).len()
    }
}

// The maps stay consistent even if a holder panicked: every change under
// the lock is a single insert, write or retain.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::{atomic::AtomicI64, Arc};

    use super::*;

    const T0: UnixMillis = 1_800_000_000_000;
    const SKEW: i64 = 1000;

    fn changes(has_channel: bool) -> (Changes, Arc<AtomicI64>) {
        let now = Arc::new(AtomicI64::new(T0));
        let changes = Changes::new(has_channel, Duration::from_secs(1));
        let clock = now.clone();
        changes.use_clock(SharedClock::new(move || {
            std::time::UNIX_EPOCH
                + Duration::from_millis(clock.load(Ordering::SeqCst).unsigned_abs())
        }));
        (changes, now)
    }

    #[test]
    fn a_change_refuses_what_was_issued_before_it_and_within_the_skew() {
        // The process started at T0; user 7 changes at T1.
        const T1: UnixMillis = T0 + 60_000;
        let (changes, now) = changes(false);
        assert!(
            changes.predates_change("7", T0 - 1, 0),
            "issued before this process started"
        );
        assert!(!changes.predates_change("7", T0, 0));
        now.store(T1, Ordering::SeqCst);
        assert!(!changes.predates_change("7", T1 - 5000, SKEW));
        changes.record("7");
        assert!(changes.predates_change("7", T1 - 5000, SKEW), "before");
        assert!(
            changes.predates_change("7", T1 + SKEW, SKEW),
            "within the skew"
        );
        assert!(!changes.predates_change("7", T1 + SKEW + 1, SKEW), "after");
        assert!(
            !changes.predates_change("8", T1 - 5000, SKEW),
            "another user"
        );

        now.store(T1 + 10_000, Ordering::SeqCst);
        changes.record(EVERYONE);
        assert!(changes.predates_change("8", T1 + 10_000, SKEW), "everyone");
        assert!(!changes.predates_change("8", T1 + 11_001, SKEW));

        changes.forget_older_than(5_000);
        assert_eq!(changes.remembered(), 0, "user 7 changed 10 s ago");
    }

    #[test]
    fn without_a_channel_the_process_hears_everything() {
        let (changes, _) = changes(false);
        assert!(changes.healthy(T0));
    }

    #[test]
    fn with_a_channel_health_needs_a_recent_echo_and_a_subscription() {
        let (changes, now) = changes(true);
        assert!(!changes.healthy(T0), "no heartbeat heard yet");
        changes.echo();
        assert!(changes.healthy(T0));
        assert!(changes.healthy(T0 + 3000), "three periods");
        assert!(!changes.healthy(T0 + 3001), "silent");

        changes.lost();
        assert!(!changes.healthy(T0), "unsubscribed");
        now.store(T0 + 500, Ordering::SeqCst);
        changes.restored();
        assert!(changes.healthy(T0 + 500));
        assert!(
            changes.predates_change("7", T0 + 500, 0),
            "what was issued before the restoration may miss a lost notice"
        );

        now.store(T0 + 10_000, Ordering::SeqCst);
        changes.echo();
        assert!(
            changes.predates_change("7", T0 + 10_000, 0),
            "an echo after a silence refuses what came before it"
        );
        now.store(T0 + 10_900, Ordering::SeqCst);
        changes.echo();
        assert!(!changes.predates_change("7", T0 + 10_500, 0), "no silence");
    }

    #[test]
    fn nothing_is_recorded_before_a_clock_is_given() {
        let changes = Changes::new(false, Duration::from_secs(1));
        changes.record("7");
        changes.record(EVERYONE);
        assert!(!changes.predates_change("7", 0, 0));
    }
}
