//! Who the request is, why a session ended, and how both are read from the
//! request extensions.

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{request::Parts, Extensions},
};

use crate::{backend::SessionUser, config::Checked, record::EndReason, rejection::AuthRejection};

/// Who the request is: the signed-in user, or anonymous.
///
/// [`AuthLayer`](crate::AuthLayer) inserts it into the request extensions, so
/// other middleware can read it too. As an extractor it serves pages that
/// show something to everybody.
///
/// ```
/// # #[derive(Clone)] struct User { name: String }
/// # impl tower_sessions_auth::SessionUser for User {
/// #     type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"$argon2id$..." } }
/// use tower_sessions_auth::Identity;
///
/// async fn home(identity: Identity<User>) -> String {
///     match identity {
///         Identity::Authenticated(user) => format!("Signed in as {}", user.name),
///         Identity::Anonymous => "Welcome, stranger".to_owned(),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity<U> {
    /// The session holds a user whose auth hash verified.
    Authenticated(U),
    /// No user: no session, or one that was just ended.
    Anonymous,
}

impl<U> Identity<U> {
    /// Returns the user, if signed in.
    pub fn user(&self) -> Option<&U> {
        match self {
            Self::Authenticated(user) => Some(user),
            Self::Anonymous => None,
        }
    }

    /// Consumes `self`, returning the user, if signed in.
    pub fn into_user(self) -> Option<U> {
        match self {
            Self::Authenticated(user) => Some(user),
            Self::Anonymous => None,
        }
    }

    /// Returns `true` for a signed-in request.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Self::Authenticated(_))
    }
}

impl<U, S> FromRequestParts<S> for Identity<U>
where
    U: SessionUser,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        identity(&parts.extensions)
    }
}

/// The layer's verdict for user type `U`, or why there is none: no layer,
/// or a layer built for another user type.
pub(crate) fn identity<U: SessionUser>(
    extensions: &Extensions,
) -> Result<Identity<U>, AuthRejection> {
    if let Some(identity) = extensions.get::<Identity<U>>() {
        return Ok(identity.clone());
    }
    match extensions.get::<Checked>() {
        Some(checked) => Err(AuthRejection::WrongUserType {
            requested: std::any::type_name::<U>(),
            layer: checked.context.user_type,
        }),
        None => Err(AuthRejection::MissingAuthLayer),
    }
}

/// A copy of the extension `T` that a layer put on the request, or
/// `missing` when that layer is not there.
pub(crate) fn extension<T>(parts: &Parts, missing: AuthRejection) -> Result<T, AuthRejection>
where
    T: Clone + Send + Sync + 'static,
{
    parts.extensions.get::<T>().cloned().ok_or(missing)
}

/// Present on the one request on which the layer ended the session, to say
/// why: so that a page can tell "you were signed out because your password
/// was changed" instead of showing a bare sign-in page.
///
/// The request itself is anonymous. As an extractor, take
/// `Option<SessionEnded>`: `None` on every other request.
///
/// ```
/// use tower_sessions_auth::{EndReason, SessionEnded};
///
/// async fn sign_in_page(ended: Option<SessionEnded>) -> &'static str {
///     match ended.map(|ended| ended.reason()) {
///         Some(EndReason::CredentialChanged) => "Your password was changed. Please sign in again.",
///         Some(_) => "You were signed out. Please sign in again.",
///         None => "Please sign in.",
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnded {
    reason: EndReason,
}

impl SessionEnded {
    pub(crate) fn new(reason: EndReason) -> Self {
        Self { reason }
    }

    /// Why the session ended.
    #[must_use]
    pub fn reason(self) -> EndReason {
        self.reason
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for SessionEnded {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_signed_in_identity_has_a_user() {
        let signed_in = Identity::Authenticated("alice");
        assert!(signed_in.is_authenticated());
        assert_eq!(signed_in.user(), Some(&"alice"));
        assert_eq!(signed_in.into_user(), Some("alice"));

        let anonymous = Identity::<&str>::Anonymous;
        assert!(!anonymous.is_authenticated());
        assert_eq!(anonymous.user(), None);
        assert_eq!(anonymous.into_user(), None);
    }
}
