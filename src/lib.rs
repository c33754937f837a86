//! Sessions that end when the password changes, for axum and tower.
//!
//! When a user changes their password, every other session of that user
//! must end, while the session that made the change lives on. This crate
//! does for [axum], on top of [tower-sessions], what Django has done since
//! 1.7: each session stores an *auth hash*, a keyed MAC of the user's id,
//! session epoch and stored password hash; every request recomputes it and
//! compares in constant time; a mismatch ends the session. Around that: a
//! session registry to list and revoke sessions, idle and absolute
//! lifetimes, re-authentication for sensitive routes, WebSockets and event
//! streams that end with their session, and events for the application.
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
//! `AuthLayer` must run inside tower-sessions' `SessionManagerLayer`: with
//! `Router::layer`, add it first. A route without the session layer answers
//! `500` with a message naming the missing layer. The package's
//! `examples/basic.rs` (`cargo run --example basic`) is the whole API in one
//! runnable file.
//!
//! # How it works
//!
//! [`login`](AuthSession::login) stores the session's *claim* under one
//! session key (`_auth`): the user's id, the auth hash, the user's session
//! epoch, the sign-in tier and times (Unix milliseconds) and, with a
//! registry, the session's handle. The auth hash is HMAC-SHA256 over the
//! user's [`id`](SessionUser::id) (as serde_json writes it),
//! [`session_epoch`](SessionUser::session_epoch) and
//! [`credential`](SessionUser::credential) (the stored password hash, such
//! as an argon2 PHC string), under a key derived from the server secret;
//! [`AuthKeys`] gives the exact message. A user whose credential is empty is
//! never signed in: `login` refuses them with [`AuthError::Hash`].
//!
//! **One rule decides whether a session still holds.** It is one function,
//! `judge` in `src/validity.rs`, and both paths that check a session call
//! it: [`AuthLayer`] on every request, and the live check of open
//! connections ([below](#long-lived-connections)). It decides in this
//! order, and looks each piece up only when the verdict still depends on
//! it:
//!
//! 1. **Lifetimes.** Past the absolute lifetime, or, on a request, past the
//!    idle timeout since the recorded activity: ended as `expired`, before
//!    the backend is asked.
//! 2. **The user**, loaded through the [`UserBackend`]. Gone, or refused (a
//!    disabled account): ended as `user_gone`.
//! 3. **The auth hash**, recomputed and compared in constant time. Under the
//!    current secret the session holds; under a fallback secret it holds and
//!    is re-hashed in place (same session id). Otherwise it ends as
//!    `credential_changed`, or `epoch_changed` when the user's epoch moved;
//!    unless, on a request, the session was *superseded*: its own browser
//!    rotated its id away meanwhile (see [Parallel
//!    requests](#parallel-requests-of-one-browser)). Then **the
//!    credentials** the session depends on (the passkey it signed in with;
//!    [Credentials and factors](#credentials-and-factors)): one the user no
//!    longer has, or has at another version, ends it as
//!    `credential_removed`.
//! 4. **The registry entry**, when the layer has a
//!    [`SessionRegistry`](registry::SessionRegistry): gone (signed out,
//!    revoked, expired) or never made (a session from before the registry):
//!    ended as `revoked`. Then the idle timeout again, by the latest activity
//!    known: the claim's, or the registry's last-seen time.
//!
//! **On a request**, the layer reads the claim (none: anonymous, and the
//! session is left alone; unreadable: ended as `malformed`), asks the rule,
//! and then:
//!
//! - *holds*: re-hashes the record if step 3 asked for it, writes the
//!   activity time at most once per activity interval, and leaves the user
//!   and the verified claim on the request. The extractors and
//!   [`AuthSession`] read them from there: nothing decodes the session
//!   again.
//! - *ended*: ends the session and goes on as anonymous, with a
//!   [`SessionEnded`] on the request. Ending a session removes its registry
//!   entry (with live sessions, its open connections hear of it in every
//!   process), deletes its data and store record, removes the cookie, and
//!   logs a `tracing` warning with the reason and a keyed fingerprint of
//!   the session id (never the id, the hash or the secret).
//! - *superseded*: anonymous; nothing is ended and no cookie is touched.
//!
//! **On the [fast path](#fast-path)**, the layer asks the same rule about
//! the claim that a short-lived sealed cookie carries, with the registry's
//! answer taken from what the process heard of endings; anything but
//! "holds under the current secret" sends the request down the path above.
//!
//! **The live check** asks the same rule for each open connection, with the
//! claim the connection was opened with. It loads the user and lists the
//! registry entries once for all the connections of that user; it applies
//! the idle timeout only in step 4, where it knows the registry's last-seen
//! time (its copy of the claim does not see the session's later requests);
//! and a connection whose session announced a new hash (its own password
//! change) holds with that hash.
//!
//! A failing session store, backend or registry is never read as
//! "anonymous" nor as "signed in": the request is answered with `500` (or
//! the status set by [`AuthLayer::with_failure_status`]) and a generic body,
//! and the error is logged. Every request runs in a `tracing` span named
//! `auth` whose `outcome` (`authenticated`, `anonymous`, `superseded`,
//! `ended`, `failed`), `reason`, `path` (`fast` when a pass signed it
//! in) and `device` (`unproven` when a [device-bound](#device-bound-sessions)
//! session came without its proof, and the request was made anonymous)
//! the handler's own log lines carry.
//! Configuration mistakes (a login URL that is empty, has a `#fragment` or
//! is no valid `Location`; a failure status that is not a 5xx; registry
//! settings that would expire sessions in use) panic when the layer is
//! built, naming the builder and the value.
//!
//! # In the handler
//!
//! The extractors read what the layer decided; extracting them reads
//! neither the store nor the backend again.
//!
//! | extractor | gives | when anonymous |
//! |-----------|-------|----------------|
//! | [`AuthUser<U>`](AuthUser) | the user | `401` |
//! | `Option<AuthUser<U>>` | the user, or `None` | - |
//! | [`LoginRequired<U>`](LoginRequired) | the user | `303` to the login URL with `next` (check it with [`safe_next`]) |
//! | [`RecentAuth<U>`](RecentAuth) | the user, who proved their credentials recently ([Sensitive actions](#sensitive-actions)) | as `LoginRequired` for a browser, else `401` |
//! | [`Identity<U>`](Identity) | `Authenticated(user)` or `Anonymous` | - |
//! | `Option<SessionEnded>` | why the layer ended the session on this request | - |
//! | [`AuthSession<U>`](AuthSession) | sign in and out, change the password, list and revoke sessions | - |
//! | [`live::SessionWatch`] | a future that completes when the session ends | `401` |
//!
//! They reject with [`AuthRejection`]. An extractor asking for a user type
//! other than the layer's answers `500` with a message naming both types.
//!
//! **Telling the user why.** On the request where the layer ended a
//! session, `Option<SessionEnded>` gives the [`EndReason`]: a password
//! change ([`CredentialChanged`](EndReason::CredentialChanged)), "sign out
//! everywhere" ([`EpochChanged`](EndReason::EpochChanged)), a deleted or
//! disabled account ([`UserGone`](EndReason::UserGone)), a revocation or a
//! sign-out elsewhere ([`Revoked`](EndReason::Revoked)), a session past its
//! lifetime ([`Expired`](EndReason::Expired)), a credential it depended on
//! removed or replaced, such as its passkey
//! ([`CredentialRemoved`](EndReason::CredentialRemoved)), a device-bound
//! session that failed to prove its device
//! ([`DeviceUnproven`](EndReason::DeviceUnproven)), or unreadable data
//! ([`Malformed`](EndReason::Malformed)), each with a stable name for logs
//! and JSON ([`EndReason::as_str`]). A page can then say "you were signed
//! out because your password was changed on another device". On a route
//! guarded by [`LoginRequired`], keep the reason for the sign-in page (the
//! demo stores a one-time notice in the new, anonymous session).
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
//! use tower_sessions_auth::{AuthError, AuthSession, RecentAuth};
//!
//! async fn change_password(
//!     RecentAuth(mut user): RecentAuth<User>,
//!     mut auth: AuthSession<User>,
//!     new_password: String,
//! ) -> Result<&'static str, AuthError> {
//!     user.password_hash = hash_password(&new_password);
//!     save_password_hash(user.id, &user.password_hash).await;
//!     auth.update_session_auth_hash(&user).await?;
//!     Ok("Password changed; your other devices are signed out")
//! }
//! ```
//!
//! This session gets a new id and the new hash. Every other session of the
//! user still holds the old hash and ends on its next request, on any
//! server that shares the store and the user table. With a registry their
//! entries go at once, so no list shows them, and with live sessions their
//! open connections end too. The browser's own requests already under way
//! are superseded, not ended.
//!
//! - **Signing out everywhere else** without a password change: bump the
//!   user's [session epoch](SessionUser::session_epoch), store it, and call
//!   `update_session_auth_hash` the same way; or, with a registry,
//!   [`revoke_other_sessions`](AuthSession::revoke_other_sessions), which
//!   also suits a change of any other authentication factor (ASVS 5.0
//!   7.4.3).
//! - **An administrator** changing someone else's password calls
//!   `update_session_auth_hash` with that user: the administrator stays
//!   signed in as themself (with a new session id), and that user's sessions
//!   end. A change made outside a request (a script, the database directly)
//!   ends the user's sessions on their next request; their open connections
//!   end at the next re-check, or at once with
//!   [`LiveSessions::notify`](live::LiveSessions::notify) or
//!   [`SessionRegistry::revoke_all`](registry::SessionRegistry::revoke_all).
//!
//! # Session lifetimes
//!
//! Every signed-in session ends on its own, by two clocks (OWASP ASVS 5.0
//! 7.3.1 and 7.3.2): the **idle timeout**, counted from its last request,
//! and the **absolute lifetime**, counted from sign-in however active it is.
//! At sign-in the application picks a tier with [`SignIn`] ("keep me signed
//! in"); each tier has its [`Lifetimes`](times::Lifetimes):
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
//! use tower_sessions_auth::{times::Lifetimes, AuthError, AuthKeys, AuthLayer, AuthSession, SignIn};
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
//! A session past either deadline ends as `expired`, and so do its open
//! connections, within one re-check period. The deadlines are checked when
//! a request starts, against [the clock](AuthLayer::with_clock), the one
//! clock of the records, the registry and the live checks: a request under
//! way at the deadline runs to its end. The times live in the session
//! record, so every instance that shares the store agrees, with or without
//! a registry.
//!
//! **Activity costs one store write per interval, not per request.** The
//! record's activity time is rewritten only when it is at least
//! [`with_activity_interval`](AuthLayer::with_activity_interval) old
//! (default one minute), so a session can end up to one interval before its
//! idle timeout, never after.
//!
//! **The layer owns the cookie's lifetime of signed-in sessions.** Whenever
//! tower-sessions is about to write a signed-in session, its expiry is set
//! from the tier: `Expiry::OnSessionEnd` for the browser session,
//! `Expiry::AtDateTime` at the end of the absolute deadline's second for a
//! remembered one (the store record expires then too).
//! `SessionManagerLayer::with_expiry` still applies to anonymous sessions.
//! Under `with_always_save(true)`, requests that change nothing are saved
//! with the session layer's expiry: keep it no longer than your shortest
//! lifetime.
//!
//! # Sensitive actions
//!
//! Changing the password, the email or the second factor, deleting the
//! account or moving money should need a recent proof of the credentials,
//! not just a session that may have been left open (OWASP ASVS 5.0 7.5.1
//! and 7.5.3). Take [`RecentAuth`] instead of [`AuthUser`] on those routes:
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
//!     safe_next, times::ReauthPolicy, AuthError, AuthKeys, AuthLayer, AuthSession, LoginRequired,
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
//! as a proof; `reauthenticate` changes the session id (ASVS 5.0 7.2.4) and
//! keeps the registry entry, the tier and the sign-in time. Outside the
//! window a browser (its `Accept` names `text/html`, or it posts a form) is
//! sent with `303` to the confirmation page with `next`; any other client
//! gets `403` and `{"error":"reauthentication required"}`.
//!
//! # Credentials and factors
//!
//! Django's rule binds a session to one value, the password hash. This
//! crate keeps that rule and adds the credential that proved the session:
//!
//! - **How it was proved.** [`SignIn::factors`] names the factors (RFC 8176
//!   `amr`: [`Factor::PWD`](credential::Factor::PWD),
//!   [`HWK`](credential::Factor::HWK), [`SWK`](credential::Factor::SWK),
//!   [`OTP`](credential::Factor::OTP), [`USER`](credential::Factor::USER),
//!   …; default a password) and [`SignIn::credential`] the credential used
//!   (a passkey's credential id, a TOTP device's id). The session keeps
//!   when each factor was last proved ([`AuthSession::factors`]) and a
//!   keyed MAC of the user, the credential's id and its version. The
//!   [session registry](#listing-and-ending-sessions) lists the factors
//!   with each session ([`SessionInfo::factors`](registry::SessionInfo::factors)),
//!   written at sign-in and at a step-up only.
//! - **It ends when its credential goes.** On every request (and every
//!   live check) the user the backend returns says which version of each
//!   credential it holds ([`SessionUser::credential_version`]): `None` or
//!   another version ends the session as
//!   [`credential_removed`](EndReason::CredentialRemoved). Removing a lost
//!   phone's passkey ends the sessions it proved and no other; the check
//!   adds no round trip, since the user carries its credentials.
//! - **The password still ends everything.** A changed
//!   [`credential`](SessionUser::credential) or epoch ends every other
//!   session, whatever factor proved it: a changed password signals a
//!   compromise (ASVS 5.0 7.4.3).
//! - **A rehash ends nothing**, when [`SessionUser::credential`] returns
//!   what changes only with the password (a version the application bumps,
//!   the time the password was set) rather than the PHC string, which a
//!   cost upgrade rewrites. The crate cannot tell a rehash from a change;
//!   the application can, so the choice is its own. Returning the hash
//!   keeps Django's behaviour.
//! - **Accounts without a password** return an empty credential and sign
//!   in with the credential they proved: such a session depends on that
//!   credential, with nothing invented. A session bound to nothing is
//!   never signed for an empty credential.
//! - **Step-up.** [`AuthSession::reauthenticate_with`] records a new proof
//!   (a passkey after a password sign-in): the factors add up, the session
//!   then depends on the new credential too, and its id changes (ASVS 5.0
//!   7.2.4). [`step_up::RecentFactor`] guards a route with "one of these
//!   factors within this window" ([`step_up::Passkey`]: a passkey within
//!   the re-authentication window); a browser is sent to the confirmation
//!   page with the factors in the query, an API client gets `403` and
//!   `{"error":"factor required","factors":[…]}`.
//! - **Migration.** Sessions signed in before factors existed read as
//!   proved by a password at their last proof, and depend on no other
//!   credential: they keep working.
//!
//! Removing a credential reaches a session's next request on every
//! instance and its [fast path](#fast-path) at once (both ask the
//! backend); its open connections hear of it at the next periodic check,
//! or at once after [`LiveSessions::notify`](live::LiveSessions::notify).
//!
//! # Listing and ending sessions
//!
//! With a [`SessionRegistry`](registry::SessionRegistry) on the layer
//! ([`AuthLayer::with_registry`]), every signed-in session has an entry: an
//! opaque [`SessionHandle`](registry::SessionHandle) (not the session id,
//! stable while the session lives), sign-in and last-seen times, the
//! user agent and address it signed in from, and the factors that proved
//! it. [`AuthSession`] lists the
//! user's sessions ([`sessions`](AuthSession::sessions)) and ends one, all
//! others or all ([`revoke_session`](AuthSession::revoke_session),
//! [`revoke_other_sessions`](AuthSession::revoke_other_sessions),
//! [`revoke_all_sessions`](AuthSession::revoke_all_sessions)); an
//! administrator does the same outside a request through the registry
//! ([`list`](registry::SessionRegistry::list),
//! [`revoke`](registry::SessionRegistry::revoke),
//! [`revoke_all`](registry::SessionRegistry::revoke_all)), and signs
//! everyone out at once with
//! [`revoke_everyone`](registry::SessionRegistry::revoke_everyone) (ASVS 5.0
//! 7.4.5).
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
//!     AuthError, AuthKeys, AuthLayer, AuthSession,
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
//! | store | feature | where | expired entries |
//! |-------|---------|-------|-----------------|
//! | [`MemoryRegistry`](registry::MemoryRegistry) | none | a map in the process | dropped at the user's next sign-in, and by `remove_expired` |
//! | `RedisRegistry` | `redis` | one hash per user, `tsa:registry:{<user id>}` (a hash tag: Redis Cluster) | expire by themselves |
//! | `PostgresRegistry` | `postgres` | table `tsa_session_registry` (`migrate()`) | skipped by reads; removed by `remove_expired` |
//! | `SqliteRegistry` | `sqlite` | the same table | the same |
//!
//! For the stores that keep expired entries, spawn
//! [`continuously_remove_expired`](registry::SessionRegistry::continuously_remove_expired)
//! once per process. Another store implements
//! [`RegistryStore`](registry::RegistryStore), whose documentation shows
//! how.
//!
//! - **Cost.** One registry read per signed-in request (on Redis one
//!   `HGET`, one round trip); the last-seen time is written at most once per
//!   touch interval (default a minute).
//! - **Revocation sticks.** The entry, not the session record, decides: a
//!   request that loaded the session before a logout or a revocation and
//!   saves it back afterwards brings back nothing ([why](registry::SessionRegistry#why-revocation-sticks)).
//! - **Limits.** [`with_limit`](registry::SessionRegistry::with_limit): at
//!   most `n` sessions per user; one more sign-in evicts the least recently
//!   seen or is refused ([`AuthError::TooManySessions`], a `409`),
//!   atomically per user on every store.
//! - **Turning it on** ends, once, every session signed in before: they have
//!   no entry, so no list would show them and no revocation could reach
//!   them (step 4 of the rule).
//!
//! # Long-lived connections
//!
//! A WebSocket or a Server-Sent Events stream is one request that can last
//! for hours, which the check on every request never sees again. Give the
//! registry a [`LiveSessions`](live::LiveSessions)
//! ([`with_live_sessions`](registry::SessionRegistry::with_live_sessions));
//! a handler then takes a [`SessionWatch`](live::SessionWatch), a future that
//! completes as soon as the session stops holding, by the same rule as a
//! request. Every ending reaches it without another call: a password change
//! or "sign out everywhere" in another session, a logout (from another tab
//! of the same session, too), a revocation by the user or an administrator,
//! a deleted or disabled user, an expired session (at the next re-check).
//! The session that made a change keeps its connections, as it keeps its
//! session. The registry announces every ending through its `LiveSessions`:
//! give the registry of every process, an administrator's too, the same
//! channel.
//!
//! ```
//! # use std::convert::Infallible;
//! # #[derive(Clone)] struct User;
//! # impl tower_sessions_auth::SessionUser for User { type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"x" } }
//! # #[derive(Clone)] struct Users;
//! # impl tower_sessions_auth::UserBackend for Users { type User = User; type Error = Infallible;
//! #     async fn get_user(&self, _: &u64) -> Result<Option<User>, Infallible> { Ok(None) } }
//! use axum::response::sse::{Event, KeepAlive, Sse};
//! use futures_util::{stream, Stream, StreamExt as _};
//! use tower_sessions_auth::{
//!     live::{LiveSessions, SessionWatch},
//!     registry::{MemoryRegistry, SessionRegistry},
//!     AuthKeys, AuthLayer, AuthUser,
//! };
//!
//! async fn events(
//!     AuthUser(_user): AuthUser<User>,
//!     watch: SessionWatch,
//! ) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
//!     let hello = stream::once(async { Ok(Event::default().event("hello").data("{}")) });
//!     // The application's own events would follow `hello`.
//!     Sse::new(watch.sse(hello.chain(stream::pending()))).keep_alive(KeepAlive::default())
//! }
//!
//! // Several processes: LiveSessions::new().with_channel(RedisChannel::new(pool)).
//! let registry = SessionRegistry::new(MemoryRegistry::default()).with_live_sessions(LiveSessions::new());
//! let layer = AuthLayer::new(Users, AuthKeys::new([5; 32])?).with_registry(registry);
//! # Ok::<(), tower_sessions_auth::error::KeyError>(())
//! ```
//!
//! [`SessionWatch::sse`](live::SessionWatch::sse) ends an event stream with
//! `event: session-ended` and `{"reason": "…"}`; with the `ws` feature,
//! `SessionWatch::websocket` closes a socket with code 1008 and the reason.
//!
//! - **In one process** an ending reaches the watches at once.
//! - **Across processes**, through the channel the application already
//!   runs: `live::RedisChannel` (pub/sub) or `live::PostgresChannel`
//!   (`LISTEN/NOTIFY`). A notice only makes each process check the user
//!   again with the rule; it never ends a connection by itself, so a lost,
//!   repeated or forged notice cannot end a valid session's connection.
//! - **The backstop**: every watch is checked again once per period
//!   (default 30 s, [`with_recheck_period`](live::LiveSessions::with_recheck_period)).
//!   That bounds how long a connection outlives its session when a notice
//!   is lost, the channel is down (logged when it goes and when it comes
//!   back; every watch is checked again then), or a password was changed in
//!   the database directly.
//! - **Failures**: a check that cannot decide (the backend or the registry
//!   failing) never ends a connection by itself; after
//!   [`with_max_failures`](live::LiveSessions::with_max_failures) failures in
//!   a row (default 3) the watch ends with
//!   [`WatchEnd::ServerError`](live::WatchEnd::ServerError).
//! - A check costs one backend lookup and one registry read per user,
//!   however many connections the user holds. Dropping a watch removes it.
//!
//! # Events
//!
//! [`AuthLayer::with_events`] hands the application an
//! [`AuthEvent`](events::AuthEvent) for each sign-in, re-authentication,
//! sign-out, ended session (with its reason), re-hash under a fallback
//! secret, and failure answered with a 5xx: for a "new sign-in to your
//! account" mail, an audit log or a metric. Each carries the user id and
//! the request details the application chose
//! ([`capture_header`](events::Events::capture_header),
//! [`capture_peer_addr`](events::Events::capture_peer_addr)), never the
//! session id, the hash or a cookie. The request only puts the event into a
//! bounded queue; one task runs the hook, so a slow or panicking hook
//! cannot slow or break a request. When the queue is full, events are
//! dropped and counted in a warning.
//!
//! # Running several instances
//!
//! Any number of instances can serve the same users behind a load balancer,
//! without sticky sessions, if they share three things:
//!
//! 1. **The secrets**: every instance has the same [`AuthKeys`], current
//!    secret and fallbacks. An instance that cannot verify a session's hash
//!    ends it, for all instances.
//! 2. **The session store**: tower-sessions-redis-store, or
//!    tower-sessions-sqlx-store on Postgres (`MemoryStore` and an SQLite
//!    file belong to one process), and the registry's store likewise. No
//!    per-instance cache in front of it (`CachingSessionStore`): a session
//!    ended elsewhere would live on in the cache.
//! 3. **The user table**: [`UserBackend::get_user`] reads the shared source
//!    of truth, with no cache that outlives the request, or a changed
//!    password or a deleted user stays signed in on the instance that
//!    cached it.
//!
//! Then a password change, an epoch bump or a revocation made through any
//! instance ends the other sessions on every instance, on their next
//! request; only requests already in flight may still be answered as the
//! user. Give the store clients short timeouts (fred's
//! `default_command_timeout` and `connection_timeout`, sqlx's
//! `acquire_timeout`) and add a request timeout layer: a failing store then
//! fails requests quickly, with the 5xx, and the same session works again
//! once the store is back.
//!
//! ## Redis Cluster
//!
//! The Redis pieces run on a Redis Cluster (Redis 7.0 or later) as they
//! are: make the fred pool of tower-sessions-redis-store,
//! `registry::RedisRegistry` and `live::RedisChannel` from a cluster URL,
//! `redis-cluster://host:port?node=host:port&node=host:port`.
//!
//! - **Hash slots.** A session record is one key. A user's registry entries
//!   are one hash whose key has the user's id as its hash tag
//!   (`tsa:registry:{42}`), and each registry script touches that key only:
//!   no command crosses slots, and users spread over the shards.
//! - **Notices** go over classic pub/sub, which the cluster forwards to
//!   every node, so no resharding moves a subscription (why not sharded
//!   pub/sub: `RedisChannel`'s docs, "Redis Cluster").
//! - **Failover.** fred follows `MOVED`, `ASK` and the new masters by
//!   itself. Measured with the crate's failover test (3 masters and 3
//!   replicas on one machine, `cluster-node-timeout` 2 s, two instances,
//!   six browsers signing in, reading, watching and ending sessions; three
//!   failovers per case, at 2b37055; the repository's `BENCHMARKS.md`,
//!   "Redis Cluster", which the published package leaves out):
//!   - a master that **crashes**: its replica took over after 3.7–4.8 s;
//!     requests failed for 2.1–3.2 s (18–24 of about 4,000 per failover),
//!     each with a 5xx, the first after the 1 s command timeout, none
//!     answered as anonymous; no session and no ending lost;
//!   - a master that **stalls** for 8 s: its replica took over after
//!     3.2–4.4 s, but the requests for its shard failed until it answered
//!     again (fred keeps using a connection that is open but silent; its
//!     `unresponsive` limit did not shorten this): 22–42 failed over
//!     6.4–6.9 s. As it woke it still took itself for the master for an
//!     instant and answered the reads queued during its sleep from its old
//!     data: 0–3 sessions per failover, signed in on the new master
//!     meanwhile, looked absent there and were answered as anonymous
//!     (sessions lost);
//!   - **no ending lost** in 9 failovers and about 6,500 endings: a
//!     session once ended never came back signed in.
//! - **What asynchronous replication can lose.** A master acknowledges a
//!   write before its replica has it; if it fails in that instant, the
//!   promoted replica never saw the write. A lost sign-in makes that
//!   session anonymous. A lost ending brings a session back: a revocation
//!   (one `HDEL` of its registry entry), or a logout when both its record
//!   and its registry entry were lost. A password change and an epoch bump
//!   live in the user table, out of Redis' reach. The window is the
//!   replication delay (sub-millisecond here, and a crash cuts the
//!   master's replies and its replication together), and the failover
//!   test never hit it, so the crate does not send `WAIT` after an ending
//!   (it would cost every ending a round trip to a replica). When ending
//!   all of a user's sessions must survive any failure, bump the user's
//!   epoch: a change in the user table, not in Redis.
//! - **Cost.** A signed-in request cost the server about 2–3 µs more CPU
//!   per Redis command than on one Redis (one command for the session,
//!   one more for the registry): 1.11× with the layer, 1.20× with the
//!   registry, in a benchmark on a busy machine (at af63a0f; the
//!   repository's `BENCHMARKS.md`).
//! - **Give the clients short timeouts** (above): during a failover the
//!   affected requests then fail within the timeout, with the 5xx.
//!
//! # Fast path
//!
//! With [`AuthLayer::with_fast_path`], a signed-in request costs no store
//! round trip: the response of a request that found its session holding
//! sets a second cookie, a *pass* (sealed with AES-256-GCM-SIV under a
//! key derived from the current secret, bound to the session id, trusted
//! for one minute by default), and a request that presents a valid one is
//! signed in without reading the session store or the registry. The user
//! still comes from the backend and the validity rule still judges the
//! claim, so a changed password, a bumped epoch, a deleted user, an
//! expired session or a retired secret end the fast path at once, on every
//! instance, with no notice. What only the store knows (a sign-out, a
//! revocation, "sign everyone out") reaches every process through the
//! registry's [live sessions](live::LiveSessions), and each process refuses
//! the user's passes issued before it heard of it:
//!
//! - on the instance that ended the session, from its next request;
//! - on the others, once the notice arrived: over 1,000 sign-outs, p50
//!   0.07 ms and p99 0.38 ms on Redis, p50 0.45 ms and p99 10 ms on
//!   Postgres (the repository's `BENCHMARKS.md`, "Fast path", at 43017eb);
//! - at worst, for a notice lost while the channel looked healthy, one
//!   pass lifetime.
//!
//! It degrades to the full path, never to trust: while the channel's
//! listener is down, or the process has not heard its own heartbeat for
//! three periods, every request takes the full path (a log event says so);
//! when it is back, every pass issued before is refused. A new session gets
//! its pass on its second request (its id exists once tower-sessions has
//! saved it). It needs a registry with live sessions, a channel shared by
//! every instance, and clocks within one second of each other (settable);
//! [the module](fast_path) has the details and the settings.
//!
//! What it saves: on Redis, a signed-in `GET /me` cost the server 0.79×
//! the CPU of tower-sessions alone (0.64× that of the layer without it),
//! with no store command; on the memory store, whose read is a map lookup,
//! opening the pass costs more than it saves (1.39× tower-sessions alone;
//! the repository's `BENCHMARKS.md`, run 3 at cdb7894). Use it where the
//! store is across the network.
//!
//! # Device-bound sessions
//!
//! With the `dbsc` feature and
//! [`AuthLayer::with_device_binding`](AuthLayer::with_device_binding), a
//! browser that supports Device Bound Session Credentials (Chrome 145 and
//! later on Windows, with the key in the TPM) binds its session to a key
//! it keeps at sign-in. From then on the session is signed in only with a
//! bound cookie that lives minutes, and renewing it needs a signature by
//! that key: a session cookie copied off the device (by infostealer
//! malware, the common account takeover today) is anonymous elsewhere,
//! and its copy of the bound cookie expires. Browsers without DBSC work as
//! before. The [`dbsc`] module has the protocol, the threat model (what it
//! stops, and what it does not: malware on the device while the user is
//! there), the endpoints to route and the settings.
//!
//! It plugs into the validity rule after it: a session must first hold
//! (every ending above refuses its refreshes too), then prove its device.
//!
//! # Rotating the secret
//!
//! Put the new secret first and keep the old one as a fallback
//! ([`AuthKeys::with_fallback`]): sessions hashed under the old secret keep
//! working and are re-hashed, under the same id, on their next request.
//! Once the fallback is removed, sessions not seen in the meantime end.
//!
//! Instances that verify with different secrets disagree: an instance still
//! on the old secret alone ends the sessions that an updated one re-hashed.
//! Roll out in two steps:
//!
//! 1. everywhere, add the new secret as a fallback only:
//!    `AuthKeys::new(old)?.with_fallback(new)?`;
//! 2. once every instance runs step 1, make it current:
//!    `AuthKeys::new(new)?.with_fallback(old)?`;
//! 3. after the longest session lifetime, drop the old secret.
//!
//! If the secret leaked, deploy the new secret alone: every session ends.
//!
//! # Security
//!
//! What the invalidation covers:
//!
//! - every session of the user whose credential or epoch changed, on its
//!   next request, through every layer instance that shares the session
//!   store and the user data; with live sessions, their open connections
//!   too;
//! - deleted and disabled users, when the backend returns `None` for them
//!   (ASVS 5.0 7.4.2);
//! - session fixation: every login, re-authentication and
//!   `update_session_auth_hash` changes the session id (ASVS 5.0 7.2.4), and
//!   a login over another user's session flushes it first;
//! - sessions left open: the idle timeout and the absolute lifetime end
//!   them server-side, and a remembered session's cookie never outlives its
//!   absolute deadline;
//! - a record moved to another user (a store bug, or someone who can write
//!   the store but does not hold the secret): the hash covers the user id,
//!   so it verifies for no other user, even one with the same credential;
//! - a leak of the session store: it holds a MAC, not the password hash,
//!   and without the server secret the MAC says nothing about the password;
//! - with a registry, a logout or a revocation racing a request of the same
//!   session: once it has returned, no request carrying that session is
//!   answered as the user, on any store (ASVS 5.0 7.4.1).
//!
//! What it does not cover:
//!
//! - requests already in flight when the password changes or the session is
//!   revoked run to their end; only requests that start afterwards are
//!   refused;
//! - credentials that do not go through the session: stateless tokens
//!   (JWTs), API keys, or long-lived caches of the user elsewhere;
//! - a leaked server secret: with it and a store leak, the hash can be
//!   forged for a user whose id, epoch and password hash are known. Rotate
//!   the secret if it leaks;
//! - without a registry, a logout racing another request of the same
//!   browser: tower-sessions saves a changed session at the end of each
//!   request (every request under `with_always_save(true)`), and the
//!   tower-sessions-sqlx and memory stores save by upsert, so a request that
//!   loaded the session before the logout and saves it afterwards brings the
//!   record back, still signed in (the Redis store only updates existing
//!   keys). A password change or an epoch bump is not affected: a record
//!   brought back still carries the old hash;
//! - per-instance caches of the session store (`CachingSessionStore`);
//! - the transport: serve over HTTPS and configure the session cookie
//!   (`Secure`, `HttpOnly`, `SameSite`) on `SessionManagerLayer`.
//!
//! The comparison of hashes is constant time. Secrets are not printed by
//! `Debug`, and only keys derived from them are kept (the derivation's
//! temporaries are not zeroized). Nothing the crate logs or prints with
//! `Debug` carries a secret, a hash, a session id or a registry handle; the
//! `Debug` of your user type is yours, so keep its password hash out of it,
//! since [`Identity`] and the extractors print the user.
//!
//! ## Parallel requests of one browser
//!
//! A browser sends requests in parallel (a page and its images, tabs
//! restored together), each with the cookie it held when it started; the
//! response that reaches it last decides which cookie it keeps. None of
//! them signs the browser out:
//!
//! - **Re-hashing in place.** A session found under a fallback secret keeps
//!   its id, where Django gives it a new one. Only the key changed, not who
//!   the session is nor what it may do, so a new id would protect nothing;
//!   it would delete the record under the old id, and the browser's other
//!   requests with it would be answered as anonymous and remove its cookie.
//! - **A request that finds no record.** [`login`](AuthSession::login) and
//!   [`update_session_auth_hash`](AuthSession::update_session_auth_hash)
//!   change the id and delete the old record at once. A request of the
//!   browser already under way with the old id finds no record: it is
//!   anonymous, and the layer leaves the cookie alone, where tower-sessions
//!   would send a removal that applies to whatever cookie the browser holds
//!   by then (the new one). The same holds for any cookie whose record is
//!   gone (expired, deleted, unknown); it costs two store writes on that
//!   path (an empty record that keeps the cookie, deleted once the response
//!   is done).
//! - **A request that read the record before the password change** and
//!   loads the user after the new hash was stored. The hash no longer
//!   verifies, but the layer reads the record again: gone means the
//!   session's own browser rotated it away, so the request is *superseded*,
//!   anonymous, and ends nothing. A password changed by any other session
//!   leaves the record in place, and the session ends.
//!
//! Not covered: a late request whose handler writes to the session gets a
//! new, anonymous session whose cookie replaces the browser's new one; and
//! under `with_always_save(true)` tower-sessions sets a cookie on every
//! response, late ones included. Write session data only on the requests
//! that need it, and leave `always_save` off.
//!
//! # Feature flags
//!
//! None is on by default.
//!
//! - `redis`: `registry::RedisRegistry` and `live::RedisChannel`, on fred
//!   (the pool of tower-sessions-redis-store).
//! - `postgres`: `registry::PostgresRegistry` and `live::PostgresChannel`,
//!   on an sqlx 0.8 Postgres pool.
//! - `sqlite`: `registry::SqliteRegistry`, on an sqlx 0.8 SQLite pool.
//! - `ws`: `live::WatchedSocket`, an axum WebSocket closed with its session.
//! - `dbsc`: [device-bound sessions](#device-bound-sessions), on RustCrypto's
//!   `p256` (ES256) and `rsa` (RS256) for the device's proofs.
//!
//! [axum]: https://docs.rs/axum
//! [tower-sessions]: https://docs.rs/tower-sessions

#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod config;
pub mod credential;
#[cfg(feature = "dbsc")]
pub mod dbsc;
mod device;
mod ending;
pub mod error;
pub mod events;
mod extract;
pub mod fast_path;
mod handle;
pub mod hash;
mod identity;
mod layer;
pub mod live;
mod recheck;
mod record;
pub mod registry;
mod rejection;
mod request_cookies;
mod seal;
pub mod service;
mod session;
pub mod step_up;
#[cfg(test)]
mod test_support;
pub mod times;
mod unproven;
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
