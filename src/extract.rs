//! Extractors that read what [`AuthLayer`](crate::AuthLayer) decided.
//!
//! They never touch the store or the backend: the layer has done that once
//! for the request.

use crate::{
    backend::SessionUser,
    config::Checked,
    identity::identity,
    live::{SessionWatch, Watched},
    rejection::AuthRejection,
};
use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri},
    http::{header, request::Parts, HeaderMap},
};

/// What the layer left on the request, or the rejection that says the
/// layer is missing.
fn checked(parts: &Parts) -> Result<&Checked, AuthRejection> {
    parts
        .extensions
        .get::<Checked>()
        .ok_or(AuthRejection::MissingAuthLayer)
}

/// A watch of this request's session: completes when the session ends.
/// Refused with `401` when the request is anonymous, and with `500` when
/// the layer's registry has no [`LiveSessions`](crate::live::LiveSessions).
impl<S: Send + Sync> FromRequestParts<S> for SessionWatch {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let checked = checked(parts)?;
        let context = &checked.context;
        let (Some(live), Some(check)) = (context.live(), &context.check) else {
            return Err(AuthRejection::MissingLiveSessions);
        };
        let (Some(user), Some(claim)) = (&checked.user_key, &checked.claim) else {
            return Err(AuthRejection::Unauthenticated);
        };
        let watched = Watched {
            user: user.clone(),
            claim: claim.clone(),
        };
        Ok(live.watch(watched, check.clone()))
    }
}

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
        let checked = checked(parts)?;
        Err(AuthRejection::LoginRequired {
            location: login_location(&checked.context.login_url, requested(parts)),
        })
    }
}

/// The signed-in user, who proved their credentials recently: for routes
/// that change what protects the account (password, email, second
/// factor), delete it, or move money (OWASP ASVS 5.0 7.5.1, 7.5.3; 4.0.3
/// 3.7.1).
///
/// "Recently" is the window of the layer's
/// [`ReauthPolicy`](crate::times::ReauthPolicy) (default 10 minutes), counted from
/// the last [`login`](crate::AuthSession::login) or
/// [`reauthenticate`](crate::AuthSession::reauthenticate) of the session.
/// Outside it:
///
/// - a **browser** is sent (`303 See Other`) to the policy's confirmation
///   URL (default: the login URL), with the requested path and query in
///   `next` as [`LoginRequired`] sends it;
/// - any other client gets `403 Forbidden` with the JSON body
///   `{"error":"reauthentication required"}`
///   ([`AuthRejection::ReauthRequired`]).
///
/// A request is a browser's when its `Accept` header names `text/html`, or
/// its `Content-Type` is a form's (`application/x-www-form-urlencoded`,
/// `multipart/form-data`): what a page load, a link and a form submission
/// send, and what `fetch` and API clients do not. Anonymous requests are
/// refused as [`LoginRequired`] refuses a browser and [`AuthUser`] an API
/// client (`401`).
///
/// An extractor rather than a separate layer: the window lives in the
/// [`AuthLayer`](crate::AuthLayer) configuration beside the lifetimes, the
/// handler receives the user it would take from [`AuthUser`] anyway, and a
/// whole router is guarded the axum way:
/// `router.route_layer(axum::middleware::from_extractor::<RecentAuth<User>>())`.
/// It reads the sign-in times from what the layer verified on this
/// request: no store read and no second decode.
///
/// ```
/// # #[derive(Clone)] struct User;
/// # impl tower_sessions_auth::SessionUser for User {
/// #     type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"$argon2id$..." } }
/// use tower_sessions_auth::RecentAuth;
///
/// async fn delete_account(RecentAuth(user): RecentAuth<User>) -> &'static str {
///     // The user typed their password within the window.
///     "deleted"
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RecentAuth<U>(pub U);

impl<U, S> FromRequestParts<S> for RecentAuth<U>
where
    U: SessionUser,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (user, checked, browser) = proving_user::<U>(parts)?;
        let context = &checked.context;
        let now = context.times.clock.now_ms();
        // The claim the layer verified on this request.
        let recent = checked.claim.as_ref().is_some_and(|claim| {
            let window = context.times.reauth_window_ms();
            now < claim.times.authenticated.saturating_add(window)
        });
        if recent {
            return Ok(Self(user));
        }
        if !browser {
            return Err(AuthRejection::ReauthRequired);
        }
        Err(AuthRejection::ReauthRedirect {
            location: confirm_location(checked, parts),
        })
    }
}

/// The user of a route that asks for a recent proof, what the layer
/// verified, and whether the client is a browser. An anonymous request is
/// refused as [`LoginRequired`] refuses a browser and [`AuthUser`] any
/// other client.
pub(crate) fn proving_user<U: SessionUser>(
    parts: &Parts,
) -> Result<(U, &Checked, bool), AuthRejection> {
    let identity = identity::<U>(&parts.extensions)?;
    let checked = checked(parts)?;
    let browser = is_browser(&parts.headers);
    match identity.into_user() {
        Some(user) => Ok((user, checked, browser)),
        None if browser => Err(AuthRejection::LoginRequired {
            location: login_location(&checked.context.login_url, requested(parts)),
        }),
        None => Err(AuthRejection::Unauthenticated),
    }
}

/// Where a browser proves itself again: the confirmation URL of the
/// layer's [`ReauthPolicy`](crate::times::ReauthPolicy) (default: the
/// login URL), with the requested path in `next`.
pub(crate) fn confirm_location(checked: &Checked, parts: &Parts) -> String {
    let context = &checked.context;
    let confirm_url = context
        .times
        .reauth
        .confirm_url
        .as_deref()
        .unwrap_or(&context.login_url);
    login_location(confirm_url, requested(parts))
}

/// Whether the request comes from a page (see [`RecentAuth`]): `Accept`
/// names `text/html`, or the body is a form.
fn is_browser(headers: &HeaderMap) -> bool {
    let html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| {
            accept.split(',').any(|range| {
                let media = range.split(';').next().unwrap_or("").trim();
                media.eq_ignore_ascii_case("text/html")
            })
        });
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| {
            let media = content_type.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("application/x-www-form-urlencoded")
                || media.eq_ignore_ascii_case("multipart/form-data")
        });
    html || form
}

/// The requested path and query, for `next`. Inside a nested router
/// `parts.uri` lacks the prefix.
fn requested(parts: &Parts) -> &str {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |original| &original.0);
    uri.path_and_query().map_or("/", |pq| pq.as_str())
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
    fn browsers_are_told_by_accept_or_a_form_body() {
        let headers = |pairs: &[(header::HeaderName, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(name, value.parse().unwrap());
            }
            map
        };
        for browser in [
            headers(&[(header::ACCEPT, "text/html")]),
            headers(&[(
                header::ACCEPT,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )]),
            headers(&[
                (header::ACCEPT, "application/json"),
                (header::ACCEPT, "TEXT/HTML; q=0.5"),
            ]),
            headers(&[(header::CONTENT_TYPE, "application/x-www-form-urlencoded")]),
            headers(&[(header::CONTENT_TYPE, "multipart/form-data; boundary=x")]),
        ] {
            assert!(is_browser(&browser), "{browser:?}");
        }
        for api in [
            headers(&[]),
            headers(&[(header::ACCEPT, "*/*")]),
            headers(&[(header::ACCEPT, "application/json")]),
            headers(&[(header::ACCEPT, "text/htmlx")]),
            headers(&[(header::CONTENT_TYPE, "application/json")]),
            headers(&[
                (header::ACCEPT, "*/*"),
                (header::CONTENT_TYPE, "text/plain"),
            ]),
        ] {
            assert!(!is_browser(&api), "{api:?}");
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
