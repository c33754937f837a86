//! The handler-side handle: login, logout, `update_session_auth_hash`.

use std::fmt;

use axum::{extract::FromRequestParts, http::request::Parts};
use tower_sessions::Session;

use crate::{
    backend::SessionUser,
    config::Context,
    error::{AuthError, AuthRejection},
    events::{AuthEventKind, RequestInfo},
    identity::{extension, identity, Identity},
    record::{end_session, AuthRecord, SESSION_KEY},
};

/// Signs users in and out of the current session.
///
/// An extractor; it needs [`AuthLayer`](crate::AuthLayer) on the route. Every
/// method changes the session id, so an id that leaked before the change
/// (session fixation) is worth nothing after it.
///
/// ```
/// # #[derive(Clone)] struct User;
/// # impl tower_sessions_auth::SessionUser for User {
/// #     type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"" } }
/// # async fn check_password(_: &str) -> Option<User> { Some(User) }
/// use axum::response::Redirect;
/// use tower_sessions_auth::{AuthError, AuthSession};
///
/// async fn login(mut auth: AuthSession<User>, password: String) -> Result<Redirect, AuthError> {
///     match check_password(&password).await {
///         Some(user) => {
///             auth.login(&user).await?;
///             Ok(Redirect::to("/"))
///         }
///         None => Ok(Redirect::to("/login?failed")),
///     }
/// }
///
/// async fn logout(mut auth: AuthSession<User>) -> Result<Redirect, AuthError> {
///     auth.logout().await?;
///     Ok(Redirect::to("/login"))
/// }
/// ```
#[derive(Clone)]
pub struct AuthSession<U> {
    session: Session,
    context: Context,
    identity: Identity<U>,
    /// What the events record of this request; captured only when the
    /// layer has events.
    request: Option<RequestInfo>,
}

impl<U: SessionUser> AuthSession<U> {
    /// Returns the signed-in user, if any: as the layer found it, or as the
    /// last `login` or `logout` on this handle left it.
    pub fn user(&self) -> Option<&U> {
        self.identity.user()
    }

    /// Returns who this request is, as [`user`](Self::user) does.
    pub fn identity(&self) -> &Identity<U> {
        &self.identity
    }

    /// Returns the underlying tower-sessions session, for the application's
    /// own data.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Signs `user` in to this session.
    ///
    /// The session id always changes, also when the same user signs in again
    /// (ASVS 5.0 7.2.4). If the session belongs to another user it is flushed
    /// first, so nothing of theirs carries over; an anonymous session keeps
    /// its data (a shopping cart, say). Call it only after the credentials
    /// were checked.
    ///
    /// # Errors
    ///
    /// [`AuthError`] when the session store fails.
    pub async fn login(&mut self, user: &U) -> Result<(), AuthError> {
        let same_user = self.user().is_some_and(|current| current.id() == user.id());
        if self.identity.is_authenticated() && !same_user {
            end_session(&self.session).await?;
        } else {
            self.session.cycle_id().await?;
        }
        self.store_hash(user).await?;
        self.emit(AuthEventKind::SignedIn, user.id());
        Ok(())
    }

    /// Signs the user out: the session's data and its store record are
    /// deleted, and the cookie removed.
    ///
    /// # Errors
    ///
    /// [`AuthError`] when the session store fails.
    pub async fn logout(&mut self) -> Result<(), AuthError> {
        end_session(&self.session).await?;
        if let Identity::Authenticated(user) =
            std::mem::replace(&mut self.identity, Identity::Anonymous)
        {
            self.emit(AuthEventKind::SignedOut, user.id());
        }
        Ok(())
    }

    /// Keeps this session alive after `user`'s password (or session epoch)
    /// changed, while every other session of `user` ends on its next request.
    ///
    /// Call it after the new password hash is stored. The session id changes.
    /// If `user` is not the user of this session (an administrator changing
    /// someone else's password), only the id changes: the administrator stays
    /// signed in as themself.
    ///
    /// # Errors
    ///
    /// [`AuthError`] when the session store fails.
    pub async fn update_session_auth_hash(&mut self, user: &U) -> Result<(), AuthError> {
        self.session.cycle_id().await?;
        if self.user().is_some_and(|current| current.id() == user.id()) {
            self.store_hash(user).await?;
        }
        Ok(())
    }

    async fn store_hash(&mut self, user: &U) -> Result<(), AuthError> {
        let record = AuthRecord {
            user_id: user.id(),
            epoch: user.session_epoch(),
            auth_hash: self.context.keys.sign(user),
        };
        self.session.insert(SESSION_KEY, record).await?;
        self.identity = Identity::Authenticated(user.clone());
        Ok(())
    }

    fn emit(&self, kind: AuthEventKind, user_id: U::Id) {
        if let (Some(events), Some(request)) = (&self.context.events, &self.request) {
            events.emit(kind, Some(user_id), request.clone());
        }
    }
}

/// Prints whether the request is signed in, never the session: tower-sessions'
/// own `Debug` shows the session id (the cookie's value) and its data.
impl<U> fmt::Debug for AuthSession<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSession")
            .field("session", &format_args!("<redacted>"))
            .field("authenticated", &self.identity.is_authenticated())
            .finish_non_exhaustive()
    }
}

impl<U, S> FromRequestParts<S> for AuthSession<U>
where
    U: SessionUser,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let session = extension(parts, AuthRejection::MissingSessionLayer)?;
        let identity = identity(&parts.extensions)?;
        let context: Context = extension(parts, AuthRejection::MissingAuthLayer)?;
        let request = context.events.as_ref().map(|events| {
            events
                .capture()
                .request_info(&parts.headers, &parts.extensions)
        });
        Ok(Self {
            session,
            context,
            identity,
            request,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tower_sessions::{MemoryStore, Session};

    use super::*;
    use crate::{config::Config, hash::AuthKeys, test_support::User};

    #[tokio::test]
    async fn debug_hides_the_session_id_and_data() {
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        let keys = AuthKeys::new([1_u8; 32]).unwrap();
        let mut auth = AuthSession {
            session: session.clone(),
            context: Arc::new(Config::new(keys, "User")),
            identity: Identity::Anonymous,
            request: None,
        };
        auth.login(&User).await.unwrap();
        session.save().await.unwrap();
        let id = session.id().unwrap();
        let stored: String = session.get(SESSION_KEY).await.unwrap().unwrap();

        let printed = format!("{auth:?}");
        assert!(printed.contains("authenticated: true"), "{printed}");
        // Both forms of the id: the cookie's, and the number inside `Id`.
        assert!(!printed.contains(&id.to_string()), "{printed}");
        assert!(!printed.contains(&id.0.to_string()), "{printed}");
        assert!(format!("{session:?}").contains(&id.0.to_string()));
        assert!(!printed.contains(&stored[..43]), "{printed}");
    }
}
