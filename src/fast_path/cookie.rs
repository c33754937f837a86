//! The pass cookie on the wire: found among the request's cookies, set and
//! removed on the response.

use axum::http::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use super::{pass::Pass, FastPath};
use crate::{hash::AuthKeys, request_cookies};

/// What the request brought of a pass.
pub(crate) enum Presented<Id> {
    /// No pass cookie.
    Absent,
    /// A pass cookie that does not open (forged, truncated, another
    /// secret's): it is removed unless a new pass replaces it.
    Unreadable,
    Pass(Pass<Id>),
}

/// Opens the first pass cookie of the request's `Cookie` headers.
pub(crate) fn presented<Id: DeserializeOwned>(
    fast: &FastPath,
    keys: &AuthKeys,
    headers: &HeaderMap,
) -> Presented<Id> {
    match request_cookies::named(headers, &fast.cookie_name).next() {
        None => Presented::Absent,
        Some(value) => Pass::open(keys, value).map_or(Presented::Unreadable, Presented::Pass),
    }
}

impl FastPath {
    /// The `Set-Cookie` of a new pass, `value` as sealed.
    pub(crate) fn set_cookie(&self, value: &str) -> Option<HeaderValue> {
        let max_age = self.lifetime.as_secs();
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
            self.cookie_name,
            self.secure_attribute()
        ))
        .ok()
    }

    /// The `Set-Cookie` that removes the pass.
    pub(crate) fn removal(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
            self.cookie_name,
            self.secure_attribute()
        ))
        .ok()
    }

    fn secure_attribute(&self) -> &'static str {
        if self.secure {
            "; Secure"
        } else {
            ""
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    #[test]
    fn the_pass_is_found_among_other_cookies_and_garbage_is_unreadable() {
        let fast = FastPath::new().with_cookie_name("p");
        let keys = AuthKeys::new("the secret of the cookie tests, long enough").unwrap();
        let mut headers = HeaderMap::new();
        assert!(matches!(
            presented::<u64>(&fast, &keys, &headers),
            Presented::Absent
        ));
        headers.append(header::COOKIE, HeaderValue::from_static("id=abc; pp=x"));
        assert!(matches!(
            presented::<u64>(&fast, &keys, &headers),
            Presented::Absent
        ));
        headers.append(header::COOKIE, HeaderValue::from_static("a=b;p=not-a-pass"));
        assert!(matches!(
            presented::<u64>(&fast, &keys, &headers),
            Presented::Unreadable
        ));
    }

    #[test]
    fn cookies_carry_the_settings() {
        let fast = FastPath::new().with_lifetime(std::time::Duration::from_secs(90));
        assert_eq!(
            fast.set_cookie("v").unwrap(),
            "tsa_pass=v; Path=/; Max-Age=90; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            fast.with_secure(false).removal().unwrap(),
            "tsa_pass=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
    }
}
