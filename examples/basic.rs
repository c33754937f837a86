//! Run with `cargo run --example basic`, then follow the `curl` commands it
//! logs.
//!
//! The whole API in one file, top to bottom: a user type and its backend,
//! sign-in, sign-out, a password change that ends the user's other
//! sessions, the events hook, and telling a signed-out client why. Sessions
//! live in tower-sessions' `MemoryStore`, users in memory with argon2
//! password hashes. Optional settings: `PORT` (default 3001),
//! `SESSION_SECRET` (32 bytes or more) and `SESSION_SECRET_OLD` (a fallback
//! during a rotation).
//!
//! The `redis` and `postgres` examples reuse [`app`], [`port`] and
//! [`serve`] with their own session store.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, PoisonError, RwLock},
};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Form, Router,
};
use serde::Deserialize;
use tower_sessions::{MemoryStore, SessionManagerLayer};
use tower_sessions_auth::{
    events::{AuthEvent, Events},
    AuthError, AuthKeys, AuthLayer, AuthSession, AuthUser, Identity, SessionEnded, SessionUser,
    UserBackend,
};

/// Only for trying the examples: set `SESSION_SECRET` to 32+ random bytes.
const EXAMPLE_SECRET: &str = "example secret; replace it with 32+ random bytes";

/// The password of the one user, `alice`.
const PASSWORD: &str = "correct horse battery";

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
struct User {
    id: u32,
    name: String,
    password_hash: String,
}

impl SessionUser for User {
    type Id = u32;

    fn id(&self) -> u32 {
        self.id
    }

    fn credential(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

/// Users by id, in memory; a real application keeps them in its database,
/// shared by every instance.
#[derive(Clone, Default)]
struct Users(Arc<RwLock<HashMap<u32, User>>>);

impl Users {
    fn by_name(&self, name: &str) -> Option<User> {
        let table = self.0.read().unwrap_or_else(PoisonError::into_inner);
        table.values().find(|user| user.name == name).cloned()
    }

    fn store(&self, user: User) {
        let mut table = self.0.write().unwrap_or_else(PoisonError::into_inner);
        table.insert(user.id, user);
    }
}

impl UserBackend for Users {
    type User = User;
    type Error = Infallible;

    async fn get_user(&self, id: &u32) -> Result<Option<User>, Infallible> {
        let table = self.0.read().unwrap_or_else(PoisonError::into_inner);
        Ok(table.get(id).cloned())
    }
}

fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks `password` on a blocking thread: argon2 is slow on purpose.
async fn password_matches(user: &User, password: &str) -> bool {
    let (hash, password) = (user.password_hash.clone(), password.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct NewPassword {
    current_password: String,
    new_password: String,
}

/// Who is signed in; on the request that ended a session, also why.
async fn home(identity: Identity<User>, ended: Option<SessionEnded>) -> String {
    match (identity, ended) {
        (Identity::Authenticated(user), _) => format!("Signed in as {}\n", user.name),
        (Identity::Anonymous, Some(ended)) => {
            format!("Not signed in: your session ended ({})\n", ended.reason())
        }
        (Identity::Anonymous, None) => "Not signed in\n".to_owned(),
    }
}

async fn login(
    State(users): State<Users>,
    mut auth: AuthSession<User>,
    Form(form): Form<Credentials>,
) -> Result<(StatusCode, &'static str), AuthError> {
    match users.by_name(&form.username) {
        Some(user) if password_matches(&user, &form.password).await => {
            auth.login(&user).await?;
            Ok((StatusCode::OK, "Signed in\n"))
        }
        _ => Ok((StatusCode::UNAUTHORIZED, "Wrong username or password\n")),
    }
}

async fn logout(mut auth: AuthSession<User>) -> Result<&'static str, AuthError> {
    auth.logout().await?;
    Ok("Signed out\n")
}

async fn change_password(
    State(users): State<Users>,
    AuthUser(mut user): AuthUser<User>,
    mut auth: AuthSession<User>,
    Form(form): Form<NewPassword>,
) -> Result<(StatusCode, &'static str), AuthError> {
    if !password_matches(&user, &form.current_password).await {
        return Ok((StatusCode::FORBIDDEN, "Wrong current password\n"));
    }
    let Ok(new_hash) = hash_password(&form.new_password) else {
        return Ok((StatusCode::INTERNAL_SERVER_ERROR, "Could not hash\n"));
    };
    user.password_hash = new_hash;
    users.store(user.clone());
    auth.update_session_auth_hash(&user).await?;
    Ok((StatusCode::OK, "Password changed; other sessions end\n"))
}

/// The secret and its optional fallback (`SESSION_SECRET`,
/// `SESSION_SECRET_OLD`), from the environment.
fn keys_from_env() -> Result<AuthKeys, tower_sessions_auth::error::KeyError> {
    let current = std::env::var("SESSION_SECRET").unwrap_or_else(|_| {
        tracing::warn!("SESSION_SECRET is not set; using the example secret");
        EXAMPLE_SECRET.to_owned()
    });
    let keys = AuthKeys::new(current)?;
    match std::env::var("SESSION_SECRET_OLD") {
        Ok(old) => keys.with_fallback(old),
        Err(_) => Ok(keys),
    }
}

/// The routes inside `AuthLayer`, with `alice` as the one user; the caller
/// adds its `SessionManagerLayer` around them (the layer added last runs
/// first).
pub(crate) fn app() -> Result<Router, BoxError> {
    let users = Users::default();
    users.store(User {
        id: 1,
        name: "alice".to_owned(),
        password_hash: hash_password(PASSWORD)?,
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/password", post(change_password))
        .with_state(users.clone())
        .layer(
            AuthLayer::new(users, keys_from_env()?).with_events(Events::new(
                // An audit log; a real application might send a "new sign-in"
                // mail here. The request path only queues the event.
                |event: AuthEvent<u32>| async move {
                    tracing::info!(kind = ?event.kind, user = ?event.user_id, "auth event");
                },
            )),
        ))
}

/// The listening port: `PORT`, or `default`.
pub(crate) fn port(default: u16) -> Result<u16, BoxError> {
    match std::env::var("PORT") {
        Ok(port) => Ok(port.parse().map_err(|_| "PORT must be a port number")?),
        Err(_) => Ok(default),
    }
}

/// Serves `app` on 127.0.0.1:`port`, after logging how to try it.
pub(crate) async fn serve(app: Router, port: u16) -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter("info,tower_sessions_auth=debug")
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .try_init()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let login = format!("-d 'username=alice&password={PASSWORD}' {url}/login");
    let change =
        format!("-d 'current_password={PASSWORD}&new_password=another one' {url}/password");
    tracing::info!("listening on {url}; try, with two cookie jars:");
    tracing::info!("curl -c a.txt -b a.txt {login}");
    tracing::info!("curl -c b.txt -b b.txt {login}");
    tracing::info!("curl -c a.txt -b a.txt {change}");
    tracing::info!("curl -b a.txt {url}/   # still signed in");
    tracing::info!("curl -b b.txt {url}/   # signed out");
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // `with_secure(false)` only because this example serves plain HTTP.
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    serve(app()?.layer(sessions), port(3001)?).await
}
