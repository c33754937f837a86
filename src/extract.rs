//! Extractors that read what [`AuthLayer`](crate::AuthLayer) decided.
//!
//! They never touch the store or the backend: the layer has done that once
//! for the request.

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri},
    http::request::Parts,
};

use crate::{
    backend::SessionUser,
    config::Context,
    error::AuthRejection,
    identity::{extension, identity},
};

/// The signed-in user; anonymous requests are refused with `401`.
///
/// For API routes. Browser routes want [`LoginRequired`]; routes that serve
/// both take `Option<AuthUser<U>>` or [`Identity`](crate::Identity).
///
/// ```
/// # #[derive(Clone)] struct User { name: String }
/// # impl tower_sessions_auth::SessionUser for User {
/// #     type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"$argon2id$..." } }
/// use tower_sessions_auth::AuthUser;
///
/// async fn me(AuthUser(user): AuthUser<User>) -> String {
///     user.name
/// }
///
/// async fn greeting(user: Option<AuthUser<User>>) -> String {
///     user.map_or_else(|| "hello".to_owned(), |AuthUser(user)| format!("hello {}", user.name))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct AuthUser<U>(pub U);

impl<U, S> FromRequestParts<S> for AuthUser<U>
where
    U: SessionUser,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        identity::<U>(&parts.extensions)?
            .into_user()
            .map(Self)
            .ok_or(AuthRejection::Unauthenticated)
    }
}

impl<U, S> OptionalFromRequestParts<S> for AuthUser<U>
where
    U: SessionUser,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(identity::<U>(&parts.extensions)?.into_user().map(Self))
    }
}

/// The signed-in user; anonymous browsers are sent (`303 See Other`) to the
/// login URL set with
/// [`AuthLayer::with_login_url`](crate::AuthLayer::with_login_url), with the
/// requested path and query in `next`.
///
/// To guard a whole router, use it as a route layer:
/// `router.route_layer(axum::middleware::from_extractor::<LoginRequired<User>>())`.
/// On the login page, pass `next` through [`safe_next`] before redirecting
/// to it.
#[derive(Debug, Clone)]
pub struct LoginRequired<U>(pub U);

impl<U, S> FromRequestParts<S> for LoginRequired<U>
where
    U: SessionUser,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = identity::<U>(&parts.extensions)?.into_user() {
            return Ok(Self(user));
        }
        let context: Context = extension(parts, AuthRejection::MissingAuthLayer)?;
        // Inside a nested router `parts.uri` lacks the prefix.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let requested = uri.path_and_query().map_or("/", |pq| pq.as_str());
        Err(AuthRejection::LoginRequired {
            location: login_location(&context.login_url, requested),
        })
    }
}

/// `login_url` with `next` appended as a query parameter. The layer refused
/// login URLs with a fragment, which would swallow the query.
fn login_location(login_url: &str, next: &str) -> String {
    let separator = if login_url.contains('?') { '&' } else { '?' };
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    format!("{login_url}{separator}{query}")
}

/// Returns `next` if it is safe to redirect to after login: a path on this
/// site. Anything else gives `None`; redirect to a default page then.
///
/// # Security
///
/// Accepts only values that start with a single `/` and hold no backslash
/// and no control character. That refuses absolute URLs (`https://evil`),
/// scheme-relative ones (`//evil`), and the forms browsers rewrite into them
/// (`/\evil`, `/\t/evil`), so the login page cannot become an open redirect.
///
/// ```
/// use tower_sessions_auth::safe_next;
///
/// assert_eq!(safe_next("/account?tab=security"), Some("/account?tab=security"));
/// assert_eq!(safe_next("https://evil.example/"), None);
/// assert_eq!(safe_next("//evil.example/"), None);
/// assert_eq!(safe_next("/\\evil.example/"), None);
/// ```
#[must_use]
pub fn safe_next(next: &str) -> Option<&str> {
    let local = next.starts_with('/') && !next.starts_with("//");
    let clean = !next.chars().any(|c| c == '\\' || c.is_control());
    (local && clean).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_next_accepts_local_paths() {
        for next in ["/", "/password", "/a/b?c=d&e=%2F%2Fx#frag", "/caf%C3%A9"] {
            assert_eq!(safe_next(next), Some(next));
        }
    }

    #[test]
    fn safe_next_rejects_foreign_targets() {
        for next in [
            "",
            "https://evil.example",
            "http:/evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/ok\\..\\x",
        ] {
            assert_eq!(safe_next(next), None, "{next:?}");
        }
    }

    #[test]
    fn login_location_encodes_next() {
        assert_eq!(
            login_location("/login", "/password?x=1&y=2"),
            "/login?next=%2Fpassword%3Fx%3D1%26y%3D2"
        );
        assert_eq!(
            login_location("/auth?mode=web", "/"),
            "/auth?mode=web&next=%2F"
        );
    }
}
