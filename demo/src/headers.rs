//! Response headers every page of the demo gets.

use axum::{
    extract::Request,
    http::{header, HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

/// Every response depends on who is signed in, so none may be cached
/// (`no-store`, as Django sets on logout and OWASP asks for authenticated
/// pages; event streams too). The others lock the pages down: no framing,
/// scripts only from this site's files (`/static/live.js`; no inline
/// script, no `eval`), connections (the script's `EventSource`) and forms
/// only to this site, no referrer to other sites.
pub(crate) async fn set_response_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; \
             style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
