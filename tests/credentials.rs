//! Sessions bound to the credential that proved them, over HTTP: removing
//! a passkey ends the sessions it proved and only those; a rehashed
//! password ends nothing when the application binds to its version; an
//! account without a password signs in with a passkey; a step-up adds a
//! factor and a credential, under a new session id.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::sse::{Event, Sse},
    routing::{get, post},
    Json, Router,
};
use futures_util::{stream, Stream, StreamExt as _};
use serde::Deserialize;
use tower_sessions::{MemoryStore, SessionManagerLayer};
use tower_sessions_auth::{
    credential::Factor,
    fast_path::FastPath,
    live::{LiveSessions, SessionWatch},
    registry::{MemoryRegistry, SessionRegistry},
    step_up::{Passkey, RecentFactor},
    AuthError, AuthLayer, AuthSession, AuthUser, SessionEnded, SessionUser, SignIn, UserBackend,
};

use common::{
    keys,
    live_app::{Events, Next},
    serve, Client, SECRET_A,
};

/// A user with a password version (bumped on a real change, not on a
/// rehash) and any number of passkeys, by id, each with its version.
#[derive(Clone, Debug, Default)]
struct Account {
    id: u64,
    name: String,
    /// The PHC string, rehashed at will; not what sessions bind to.
    password_hash: Option<String>,
    /// What sessions bind to: empty without a password.
    password_version: Vec<u8>,
    passkeys: HashMap<Vec<u8>, u64>,
}

impl SessionUser for Account {
    type Id = u64;

    fn id(&self) -> u64 {
        self.id
    }

    fn credential(&self) -> &[u8] {
        &self.password_version
    }

    fn credential_version(&self, id: &[u8]) -> Option<u64> {
        self.passkeys.get(id).copied()
    }
}

#[derive(Clone, Default)]
struct Accounts(Arc<RwLock<HashMap<u64, Account>>>);

impl Accounts {
    fn get(&self, id: u64) -> Option<Account> {
        self.0.read().unwrap().get(&id).cloned()
    }

    fn change(&self, id: u64, change: impl FnOnce(&mut Account)) {
        change(self.0.write().unwrap().get_mut(&id).unwrap());
    }
}

impl UserBackend for Accounts {
    type User = Account;
    type Error = Infallible;

    async fn get_user(&self, id: &u64) -> Result<Option<Account>, Infallible> {
        Ok(self.get(*id))
    }
}

/// How a test signs in: `{"factors": ["hwk", "user"], "credential": "pk-a"}`.
#[derive(Deserialize)]
struct Proof {
    #[serde(default)]
    factors: Vec<String>,
    credential: Option<String>,
}

impl Proof {
    fn options(self) -> SignIn {
        let factors = self
            .factors
            .iter()
            .filter_map(|name| Factor::from_name(name));
        let options = SignIn::new().factors(factors);
        match self.credential {
            Some(credential) => options.credential(credential.into_bytes()),
            None => options,
        }
    }
}

async fn login(
    State(accounts): State<Accounts>,
    Path(id): Path<u64>,
    mut auth: AuthSession<Account>,
    Json(proof): Json<Proof>,
) -> Result<StatusCode, AuthError> {
    let account = accounts.get(id).unwrap();
    auth.login_with(&account, proof.options()).await?;
    Ok(StatusCode::OK)
}

async fn step_up(
    State(accounts): State<Accounts>,
    AuthUser(account): AuthUser<Account>,
    mut auth: AuthSession<Account>,
    Json(proof): Json<Proof>,
) -> Result<StatusCode, AuthError> {
    let account = accounts.get(account.id).unwrap();
    auth.reauthenticate_with(&account, proof.options()).await?;
    Ok(StatusCode::OK)
}

/// `name amr…`, the factors in the order the session lists them.
async fn me(auth: AuthSession<Account>) -> (StatusCode, String) {
    let Some(user) = auth.user() else {
        return (StatusCode::UNAUTHORIZED, String::new());
    };
    let factors: Vec<&str> = auth
        .factors()
        .iter()
        .map(|(factor, _)| factor.as_str())
        .collect();
    (
        StatusCode::OK,
        format!("{} {}", user.name, factors.join(" ")),
    )
}

/// `event: hello`, then nothing until the session ends.
async fn events(watch: SessionWatch) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let hello = stream::once(async { Ok(Event::default().event("hello").data("{}")) });
    Sse::new(watch.sse(hello.chain(stream::pending())))
}

struct Site {
    base: String,
    accounts: Accounts,
    live: LiveSessions,
}

impl Site {
    async fn start() -> Self {
        Self::pair().await.0
    }

    /// Two instances over one session store, registry and user table, each
    /// with live sessions of its own and the fast path.
    async fn pair() -> (Self, Self) {
        Self::pair_with(LiveSessions::new).await
    }

    /// [`pair`](Self::pair), each instance with the live sessions `live`
    /// makes.
    async fn pair_with(live: impl Fn() -> LiveSessions) -> (Self, Self) {
        let accounts = Accounts::default();
        for (id, name, password) in [(1, "ana", true), (2, "ben", false)] {
            accounts.0.write().unwrap().insert(
                id,
                Account {
                    id,
                    name: name.to_owned(),
                    password_hash: password
                        .then(|| "$argon2id$v=19$m=19456,t=2,p=1$a$b".to_owned()),
                    password_version: if password { b"1".to_vec() } else { Vec::new() },
                    passkeys: HashMap::from([(b"pk-a".to_vec(), 1), (b"pk-b".to_vec(), 1)]),
                },
            );
        }
        let store = MemoryStore::default();
        let entries = MemoryRegistry::default();
        let site = || async {
            let live = live();
            let registry = SessionRegistry::new(entries.clone()).with_live_sessions(live.clone());
            Self {
                base: serve(Self::app(&accounts, store.clone(), registry)).await,
                accounts: accounts.clone(),
                live,
            }
        };
        (site().await, site().await)
    }

    fn app(accounts: &Accounts, store: MemoryStore, registry: SessionRegistry) -> Router {
        Router::new()
            .route("/login/{id}", post(login))
            .route("/step-up", post(step_up))
            .with_state(accounts.clone())
            .route("/me", get(me))
            .route("/events", get(events))
            .route(
                "/sensitive",
                get(|RecentFactor(user, _): RecentFactor<Account, Passkey>| async move { user.name }),
            )
            .route(
                "/why",
                get(|ended: Option<SessionEnded>| async move {
                    ended.map_or("none", |ended| ended.reason().as_str())
                }),
            )
            .layer(
                AuthLayer::new(accounts.clone(), keys(SECRET_A, &[]))
                    .with_registry(registry)
                    .with_fast_path(FastPath::new().with_secure(false)),
            )
            .layer(SessionManagerLayer::new(store).with_secure(false))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn signed_in(&self, id: u64, proof: &str) -> Client {
        let client = Client::new();
        let reply = client
            .post_json(&self.url(&format!("/login/{id}")), proof)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{proof}: {reply:?}");
        client
    }

    async fn me(&self, client: &Client) -> String {
        client.get(&self.url("/me")).await.body
    }

    /// What ended the session on its next request, `none` if it holds.
    async fn why(&self, client: &Client) -> String {
        client.get(&self.url("/why")).await.body
    }
}

const PASSWORD: &str = r#"{}"#;
const PASSKEY_A: &str = r#"{"factors": ["hwk", "user"], "credential": "pk-a"}"#;
const PASSKEY_B: &str = r#"{"factors": ["swk", "user"], "credential": "pk-b"}"#;

#[tokio::test]
async fn removing_a_passkey_ends_the_sessions_it_proved_and_only_those() {
    let site = Site::start().await;
    let by_password = site.signed_in(1, PASSWORD).await;
    let by_a = site.signed_in(1, PASSKEY_A).await;
    let by_a_too = site.signed_in(1, PASSKEY_A).await;
    let by_b = site.signed_in(1, PASSKEY_B).await;
    assert_eq!(site.me(&by_password).await, "ana pwd");
    assert_eq!(site.me(&by_a).await, "ana hwk user");
    assert_eq!(site.me(&by_b).await, "ana swk user");

    site.accounts.change(1, |ana| {
        ana.passkeys.remove(b"pk-a".as_slice());
    });
    assert_eq!(site.why(&by_a).await, "credential_removed");
    assert_eq!(site.why(&by_a_too).await, "credential_removed");
    assert_eq!(site.me(&by_a).await, "", "signed out");
    assert_eq!(site.me(&by_password).await, "ana pwd");
    assert_eq!(site.me(&by_b).await, "ana swk user");

    // Replaced: the same id at a new version.
    site.accounts.change(1, |ana| {
        ana.passkeys.insert(b"pk-b".to_vec(), 2);
    });
    assert_eq!(site.why(&by_b).await, "credential_removed");
    assert_eq!(site.me(&by_password).await, "ana pwd");
}

#[tokio::test]
async fn a_rehashed_password_ends_nothing_a_changed_one_ends_every_other_session() {
    let site = Site::start().await;
    let by_password = site.signed_in(1, PASSWORD).await;
    let by_a = site.signed_in(1, PASSKEY_A).await;
    site.accounts.change(1, |ana| {
        ana.password_hash = Some("$argon2id$v=19$m=65536,t=3,p=4$c$d".to_owned());
    });
    assert_eq!(site.why(&by_password).await, "none");
    assert_eq!(site.why(&by_a).await, "none");

    // A real change: every session ends, whatever factor proved it.
    site.accounts
        .change(1, |ana| ana.password_version = b"2".to_vec());
    assert_eq!(site.why(&by_password).await, "credential_changed");
    assert_eq!(site.why(&by_a).await, "credential_changed");
}

#[tokio::test]
async fn an_account_without_a_password_signs_in_with_a_passkey_only() {
    let site = Site::start().await;
    let ben = site.signed_in(2, PASSKEY_A).await;
    assert_eq!(site.me(&ben).await, "ben hwk user");
    // Nothing to bind a password sign-in to: refused, nothing signed in.
    let client = Client::new();
    let reply = client.post_json(&site.url("/login/2"), PASSWORD).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(site.me(&client).await, "");
    // A credential the account does not have: refused too.
    let reply = client
        .post_json(&site.url("/login/2"), r#"{"credential": "pk-z"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);

    site.accounts.change(2, |ben| ben.passkeys.clear());
    assert_eq!(site.why(&ben).await, "credential_removed");
}

#[tokio::test]
async fn a_step_up_adds_a_factor_and_a_credential_under_a_new_session_id() {
    let site = Site::start().await;
    let ana = site.signed_in(1, PASSWORD).await;
    let before = ana.session_id(&site.base).unwrap();
    let reply = ana.post_json(&site.url("/step-up"), PASSKEY_B).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_ne!(
        ana.session_id(&site.base).unwrap(),
        before,
        "ASVS 5.0 7.2.4"
    );
    assert_eq!(site.me(&ana).await, "ana pwd swk user");

    // The session now depends on the passkey it stepped up with.
    site.accounts.change(1, |ana| {
        ana.passkeys.remove(b"pk-b".as_slice());
    });
    assert_eq!(site.why(&ana).await, "credential_removed");
}

#[tokio::test]
async fn a_route_that_asks_for_a_passkey_says_so_until_one_is_proved() {
    let site = Site::start().await;
    let ana = site.signed_in(1, PASSWORD).await;
    let reply = ana.get(&site.url("/sensitive")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"error":"factor required","factors":["hwk","swk"]}"#
    );
    let page = ana
        .get_with(&site.url("/sensitive?x=1"), &[("accept", "text/html")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.header("location"),
        Some("/login?next=%2Fsensitive%3Fx%3D1&factors=hwk%2Cswk")
    );

    ana.post_json(&site.url("/step-up"), PASSKEY_B).await;
    let reply = ana.get(&site.url("/sensitive")).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ana"));
    let by_a = site.signed_in(1, PASSKEY_A).await;
    assert_eq!(by_a.get(&site.url("/sensitive")).await.body, "ana");
}

/// Every instance asks the backend on every request, the fast path too: a
/// removed passkey ends its sessions on the other instance at once, with
/// no notice sent.
#[tokio::test]
async fn a_passkey_removed_ends_its_sessions_on_every_instance_at_once() {
    let (one, two) = Site::pair().await;
    let by_a = one.signed_in(1, PASSKEY_A).await;
    let by_b = one.signed_in(1, PASSKEY_B).await;
    for client in [&by_a, &by_b] {
        // The second request hands out a pass, the third is served by it.
        for _ in 0..2 {
            assert_eq!(two.why(client).await, "none");
        }
        assert!(client.cookie_header(&two.base).contains("tsa_pass="));
    }
    one.accounts.change(1, |ana| {
        ana.passkeys.remove(b"pk-a".as_slice());
    });
    assert_eq!(two.why(&by_a).await, "credential_removed");
    assert_eq!(two.me(&by_b).await, "ana swk user");
}

/// A stream open on the other instance ends as `credential_removed` once
/// the application announces the removal (the backstop would, within its
/// period): over one process's live sessions, and over Redis between two.
async fn a_removed_passkey_ends_the_streams_it_proved(one: &Site, two: &Site) {
    let by_a = one.signed_in(1, PASSKEY_A).await;
    let by_b = one.signed_in(1, PASSKEY_B).await;
    let mut ended = Events::open(by_a.open(&two.url("/events")).await).await;
    let mut kept = Events::open(by_b.open(&two.url("/events")).await).await;
    one.accounts.change(1, |ana| {
        ana.passkeys.remove(b"pk-a".as_slice());
    });
    one.live.notify(&1_u64).await.unwrap();
    assert_eq!(
        ended.ended(Duration::from_secs(3)).await.as_deref(),
        Some("credential_removed")
    );
    assert_eq!(kept.next(Duration::from_millis(500)).await, Next::Silent);
}

#[tokio::test]
async fn a_removed_passkey_ends_the_streams_it_proved_in_this_process() {
    let site = Site::start().await;
    a_removed_passkey_ends_the_streams_it_proved(&site, &site).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_removed_passkey_ends_the_streams_it_proved_on_another_instance_over_redis() {
    let Some(url) = common::service_url("REDIS_URL") else {
        return;
    };
    let pool = common::services::redis_pool(&url).await;
    let name = common::services::unique_name();
    let (one, two) = Site::pair_with(|| {
        LiveSessions::new().with_channel(
            tower_sessions_auth::live::RedisChannel::new(pool.clone()).with_channel_name(&name),
        )
    })
    .await;
    // Both listeners subscribed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    a_removed_passkey_ends_the_streams_it_proved(&one, &two).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_removed_passkey_ends_the_streams_it_proved_on_another_instance_over_postgres() {
    let Some(url) = common::service_url("DATABASE_URL") else {
        return;
    };
    let pool = common::services::pg_pool(&url, 4).await;
    let name = common::services::unique_name();
    let (one, two) = Site::pair_with(|| {
        LiveSessions::new().with_channel(
            tower_sessions_auth::live::PostgresChannel::new(pool.clone()).with_channel_name(&name),
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a_removed_passkey_ends_the_streams_it_proved(&one, &two).await;
}
