//! The administrator's commands, run by the demo binary beside the server
//! on the same users' database and session store (same environment
//! variables): `sign-out USERNAME` and `sign-out --all`.
//!
//! They revoke through the session registry, which announces the
//! revocation through the live-session channel of the session store
//! (Redis pub/sub, Postgres `LISTEN/NOTIFY`): running servers end those
//! sessions' event streams and WebSockets at once, and every server finds
//! the sessions revoked on their next request. With SQLite there is no
//! channel between processes: the servers' periodic re-check ends the
//! connections.

use std::fmt;

use super::{
    stores::{registry_in, Sessions},
    users::Users,
    StartError, DEFAULT_RECHECK_PERIOD,
};

/// Whose sessions `sign-out` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOut {
    /// Every session of the user with this name.
    User(String),
    /// Every session of every user.
    Everyone,
}

/// A command line the demo does not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; usage: tower-sessions-auth-demo [sign-out USERNAME | sign-out --all]",
            self.0
        )
    }
}

impl std::error::Error for Usage {}

/// The command in `args` (without the program's name): `None` serves.
///
/// # Errors
///
/// [`Usage`] for anything but `sign-out USERNAME` and `sign-out --all`.
pub fn parse(args: &[String]) -> Result<Option<SignOut>, Usage> {
    match args {
        [] => Ok(None),
        [command, whom] if command == "sign-out" => match whom.as_str() {
            "--all" => Ok(Some(SignOut::Everyone)),
            name if name.starts_with('-') => Err(Usage(format!("unknown option {name:?}"))),
            name => Ok(Some(SignOut::User(name.to_owned()))),
        },
        [command, ..] if command == "sign-out" => {
            Err(Usage("sign-out takes one USERNAME or --all".to_owned()))
        }
        [command, ..] => Err(Usage(format!("unknown command {command:?}"))),
    }
}

/// Where the command finds the users and the sessions: the server's
/// `DATABASE_URL`, `SESSION_STORE_URL` and `DEMO_PG_SCHEMA`.
#[derive(Debug, Clone)]
pub struct Stores {
    /// The users' database (and the session registry's).
    pub database_url: String,
    /// The session store, whose channel the servers listen to.
    pub session_store_url: Option<String>,
    /// The Postgres schema of the demo's tables.
    pub postgres_schema: Option<String>,
}

/// Ends the sessions `whom` names; returns the line to print.
///
/// # Errors
///
/// An unknown user (nothing is changed then), or a database, store or
/// registry failure.
pub async fn sign_out(whom: &SignOut, stores: &Stores) -> Result<String, StartError> {
    let schema = stores.postgres_schema.as_deref();
    let users = Users::connect(&stores.database_url, schema).await?;
    users.migrate().await?;
    let user = match whom {
        SignOut::User(name) => match users.by_username(name).await? {
            Some(user) => Some(user),
            None => return Err(format!("no user named {name:?}; nothing was changed").into()),
        },
        SignOut::Everyone => None,
    };
    let sessions = Sessions::connect(stores.session_store_url.as_deref(), &users, schema).await?;
    let registry = registry_in(&users, schema)
        .await?
        .with_live_sessions(sessions.live_sessions(DEFAULT_RECHECK_PERIOD));
    Ok(match user {
        Some(user) => {
            let ended = registry.revoke_all(&user.id).await?;
            format!("signed out {ended} session(s) of {}", user.username)
        }
        None => {
            let ended = registry.revoke_everyone().await?;
            format!("signed out {ended} session(s) of every user")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| (*word).to_owned()).collect()
    }

    #[test]
    fn the_command_line_names_one_user_or_everyone() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(
            parse(&args(&["sign-out", "alice"])),
            Ok(Some(SignOut::User("alice".to_owned())))
        );
        assert_eq!(
            parse(&args(&["sign-out", "--all"])),
            Ok(Some(SignOut::Everyone))
        );
        for wrong in [
            &["sign-out"][..],
            &["sign-out", "alice", "bob"],
            &["sign-out", "--every"],
            &["serve"],
        ] {
            let usage = parse(&args(wrong)).unwrap_err().to_string();
            assert!(usage.contains("usage: tower-sessions-auth-demo"), "{usage}");
        }
    }
}
