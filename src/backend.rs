//! The two traits an application implements: its user type and the backend
//! that loads users by id.

use std::future::Future;

use serde::{de::DeserializeOwned, Serialize};

/// A user that can hold a session.
///
/// The layer signs the user's [`id`](SessionUser::id),
/// [`credential`](SessionUser::credential) and
/// [`session_epoch`](SessionUser::session_epoch) into every session of the
/// user. Whenever the credential or the epoch changes, every session that
/// was signed with the old values stops verifying and is flushed on its next
/// request; a session never verifies for another user.
pub trait SessionUser: Clone + Send + Sync + 'static {
    /// The user's primary key, stored in the session with serde (an integer,
    /// a UUID, a string, ...). Its serde_json form is signed into the session
    /// too, so it must serialize the same way every time.
    type Id: Serialize + DeserializeOwned + PartialEq + Clone + Send + Sync + 'static;

    /// Returns the user's id.
    fn id(&self) -> Self::Id;

    /// Returns the credential material the session is bound to: the encoded
    /// password hash the application stores (for example an argon2 PHC
    /// string).
    ///
    /// # Security
    ///
    /// Only a keyed MAC of this value reaches the session store, never the
    /// value itself. Return the stored *hash*, never a plaintext password.
    ///
    /// It is empty only for an account without a password (passkeys
    /// alone): its sessions are signed in with a credential they depend on
    /// ([`SignIn::credential`](crate::SignIn::credential), see
    /// [`credential_version`](Self::credential_version)). A session that
    /// depends on no credential is never signed for an empty value:
    /// [`login`](crate::AuthSession::login) refuses it
    /// ([`HashError::EmptyCredential`](crate::error::HashError::EmptyCredential)),
    /// and one signed earlier ends on its next request.
    ///
    /// The MAC also covers the user's id, so two accounts with the same
    /// credential do not share sessions.
    ///
    /// Rehashing a password (say, a cost upgrade at login) changes the
    /// stored hash and so, when this returns the hash, ends the user's
    /// other sessions, as in Django. To keep them, return what changes only
    /// when the password does: a password version the application bumps on
    /// every real change, or the time the password was set (its bytes in
    /// any stable form). The crate cannot tell a rehash from a change by
    /// itself; the application can.
    fn credential(&self) -> &[u8];

    /// The version of the user's credential `id` (a passkey's credential
    /// id, a one-time-password device's id) as the application stores it
    /// now, or `None` when the user no longer has it.
    ///
    /// A session signed in or re-authenticated with a credential
    /// ([`SignIn::credential`](crate::SignIn::credential)) keeps a keyed MAC
    /// of its version, and ends (reason
    /// [`CredentialRemoved`](crate::EndReason::CredentialRemoved)) on its
    /// next request once this returns `None` or another version: removing
    /// a lost phone's passkey ends the sessions that passkey proved, and
    /// only those. Bump the version when a credential is replaced (a new
    /// TOTP secret under the same device id), not when a passkey's
    /// signature counter moves.
    ///
    /// Return it from the user the backend loads, which then carries every
    /// credential's id and version: the check adds no round trip. The
    /// default has no credentials: implement it before binding a session
    /// to one.
    fn credential_version(&self, id: &[u8]) -> Option<u64> {
        let _ = id;
        None
    }

    /// A per-user counter mixed into the session hash (a "security stamp").
    ///
    /// Bump it to end every session of the user without a password change,
    /// then call
    /// [`AuthSession::update_session_auth_hash`](crate::AuthSession::update_session_auth_hash)
    /// to keep the current session. Applications without such a column keep
    /// the default, `0`.
    fn session_epoch(&self) -> u64 {
        0
    }
}

/// Loads users for the layer on every request that carries a signed-in
/// session.
///
/// # Example
///
/// ```
/// use std::{collections::HashMap, convert::Infallible, sync::Arc};
/// use tower_sessions_auth::{SessionUser, UserBackend};
///
/// #[derive(Clone)]
/// struct User { id: u64, password_hash: String }
///
/// impl SessionUser for User {
///     type Id = u64;
///     fn id(&self) -> u64 { self.id }
///     fn credential(&self) -> &[u8] { self.password_hash.as_bytes() }
/// }
///
/// #[derive(Clone, Default)]
/// struct Users(Arc<HashMap<u64, User>>);
///
/// impl UserBackend for Users {
///     type User = User;
///     type Error = Infallible;
///     async fn get_user(&self, id: &u64) -> Result<Option<User>, Infallible> {
///         Ok(self.0.get(id).cloned())
///     }
/// }
/// ```
pub trait UserBackend: Clone + Send + Sync + 'static {
    /// The application's user type.
    type User: SessionUser;

    /// The backend's failure (a database error, say). The layer answers it
    /// with a 5xx; it never turns into an anonymous or a signed-in request.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Returns the user with this id, or `None` when no such user may hold a
    /// session: deleted, and also disabled or locked accounts. A `None` ends
    /// the session.
    fn get_user(
        &self,
        id: &<Self::User as SessionUser>::Id,
    ) -> impl Future<Output = Result<Option<Self::User>, Self::Error>> + Send;
}

/// A user id as JSON: the key of the user's registry entries and live
/// watches, and the form in which the session record holds it.
pub(crate) fn user_key<Id: Serialize>(user: &Id) -> Result<String, serde_json::Error> {
    serde_json::to_string(user)
}
