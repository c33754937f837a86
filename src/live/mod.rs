//! Live connections (WebSocket, Server-Sent Events) that end with their
//! session.
//!
//! The layer checks a session on every request, but a stream is one request
//! that can last for hours. [`LiveSessions`] keeps a [`SessionWatch`] per
//! open connection and completes it as soon as its session stops holding:
//!
//! - **at once** when this process, or another one through a
//!   [`LiveChannel`], changes something about the user (a password change,
//!   a logout, a revocation): the user's watches are checked again;
//! - **within one period** otherwise (a notice lost, the channel down, a
//!   password changed in the database directly): every watch is checked
//!   again periodically, as a backstop.
//!
//! A notice never ends a watch by itself: it only makes the process check
//! the user again against the backend and the session registry, so a lost,
//! repeated or forged notice cannot end a valid session's connection.

mod changes;
mod channel;
mod check;
mod hub;
mod sse;
mod watch;
#[cfg(feature = "ws")]
mod websocket;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "postgres")]
pub use self::postgres::PostgresChannel;
#[cfg(feature = "redis")]
pub use self::redis::RedisChannel;
#[cfg(feature = "ws")]
pub use self::websocket::WatchedSocket;
pub use self::{
    channel::{ChannelError, LiveChannel, Signal},
    hub::LiveSessions,
    sse::WatchedEvents,
    watch::{SessionWatch, WatchEnd},
};

pub(crate) use self::{
    channel::EVERYONE,
    check::{CheckError, CheckFuture, Probe, Verdict, Verify},
    watch::Watched,
};
