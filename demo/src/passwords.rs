//! Argon2 password hashing, off the async runtime.
//!
//! A hash costs tens of milliseconds of CPU on purpose; run on a runtime
//! worker it would stall every other request on that worker, so each one
//! runs on tokio's blocking pool.

use std::sync::Arc;

use argon2::{
    password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use rand::{distributions::Alphanumeric, rngs::OsRng, Rng};

use super::error::AppError;

/// Hashes and checks passwords with one set of argon2 parameters.
#[derive(Clone)]
pub(crate) struct Passwords {
    argon2: Argon2<'static>,
    /// A hash of a random password nobody knows. Sign-in attempts for an
    /// unknown username are checked against it, so that they cost as much
    /// time as a wrong password for a real user.
    dummy_hash: Arc<str>,
}

impl Passwords {
    /// Prepares the hasher and the dummy hash.
    pub(crate) async fn new(params: Params) -> Result<Self, AppError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let secret: String = OsRng
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let dummy_hash = hash_blocking(argon2.clone(), secret).await?;
        Ok(Self {
            argon2,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Returns the PHC string of a new hash of `password`, with a fresh salt.
    pub(crate) async fn hash(&self, password: String) -> Result<String, AppError> {
        hash_blocking(self.argon2.clone(), password).await
    }

    /// Checks `password` against `stored`, or against the dummy hash when
    /// there is no user or the user has no password (an empty hash), and
    /// then answers `false` whatever the outcome.
    pub(crate) async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, AppError> {
        let stored = stored.filter(|hash| !hash.is_empty());
        let is_real = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let argon2 = self.argon2.clone();
        let matched = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)?;
            match argon2.verify_password(password.as_bytes(), &parsed) {
                Ok(()) => Ok(true),
                Err(password_hash::Error::Password) => Ok(false),
                Err(err) => Err(err),
            }
        })
        .await??;
        Ok(matched && is_real)
    }
}

async fn hash_blocking(argon2: Argon2<'static>, password: String) -> Result<String, AppError> {
    let hash = tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await??;
    Ok(hash)
}
