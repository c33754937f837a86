//! The administrator's command, run as a user runs it: the demo binary
//! with `sign-out USERNAME` or `sign-out --all`, on the stores of running
//! demo servers (the same environment variables).
//!
//! The contract: the user's sessions (or everyone's) end on every server
//! (their next request is anonymous) and their open event streams end with
//! `revoked` within 2 s, through the session store's channel (Redis,
//! Postgres), or at the servers' re-check (SQLite). The command prints one
//! line with the number of sessions ended and exits 0; an unknown user is
//! one line naming the user, exit 1, and nothing changed.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use crate::common::{
    client::{config, signed_in, signed_up, Browser, PASSWORD},
    events::{assert_ends, watched},
    services::{two_on_postgres, SessionsIn},
    Server, TempDir,
};
use tower_sessions_auth_demo::admin::Stores;

/// Runs the demo binary with `args` on the stores of `env`; returns its
/// output once it exited.
async fn demo(env: &Stores, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tower-sessions-auth-demo"));
    command
        .args(args)
        .env("DATABASE_URL", &env.database_url)
        .env_remove("SESSION_STORE_URL")
        .env_remove("DEMO_PG_SCHEMA")
        .env_remove("RUST_LOG");
    if let Some(url) = &env.session_store_url {
        command.env("SESSION_STORE_URL", url);
    }
    if let Some(schema) = &env.postgres_schema {
        command.env("DEMO_PG_SCHEMA", schema);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Two servers on the same stores: alice signed in twice (one on each
/// server, each with an open event stream), bob once; then the command
/// signs out alice, then everyone.
async fn sign_out_across_processes(a: &Server, b: &Server, env: &Stores) -> Vec<Browser> {
    let laptop = signed_up(a, "alice").await;
    let phone = signed_in(b, "alice", PASSWORD).await;
    let bob = signed_up(b, "bob").await;
    let laptop_stream = watched(&laptop, b).await;
    let phone_stream = watched(&phone, a).await;

    let output = demo(env, &["sign-out", "nobody"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(stdout(&output), "");
    let error = stderr(&output);
    assert_eq!(error.lines().count(), 1, "one line: {error}");
    assert!(error.contains("nobody"), "names the user: {error}");
    assert_eq!(
        laptop.me(a).await.as_deref(),
        Some("alice"),
        "nothing changed"
    );

    let output = demo(env, &["sign-out", "alice"]).await;
    let since = Instant::now();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(stdout(&output), "signed out 2 session(s) of alice\n");
    assert_ends("sign-out alice: laptop", laptop_stream, since, "revoked").await;
    assert_ends("sign-out alice: phone", phone_stream, since, "revoked").await;
    assert_eq!(laptop.me(a).await, None);
    assert_eq!(phone.me(b).await, None);
    assert_eq!(bob.me(a).await.as_deref(), Some("bob"), "bob is not alice");

    let again = signed_in(a, "alice", PASSWORD).await;
    let bob_stream = watched(&bob, a).await;
    let alice_stream = watched(&again, b).await;
    let output = demo(env, &["sign-out", "--all"]).await;
    let since = Instant::now();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(stdout(&output), "signed out 2 session(s) of every user\n");
    assert_ends("sign-out --all: bob", bob_stream, since, "revoked").await;
    assert_ends("sign-out --all: alice", alice_stream, since, "revoked").await;
    assert_eq!(bob.me(b).await, None);
    assert_eq!(again.me(a).await, None);
    vec![laptop, phone, bob, again]
}

/// SQLite has no channel between processes: the servers end the streams
/// at their re-check, here every half second.
#[tokio::test]
async fn sign_out_on_sqlite_ends_sessions_and_streams_at_the_recheck() {
    let db = TempDir::new("demo_admin");
    let start = || {
        let mut config = config(&db.sqlite_url());
        config.recheck_period = Duration::from_millis(500);
        Server::start(config)
    };
    let (a, b) = (start().await, start().await);
    let env = Stores {
        database_url: db.sqlite_url(),
        session_store_url: None,
        postgres_schema: None,
    };
    sign_out_across_processes(&a, &b, &env).await;
}

/// Redis pub/sub carries the revocation: the servers' re-check stays at
/// its default 30 s, so only the channel can meet the 2 s.
#[tokio::test]
async fn sign_out_with_postgres_users_and_redis_sessions() {
    two_on_postgres(SessionsIn::Redis, |a, b, stores| async move {
        sign_out_across_processes(&a, &b, &stores).await
    })
    .await;
}

/// The same with sessions on a Redis Cluster: the command reaches the
/// servers through the cluster.
#[tokio::test]
async fn sign_out_with_postgres_users_and_redis_cluster_sessions() {
    two_on_postgres(SessionsIn::RedisCluster, |a, b, stores| async move {
        sign_out_across_processes(&a, &b, &stores).await
    })
    .await;
}

/// Postgres `LISTEN/NOTIFY` carries the revocation when sessions live in
/// Postgres too.
#[tokio::test]
async fn sign_out_on_one_postgres_database() {
    two_on_postgres(SessionsIn::Postgres, |a, b, stores| async move {
        sign_out_across_processes(&a, &b, &stores).await
    })
    .await;
}

/// A command the demo does not know is a usage error (exit 2), and
/// changes nothing.
#[tokio::test]
async fn an_unknown_command_is_a_usage_error() {
    let db = TempDir::new("demo_admin");
    let env = Stores {
        database_url: db.sqlite_url(),
        session_store_url: None,
        postgres_schema: None,
    };
    for args in [&["sign-out"][..], &["sign-out", "a", "b"], &["reboot"]] {
        let output = demo(&env, args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(stderr(&output).contains("usage:"), "{args:?}");
        assert_eq!(stdout(&output), "");
    }
}
