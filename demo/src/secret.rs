//! The session secret: from `SESSION_SECRET`, or generated once and kept
//! in a file so that sessions survive a restart.

use std::{
    fs::{self, OpenOptions},
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

use rand::{rngs::OsRng, RngCore};
use tower_sessions_auth::AuthKeys;

use crate::StartError;

/// Name of the generated secret's file (`demo-secret*` is git-ignored).
const FILE_NAME: &str = "demo-secret.key";

/// Builds the keys from `secret` (`SESSION_SECRET`) or, when that is
/// `None`, from the secret file beside the database, plus `fallbacks`
/// (`SESSION_SECRET_FALLBACKS`, comma-separated). Nothing here logs a
/// secret, only where it came from.
pub fn load_keys(
    database_url: &str,
    secret: Option<&str>,
    fallbacks: Option<&str>,
) -> Result<AuthKeys, StartError> {
    let current = match secret {
        Some(secret) => {
            tracing::info!("session secret: from SESSION_SECRET");
            secret.to_owned()
        }
        None => from_file(&secret_path(database_url))?,
    };
    let keys = AuthKeys::new(current.as_bytes()).map_err(|err| format!("SESSION_SECRET: {err}"))?;
    let fallbacks: Vec<&str> = fallbacks
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .collect();
    if !fallbacks.is_empty() {
        tracing::info!(
            count = fallbacks.len(),
            "session secret: fallbacks accepted"
        );
    }
    Ok(keys
        .with_fallbacks(fallbacks)
        .map_err(|err| format!("SESSION_SECRET_FALLBACKS: {err}"))?)
}

/// Beside the SQLite file, or in the current directory for a database that
/// is not a local file.
pub fn secret_path(database_url: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|path| !path.is_empty() && !path.contains(":memory:"));
    match file.and_then(|file| Path::new(file).parent()) {
        Some(dir) => dir.join(FILE_NAME),
        None => PathBuf::from(FILE_NAME),
    }
}

/// Reads the secret at `path`, or creates it: 32 random bytes, hex-encoded,
/// readable by the owner only.
fn from_file(path: &Path) -> Result<String, StartError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let mut bytes = [0_u8; 32];
            OsRng.fill_bytes(&mut bytes);
            let secret: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "session secret: generated and stored");
            Ok(secret)
        }
        // Another start (or another process) made it first: use that one.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            let secret = fs::read_to_string(path)?.trim().to_owned();
            tracing::info!(path = %path.display(), "session secret: reusing the stored one");
            Ok(secret)
        }
        Err(err) => Err(format!("cannot create {}: {err}", path.display()).into()),
    }
}
