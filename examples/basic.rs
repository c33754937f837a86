//! Run with `cargo run --example basic`, then follow the `curl` commands it
//! prints.
//!
//! The smallest complete use of the crate: an in-memory user table with
//! argon2 password hashes, sign-in, sign-out, and a password change that
//! ends the user's other sessions.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, RwLock},
};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use axum::{
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
    Form, Router,
};
use serde::Deserialize;
use tower_sessions::{MemoryStore, SessionManagerLayer};
use tower_sessions_auth::{
    AuthError, AuthKeys, AuthLayer, AuthSession, AuthUser, Identity, SessionUser, UserBackend,
};

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

/// Users by id. A real application loads them from its database.
#[derive(Clone, Default)]
struct Users(Arc<RwLock<HashMap<u32, User>>>);

impl Users {
    fn by_name(&self, name: &str) -> Option<User> {
        let table = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.values().find(|user| user.name == name).cloned()
    }

    fn store(&self, user: User) {
        let mut table = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.insert(user.id, user);
    }
}

impl UserBackend for Users {
    type User = User;
    type Error = Infallible;

    async fn get_user(&self, id: &u32) -> Result<Option<User>, Infallible> {
        let table = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(table.get(id).cloned())
    }
}

fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn password_matches(user: &User, password: &str) -> bool {
    PasswordHash::new(&user.password_hash).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
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
) -> Result<impl IntoResponse, AuthError> {
    // Argon2 is slow on purpose; a real server runs it in `spawn_blocking`.
    match users.by_name(&form.username) {
        Some(user) if password_matches(&user, &form.password) => {
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
    if !password_matches(&user, &form.current_password) {
        return Ok((StatusCode::FORBIDDEN, "Wrong current password\n"));
    }
    let Ok(new_hash) = hash_password(&form.new_password) else {
        return Ok((StatusCode::INTERNAL_SERVER_ERROR, "Could not hash\n"));
    };
    user.password_hash = new_hash;
    users.store(user.clone());
    auth.update_session_auth_hash(&user).await?;
    Ok((
        StatusCode::OK,
        "Password changed; other sessions are signed out\n",
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter("info,tower_sessions_auth=debug")
        .init();

    let users = Users::default();
    users.store(User {
        id: 1,
        name: "alice".to_owned(),
        password_hash: hash_password("correct horse battery")?,
    });

    // In production: a random secret of 32 bytes or more, from configuration.
    let keys = AuthKeys::new(b"example secret; replace with 32+ random bytes")?;
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/password", post(change_password))
        .with_state(users.clone())
        .layer(AuthLayer::new(users, keys))
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("Listening on {url}. Try, in two shells with their own cookie jars:");
    println!(
        "  curl -c a.txt -b a.txt -d 'username=alice&password=correct horse battery' {url}/login"
    );
    println!(
        "  curl -c b.txt -b b.txt -d 'username=alice&password=correct horse battery' {url}/login"
    );
    println!("  curl -c a.txt -b a.txt -d 'current_password=correct horse battery&new_password=new password 2' {url}/password");
    println!("  curl -c a.txt -b a.txt {url}/   # still signed in");
    println!("  curl -c b.txt -b b.txt {url}/   # signed out");
    axum::serve(listener, app).await?;
    Ok(())
}
