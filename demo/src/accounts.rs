//! Account rules shared by the HTML and JSON routes: what a valid username
//! and password are, and checking a sign-in.

use super::{error::AppError, users::User, AppState};

/// Shortest password accepted, in characters.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password accepted, in bytes: hashing cost grows with length.
const MAX_PASSWORD_BYTES: usize = 1024;

/// Longest username, in characters.
const MAX_USERNAME_CHARS: usize = 64;

/// A username as stored: surrounding spaces removed; not empty, at most 64
/// characters, no control characters.
pub(crate) fn check_username(raw: &str) -> Result<&str, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        Err("Choose a username.")
    } else if name.chars().count() > MAX_USERNAME_CHARS {
        Err("The username is too long: 64 characters at most.")
    } else if name.chars().any(char::is_control) {
        Err("The username may not contain control characters.")
    } else {
        Ok(name)
    }
}

/// Whether `password` may become a password.
pub(crate) fn check_new_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Err("The password is too short: use 8 characters or more.")
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err("The password is too long: 1024 bytes at most.")
    } else {
        Ok(())
    }
}

/// Returns the user if `password` is theirs.
///
/// An unknown username costs the same hash verification as a wrong
/// password (against a dummy hash) and gives the same `None`, so neither
/// the answer nor its timing tells which usernames exist.
pub(crate) async fn authenticate(
    state: &AppState,
    username: &str,
    password: String,
) -> Result<Option<User>, AppError> {
    let user = match check_username(username) {
        Ok(name) if password.len() <= MAX_PASSWORD_BYTES => state.users.by_username(name).await?,
        _ => None,
    };
    let stored = user.as_ref().map(|user| user.password_hash.clone());
    let password = if password.len() <= MAX_PASSWORD_BYTES {
        password
    } else {
        String::new()
    };
    let matched = state.passwords.verify(password, stored).await?;
    Ok(user.filter(|_| matched))
}
