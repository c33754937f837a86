//! One instance of the test application with the fast path, over a
//! counted memory store; or several sharing the store, the registry and
//! the users, each with live sessions of its own (as processes are).

use std::time::Duration;

use axum::{http::StatusCode, routing::post, Extension, Router};
use tower_sessions::SessionManagerLayer;
use tower_sessions_auth::{
    fast_path::FastPath,
    live::LiveSessions,
    registry::{MemoryRegistry, SessionRegistry},
    AuthKeys, AuthLayer,
};

use super::{
    clock::TestClock, counted::Counted, keys, registry_app::registry_routes, serve, Client, Reply,
    Users, SECRET_A,
};

/// The pass cookie's default name.
pub const PASS: &str = "tsa_pass";

/// What the instances of one application share, and their fast path's
/// settings.
#[derive(Clone)]
pub struct Shared {
    pub store: Counted,
    pub users: Users,
    pub entries: MemoryRegistry,
    pub fast_path: FastPath,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            store: Counted::default(),
            users: Users::with_defaults(),
            entries: MemoryRegistry::default(),
            fast_path: FastPath::new().with_secure(false),
        }
    }

    /// An instance with live sessions `live`, secrets `keys` and a test
    /// clock of its own, which moves only when the test moves it.
    pub async fn site(&self, live: LiveSessions, keys: AuthKeys) -> Site {
        self.site_tuned(live, keys, |registry| registry, |layer| layer)
            .await
    }

    /// [`site`](Self::site), with its registry and its layer set up
    /// further by `registry` and `layer`.
    pub async fn site_tuned(
        &self,
        live: LiveSessions,
        keys: AuthKeys,
        registry: impl FnOnce(SessionRegistry) -> SessionRegistry,
        layer: impl FnOnce(AuthLayer<Users>) -> AuthLayer<Users>,
    ) -> Site {
        let clock = TestClock::new();
        let tuned = layer(
            AuthLayer::new(self.users.clone(), keys)
                .with_clock(clock.reader())
                .with_fast_path(self.fast_path.clone()),
        );
        self.serve_with(live, tuned, clock, registry).await
    }

    /// An instance on the system clock: for heartbeats, which need time
    /// to pass. The instances share this machine's clock, so the fast path
    /// allows for no skew: a pass is trusted from the millisecond after the
    /// last change.
    pub async fn site_in_real_time(&self, live: LiveSessions, keys: AuthKeys) -> Site {
        let layer = AuthLayer::new(self.users.clone(), keys).with_fast_path(
            FastPath::new()
                .with_secure(false)
                .with_clock_skew(Duration::ZERO),
        );
        self.serve_with(live, layer, TestClock::new(), |registry| registry)
            .await
    }

    async fn serve_with(
        &self,
        live: LiveSessions,
        layer: AuthLayer<Users>,
        clock: TestClock,
        registry: impl FnOnce(SessionRegistry) -> SessionRegistry,
    ) -> Site {
        let registry =
            registry(SessionRegistry::new(self.entries.clone()).with_live_sessions(live));
        let app = registry_routes(self.users.clone())
            .merge(admin_routes())
            .layer(Extension(registry.clone()))
            .layer(layer.with_registry(registry.clone()))
            .layer(SessionManagerLayer::new(self.store.clone()).with_secure(false));
        Site {
            base: serve(app).await,
            store: self.store.clone(),
            users: self.users.clone(),
            registry,
            entries: self.entries.clone(),
            clock,
        }
    }
}

/// One instance with a fast path.
#[derive(Clone)]
pub struct Site {
    pub base: String,
    pub store: Counted,
    pub users: Users,
    pub registry: SessionRegistry,
    pub entries: MemoryRegistry,
    /// The layer's clock, unless the site runs in real time.
    pub clock: TestClock,
}

impl Site {
    /// A single instance, hearing only itself.
    pub async fn start() -> Self {
        Self::start_with(LiveSessions::new(), keys(SECRET_A, &[])).await
    }

    pub async fn start_with(live: LiveSessions, keys: AuthKeys) -> Self {
        Shared::new().site(live, keys).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new browser signed in as `id`, holding its pass.
    pub async fn signed_in(&self, id: u64) -> Client {
        let client = Client::new();
        let reply = client.post(&self.url(&format!("/login/{id}")), "").await;
        assert_eq!(reply.status, StatusCode::OK);
        // The new session id exists once tower-sessions saved it: the pass
        // comes with the next request.
        assert!(!sets_pass(&reply), "{reply:?}");
        self.pass_for(&client).await;
        client
    }

    /// Makes `client` fetch a pass here, which it must get.
    pub async fn pass_for(&self, client: &Client) {
        let reply = client.get(&self.url("/me")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            sets_pass(&reply),
            "a signed-in request gets a pass: {reply:?}"
        );
    }

    /// `GET /me` with exactly these cookies, from a client of its own.
    pub async fn me_with(&self, cookies: &str) -> Reply {
        Client::new()
            .get_with(&self.url("/me"), &[("cookie", cookies)])
            .await
    }
}

/// `POST /admin/revoke-everyone`: the administrator's "sign everyone out".
fn admin_routes() -> Router {
    Router::new().route(
        "/admin/revoke-everyone",
        post(
            |Extension(registry): Extension<SessionRegistry>| async move {
                registry.revoke_everyone().await.unwrap().to_string()
            },
        ),
    )
}

fn set_cookies(reply: &Reply) -> impl Iterator<Item = &str> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|cookie| cookie.to_str().unwrap())
}

fn is_removal(cookie: &str) -> bool {
    cookie.starts_with(&format!("{PASS}=;")) && cookie.contains("Max-Age=0")
}

/// Whether the response hands out a new pass.
pub fn sets_pass(reply: &Reply) -> bool {
    set_cookies(reply).any(|cookie| cookie.starts_with(&format!("{PASS}=")) && !is_removal(cookie))
}

/// Whether the response removes the pass.
pub fn removes_pass(reply: &Reply) -> bool {
    set_cookies(reply).any(is_removal)
}

/// The value of `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> &'a str {
    header
        .split("; ")
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {header}"))
}
