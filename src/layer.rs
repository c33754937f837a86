//! `AuthLayer`: builders that validate the configuration, applied to a
//! service.

use std::{sync::Arc, time::Duration};

use axum::http::{HeaderValue, StatusCode};
use tower::Layer;

use crate::{
    backend::{SessionUser, UserBackend},
    config::{Config, Context},
    events::{EventHook, Events},
    fast_path::FastPath,
    hash::AuthKeys,
    recheck::BackendCheck,
    registry::SessionRegistry,
    service::AuthService,
    times::{Clock, Lifetimes, ReauthPolicy, SharedClock},
};

/// Verifies the session's auth hash on every request and puts an
/// [`Identity`](crate::Identity) into the request extensions.
///
/// Add it inside tower-sessions' `SessionManagerLayer`: with axum's
/// `Router::layer`, the layer added last is the outermost, so add this one
/// first.
///
/// ```
/// # use std::convert::Infallible;
/// # use tower_sessions_auth::{SessionUser, UserBackend};
/// # #[derive(Clone)] struct User;
/// # impl SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"$argon2id$..." } }
/// # #[derive(Clone)] struct Users;
/// # impl UserBackend for Users { type User = User; type Error = Infallible;
/// #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
/// use axum::{routing::get, Router};
/// use tower_sessions::{MemoryStore, SessionManagerLayer};
/// use tower_sessions_auth::{AuthKeys, AuthLayer};
///
/// let keys = AuthKeys::new(b"a secret of at least thirty-two bytes")?;
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(AuthLayer::new(Users, keys).with_login_url("/sign-in"))
///     .layer(SessionManagerLayer::new(MemoryStore::default()));
/// # Ok::<(), tower_sessions_auth::error::KeyError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthLayer<B> {
    backend: B,
    context: Context,
}

impl<B: UserBackend> AuthLayer<B> {
    /// Creates the layer with the application's user backend and secrets.
    pub fn new(backend: B, keys: AuthKeys) -> Self {
        let user_type = std::any::type_name::<B::User>();
        Self {
            backend,
            context: Arc::new(Config::new(keys, user_type)),
        }
    }

    /// Sets where [`LoginRequired`](crate::LoginRequired) sends anonymous
    /// browsers (default `/login`): a path (`/sign-in`, `/auth?mode=web`)
    /// or an absolute URL. The requested path is appended as the `next`
    /// query parameter.
    ///
    /// # Panics
    ///
    /// When `url` is empty, holds a `#` fragment (which would swallow
    /// `next`), or is not a valid `Location` header value (control
    /// characters, non-ASCII): a configuration mistake, reported when the
    /// layer is built rather than on every request.
    pub fn with_login_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        check_redirect_url("AuthLayer::with_login_url", &url);
        self.config_mut().login_url = url;
        self
    }

    /// Sets the status answered when the session store or the backend fails
    /// (default `500`; `503` suits a service behind a retrying proxy).
    ///
    /// # Panics
    ///
    /// When `status` is not a server error (5xx): a failure must never look
    /// like success, a redirect or a refusal of the client.
    pub fn with_failure_status(mut self, status: StatusCode) -> Self {
        assert!(
            status.is_server_error(),
            "AuthLayer::with_failure_status: {status} is not a server error; use a 5xx status"
        );
        self.config_mut().failure_status = status;
        self
    }

    /// Keeps every signed-in session in a [session index](crate::registry::SessionRegistry):
    /// each signed-in request then checks that its entry still exists (one
    /// store read; its last-seen time is written at most once per touch
    /// interval), and [`AuthSession`](crate::AuthSession) can list and
    /// revoke the user's sessions. A revoked session, or one logged out, is
    /// anonymous on its next request, also if a request that was already
    /// under way saved its record back.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use tower_sessions_auth::{SessionUser, UserBackend};
    /// # #[derive(Clone)] struct User;
    /// # impl SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
    /// # #[derive(Clone)] struct Users;
    /// # impl UserBackend for Users { type User = User; type Error = Infallible;
    /// #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
    /// use tower_sessions_auth::{registry::{MemoryRegistry, SessionRegistry}, AuthKeys, AuthLayer};
    ///
    /// let layer = AuthLayer::new(Users, AuthKeys::new([7; 32])?)
    ///     .with_registry(SessionRegistry::new(MemoryRegistry::default()));
    /// # Ok::<(), tower_sessions_auth::error::KeyError>(())
    /// ```
    ///
    /// Sessions signed in before the registry was added have no entry: each
    /// ends once, on its next request (reason `revoked`), so that a
    /// revocation can reach every session.
    ///
    /// # Panics
    ///
    /// When the registry's lifetime is under twice its touch interval.
    pub fn with_registry(mut self, registry: SessionRegistry) -> Self {
        registry.check();
        self.config_mut().registry = Some(registry);
        self
    }

    /// Signs requests in from a short-lived credential cookie, without the
    /// session store or the registry, while every instance hears of every
    /// ending through the registry's live sessions: see [the fast
    /// path](crate::fast_path).
    ///
    /// It needs a [registry](Self::with_registry) with
    /// [live sessions](crate::registry::SessionRegistry::with_live_sessions)
    /// (and, with several instances, their channel); without them the
    /// layer has no fast path, and says so in a log event when applied.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use tower_sessions_auth::{SessionUser, UserBackend};
    /// # #[derive(Clone)] struct User;
    /// # impl SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
    /// # #[derive(Clone)] struct Users;
    /// # impl UserBackend for Users { type User = User; type Error = Infallible;
    /// #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
    /// use tower_sessions_auth::{
    ///     fast_path::FastPath, live::LiveSessions,
    ///     registry::{MemoryRegistry, SessionRegistry}, AuthKeys, AuthLayer,
    /// };
    ///
    /// let registry = SessionRegistry::new(MemoryRegistry::default())
    ///     .with_live_sessions(LiveSessions::new());
    /// let layer = AuthLayer::new(Users, AuthKeys::new([7; 32])?)
    ///     .with_fast_path(FastPath::new())
    ///     .with_registry(registry);
    /// # Ok::<(), tower_sessions_auth::error::KeyError>(())
    /// ```
    pub fn with_fast_path(mut self, fast_path: FastPath) -> Self {
        self.config_mut().fast_path = Some(fast_path);
        self
    }

    /// Binds sessions to the device that signed in, where the browser
    /// supports it: see [device-bound sessions](crate::dbsc). Route the
    /// binding's registration and refresh paths to
    /// [`dbsc::register`](crate::dbsc::register) and
    /// [`dbsc::refresh`](crate::dbsc::refresh).
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use tower_sessions_auth::{SessionUser, UserBackend};
    /// # #[derive(Clone)] struct User;
    /// # impl SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
    /// # #[derive(Clone)] struct Users;
    /// # impl UserBackend for Users { type User = User; type Error = Infallible;
    /// #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
    /// use axum::{routing::post, Router};
    /// use tower_sessions_auth::{dbsc, AuthKeys, AuthLayer};
    ///
    /// let layer = AuthLayer::new(Users, AuthKeys::new([7; 32])?)
    ///     .with_device_binding(dbsc::DeviceBinding::new());
    /// let app: Router = Router::new()
    ///     .route("/dbsc/register", post(dbsc::register::<User>))
    ///     .route("/dbsc/refresh", post(dbsc::refresh::<User>))
    ///     .layer(layer);
    /// # Ok::<(), tower_sessions_auth::error::KeyError>(())
    /// ```
    #[cfg(feature = "dbsc")]
    pub fn with_device_binding(mut self, binding: crate::dbsc::DeviceBinding) -> Self {
        self.config_mut().device = Some(binding);
        self
    }

    /// Sends [events](crate::events::AuthEvent) (signed in, signed out, session
    /// ended, re-hashed, failed closed) to the application's hook.
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use tower_sessions_auth::{SessionUser, UserBackend};
    /// # #[derive(Clone)] struct User;
    /// # impl SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
    /// # #[derive(Clone)] struct Users;
    /// # impl UserBackend for Users { type User = User; type Error = Infallible;
    /// #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
    /// use tower_sessions_auth::{events::{AuthEvent, AuthEventKind, Events}, AuthKeys, AuthLayer};
    ///
    /// let layer = AuthLayer::new(Users, AuthKeys::new([7; 32])?).with_events(Events::new(
    ///     |event: AuthEvent<u64>| async move {
    ///         if let AuthEventKind::SessionEnded(reason) = event.kind {
    ///             tracing::info!(user = ?event.user_id, %reason, "audit: session ended");
    ///         }
    ///     },
    /// ));
    /// # Ok::<(), tower_sessions_auth::error::KeyError>(())
    /// ```
    pub fn with_events<H>(mut self, events: Events<H>) -> Self
    where
        H: EventHook<<B::User as SessionUser>::Id>,
    {
        self.config_mut().events = Some(events.into_sink::<<B::User as SessionUser>::Id>());
        self
    }

    /// Sets the lifetimes of sessions signed in for the browser session
    /// (the default tier; [`login`](crate::AuthSession::login), or
    /// [`SignIn::remember`](crate::SignIn::remember) `false`). Default: 30 minutes idle, 12 hours
    /// in all (NIST SP 800-63B, AAL2).
    ///
    /// A session past either ends on its next request as a revoked one
    /// does (reason [`Expired`](crate::EndReason::Expired)); see the crate
    /// documentation, "Session lifetimes".
    pub fn with_lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.config_mut().times.session = lifetimes;
        self
    }

    /// Sets the lifetimes of remembered sessions ("keep me signed in",
    /// [`SignIn::remember`](crate::SignIn::remember) `true`). Default: 7 days idle, 30 days in all.
    /// Their cookie persists until the absolute deadline.
    pub fn with_remembered_lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.config_mut().times.remembered = lifetimes;
        self
    }

    /// Sets how stale the recorded activity of a session may grow before a
    /// request rewrites it (default one minute): the idle timeout's only
    /// store write, at most once per interval and session. A session can
    /// end up to one interval before its idle timeout. A tier whose idle
    /// timeout is under twice the interval uses half its idle timeout.
    ///
    /// # Panics
    ///
    /// When `interval` is not whole seconds or is zero.
    pub fn with_activity_interval(mut self, interval: Duration) -> Self {
        assert!(
            interval.subsec_nanos() == 0 && interval.as_secs() >= 1,
            "AuthLayer::with_activity_interval: {interval:?} is not a whole number of seconds \
             (at least one)"
        );
        self.config_mut().times.activity_interval = interval.as_secs();
        self
    }

    /// Sets the re-authentication window of [`RecentAuth`](crate::RecentAuth)
    /// routes and where browsers confirm their credentials (default: 10
    /// minutes, the login URL).
    ///
    /// # Panics
    ///
    /// When the policy's confirmation URL is empty, holds a `#` fragment or
    /// is not a valid `Location` header value, as
    /// [`with_login_url`](Self::with_login_url) refuses.
    pub fn with_reauth(mut self, policy: ReauthPolicy) -> Self {
        if let Some(url) = &policy.confirm_url {
            check_redirect_url("AuthLayer::with_reauth", url);
        }
        self.config_mut().times.reauth = policy;
        self
    }

    /// Sets the clock the layer reads (default: the system clock): for
    /// tests that move time on. It is the one clock of the session
    /// records, the registry given to the layer and the live checks.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.config_mut().times.clock = SharedClock::new(clock);
        self
    }

    fn config_mut(&mut self) -> &mut Config {
        // Builders run before `layer`, while the Arc is still unique; a clone
        // shared elsewhere is copied rather than changed under its owner.
        Arc::make_mut(&mut self.context)
    }
}

/// Panics unless `url` can take a `next` parameter and be a `Location`.
fn check_redirect_url(caller: &str, url: &str) {
    assert!(!url.is_empty(), "{caller}: the URL is empty");
    assert!(
        !url.contains('#'),
        "{caller}: `{url}` has a `#` fragment, which would hide the `next` parameter from the \
         server; remove it"
    );
    assert!(
        HeaderValue::from_str(url).is_ok() && url.is_ascii(),
        "{caller}: {url:?} is not a valid `Location` header value; percent-encode it"
    );
}

impl<S, B: UserBackend> Layer<S> for AuthLayer<B> {
    type Service = AuthService<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::new(inner, self.backend.clone(), self.applied())
    }
}

impl<B: UserBackend> AuthLayer<B> {
    /// The configuration as the service reads it, derived from the
    /// settings whatever the order of the builders: the registry reads
    /// the layer's clock, and with live sessions the layer's validity
    /// rule checks the watches.
    fn applied(&self) -> Context {
        let mut config = Config::clone(&self.context);
        if let Some(registry) = &mut config.registry {
            registry.clock = config.times.clock.clone();
        }
        match (&config.fast_path, config.live()) {
            (Some(_), Some(live)) => {
                live.changes().use_clock(config.times.clock.clone());
                // On a runtime, the heartbeat starts now rather than on the
                // first request, so that the first sign-in gets a pass.
                if tokio::runtime::Handle::try_current().is_ok() {
                    live.start();
                }
            }
            (Some(_), None) => {
                tracing::error!(
                    "AuthLayer::with_fast_path: the layer has no registry with live sessions, \
                     which the fast path needs to hear of endings; it is off"
                );
                config.fast_path = None;
            }
            (None, _) => {}
        }
        if config.live().is_some() {
            // A copy without the check itself: no reference cycle.
            let context = Arc::new(config.clone());
            config.check = Some(Arc::new(BackendCheck {
                backend: self.backend.clone(),
                context,
            }));
        }
        Arc::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{registry::MemoryRegistry, test_support::Users};

    const SECRET: &str = "a layer secret that is long enough to be accepted";

    fn layer() -> AuthLayer<Users> {
        AuthLayer::new(Users, AuthKeys::new(SECRET).unwrap())
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let printed = format!("{:?}", layer().with_login_url("/in"));
        assert!(!printed.contains(SECRET), "{printed}");
        assert!(
            printed.contains("<redacted>") && printed.contains("/in"),
            "{printed}"
        );
    }

    /// The panic message of `build`, if it panics.
    fn panic_message(build: impl FnOnce() -> AuthLayer<Users>) -> Option<String> {
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)).err()?;
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
    }

    #[test]
    fn failure_status_accepts_only_server_errors() {
        let status = |layer: AuthLayer<Users>| layer.context.failure_status;
        assert_eq!(status(layer()), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            status(layer().with_failure_status(StatusCode::SERVICE_UNAVAILABLE)),
            StatusCode::SERVICE_UNAVAILABLE
        );
        for refused in [
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::SEE_OTHER,
        ] {
            let message = panic_message(|| layer().with_failure_status(refused))
                .unwrap_or_else(|| panic!("{refused} was accepted"));
            assert!(message.contains("not a server error"), "{message}");
            assert!(message.contains(refused.as_str()), "{message}");
        }
    }

    #[test]
    fn login_url_mistakes_are_refused_when_the_layer_is_built() {
        for (url, expected) in [
            ("", "empty"),
            ("/login#top", "fragment"),
            ("/log\nin", "not a valid `Location` header value"),
            ("/anmeldung-für-alle", "not a valid `Location` header value"),
        ] {
            let message = panic_message(|| layer().with_login_url(url))
                .unwrap_or_else(|| panic!("{url:?} was accepted"));
            assert!(message.contains(expected), "{url:?}: {message}");
        }
        for url in ["/sign-in", "/auth?mode=web", "https://id.example/login"] {
            assert_eq!(layer().with_login_url(url).context.login_url, url);
        }
    }

    #[test]
    fn time_settings_are_checked_when_the_layer_is_built() {
        let minutes = |n: u64| Duration::from_secs(60 * n);
        let message = panic_message(|| layer().with_activity_interval(Duration::from_millis(500)))
            .expect("a fraction of a second");
        assert!(message.contains("with_activity_interval"), "{message}");
        let message = panic_message(|| {
            layer().with_reauth(ReauthPolicy::new(minutes(5)).with_confirm_url("/confirm#x"))
        })
        .expect("a fragment");
        assert!(
            message.contains("with_reauth") && message.contains("fragment"),
            "{message}"
        );

        let built = layer()
            .with_activity_interval(Duration::from_secs(30))
            .with_lifetimes(Lifetimes::new(minutes(1), minutes(60)))
            .with_reauth(ReauthPolicy::new(minutes(5)).with_confirm_url("/confirm"));
        assert_eq!(built.context.times.activity_interval, 30);
        assert_eq!(built.context.times.session.idle(), minutes(1));
        assert_eq!(built.context.times.reauth.window(), minutes(5));
    }

    #[tokio::test]
    async fn debug_shows_the_live_sessions() {
        let printed = format!(
            "{:?}",
            layer().with_registry(
                SessionRegistry::new(MemoryRegistry::default())
                    .with_live_sessions(crate::live::LiveSessions::new())
            )
        );
        assert!(printed.contains("live: Some(LiveSessions {"), "{printed}");
    }

    #[tokio::test]
    async fn the_builders_give_the_same_layer_in_any_order() {
        let fixed = || std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let registry = || {
            SessionRegistry::new(MemoryRegistry::default())
                .with_live_sessions(crate::live::LiveSessions::new())
        };
        let lifetimes = Lifetimes::new(Duration::from_secs(60), Duration::from_secs(600));
        let orders = [
            layer()
                .with_clock(fixed)
                .with_lifetimes(lifetimes)
                .with_registry(registry()),
            layer()
                .with_registry(registry())
                .with_lifetimes(lifetimes)
                .with_clock(fixed),
        ];
        for built in orders {
            let applied = built.applied();
            let registry = applied.registry.as_ref().unwrap();
            assert_eq!(
                registry.clock.now_ms(),
                1_800_000_000_000,
                "the layer's clock"
            );
            assert!(applied.check.is_some(), "watches are checked");
            assert_eq!(applied.times.session.idle(), Duration::from_secs(60));
        }
        assert!(
            layer().applied().check.is_none(),
            "no live sessions, no check"
        );
    }

    #[test]
    fn builders_do_not_change_a_shared_clone() {
        let original = layer();
        let changed = original.clone().with_login_url("/elsewhere");
        assert_eq!(original.context.login_url, "/login");
        assert_eq!(changed.context.login_url, "/elsewhere");
    }
}
