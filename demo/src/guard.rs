//! Checks that refuse a request before it reaches the session: oversized
//! bodies, cross-site `POST`s and cross-site WebSocket handshakes.

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, Method, StatusCode, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{StartError, BODY_LIMIT};

/// Refuses a body announced as larger than [`BODY_LIMIT`] with `413`,
/// whether or not the route reads it. Bodies without a length are cut off
/// at the same size by the extractors (`DefaultBodyLimit`).
pub(crate) async fn limit_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let limit = u64::try_from(BODY_LIMIT).unwrap_or(u64::MAX);
    if declared.is_some_and(|length| length > limit) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large: the limit is 64 KiB.",
        )
            .into_response();
    }
    next.run(request).await
}

/// What counts as this site's origin for [`same_origin`].
#[derive(Clone, Debug)]
pub(crate) struct OriginPolicy {
    /// The configured origin, lowercased, without a trailing slash.
    fixed: Option<String>,
    /// The scheme assumed with the `Host` header when none is configured.
    scheme: &'static str,
}

impl OriginPolicy {
    /// A fixed origin (`https://demo.example`), or `None` to trust the
    /// request's `Host` with `https` when `secure` and `http` otherwise.
    pub(crate) fn new(fixed: Option<&str>, secure: bool) -> Result<Self, StartError> {
        let fixed = match fixed {
            Some(origin) => {
                let origin = origin.trim_end_matches('/').to_ascii_lowercase();
                let has_scheme = origin.starts_with("http://") || origin.starts_with("https://");
                let host = origin.split_once("://").map_or("", |(_, host)| host);
                if !has_scheme || host.is_empty() || host.contains('/') {
                    return Err(format!(
                        "DEMO_ORIGIN must look like https://host[:port], got {origin:?}"
                    )
                    .into());
                }
                Some(origin)
            }
            None => None,
        };
        Ok(Self {
            fixed,
            scheme: if secure { "https" } else { "http" },
        })
    }

    /// The site's own origin for a request to `host` (its `Host` header):
    /// the configured one, else `host` with the assumed scheme; `None`
    /// without either.
    pub(crate) fn own_origin(&self, host: Option<&str>) -> Option<String> {
        match (&self.fixed, host) {
            (Some(fixed), _) => Some(fixed.clone()),
            (None, Some(host)) => Some(format!("{}://{}", self.scheme, host.to_ascii_lowercase())),
            (None, None) => None,
        }
    }

    fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        self.own_origin(host)
            .is_some_and(|own| own == origin.to_ascii_lowercase())
    }
}

/// The host a request was sent to: its `Host` header, else the authority
/// of its URI (HTTP/2).
pub(crate) fn request_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(axum::http::uri::Authority::as_str))
}

/// Refuses with `403` every unsafe request (`POST`, `PUT`, `PATCH`,
/// `DELETE`, `CONNECT`) and every WebSocket handshake that carries an
/// `Origin` other than the site's own (including the opaque `null`).
/// Without the header the request passes: browsers always send it on
/// cross-site requests of these methods and on every WebSocket handshake.
///
/// A WebSocket handshake is a `GET`, but it is not a safe one: CORS does
/// not apply to WebSockets, so a page of another origin can open one with
/// the user's cookie (same-site pages can, even with `SameSite=Lax`) and
/// read what comes back.
pub(crate) async fn same_origin(
    State(policy): State<OriginPolicy>,
    request: Request,
    next: Next,
) -> Response {
    let unsafe_method = [
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::CONNECT,
    ]
    .contains(request.method());
    if unsafe_method || is_websocket_handshake(&request) {
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let host = request_host(request.headers(), request.uri());
            let allowed = origin
                .to_str()
                .is_ok_and(|origin| policy.allows(origin, host));
            if !allowed {
                tracing::warn!(method = %request.method(), path = request.uri().path(), "cross-site request refused");
                return (
                    StatusCode::FORBIDDEN,
                    "Cross-site request refused: the Origin header does not match this site.",
                )
                    .into_response();
            }
        }
    }
    next.run(request).await
}

/// Whether `request` asks to become a WebSocket (HTTP/1.1 `Upgrade`; over
/// HTTP/2 a WebSocket starts with `CONNECT`, an unsafe method above).
fn is_websocket_handshake(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim().eq_ignore_ascii_case("websocket"))
}
