//! The process's table of watched sessions, the checks that end them, and
//! the tasks that trigger the checks.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, MutexGuard, Once, Weak},
    time::Duration,
};

use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch as shutdown};

use super::{
    changes::Changes,
    channel::{ChannelError, Kept, LiveChannel, Notice, Signal, EVERYONE, HEARTBEAT},
    check::{Probe, Verdict, Verify},
    watch::{SessionWatch, WatchEnd, Watched},
};
use crate::{backend::user_key, record::EndReason};

/// Default period of the backstop re-check.
const DEFAULT_PERIOD: Duration = Duration::from_secs(30);

/// Default period of the channel heartbeat, by which the fast path knows
/// that notices arrive.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// Default number of failed checks in a row after which a watch ends.
const DEFAULT_MAX_FAILURES: u32 = 3;

/// How many users a backstop pass checks at once.
const CHECKS_IN_FLIGHT: usize = 16;

/// How long a check waits before ending a watch whose hash no longer
/// verifies, unless the change was announced with the new hash: the
/// session may be the one changing the password right now, whose notice
/// with the new hash is on its way.
const MISMATCH_GRACE: Duration = Duration::from_secs(2);

/// The live-session watches of this process and how they learn of changes.
///
/// Give it to the layer's session registry with
/// [`SessionRegistry::with_live_sessions`](crate::registry::SessionRegistry::with_live_sessions);
/// handlers then take a [`SessionWatch`], and every session that the
/// registry, the layer or [`AuthSession`](crate::AuthSession) ends reaches
/// its watches without another call.
///
/// - Changes made in this process reach its watches directly.
/// - With several processes, give each the same [`LiveChannel`]:
///   [`RedisChannel`](crate::live::RedisChannel) or
///   [`PostgresChannel`](crate::live::PostgresChannel).
/// - Every watch is also checked again every period (default 30 s, less a
///   random quarter so that processes spread their checks): the bound on
///   how long a connection outlives its session when a notice is lost, the
///   channel is down, or the password was changed in the database directly.
///   Such a change can also be announced with [`notify`](Self::notify).
///
/// A check costs one backend lookup and one registry read per user,
/// whatever the number of that user's connections.
///
/// ```
/// use std::time::Duration;
/// use tower_sessions_auth::live::LiveSessions;
///
/// let live = LiveSessions::new()
///     .with_recheck_period(Duration::from_secs(20))
///     .with_max_failures(5);
/// assert_eq!(live.watch_count(), 0);
/// ```
#[derive(Clone)]
#[must_use]
pub struct LiveSessions {
    hub: Arc<Hub>,
}

#[derive(Clone)]
struct Settings {
    period: Duration,
    max_failures: u32,
    heartbeat: Duration,
    channel: Option<Arc<dyn LiveChannel>>,
}

pub(crate) struct Hub {
    settings: Settings,
    /// Tells notices sent by this process from those of the others.
    instance: u64,
    /// What the fast path asks: which users changed, and whether notices
    /// arrive.
    changes: Changes,
    users: Mutex<HashMap<String, UserWatches>>,
    next_id: std::sync::atomic::AtomicU64,
    started: Once,
    /// Dropped with the hub: the background tasks end then.
    shutdown: shutdown::Sender<()>,
}

struct UserWatches {
    check: Arc<dyn Verify>,
    /// By watch id: a user may hold thousands of connections, and each
    /// closes on its own.
    slots: HashMap<u64, Slot>,
}

/// A check's copy of a user's watches: the check, the watches' ids, and
/// what it knows of each.
type Snapshot = (Arc<dyn Verify>, Vec<u64>, Vec<Probe>);

struct Slot {
    /// What the watch's session claims, and a newer hash it announced.
    probe: Probe,
    failures: u32,
    end: oneshot::Sender<WatchEnd>,
}

/// Why a check runs, which decides how sure it must be before it ends a
/// watch whose hash does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// `update_session_auth_hash` announced the session that stays, with
    /// its new hash, or the grace has passed: a mismatch ends the watch.
    Settled,
    /// Anything else (the backstop, a revocation, a new watch): a mismatch
    /// is checked once more after [`MISMATCH_GRACE`].
    Unsettled,
}

impl Trigger {
    fn of(notice: &Notice) -> Self {
        if notice.keep.is_some() {
            Self::Settled
        } else {
            Self::Unsettled
        }
    }
}

impl LiveSessions {
    /// Watches for this process alone, re-checked every 30 seconds.
    pub fn new() -> Self {
        Self::from_settings(Settings {
            period: DEFAULT_PERIOD,
            max_failures: DEFAULT_MAX_FAILURES,
            heartbeat: DEFAULT_HEARTBEAT,
            channel: None,
        })
    }

    fn from_settings(settings: Settings) -> Self {
        let (shutdown, _) = shutdown::channel(());
        Self {
            hub: Arc::new(Hub {
                changes: Changes::new(settings.channel.is_some(), settings.heartbeat),
                settings,
                instance: random_u64(),
                users: Mutex::new(HashMap::new()),
                next_id: std::sync::atomic::AtomicU64::new(0),
                started: Once::new(),
                shutdown,
            }),
        }
    }

    fn with(&self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.hub.settings.clone();
        change(&mut settings);
        Self::from_settings(settings)
    }

    /// Shares changes with the other processes through `channel`.
    pub fn with_channel(self, channel: impl LiveChannel) -> Self {
        let channel: Arc<dyn LiveChannel> = Arc::new(channel);
        self.with(|settings| settings.channel = Some(channel))
    }

    /// Sets the period of the backstop re-check (default 30 s): the longest
    /// a connection outlives its session when no notice reached this
    /// process. Passes start at random points of the period.
    ///
    /// # Panics
    ///
    /// When `period` is under 100 ms: every watch would be checked
    /// continuously.
    pub fn with_recheck_period(self, period: Duration) -> Self {
        assert!(
            period >= Duration::from_millis(100),
            "LiveSessions::with_recheck_period: {period:?} is under 100 ms"
        );
        self.with(|settings| settings.period = period)
    }

    /// Sets after how many failed checks in a row (the backend or the
    /// registry failing) a watch ends with [`WatchEnd::ServerError`]
    /// (default 3). One failure never ends a connection; a session that
    /// cannot be checked for `max` periods is not trusted either.
    ///
    /// # Panics
    ///
    /// When `max` is 0.
    pub fn with_max_failures(self, max: u32) -> Self {
        assert!(
            max > 0,
            "LiveSessions::with_max_failures: must be at least 1"
        );
        self.with(|settings| settings.max_failures = max)
    }

    /// Sets how often this process publishes a heartbeat on its channel
    /// (default 1 s). The [fast path](crate::fast_path) is used only while
    /// the process heard its own heartbeat within the last three periods:
    /// the channel carries notices both ways. Without a channel, nothing is
    /// published.
    ///
    /// # Panics
    ///
    /// When `period` is under 10 ms.
    pub fn with_heartbeat(self, period: Duration) -> Self {
        assert!(
            period >= Duration::from_millis(10),
            "LiveSessions::with_heartbeat: {period:?} is under 10 ms"
        );
        self.with(|settings| settings.heartbeat = period)
    }

    /// How many connections this process watches now.
    #[must_use]
    pub fn watch_count(&self) -> usize {
        self.hub
            .lock()
            .values()
            .map(|watches| watches.slots.len())
            .sum()
    }

    /// Checks the watches of `user` again, in this process and, through the
    /// channel, in the others: after a change made outside a request and
    /// outside the registry (a password reset or an account disabled by an
    /// administrator, straight in the database). The registry's own
    /// revocations announce themselves. `user` must be of the user type's
    /// `Id` type.
    ///
    /// # Errors
    ///
    /// When `user` cannot be serialized, or the channel fails to publish
    /// (the backstop still ends the other processes' watches within a
    /// period).
    pub async fn notify<Id: Serialize>(&self, user: &Id) -> Result<(), ChannelError> {
        self.announce(user_key(user).map_err(ChannelError::new)?)
            .await
    }

    /// Checks the watches of `user` (keyed, or [`EVERYONE`]) again here,
    /// and waits until the channel took the notice for the others.
    pub(crate) async fn announce(&self, user: String) -> Result<(), ChannelError> {
        let notice = Notice {
            user,
            keep: None,
            from: self.hub.instance,
        };
        self.hub.apply(&notice);
        self.hub.publish(&notice).await
    }

    /// Announces a change of `user` from a request, without waiting for the
    /// channel: the response is not held up by a slow or broken channel.
    pub(crate) fn changed(&self, user: String, keep: Option<(String, String)>) {
        let notice = Notice {
            user,
            keep: keep.map(|(handle, hash)| Kept { handle, hash }),
            from: self.hub.instance,
        };
        self.hub.apply(&notice);
        if self.hub.settings.channel.is_some() {
            let hub = self.hub.clone();
            tokio::spawn(async move {
                if let Err(error) = hub.publish(&notice).await {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "live sessions: notice not published; other processes rely on the re-check"
                    );
                }
            });
        }
    }

    /// What this process heard of changes, for the fast path.
    pub(crate) fn changes(&self) -> &Changes {
        &self.hub.changes
    }

    /// Starts the background tasks (listener, heartbeat, backstop) on the
    /// current runtime, once.
    pub(crate) fn start(&self) {
        self.hub.start();
    }

    /// Starts watching the session of `ticket`.
    pub(crate) fn watch(&self, ticket: Watched, check: Arc<dyn Verify>) -> SessionWatch {
        self.hub.start();
        let id = self
            .hub
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, end) = oneshot::channel();
        let user = ticket.user.clone();
        self.hub
            .lock()
            .entry(user.clone())
            .or_insert_with(|| UserWatches {
                check,
                slots: HashMap::new(),
            })
            .slots
            .insert(
                id,
                Slot {
                    probe: Probe {
                        claim: ticket.claim,
                        announced: None,
                    },
                    failures: 0,
                    end: sender,
                },
            );
        // A change between the request's own check and now sent its notice
        // before this watch existed: check once more, as a notice would.
        self.hub
            .spawn_check(user.clone(), Some(id), Trigger::Unsettled);
        SessionWatch {
            hub: self.hub.clone(),
            user,
            id,
            end,
            done: None,
        }
    }
}

impl Default for LiveSessions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSessions")
            .field("period", &self.hub.settings.period)
            .field("max_failures", &self.hub.settings.max_failures)
            .field("heartbeat", &self.hub.settings.heartbeat)
            .field("channel", &self.hub.settings.channel)
            .field("watches", &self.watch_count())
            .finish()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, UserWatches>> {
        // The table stays consistent even if a holder panicked: every
        // change under the lock is a single push, removal or field write.
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn unregister(&self, user: &str, id: u64) {
        let mut users = self.lock();
        if let Some(watches) = users.get_mut(user) {
            watches.slots.remove(&id);
            if watches.slots.is_empty() {
                users.remove(user);
            }
        }
    }

    async fn publish(&self, notice: &Notice) -> Result<(), ChannelError> {
        let Some(channel) = &self.settings.channel else {
            return Ok(());
        };
        let text = serde_json::to_string(notice).map_err(ChannelError::new)?;
        channel.publish(&text).await
    }

    /// Acts on a notice: notes the kept session's new hash, then checks
    /// the user's watches.
    fn apply(self: &Arc<Self>, notice: &Notice) {
        self.changes.record(&notice.user);
        if notice.user == EVERYONE {
            let hub = self.clone();
            tokio::spawn(async move { hub.check_everyone().await });
            return;
        }
        {
            let mut users = self.lock();
            let Some(watches) = users.get_mut(&notice.user) else {
                return;
            };
            if let Some(kept) = &notice.keep {
                for slot in watches.slots.values_mut() {
                    if slot.probe.claim.handle.as_ref() == Some(&kept.handle) {
                        slot.probe.announced = Some(kept.hash.clone());
                    }
                }
            }
        }
        self.spawn_check(notice.user.clone(), None, Trigger::of(notice));
    }

    /// Checks the watches of `user` (or only the watch `only`) in a task
    /// of its own.
    fn spawn_check(self: &Arc<Self>, user: String, only: Option<u64>, trigger: Trigger) {
        let hub = self.clone();
        tokio::spawn(async move { hub.check_and_settle(&user, only, trigger).await });
    }

    /// Checks `user`, and once more after the grace when a mismatch is
    /// not settled yet.
    async fn check_and_settle(&self, user: &str, only: Option<u64>, trigger: Trigger) {
        if self.check_user(user, only, trigger).await {
            tokio::time::sleep(grace(self.settings.period)).await;
            self.check_user(user, only, Trigger::Settled).await;
        }
    }

    /// Checks every watch of `user` and ends those whose session is over.
    /// Returns whether an unsettled check found a mismatch to check again
    /// after [`MISMATCH_GRACE`].
    async fn check_user(&self, user: &str, only: Option<u64>, trigger: Trigger) -> bool {
        let Some((check, ids, probes)) = self.probes(user, only) else {
            return false;
        };
        let result = check.check(user, &probes).await;
        let mut recheck = false;
        let mut users = self.lock();
        let Some(watches) = users.get_mut(user) else {
            return false;
        };
        let mut ended = Vec::new();
        match result {
            Ok(verdicts) => {
                for ((id, probe), verdict) in ids.into_iter().zip(&probes).zip(verdicts) {
                    // Dropped since the snapshot: nothing to decide.
                    let Some(slot) = watches.slots.get_mut(&id) else {
                        continue;
                    };
                    slot.failures = 0;
                    match verdict {
                        Verdict::Holds { adopt } => {
                            if let Some((hash, epoch)) = adopt {
                                // A newer hash announced while this check
                                // ran stays for the next check.
                                if slot.probe.announced.as_ref() == Some(&hash) {
                                    slot.probe.announced = None;
                                }
                                slot.probe.claim.auth_hash = hash;
                                slot.probe.claim.epoch = epoch;
                            }
                        }
                        Verdict::Ended(EndReason::CredentialChanged | EndReason::EpochChanged)
                            if trigger == Trigger::Unsettled =>
                        {
                            recheck = true;
                        }
                        // This session announced its new hash while the
                        // check ran, after the check had read what it knew:
                        // the announcement's own check decides.
                        Verdict::Ended(EndReason::CredentialChanged | EndReason::EpochChanged)
                            if slot.probe.announced != probe.announced => {}
                        Verdict::Ended(reason) => ended.push((id, WatchEnd::Session(reason))),
                    }
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = &*error as &dyn std::error::Error,
                    "live sessions: a session could not be checked"
                );
                for id in ids {
                    let Some(slot) = watches.slots.get_mut(&id) else {
                        continue;
                    };
                    slot.failures += 1;
                    if slot.failures >= self.settings.max_failures {
                        tracing::error!(
                            failures = slot.failures,
                            "live sessions: a session could not be checked too many times in \
                             a row; its connection ends"
                        );
                        ended.push((id, WatchEnd::ServerError));
                    }
                }
            }
        }
        for (id, end) in ended {
            if let Some(slot) = watches.slots.remove(&id) {
                // The watch may be dropping right now; nothing to tell then.
                let _ = slot.end.send(end);
            }
        }
        if watches.slots.is_empty() {
            users.remove(user);
        }
        recheck
    }

    /// What a check of `user` needs, taken under the lock and released
    /// before the check awaits anything.
    fn probes(&self, user: &str, only: Option<u64>) -> Option<Snapshot> {
        let users = self.lock();
        let watches = users.get(user)?;
        let probe = |slot: &Slot| slot.probe.clone();
        // One watch, looked up: opening n connections of one user must not
        // cost n² visits.
        let (ids, probes) = match only {
            Some(id) => (vec![id], vec![probe(watches.slots.get(&id)?)]),
            None => watches
                .slots
                .iter()
                .map(|(id, slot)| (*id, probe(slot)))
                .unzip(),
        };
        Some((watches.check.clone(), ids, probes))
    }

    /// Checks every watched user, a few at a time.
    async fn check_everyone(&self) {
        let users: Vec<String> = self.lock().keys().cloned().collect();
        futures_util::stream::iter(users)
            .for_each_concurrent(CHECKS_IN_FLIGHT, |user| async move {
                self.check_and_settle(&user, None, Trigger::Unsettled).await;
            })
            .await;
    }

    /// Starts the backstop and the channel listener, once, on the runtime
    /// of the first watch.
    fn start(self: &Arc<Self>) {
        self.started.call_once(|| {
            tokio::spawn(backstop(
                Arc::downgrade(self),
                self.settings.period,
                self.shutdown.subscribe(),
            ));
            if let Some(channel) = &self.settings.channel {
                let (signals, received) = mpsc::channel(1024);
                channel.listen(signals);
                tokio::spawn(heartbeat(
                    Arc::downgrade(self),
                    self.settings.heartbeat,
                    self.shutdown.subscribe(),
                ));
                tokio::spawn(dispatch(
                    Arc::downgrade(self),
                    received,
                    self.shutdown.subscribe(),
                ));
            }
        });
    }
}

/// The periodic re-check: every watch, once per period.
async fn backstop(hub: Weak<Hub>, period: Duration, mut shutdown: shutdown::Receiver<()>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(jittered(period.saturating_sub(grace(period)))) => {}
            _ = shutdown.changed() => return,
        }
        let Some(hub) = hub.upgrade() else {
            return;
        };
        // Without a channel no heartbeat prunes what the fast path heard.
        hub.changes.forget_older_than(CHANGES_KEPT_MS);
        hub.check_everyone().await;
    }
}

/// Publishes this process's heartbeat every period, and forgets the
/// changes that no fast-path credential can predate any more.
async fn heartbeat(hub: Weak<Hub>, period: Duration, mut shutdown: shutdown::Receiver<()>) {
    loop {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        if !hub.changes.in_use() {
            // No fast path listens: nothing to publish yet.
            drop(hub);
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let beat = Notice {
            user: HEARTBEAT.to_owned(),
            keep: None,
            from: hub.instance,
        };
        if let Err(error) = hub.publish(&beat).await {
            tracing::debug!(
                error = &error as &dyn std::error::Error,
                "live sessions: heartbeat not published"
            );
        }
        hub.changes.forget_older_than(CHANGES_KEPT_MS);
        drop(hub);
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// How long a change is remembered: longer than any fast-path credential
/// lives, with the skew between clocks
/// ([`FastPath::MAX_LIFETIME`](crate::fast_path::FastPath::MAX_LIFETIME)
/// and its `MAX_CLOCK_SKEW`).
const CHANGES_KEPT_MS: i64 = 2 * 3_600_000;

/// Hands the channel's notices to the hub.
async fn dispatch(
    hub: Weak<Hub>,
    mut signals: mpsc::Receiver<Signal>,
    mut shutdown: shutdown::Receiver<()>,
) {
    loop {
        let signal = tokio::select! {
            signal = signals.recv() => signal,
            _ = shutdown.changed() => return,
        };
        let (Some(signal), Some(hub)) = (signal, hub.upgrade()) else {
            return;
        };
        match signal {
            Signal::Notice(text) => match serde_json::from_str::<Notice>(&text) {
                Ok(notice) if notice.user == HEARTBEAT => {
                    if notice.from == hub.instance {
                        hub.changes.echo();
                    }
                }
                Ok(notice) if notice.from != hub.instance => hub.apply(&notice),
                Ok(_) => {}
                Err(_) => tracing::warn!("live sessions: an unreadable notice was ignored"),
            },
            Signal::Lost => {
                hub.changes.lost();
                tracing::warn!(
                    period = ?hub.settings.period,
                    "live sessions: the channel is down; connections are re-checked every period \
                     until it is back"
                );
            }
            Signal::Restored => {
                hub.changes.restored();
                tracing::info!("live sessions: the channel is back; re-checking every connection");
                tokio::spawn(async move { hub.check_everyone().await });
            }
        }
    }
}

/// How long an unsettled mismatch waits: [`MISMATCH_GRACE`], or a quarter
/// of a shorter period. The backstop sleeps that much less, so that a
/// session ended without a notice still ends within one period.
fn grace(period: Duration) -> Duration {
    MISMATCH_GRACE.min(period / 4)
}

/// `period` less a random part of up to a quarter: processes that started
/// together do not check together, and a pass never starts later than one
/// period after the previous one.
fn jittered(period: Duration) -> Duration {
    let fraction = (random_u64() % 1024) as f64 / 1024.0;
    period.mul_f64(1.0 - fraction / 4.0)
}

fn random_u64() -> u64 {
    let mut bytes = [0_u8; 8];
    // Without the OS's randomness the jitter and the instance tag lose
    // their spread, nothing else; fall back on the clock.
    if getrandom::getrandom(&mut bytes).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos().into());
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    };

    use tokio::sync::Semaphore;

    use super::*;

    #[test]
    fn debug_shows_the_settings_and_the_count_of_watches() {
        let live = LiveSessions::new()
            .with_recheck_period(Duration::from_secs(5))
            .with_max_failures(4);
        let printed = format!("{live:?}");
        assert!(printed.starts_with("LiveSessions {"), "{printed}");
        for expected in [
            "period: 5s",
            "max_failures: 4",
            "channel: None",
            "watches: 0",
        ] {
            assert!(printed.contains(expected), "{expected}: {printed}");
        }
    }
    use crate::live::check::{CheckFuture, Probe};

    /// A user whose password (the hash that verifies) the test sets. Each
    /// check reads it, before or after it waits for a permit of `gate`,
    /// so that the test decides when each check reads and when it ends.
    struct Gated {
        password: Mutex<&'static str>,
        read_first: bool,
        gate: Semaphore,
        started: AtomicUsize,
        finished: AtomicUsize,
    }

    impl Gated {
        fn new(read_first: bool) -> Arc<Self> {
            Arc::new(Self {
                password: Mutex::new("old"),
                read_first,
                gate: Semaphore::new(0),
                started: AtomicUsize::new(0),
                finished: AtomicUsize::new(0),
            })
        }

        fn set_password(&self, hash: &'static str) {
            *self.password.lock().unwrap() = hash;
        }

        fn read(&self) -> &'static str {
            *self.password.lock().unwrap()
        }

        /// Waits until `count` checks have started (and taken their
        /// snapshot of the watches).
        async fn started(&self, count: usize) {
            while self.started.load(Ordering::SeqCst) < count {
                tokio::task::yield_now().await;
            }
        }

        /// Lets one waiting check go on, and waits until it is done.
        async fn release_one(&self) {
            let done = self.finished.load(Ordering::SeqCst) + 1;
            self.gate.add_permits(1);
            while self.finished.load(Ordering::SeqCst) < done {
                tokio::task::yield_now().await;
            }
            // The hub acts on the verdicts once the check returns.
            tokio::task::yield_now().await;
        }
    }

    impl Verify for Gated {
        fn check<'a>(&'a self, _user: &'a str, probes: &'a [Probe]) -> CheckFuture<'a> {
            Box::pin(async move {
                self.started.fetch_add(1, Ordering::SeqCst);
                let early = self.read_first.then(|| self.read());
                self.gate.acquire().await.unwrap().forget();
                let password = early.unwrap_or_else(|| self.read());
                let verdicts = probes
                    .iter()
                    .map(|probe| {
                        if probe.claim.auth_hash == password {
                            Verdict::Holds { adopt: None }
                        } else if probe.announced.as_deref() == Some(password) {
                            Verdict::Holds {
                                adopt: Some((password.to_owned(), 0)),
                            }
                        } else {
                            Verdict::Ended(EndReason::CredentialChanged)
                        }
                    })
                    .collect();
                self.finished.fetch_add(1, Ordering::SeqCst);
                Ok(verdicts)
            })
        }
    }

    fn ticket() -> Watched {
        Watched {
            user: "1".to_owned(),
            claim: crate::record::Claim {
                auth_hash: "old".to_owned(),
                epoch: 0,
                handle: Some("h".to_owned()),
                times: crate::record::RecordTimes::signed_in_at(0, false),
                proofs: None,
                bound: Vec::new(),
            },
        }
    }

    fn kept_hash(live: &LiveSessions) -> String {
        live.hub.lock()["1"]
            .slots
            .values()
            .next()
            .unwrap()
            .probe
            .claim
            .auth_hash
            .clone()
    }

    /// A watch of user 1 whose first check (every new watch gets one) is
    /// done.
    async fn checked_watch(live: &LiveSessions, check: &Arc<Gated>) -> SessionWatch {
        let watch = live.watch(ticket(), check.clone());
        check.started(1).await;
        check.release_one().await;
        watch
    }

    /// A check of user 1 for `trigger`, in a task of its own.
    fn check_in_task(live: &LiveSessions, trigger: Trigger) -> tokio::task::JoinHandle<bool> {
        let hub = live.hub.clone();
        tokio::spawn(async move { hub.check_user("1", None, trigger).await })
    }

    #[tokio::test]
    async fn a_settled_check_older_than_the_changers_announcement_keeps_its_watch() {
        let live = LiveSessions::new();
        let check = Gated::new(false);
        let mut watch = checked_watch(&live, &check).await;

        // A settled check (the second look after the grace, or another
        // session's announcement) takes its snapshot, then the password
        // changes and the changer announces its new hash.
        check.set_password("new");
        let in_flight = check_in_task(&live, Trigger::Settled);
        check.started(2).await;
        live.changed("1".to_owned(), Some(("h".to_owned(), "new".to_owned())));
        check.started(3).await;

        // The older check reads the new password without the new hash.
        check.release_one().await;
        in_flight.await.unwrap();
        assert_eq!(
            watch.ended(),
            None,
            "ended by a check older than the announcement"
        );
        check.release_one().await;
        assert_eq!(watch.ended(), None);
        assert_eq!(kept_hash(&live), "new");
    }

    #[tokio::test]
    async fn adopting_a_hash_keeps_a_newer_one_announced_meanwhile() {
        let live = LiveSessions::new();
        let check = Gated::new(true);
        let mut watch = checked_watch(&live, &check).await;

        // The changer changes the password; the announcement's check reads
        // it and is slow to act.
        check.set_password("new1");
        live.changed("1".to_owned(), Some(("h".to_owned(), "new1".to_owned())));
        check.started(2).await;
        // It acts just after the changer changed the password again.
        check.gate.add_permits(1);
        check.set_password("new2");
        live.changed("1".to_owned(), Some(("h".to_owned(), "new2".to_owned())));
        check.started(3).await;
        assert_eq!(
            check.finished.load(Ordering::SeqCst),
            2,
            "the first went first"
        );
        assert_eq!(kept_hash(&live), "new1");

        check.release_one().await;
        assert_eq!(watch.ended(), None, "the second announcement was lost");
        assert_eq!(kept_hash(&live), "new2");
    }

    #[tokio::test]
    async fn a_mismatch_found_unannounced_ends_the_watch_only_at_the_second_look() {
        let live = LiveSessions::new();
        let check = Gated::new(false);
        let mut watch = checked_watch(&live, &check).await;

        // The backstop sees the new password before any announcement.
        check.set_password("new");
        let first = check_in_task(&live, Trigger::Unsettled);
        check.started(2).await;
        check.release_one().await;
        assert!(first.await.unwrap(), "a second look is asked for");
        assert_eq!(watch.ended(), None, "ended at the first look");

        // Nothing was announced in between: the second look ends it.
        let second = check_in_task(&live, Trigger::Settled);
        check.started(3).await;
        check.release_one().await;
        assert!(!second.await.unwrap());
        assert_eq!(
            watch.ended(),
            Some(WatchEnd::Session(EndReason::CredentialChanged))
        );
    }

    /// A channel that hands every notice back to its own listener, as a
    /// Redis subscriber of the channel it publishes on gets its own.
    #[derive(Debug, Clone, Default)]
    struct Loopback(Arc<Mutex<Option<mpsc::Sender<Signal>>>>);

    impl Loopback {
        async fn send(&self, signal: Signal) {
            let signals = self.0.lock().unwrap().clone();
            signals.unwrap().send(signal).await.unwrap();
        }
    }

    #[async_trait::async_trait]
    impl LiveChannel for Loopback {
        async fn publish(&self, notice: &str) -> Result<(), ChannelError> {
            self.send(Signal::Notice(notice.to_owned())).await;
            Ok(())
        }

        fn listen(&self, signals: mpsc::Sender<Signal>) {
            *self.0.lock().unwrap() = Some(signals);
        }
    }

    #[tokio::test]
    async fn a_process_acts_once_on_its_own_notice() {
        let channel = Loopback::default();
        let live = LiveSessions::new().with_channel(channel.clone());
        let check = Gated::new(false);
        check.gate.add_permits(100);
        let _watch = live.watch(ticket(), check.clone());
        check.started(1).await;

        live.notify(&1_u64).await.unwrap();
        check.started(2).await;
        // Another process's notice, behind this one's own on the channel:
        // once it is checked, the own one was passed over.
        let other = Notice {
            user: "1".to_owned(),
            keep: None,
            from: live.hub.instance.wrapping_add(1),
        };
        channel
            .send(Signal::Notice(serde_json::to_string(&other).unwrap()))
            .await;
        check.started(3).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(check.started.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_grace_is_two_seconds_or_a_quarter_of_a_shorter_period() {
        assert_eq!(grace(Duration::from_secs(30)), Duration::from_secs(2));
        assert_eq!(grace(Duration::from_secs(8)), Duration::from_secs(2));
        assert_eq!(
            grace(Duration::from_millis(400)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_jittered_period_is_between_three_quarters_and_all_of_it() {
        let period = Duration::from_secs(40);
        let samples: Vec<Duration> = (0..1000).map(|_| jittered(period)).collect();
        assert!(
            samples
                .iter()
                .all(|sample| (period * 3 / 4..=period).contains(sample)),
            "{:?}",
            samples.iter().min()
        );
        // Spread out, not one value.
        let (min, max) = (samples.iter().min(), samples.iter().max());
        assert!(max.unwrap().saturating_sub(*min.unwrap()) > Duration::from_secs(5));
    }
}
