//! Removal cookies that browsers accept for a prefixed cookie name.
//!
//! tower-sessions 0.14 ends a session with a removal `Set-Cookie` that
//! keeps the cookie's name, `Path` and `Domain`, with an empty value,
//! `Max-Age=0` and an expiry in the past, but drops `Secure` and `HttpOnly`
//! (it removes the cookie through the `cookie` crate's `CookieJar::remove`).
//! A browser refuses a cookie whose name starts with `__Host-` or
//! `__Secure-` unless it is `Secure` (RFC 6265bis, "Cookie Name
//! Prefixes"), and Chromium will not let a cookie without `Secure` replace
//! one with it: with `DEMO_SECURE_COOKIES=1` (`__Host-demo_session`),
//! signing out would end the session on the server but leave its cookie in
//! the browser. tower-sessions' main branch keeps the attributes; 0.14.0,
//! the release the demo uses, does not. Drop this layer once a release
//! does (`tests/browser.rs` checks the outcome in Chromium).

use axum::{
    extract::Request,
    http::{header::SET_COOKIE, HeaderValue},
    middleware::Next,
    response::Response,
};
use tower_sessions::cookie::{time::Duration, Cookie};

/// Gives every removal cookie of a `__Host-` or `__Secure-` name the
/// attributes of the demo's session cookie it removes: `Secure`, `HttpOnly`
/// and, for `__Host-`, `Path=/`. Other `Set-Cookie` headers pass as they
/// are. Goes outside tower-sessions' `SessionManagerLayer`, which writes
/// the cookie headers on the way out.
pub(crate) async fn secure_removal_cookies(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers
        .get_all(SET_COOKIE)
        .iter()
        .any(|value| secured(value).is_some())
    {
        return response;
    }
    let values: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    headers.remove(SET_COOKIE);
    for value in values {
        let value = secured(&value).unwrap_or(value);
        headers.append(SET_COOKIE, value);
    }
    response
}

/// The removal cookie in `value` with the prefix's attributes added, or
/// `None` when `value` is not the removal of a prefixed cookie (or cannot
/// be read, in which case it is left alone).
fn secured(value: &HeaderValue) -> Option<HeaderValue> {
    let mut cookie = Cookie::parse(value.to_str().ok()?).ok()?;
    let host = cookie.name().starts_with("__Host-");
    let prefixed = host || cookie.name().starts_with("__Secure-");
    let removal = cookie.max_age() == Some(Duration::ZERO);
    if !prefixed || !removal {
        return None;
    }
    cookie.set_secure(true);
    cookie.set_http_only(true);
    if host || cookie.path().is_none() {
        cookie.set_path("/");
    }
    HeaderValue::from_str(&cookie.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secured_text(cookie: &'static str) -> Option<String> {
        let value = HeaderValue::from_static(cookie);
        secured(&value).map(|value| value.to_str().unwrap().to_owned())
    }

    #[test]
    fn a_prefixed_removal_cookie_gets_secure_http_only_and_path_root() {
        // The first as tower-sessions 0.14 sends it when a session ends.
        for removal in [
            "__Host-demo_session=; Path=/; Max-Age=0; Expires=Mon, 04 Dec 2023 14:03:12 GMT",
            "__Secure-other=; Max-Age=0",
        ] {
            let cookie = secured_text(removal).unwrap();
            let attributes: Vec<&str> = cookie.split("; ").collect();
            let name = removal.split('=').next().unwrap();
            assert!(cookie.starts_with(&format!("{name}=;")), "{cookie}");
            for expected in ["Secure", "HttpOnly", "Path=/", "Max-Age=0"] {
                assert!(attributes.contains(&expected), "{expected}: {cookie}");
            }
        }
        let kept =
            secured_text("__Host-demo_session=; Max-Age=0; Expires=Mon, 04 Dec 2023 14:03:12 GMT");
        assert!(kept
            .unwrap()
            .contains("Expires=Mon, 04 Dec 2023 14:03:12 GMT"));
    }

    #[test]
    fn other_cookies_are_left_alone() {
        for other in [
            "demo_session=; Path=/; Max-Age=0",
            "__Host-demo_session=abc; HttpOnly; SameSite=Lax; Secure; Path=/",
            "__Host-demo_session=abc; Path=/; Max-Age=60",
            "not a cookie",
        ] {
            assert_eq!(secured_text(other), None, "{other}");
        }
    }
}
