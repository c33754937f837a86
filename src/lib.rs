//! Sessions that end when the password changes, for axum and tower.
//!
//! When a user changes their password, every other session of that user
//! must end, while the session that made the change lives on. This crate
//! does for [axum] what Django has done since 1.7: each session stores an
//! *auth hash*, a keyed MAC of the user's id and stored password hash; every
//! request recomputes it and compares in constant time; a mismatch ends the
//! session.
//!
//! # Quick start
//!
//! ```
//! use std::{collections::HashMap, convert::Infallible, sync::{Arc, RwLock}};
//!
//! use axum::{routing::{get, post}, Router};
//! use tower_sessions::{MemoryStore, SessionManagerLayer};
//! use tower_sessions_auth::{AuthError, AuthKeys, AuthLayer, AuthSession, AuthUser, SessionUser, UserBackend};
//!
//! #[derive(Clone)]
//! struct User { id: u64, name: String, password_hash: String }
//!
//! impl SessionUser for User {
//!     type Id = u64;
//!     fn id(&self) -> u64 { self.id }
//!     fn credential(&self) -> &[u8] { self.password_hash.as_bytes() }
//! }
//!
//! #[derive(Clone, Default)]
//! struct Users(Arc<RwLock<HashMap<u64, User>>>);
//!
//! impl UserBackend for Users {
//!     type User = User;
//!     type Error = Infallible;
//!     async fn get_user(&self, id: &u64) -> Result<Option<User>, Infallible> {
//!         Ok(self.0.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned())
//!     }
//! }
//!
//! async fn me(AuthUser(user): AuthUser<User>) -> String {
//!     format!("Signed in as {}", user.name)
//! }
//!
//! async fn logout(mut auth: AuthSession<User>) -> Result<&'static str, AuthError> {
//!     auth.logout().await?;
//!     Ok("Signed out")
//! }
//!
//! # fn main() -> Result<(), tower_sessions_auth::error::KeyError> {
//! // Load the secret from your configuration: 32 bytes or more, random.
//! let keys = AuthKeys::new(b"use at least 32 random bytes here, from config")?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/logout", post(logout))
//!     .layer(AuthLayer::new(Users::default(), keys))
//!     .layer(SessionManagerLayer::new(MemoryStore::default()));
//! # Ok(()) }
//! ```
//!
//! The layer order matters: `AuthLayer` must run inside tower-sessions'
//! `SessionManagerLayer`, which with `Router::layer` means it is added
//! first. A route without the session layer answers `500` with a message
//! naming the missing layer.
//!
//! # How it works
//!
//! [`login`](AuthSession::login) stores the user's id, session epoch and auth hash in the
//! session. The hash is HMAC-SHA256 over the user's [`id`](SessionUser::id)
//! (as serde_json writes it, the form the session stores),
//! [`session_epoch`](SessionUser::session_epoch) and
//! [`credential`](SessionUser::credential) (the stored password hash, such
//! as an argon2 PHC string), each field of fixed width or length-prefixed,
//! under a key derived from the server secret ([`AuthKeys`], which gives the
//! exact message). A user whose credential is empty is never signed in:
//! `login` refuses them with [`AuthError::Hash`]. On each request
//! [`AuthLayer`]:
//!
//! 1. reads the id and hash from the session; with none, the request is
//!    anonymous and the session untouched (a cookie whose record is gone
//!    stays, see [Parallel requests](#parallel-requests-of-one-browser));
//!    a session past its idle timeout or absolute lifetime ends (see
//!    [Session lifetimes](#session-lifetimes));
//! 2. loads the user through the [`UserBackend`]; a user that is gone (or
//!    that the backend refuses, such as a disabled account) ends the session;
//! 3. recomputes the hash and compares in constant time: under the current
//!    secret the request is signed in; under a fallback secret it is signed
//!    in and the session is re-signed in place (same id); otherwise the
//!    session ends;
//! 4. inserts an [`Identity`] into the request extensions, which the
//!    extractors [`AuthUser`], `Option<AuthUser>`, [`Identity`] and
//!    [`LoginRequired`] read; when it ended the session, also a
//!    [`SessionEnded`] with the [`EndReason`].
//!
//! "Ends the session" means flushed: its data and its store record are
//! deleted, the cookie removed, and a `tracing` warning says why, with a
//! keyed fingerprint of the session id (never the secret, the hash or the
//! id). Malformed data under the crate's session key (from a bug, an old
//! version, or a tampered store) is treated the same way.
//!
//! A failing session store or backend is never read as "anonymous" nor as
//! "signed in": the request is answered with `500` (or the status set by
//! [`AuthLayer::with_failure_status`]) and a generic body; the error is
//! logged.
//!
//! Every request runs in a `tracing` span named `auth` whose fields say
//! how it went: `outcome` (`authenticated`, `anonymous`, `ended`, `failed`)
//! and, for an ended session, `reason`. Log lines of the handler carry them
//! too; no span holds an id, a hash or a secret.
//!
//! Configuration mistakes are refused when the layer is built, with a
//! panic that names the builder and the value: a login URL that is empty,
//! has a `#fragment` or is no valid `Location` header; a failure status
//! that is not a 5xx. An extractor asking for a user type other than the
//! layer's answers `500` with a message naming both types.
//!
//! # Telling the user why
//!
//! On the request where the layer ended a session, the handler can read
//! why with `Option<SessionEnded>`: a password change
//! ([`EndReason::CredentialChanged`]), "sign out everywhere"
//! ([`EndReason::EpochChanged`]), a deleted or disabled account
//! ([`EndReason::UserGone`]), a revocation ([`EndReason::Revoked`]), a
//! session past its lifetime ([`EndReason::Expired`]), or unreadable data
//! ([`EndReason::Malformed`]).
//! A page can then say "you were signed out because your password was
//! changed on another device" instead of showing a bare sign-in form. On a
//! route guarded by [`LoginRequired`], keep the reason for the sign-in page
//! (the demo stores a one-time notice in the new, anonymous session).
//!
//! # Listing and ending sessions
//!
//! With a [`SessionRegistry`] on the layer ([`AuthLayer::with_registry`]),
//! every signed-in session has an entry: an opaque [`SessionHandle`] (not
//! the session id, stable while the session lives), sign-in and last-seen
//! times, and the user agent and address it signed in from. The layer checks
//! on each signed-in request that the entry still exists (one store read;
//! last-seen is written at most once per touch interval), and
//! [`AuthSession`] lists the user's sessions
//! ([`sessions`](AuthSession::sessions)) and ends them one by one, all
//! others, or all ([`revoke_session`](AuthSession::revoke_session),
//! [`revoke_other_sessions`](AuthSession::revoke_other_sessions),
//! [`revoke_all_sessions`](AuthSession::revoke_all_sessions));
//! administrators do the same outside a request through the registry
//! itself. Stores: [`MemoryRegistry`], and behind features `RedisRegistry`,
//! `PostgresRegistry` and `SqliteRegistry`.
//!
//! ```
//! # use std::convert::Infallible;
//! # use tower_sessions_auth::{SessionUser, UserBackend};
//! # #[derive(Clone)] struct User;
//! # impl SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
//! # #[derive(Clone)] struct Users;
//! # impl UserBackend for Users { type User = User; type Error = Infallible;
//! #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
//! use tower_sessions_auth::{
//!     registry::{LimitPolicy, MemoryRegistry, Revocation, SessionHandle, SessionRegistry},
//!     AuthError,
//!     AuthKeys,
//!     AuthLayer,
//!     AuthSession,
//! };
//!
//! async fn sign_out_device(
//!     mut auth: AuthSession<User>,
//!     handle: String,
//! ) -> Result<&'static str, AuthError> {
//!     let Ok(handle) = handle.parse::<SessionHandle>() else { return Ok("no such session") };
//!     Ok(match auth.revoke_session(&handle).await? {
//!         Revocation::Revoked => "that device is signed out",
//!         Revocation::SignedOut => "you are signed out",
//!         _ => "no such session",
//!     })
//! }
//!
//! # fn main() -> Result<(), tower_sessions_auth::error::KeyError> {
//! let registry = SessionRegistry::new(MemoryRegistry::default())
//!     .with_limit(10, LimitPolicy::EvictLeastRecentlySeen);
//! let layer = AuthLayer::new(Users, AuthKeys::new([9; 32])?).with_registry(registry);
//! # Ok(()) }
//! ```
//!
//! The entry, not the session record, decides whether a session lives: a
//! request that loaded the session before a logout or a revoke and saves it
//! back afterwards brings back nothing (see [`SessionRegistry`]).
//!
//! # Long-lived connections
//!
//! A WebSocket or a Server-Sent Events stream is one request that can last
//! for hours: the check on every request never sees it again. With
//! [`LiveSessions`] on the layer ([`AuthLayer::with_live_sessions`], after
//! a registry), a handler takes a [`SessionWatch`], a future that completes
//! as soon as the session stops holding: a password change or "sign out
//! everywhere" in another session, a logout (from another tab of the same
//! session, too), a revocation, a deleted or disabled user, an expired
//! registry entry. The session that made the change keeps its connections,
//! as it keeps its session. [`SessionWatch::sse`] ends an event stream with
//! `event: session-ended` and `{"reason": "…"}`; with the `ws` feature,
//! `SessionWatch::websocket` closes a socket with code 1008.
//!
//! - **In one process** the change reaches the watches directly.
//! - **Across processes**, through the channel the application already
//!   runs: `RedisChannel` (pub/sub) or `PostgresChannel`
//!   (`LISTEN/NOTIFY`). A notice only makes each process check the user
//!   again against the backend and the registry; it never ends a
//!   connection by itself.
//! - **The backstop**: every watch is checked again once per period
//!   (default 30 s, [`LiveSessions::with_recheck_period`]). That bounds
//!   how long a connection outlives its session when a notice is lost, the
//!   channel is down (logged when it goes and when it comes back; the
//!   watches are all checked again then), or a password was changed in the
//!   database directly ([`LiveSessions::notify`] announces such a change).
//! - **Failures**: a check that cannot decide (the backend or the registry
//!   failing) never ends a connection by itself; after
//!   [`with_max_failures`](LiveSessions::with_max_failures) failures in a
//!   row (default 3) the watch ends with [`WatchEnd::ServerError`].
//!
//! ```
//! # use std::convert::Infallible;
//! # #[derive(Clone)] struct User;
//! # impl tower_sessions_auth::SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
//! use axum::response::sse::{Event, KeepAlive, Sse};
//! use futures_util::{stream, Stream, StreamExt as _};
//! use tower_sessions_auth::{live::SessionWatch, AuthUser};
//!
//! async fn events(
//!     AuthUser(_user): AuthUser<User>,
//!     watch: SessionWatch,
//! ) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
//!     let hello = stream::once(async { Ok(Event::default().event("hello").data("{}")) });
//!     // The application's own events would follow `hello`.
//!     Sse::new(watch.sse(hello.chain(stream::pending()))).keep_alive(KeepAlive::default())
//! }
//! ```
//!
//! # Events
//!
//! [`AuthLayer::with_events`] hands the application an [`AuthEvent`] for
//! each sign-in, sign-out, ended session (with its reason), re-signing
//! under a fallback secret, and failure that was answered with a 5xx: for a
//! "new sign-in to your account" mail, an audit log or a metric. Each
//! carries the user id and the request details the application chose
//! ([`Events::capture_header`], [`Events::capture_peer_addr`]), never the
//! session id or the hash. The request only queues the event (bounded,
//! about a microsecond; `bench/benches/events.rs`); one task runs the hook,
//! so a slow or panicking hook cannot slow or break a request: when the
//! queue is full, events are dropped and counted in a warning.
//!
//! # Changing a password
//!
//! Store the new password hash, then call
//! [`update_session_auth_hash`](AuthSession::update_session_auth_hash) with
//! the updated user:
//!
//! ```
//! # #[derive(Clone)] struct User { id: u64, password_hash: String }
//! # impl tower_sessions_auth::SessionUser for User {
//! #     type Id = u64; fn id(&self) -> u64 { self.id } fn credential(&self) -> &[u8] { self.password_hash.as_bytes() } }
//! # async fn save_password_hash(_: u64, _: &str) {}
//! # fn hash_password(p: &str) -> String { p.to_owned() }
//! use tower_sessions_auth::{AuthError, AuthSession, LoginRequired};
//!
//! async fn change_password(
//!     LoginRequired(mut user): LoginRequired<User>,
//!     mut auth: AuthSession<User>,
//!     new_password: String,
//! ) -> Result<&'static str, AuthError> {
//!     // (Check the current password first: ASVS 3.7.1.)
//!     user.password_hash = hash_password(&new_password);
//!     save_password_hash(user.id, &user.password_hash).await;
//!     auth.update_session_auth_hash(&user).await?;
//!     Ok("Password changed; your other devices are signed out")
//! }
//! ```
//!
//! This session gets a new id and the new hash; every other session of the
//! user still holds the old hash and ends on its next request, on any server
//! that shares the store and the user table. To sign a user out everywhere
//! else *without* a password change, bump the user's session epoch, store
//! it, and call `update_session_auth_hash` the same way.
//!
//! # Session lifetimes
//!
//! Every signed-in session ends on its own, by two clocks (OWASP ASVS 5.0
//! 7.3.1 and 7.3.2; 4.0.3 3.3.2):
//!
//! - the **idle timeout**, counted from the session's last request;
//! - the **absolute lifetime**, counted from sign-in, however active the
//!   session is.
//!
//! At sign-in the application picks a tier with [`SignIn`] ("keep me signed
//! in"), and each tier has its [`Lifetimes`]:
//!
//! | tier | sign-in | default lifetimes | cookie |
//! |------|---------|-------------------|--------|
//! | browser session | [`login`](AuthSession::login), `SignIn::new()` | 30 min idle, 12 h in all ([`AuthLayer::with_lifetimes`]) | no `Max-Age`, no `Expires`: it ends with the browser |
//! | remembered | `SignIn::new().remember(true)` | 7 days idle, 30 days in all ([`AuthLayer::with_remembered_lifetimes`]) | `Max-Age` up to the absolute deadline, never beyond |
//!
//! ```
//! # use std::convert::Infallible;
//! # #[derive(Clone)] struct User;
//! # impl tower_sessions_auth::SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
//! # #[derive(Clone)] struct Users;
//! # impl tower_sessions_auth::UserBackend for Users { type User = User; type Error = Infallible;
//! #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
//! use std::time::Duration;
//! use tower_sessions_auth::{
//!     times::Lifetimes,
//!     AuthError,
//!     AuthKeys,
//!     AuthLayer,
//!     AuthSession,
//!     SignIn,
//! };
//!
//! const MINUTE: Duration = Duration::from_secs(60);
//! let layer = AuthLayer::new(Users, AuthKeys::new([7; 32])?)
//!     .with_lifetimes(Lifetimes::new(15 * MINUTE, 8 * 60 * MINUTE))
//!     .with_remembered_lifetimes(Lifetimes::new(7 * 24 * 60 * MINUTE, 30 * 24 * 60 * MINUTE));
//!
//! async fn sign_in(mut auth: AuthSession<User>, user: User, keep: bool) -> Result<(), AuthError> {
//!     auth.login_with(&user, SignIn::new().remember(keep).label("password")).await
//! }
//! # Ok::<(), tower_sessions_auth::error::KeyError>(())
//! ```
//!
//! A session past either deadline ends exactly as a revoked one: flushed,
//! the request anonymous, [`EndReason::Expired`] (`expired`) in the log,
//! the [event](AuthEvent) and [`SessionEnded`], and its [live
//! watches](#long-lived-connections) end too (at the absolute deadline,
//! and, with the registry's last-seen times, once idle; within one
//! re-check period). The deadlines are checked when a request starts,
//! against [the clock](AuthLayer::with_clock): a request already under way
//! at the deadline runs to its end, the next one is refused. The times live
//! in the session record, so every instance that shares the store agrees.
//!
//! **Activity costs one store write per interval, not per request.** The
//! record holds the last request's time, rewritten only when it is at least
//! [`with_activity_interval`](AuthLayer::with_activity_interval) old
//! (default one minute); other requests write nothing. A session can
//! therefore end up to one interval before its idle timeout, never after.
//! The record, not the session registry's last-seen time, holds it: the
//! idle timeout works without a registry, and the registry keeps its own
//! interval and clock.
//!
//! **The layer owns the cookie's lifetime of signed-in sessions.** Whenever
//! tower-sessions is about to write a signed-in session (a sign-in, an
//! activity write, the handler's own data), the layer sets its expiry:
//! `Expiry::OnSessionEnd` for the browser-session tier,
//! `Expiry::AtDateTime` at the end of the second `signed_in + absolute`
//! for a remembered one (the store record expires then too; a sign-in's
//! cookie gets a `Max-Age` of exactly the absolute lifetime). `SessionManagerLayer::with_expiry` still
//! applies to anonymous sessions. Under `with_always_save(true)`, requests
//! that change nothing are saved with the session layer's expiry: keep it
//! no longer than your shortest lifetime.
//!
//! # Sensitive actions
//!
//! Changing the password, the email or the second factor, deleting the
//! account or moving money should need a recent proof of the credentials,
//! not just a session that may have been left open (OWASP ASVS 5.0 7.5.1
//! and 7.5.3; 4.0.3 3.7.1). Take [`RecentAuth`] instead of [`AuthUser`] on
//! those routes:
//!
//! ```
//! # use std::convert::Infallible;
//! # #[derive(Clone)] struct User;
//! # impl tower_sessions_auth::SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
//! # #[derive(Clone)] struct Users;
//! # impl tower_sessions_auth::UserBackend for Users { type User = User; type Error = Infallible;
//! #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
//! # fn password_matches(_: &User, _: &str) -> bool { true }
//! use std::time::Duration;
//! use axum::{response::Redirect, routing::post, Form, Router};
//! use tower_sessions_auth::{
//!     safe_next,
//!     times::ReauthPolicy,
//!     AuthError,
//!     AuthKeys,
//!     AuthLayer,
//!     AuthSession,
//!     LoginRequired,
//!     RecentAuth,
//! };
//!
//! async fn delete_account(RecentAuth(user): RecentAuth<User>) -> &'static str {
//!     "deleted"
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Confirm { password: String, next: String }
//!
//! async fn confirm(
//!     LoginRequired(user): LoginRequired<User>,
//!     mut auth: AuthSession<User>,
//!     Form(form): Form<Confirm>,
//! ) -> Result<Redirect, AuthError> {
//!     if !password_matches(&user, &form.password) {
//!         return Ok(Redirect::to("/confirm?failed"));
//!     }
//!     auth.reauthenticate(&user).await?;
//!     Ok(Redirect::to(safe_next(&form.next).unwrap_or("/")))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/account/delete", post(delete_account))
//!     .route("/confirm", post(confirm))
//!     .layer(
//!         AuthLayer::new(Users, AuthKeys::new([7; 32])?)
//!             .with_reauth(ReauthPolicy::new(Duration::from_secs(600)).with_confirm_url("/confirm")),
//!     );
//! # Ok::<(), tower_sessions_auth::error::KeyError>(())
//! ```
//!
//! A sign-in and [`reauthenticate`](AuthSession::reauthenticate) both count
//! as a proof; `reauthenticate` changes the session id (ASVS 5.0 7.2.4)
//! and keeps the registry entry, the tier and the sign-in time. Outside the
//! window a browser (its `Accept` names `text/html`, or it posts a form) is
//! sent with `303` to the confirmation page with `next`; any other client
//! gets `403` and `{"error":"reauthentication required"}`; anonymous
//! requests are refused as by [`LoginRequired`] and [`AuthUser`].
//!
//! # Rotating the secret
//!
//! Put the new secret first and keep the old one as a fallback
//! ([`AuthKeys::with_fallback`]). Sessions signed with the old secret keep
//! working and are re-signed, under the same id, on their next request.
//! Once the fallback is removed, sessions not seen in the meantime end.
//!
//! With several instances, all must verify with the same secrets: an
//! instance still on the old secret alone ends the sessions that an updated
//! one re-signed. Roll out in two steps: first add the new secret as a
//! fallback everywhere, then make it current (the README's "Running several
//! instances" walks through it).
//!
//! # Security
//!
//! What the invalidation covers:
//!
//! - every session of the user whose credential or epoch changed, on its
//!   next request, through every layer instance that shares the session
//!   store and the user data;
//! - deleted and disabled users (when the backend returns `None` for them);
//! - session fixation: every login, re-authentication and
//!   `update_session_auth_hash` changes the session id;
//! - sessions left open: the idle timeout and the absolute lifetime end
//!   them server-side, and a remembered session's cookie never outlives
//!   its absolute deadline;
//! - a record moved to another user (a store bug, or someone who can write
//!   the store but does not hold the secret): the hash covers the user id,
//!   so it verifies for no other user, even one with the same credential;
//! - a leak of the session store: it holds a MAC, not the password hash,
//!   and without the server secret the MAC says nothing about the password.
//!
//! What it does not cover:
//!
//! - requests already in flight when the password changes run to their end;
//!   only requests that start afterwards are refused;
//! - credentials that do not go through the session: stateless tokens
//!   (JWTs), API keys, or long-lived caches of the user elsewhere;
//! - a leaked server secret: with it and a store leak, the hash can be
//!   forged for a user whose id, epoch and password hash are known. Rotate
//!   the secret if it leaks;
//! - without a [`SessionRegistry`], a logout racing another request of the
//!   same browser: tower-sessions saves a changed session at the end of
//!   each request (every request under `with_always_save(true)`), and the
//!   tower-sessions-sqlx and memory stores save by upsert, so a request that
//!   loaded the session before the logout and saves it afterwards brings the
//!   record back, still signed in (the Redis store only updates existing
//!   keys). With a registry the logout sticks on every store. A password
//!   change or an epoch bump is not affected either way: a record brought
//!   back still carries the old hash and ends on its next request;
//! - per-instance caches of the session store (`CachingSessionStore`): a
//!   session ended on one instance lives on in another's cache until it
//!   expires there;
//! - the transport: serve over HTTPS and configure the session cookie
//!   (`Secure`, `HttpOnly`, `SameSite`) on `SessionManagerLayer`.
//!
//! The comparison of hashes is constant time. Secrets are not printed by
//! `Debug`, and only keys derived from them are kept (the derivation's
//! temporaries are not zeroized). Nothing the crate logs or prints with
//! `Debug` carries a secret, a hash or a session id; the `Debug` of your
//! user type is yours, so keep its password hash out of it, since
//! [`Identity`] and the extractors print the user.
//!
//! ## Parallel requests of one browser
//!
//! A browser sends requests in parallel (a page and its images, tabs
//! restored together), each with the cookie it held when it started; the
//! response that reaches it last decides which cookie it keeps.
//!
//! Re-signing under a fallback secret keeps the session id, where Django
//! gives the session a new one. Only the key that signs the session changes:
//! the user, what they may do and what was exposed stay the same, so a new
//! id would protect nothing. It would delete the record under the old id,
//! and the browser's requests already under way with it would be answered
//! as anonymous, their responses removing the cookie: a key rotation could
//! sign browsers out. In place, each request of the browser is answered as
//! the user; parallel ones each write the same record.
//!
//! [`login`](AuthSession::login) and
//! [`update_session_auth_hash`](AuthSession::update_session_auth_hash) do
//! change the id, against session fixation, and delete the old record at
//! once: no request carrying the old id is answered as the user once they
//! have returned. A request of the browser already under way with the old
//! id finds no record and is answered as anonymous. tower-sessions would
//! end it with a `Set-Cookie` removing the session cookie (a load that
//! finds no record drops the id, and a session without id and data has its
//! cookie removed), and a removal applies to whatever cookie the browser
//! holds by then: the new one. The layer leaves the cookie alone instead:
//! once the handler has run, a session that lost its id and was not written
//! to gets the id of an empty record created and deleted at once, so
//! tower-sessions neither saves it nor sets a cookie. The same holds for
//! any cookie whose record is gone (expired, or an id the store never
//! knew): it stays in the browser until it expires or the session is next
//! written, and each of its requests costs two store writes more.
//!
//! A marker record under the old id would keep the cookie too, but the
//! layer reaches the store only through tower-sessions' `Session`, which
//! writes under the id it loaded or a fresh one, and whose `cycle_id`
//! deletes the old one; a marker would also need a lifetime, after which a
//! late request would remove the cookie again.
//!
//! Not covered: a late request whose handler writes to the session gets a
//! new, anonymous session, whose cookie replaces the browser's new one; and
//! under `with_always_save(true)` tower-sessions sets a cookie on every
//! response, late ones included. Write session data only on the requests
//! that need it, and leave `always_save` off.
//!
//! # Feature flags
//!
//! None is on by default.
//!
//! - `redis`: `RedisRegistry` and `RedisChannel`, on fred (the pool of
//!   tower-sessions-redis-store).
//! - `postgres`: `PostgresRegistry` and `PostgresChannel`, on an sqlx 0.8
//!   Postgres pool.
//! - `sqlite`: `SqliteRegistry`, on an sqlx 0.8 SQLite pool.
//! - `ws`: `WatchedSocket`, an axum WebSocket closed with its session.
//!
//! [axum]: https://docs.rs/axum

#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod config;
pub mod error;
pub mod events;
mod extract;
mod handle;
pub mod hash;
mod identity;
mod layer;
pub mod live;
mod recheck;
mod record;
pub mod registry;
mod rejection;
pub mod service;
mod session;
#[cfg(test)]
mod test_support;
pub mod times;
mod validity;

#[doc(inline)]
pub use crate::{
    backend::{SessionUser, UserBackend},
    error::AuthError,
    extract::{safe_next, AuthUser, LoginRequired, RecentAuth},
    hash::AuthKeys,
    identity::{Identity, SessionEnded},
    layer::AuthLayer,
    record::EndReason,
    rejection::AuthRejection,
    session::AuthSession,
    times::SignIn,
};
