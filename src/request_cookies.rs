//! Reading the crate's own short-lived cookies (the pass, the bound
//! cookie) off a request, without tower-cookies: they are read on every
//! request, by name, and never changed in place.

use axum::http::{header, HeaderMap};

/// The values of the cookies named `name` in the request's `Cookie`
/// headers, in order. A header that is not visible ASCII is skipped.
pub(crate) fn named<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn every_cookie_of_the_name_is_found_across_headers() {
        let mut headers = HeaderMap::new();
        for line in ["a=1; b=2", "b=3;c=4", "bb=5; b"] {
            headers.append(header::COOKIE, HeaderValue::from_str(line).unwrap());
        }
        headers.append(header::COOKIE, HeaderValue::from_bytes(b"b=\xff").unwrap());
        assert_eq!(named(&headers, "b").collect::<Vec<_>>(), ["2", "3"]);
        assert_eq!(named(&headers, "c").collect::<Vec<_>>(), ["4"]);
        assert_eq!(named(&headers, "d").count(), 0);
    }
}
