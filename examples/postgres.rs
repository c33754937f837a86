//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example postgres`,
//! then follow the `curl` commands it logs.
//!
//! Sessions in Postgres (tower-sessions-sqlx-store, in the schema
//! `tower_sessions`, created at start), users in memory with argon2 password
//! hashes. Optional settings: `PORT` (default 3003),
//! `SESSION_SECRET` (32 bytes or more) and `SESSION_SECRET_OLD` (a fallback
//! during a rotation).
//!
//! Several copies on different ports can share the Postgres sessions, as
//! instances behind a load balancer do, if they share the secret. Their
//! users live in memory here, so a password change is seen only by the
//! instance that made it: a real deployment shares its user table too.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
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
use sqlx::postgres::PgPoolOptions;
use tower_sessions::{session_store::ExpiredDeletion, SessionManagerLayer};
use tower_sessions_auth::{
    AuthError, AuthKeys, AuthLayer, AuthSession, AuthUser, Identity, SessionUser, UserBackend,
};
use tower_sessions_sqlx_store::PostgresStore;

/// Only for trying the example: set `SESSION_SECRET` to 32+ random bytes.
const EXAMPLE_SECRET: &str = "example secret; replace it with 32+ random bytes";

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

/// Users by id, in memory; a real application keeps them in its database.
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

async fn home(identity: Identity<User>) -> String {
    match identity {
        Identity::Authenticated(user) => format!("Signed in as {}\n", user.name),
        Identity::Anonymous => "Not signed in\n".to_owned(),
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

/// The secret and its optional fallback, from the environment.
fn keys_from_env() -> Result<AuthKeys, tower_sessions_auth::KeyError> {
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter("info,tower_sessions_auth=debug")
        .init();

    let database_url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must be set, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/test",
    );
    let port: u16 = std::env::var("PORT")
        .map_or(Ok(3003), |port| port.parse())
        .expect("PORT must be a port number");

    // A short `acquire_timeout`: when Postgres is out of reach, requests
    // with a session fail (500) within a second instead of queueing, and new
    // connections are opened by themselves when it is back.
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(1))
        .connect(&database_url)
        .await?;
    let store = PostgresStore::new(pool);
    store.migrate().await?;
    // Expired sessions stay in the table until deleted; one task per
    // deployment is enough, but several do no harm.
    tokio::spawn(
        store
            .clone()
            .continuously_delete_expired(Duration::from_secs(60)),
    );

    let users = Users::default();
    users.store(User {
        id: 1,
        name: "alice".to_owned(),
        password_hash: hash_password("correct horse battery")?,
    });

    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/password", post(change_password))
        .with_state(users.clone())
        .layer(AuthLayer::new(users, keys_from_env()?))
        // `with_secure(false)` only because this example serves plain HTTP.
        .layer(SessionManagerLayer::new(store).with_secure(false));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!("listening on {url}; try, with two cookie jars:");
    tracing::info!(
        "curl -c a.txt -b a.txt -d 'username=alice&password=correct horse battery' {url}/login"
    );
    tracing::info!(
        "curl -c b.txt -b b.txt -d 'username=alice&password=correct horse battery' {url}/login"
    );
    tracing::info!("curl -c a.txt -b a.txt -d 'current_password=correct horse battery&new_password=another one' {url}/password");
    tracing::info!("curl -b a.txt {url}/   # still signed in");
    tracing::info!("curl -b b.txt {url}/   # signed out");
    axum::serve(listener, app).await?;
    Ok(())
}
