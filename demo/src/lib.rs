//! The demo application of tower-sessions-auth, independent of where its
//! configuration comes from: `main.rs` fills a [`Config`] from the
//! environment, the tests fill one by hand; both call [`build`] and
//! [`serve`].
//!
//! Request path, outermost first: response headers ([`headers`]), body
//! size and origin checks ([`guard`]), the attributes of removal cookies
//! ([`cookies`]), tower-sessions (the store
//! picked in [`stores`]), tower-sessions-auth's `AuthLayer` (users from
//! [`users`], events into [`activity`], live sessions on the store's
//! channel and, with a channel, the fast path: [`Config::fast_path`]),
//! the notice of an ended session
//! ([`html::explain_ended_session`]), then the routes ([`html`], [`api`],
//! and [`live`]: `/api/events`, `/ws` and the pages' script).
//!
//! # Cross-site requests
//!
//! Every `POST`, `PUT`, `PATCH`, `DELETE` and `CONNECT`, and every
//! WebSocket handshake (a `GET` with `Upgrade: websocket`, such as `/ws`),
//! whose `Origin` header is present must come from the site's own origin,
//! otherwise it is refused with `403`. WebSockets are not bound by CORS: a
//! page of another origin may open one, and the browser sends the cookie
//! when the two are same-site (a sibling subdomain), so without this check
//! that page could talk to `/ws` as the user (cross-site WebSocket
//! hijacking). The own origin is
//! [`Config::origin`] when set (`DEMO_ORIGIN`, e.g. `https://demo.example`),
//! else the request's `Host` header with `https` when secure cookies are on
//! and `http` otherwise. Behind a proxy that rewrites `Host`, set the
//! origin explicitly. Requests without `Origin` (curl, old clients) pass:
//! browsers send it on every cross-site request of these methods and on
//! every WebSocket handshake, and the `SameSite=Lax` cookie is not sent on
//! cross-site ones anyway.

mod accounts;
mod activity;
pub mod admin;
mod api;
mod cookies;
mod devices;
mod error;
mod guard;
mod headers;
mod html;
mod live;
mod pages;
mod passkeys;
mod passwords;
pub mod secret;
mod stores;
mod times;
mod users;

use std::{
    future::{Future, IntoFuture as _},
    net::SocketAddr,
    time::Duration,
};

use axum::{
    extract::DefaultBodyLimit,
    middleware,
    routing::{delete, get, post},
    Router,
};
use tokio::net::TcpListener;
use tower_sessions_auth::{
    dbsc::{self, DeviceBinding},
    live::LiveSessions,
    AuthKeys, AuthLayer,
};

pub use self::times::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_AGE, DEFAULT_REMEMBER_DAYS, DEFAULT_SUDO_WINDOW,
};

use self::{
    guard::OriginPolicy,
    passwords::Passwords,
    stores::{CookieSettings, Sessions},
    times::SessionTimes,
    users::{User, Users},
};

/// Largest request body accepted; larger ones are answered with `413`.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// A failure while starting: bad configuration, or a database or store that
/// cannot be reached.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Everything the demo needs to run.
pub struct Config {
    /// Where users live: `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Where sessions live: `redis://…`, `redis-cluster://…`,
    /// `postgres://…` or `sqlite://…`;
    /// `None` keeps them in the users' database.
    pub session_store_url: Option<String>,
    /// A Postgres schema for the demo's tables (users and sessions), created
    /// if missing; `None` uses the connection's default schema for users
    /// and tower-sessions' own `tower_sessions` schema for sessions. The
    /// tests use a throwaway schema per run.
    pub postgres_schema: Option<String>,
    /// The secrets that sign session auth hashes.
    pub keys: AuthKeys,
    /// Marks the session cookie `Secure` (and names it `__Host-…`), and
    /// the fast path's pass cookie the same way.
    pub secure_cookies: bool,
    /// Signs requests in from a short-lived pass cookie (`demo_pass`, or
    /// `__Host-demo_pass` with [`Config::secure_cookies`]) without reading
    /// the session store or the registry: tower-sessions-auth's fast path
    /// (`DEMO_FAST_PATH`, on unless `0`). Only with a Redis or Postgres
    /// session store, whose channel tells every process of every sign-out
    /// and revocation at once; never on SQLite, whatever this says.
    pub fast_path: bool,
    /// The site's own origin for the cross-site check, such as
    /// `https://demo.example`; `None` derives it from each request.
    pub origin: Option<String>,
    /// Argon2 cost of new password hashes. The tests lower it: the debug
    /// build hashes slowly, and the cost is not what they test.
    pub argon2: argon2::Params,
    /// The most sessions per user (`DEMO_MAX_SESSIONS`); a sign-in beyond
    /// it ends the least recently seen one. `None`: no limit.
    pub max_sessions: Option<usize>,
    /// How often every open `/api/events` stream and `/ws` socket is checked
    /// again (`DEMO_RECHECK_SECS`, default [`DEFAULT_RECHECK_PERIOD`]): the
    /// longest one outlives its session when no notice reached this process.
    /// At least 100 ms.
    pub recheck_period: Duration,
    /// How long `/api/events` may stay silent before it sends a comment
    /// line (default [`DEFAULT_KEEP_ALIVE`]), so that proxies do not close
    /// it as idle.
    pub keep_alive: Duration,
    /// A signed-in session unused this long ends (`DEMO_IDLE_SECS`,
    /// default [`DEFAULT_IDLE_TIMEOUT`], or the maximum age when that is
    /// shorter); a remembered one ("keep me signed in") after a week unused
    /// instead. Whole seconds.
    pub idle_timeout: Duration,
    /// A signed-in session ends this long after sign-in however active it
    /// is (`DEMO_MAX_AGE_SECS`, default [`DEFAULT_MAX_AGE`]); a remembered
    /// one after [`Config::remember_days`] instead. Whole seconds, at least
    /// the idle timeout.
    pub max_age: Duration,
    /// How many days a remembered session and its cookie live
    /// (`DEMO_REMEMBER_DAYS`, default [`DEFAULT_REMEMBER_DAYS`]).
    pub remember_days: u32,
    /// How recent a sign-in or password confirmation signing other devices
    /// out needs (`DEMO_SUDO_SECS`, default [`DEFAULT_SUDO_WINDOW`]).
    /// Whole seconds.
    pub sudo_window: Duration,
    /// Device-bound sessions (`DEMO_DBSC=1`): a sign-in offers them to the
    /// browser, `/dbsc/register` and `/dbsc/refresh` serve them, and a
    /// bound session is signed in only with its short-lived `demo_bound`
    /// cookie. `None`: off. The duration is that cookie's lifetime
    /// (`DEMO_BOUND_SECS`, default [`DEFAULT_BOUND_LIFETIME`]).
    pub device_binding: Option<Duration>,
}

/// The default lifetime of the device-bound cookie.
pub const DEFAULT_BOUND_LIFETIME: Duration = Duration::from_secs(600);

/// The default of [`Config::recheck_period`].
pub const DEFAULT_RECHECK_PERIOD: Duration = Duration::from_secs(30);

/// The default of [`Config::keep_alive`]: well under the 15 s the demo
/// promises between two lines of an event stream.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How long [`serve`] lets open connections finish after the shutdown
/// signal before it drops them: event streams and WebSockets never finish
/// by themselves.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// State shared by the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    users: Users,
    passwords: Passwords,
    /// [`Config::keep_alive`].
    keep_alive: Duration,
    /// The lifetimes, for the list of signed-in devices.
    times: SessionTimes,
    /// The site's own origin, which also makes the passkeys' relying party.
    origin: OriginPolicy,
    /// To tell open connections in every process that a passkey was
    /// removed.
    live: LiveSessions,
}

/// Connects to the databases, creates the schema and returns the complete
/// application.
///
/// # Errors
///
/// When a URL, the schema name or a period is invalid, or a database or
/// the session store cannot be reached or migrated.
pub async fn build(config: Config) -> Result<Router, StartError> {
    if config.recheck_period < Duration::from_millis(100) {
        return Err(format!(
            "the re-check period must be 100 ms or more, got {:?}",
            config.recheck_period
        )
        .into());
    }
    if config.keep_alive.is_zero() {
        return Err("the keep-alive interval of /api/events must not be zero".into());
    }
    let times = SessionTimes::new(
        config.idle_timeout,
        config.max_age,
        config.remember_days,
        config.sudo_window,
    )?;
    let origin = OriginPolicy::new(config.origin.as_deref(), config.secure_cookies)?;
    let users = Users::connect(&config.database_url, config.postgres_schema.as_deref()).await?;
    users.migrate().await?;
    let passwords = Passwords::new(config.argon2).await?;

    let registry = stores::session_registry(
        &users,
        config.postgres_schema.as_deref(),
        config.max_sessions,
        &times,
    )
    .await?;
    let sessions = Sessions::connect(
        config.session_store_url.as_deref(),
        &users,
        config.postgres_schema.as_deref(),
    )
    .await?;
    let live = sessions.live_sessions(config.recheck_period);
    let registry = registry.with_live_sessions(live.clone());
    let cookies = CookieSettings {
        secure: config.secure_cookies,
    };
    let fast_path = if config.fast_path {
        sessions.fast_path(&cookies)
    } else {
        None
    };
    match (&fast_path, config.fast_path) {
        (Some(_), _) => tracing::info!("fast path on: signed-in requests carry a pass cookie"),
        (None, true) => tracing::info!("fast path off: SQLite has no channel between processes"),
        (None, false) => tracing::info!("fast path off, as configured"),
    }
    let auth = AuthLayer::new(users.clone(), config.keys)
        .with_login_url("/login")
        .with_registry(registry)
        .with_events(activity::events(users.clone()))
        .with_lifetimes(times.session())
        .with_remembered_lifetimes(times.remembered())
        .with_reauth(times.reauth());
    let auth = match fast_path {
        Some(fast_path) => auth.with_fast_path(fast_path),
        None => auth,
    };
    let auth = match config.device_binding {
        Some(lifetime) => auth.with_device_binding(
            DeviceBinding::new()
                .with_cookie_name(cookies.bound_name())
                .with_secure(cookies.secure)
                .with_lifetime(lifetime),
        ),
        None => auth,
    };
    let routes = Router::new()
        .route("/", get(html::home))
        .route("/signup", get(html::signup_form).post(html::signup))
        .route("/login", get(html::login_form).post(html::login))
        .route("/logout", post(html::logout))
        .route(
            "/password",
            get(html::password_form).post(html::change_password),
        )
        .route("/sessions", get(html::sessions))
        .route("/sessions/revoke", post(html::revoke_session))
        .route("/sessions/logout-others", post(html::logout_others))
        .route("/confirm", get(html::confirm_form).post(html::confirm))
        .route("/account/delete", post(html::delete_account))
        .route("/api/me", get(api::me))
        .route("/api/login", post(api::login))
        .route("/api/sessions", get(api::sessions))
        .route("/api/sessions/{handle}", delete(api::revoke_session))
        .route("/passkeys", get(passkeys::pages::list))
        .route("/passkeys/{id}/delete", post(passkeys::pages::delete))
        .route("/api/passkeys", get(passkeys::api::list))
        .route("/api/passkeys/{id}", delete(passkeys::api::delete))
        .route(
            "/api/passkeys/register/start",
            post(passkeys::api::register_start),
        )
        .route(
            "/api/passkeys/register/finish",
            post(passkeys::api::register_finish),
        )
        .route(
            "/api/passkeys/login/start",
            post(passkeys::api::login_start),
        )
        .route(
            "/api/passkeys/login/finish",
            post(passkeys::api::login_finish),
        )
        .route(
            "/api/passkeys/signup/start",
            post(passkeys::api::signup_start),
        )
        .route(
            "/api/passkeys/signup/finish",
            post(passkeys::api::signup_finish),
        )
        .route("/api/events", get(live::events))
        .route("/ws", get(live::echo))
        .route("/static/live.js", get(live::script))
        .route("/static/passkeys.js", get(passkeys::pages::script));
    let routes = if config.device_binding.is_some() {
        routes
            .route("/dbsc/register", post(dbsc::register::<User>))
            .route("/dbsc/refresh", post(dbsc::refresh::<User>))
    } else {
        routes
    };
    let routes = routes
        .with_state(AppState {
            users: users.clone(),
            passwords,
            keep_alive: config.keep_alive,
            times,
            origin: origin.clone(),
            live,
        })
        .layer(middleware::from_fn(html::explain_ended_session))
        .layer(auth);

    let with_sessions = sessions
        .layer(routes, &cookies)
        .layer(middleware::from_fn(crate::cookies::secure_removal_cookies));

    // The headers go on last, so that refusals from the guards carry them too.
    Ok(with_sessions
        .layer(middleware::from_fn_with_state(origin, guard::same_origin))
        .layer(middleware::from_fn(guard::limit_body))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(headers::set_response_headers)))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets
/// requests in flight finish for a few seconds before dropping the
/// connections still open (event streams and WebSockets, which browsers
/// open again, to another instance or after the restart).
///
/// Handlers see the peer address of each TCP connection
/// (`ConnectInfo<SocketAddr>`); the demo trusts no forwarding header.
///
/// # Errors
///
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        // Nobody may be waiting any more; the server stops either way.
        let _ = stopping.send(true);
    };
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(signal);
    tokio::select! {
        served = server.into_future() => served,
        () = async {
            // Only a sent `true` starts the grace; a dropped sender (the
            // server ended first) never does.
            if stopped.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}
