//! Run with `cargo run --example basic`, then follow the `curl` commands it
//! logs.
//!
//! The smallest complete use of the crate: sessions in tower-sessions'
//! `MemoryStore`, users in memory with argon2 password hashes, sign-in,
//! sign-out, and a password change that ends the user's other sessions.
//! Optional settings: `PORT` (default 3001), `SESSION_SECRET` (32 bytes or
//! more) and `SESSION_SECRET_OLD` (a fallback during a rotation).

mod shared;

use tower_sessions::{MemoryStore, SessionManagerLayer};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    // `with_secure(false)` only because this example serves plain HTTP.
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    shared::serve(shared::app()?.layer(sessions), shared::port(3001)?).await
}
