//! What the layer's configuration and its request path share of device
//! binding ([`crate::dbsc`]): the settings and what the check decides. A
//! file of its own, below both, so that neither imports the other.

#[cfg(feature = "dbsc")]
use std::time::Duration;

/// What the device check made of a signed-in request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Without the `dbsc` feature every session is unbound.
#[cfg_attr(not(feature = "dbsc"), allow(dead_code))]
pub(crate) enum Gate {
    /// The session is bound to no device.
    Unbound,
    /// Bound, and the request carries a valid bound cookie.
    Proven,
    /// Bound, without a valid bound cookie: the request was made anonymous.
    Refused,
}

#[cfg(feature = "dbsc")]
/// Where the layer's device binding lives and how long its credentials
/// last.
///
/// ```
/// use std::time::Duration;
/// use tower_sessions_auth::dbsc::DeviceBinding;
///
/// let binding = DeviceBinding::new()
///     .with_cookie_name("__Host-bound")
///     .with_secure(true)
///     .with_lifetime(Duration::from_secs(300));
/// ```
#[derive(Debug, Clone)]
pub struct DeviceBinding {
    pub(crate) registration_path: String,
    pub(crate) refresh_path: String,
    pub(crate) cookie_name: String,
    pub(crate) lifetime: Duration,
    pub(crate) challenge_lifetime: Duration,
    pub(crate) secure: bool,
    pub(crate) end_on_missing_proof: bool,
}

#[cfg(feature = "dbsc")]
impl Default for DeviceBinding {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "dbsc")]
impl DeviceBinding {
    /// Registration at `/dbsc/register`, refresh at `/dbsc/refresh`, the
    /// bound cookie `tsa_bound` (`Secure`) for 10 minutes, challenges for 5.
    #[must_use]
    pub fn new() -> Self {
        Self {
            registration_path: "/dbsc/register".to_owned(),
            refresh_path: "/dbsc/refresh".to_owned(),
            cookie_name: "tsa_bound".to_owned(),
            lifetime: Duration::from_secs(600),
            challenge_lifetime: Duration::from_secs(300),
            secure: true,
            end_on_missing_proof: false,
        }
    }

    /// The path the sign-in response offers for registration, where
    /// [`register`](crate::dbsc::register) is routed.
    ///
    /// # Panics
    ///
    /// When `path` does not start with `/`.
    #[must_use]
    pub fn with_registration_path(mut self, path: impl Into<String>) -> Self {
        self.registration_path = checked_path("with_registration_path", path.into());
        self
    }

    /// The refresh URL the session instructions name, where [`refresh`](crate::dbsc::refresh) is
    /// routed.
    ///
    /// # Panics
    ///
    /// When `path` does not start with `/`.
    #[must_use]
    pub fn with_refresh_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_path = checked_path("with_refresh_path", path.into());
        self
    }

    /// The bound cookie's name (`__Host-…` with [`with_secure`](Self::with_secure)).
    ///
    /// # Panics
    ///
    /// When `name` is empty or holds characters a cookie name cannot.
    #[must_use]
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&byte));
        assert!(
            valid,
            "DeviceBinding::with_cookie_name: invalid cookie name {name:?}"
        );
        self.cookie_name = name;
        self
    }

    /// How long a bound cookie lives: how long a copied one stays useful.
    /// Whole seconds, at least one. The server takes it a little longer (a
    /// tenth of the lifetime, at most 30 seconds), for a request sent as
    /// the browser's copy ran out.
    ///
    /// # Panics
    ///
    /// When `lifetime` is under a second.
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        assert!(
            lifetime.as_secs() >= 1,
            "DeviceBinding::with_lifetime: {lifetime:?} is under a second"
        );
        self.lifetime = lifetime;
        self
    }

    /// How long a challenge may be answered.
    ///
    /// # Panics
    ///
    /// When `lifetime` is zero.
    #[must_use]
    pub fn with_challenge_lifetime(mut self, lifetime: Duration) -> Self {
        assert!(
            !lifetime.is_zero(),
            "DeviceBinding::with_challenge_lifetime: the lifetime is zero"
        );
        self.challenge_lifetime = lifetime;
        self
    }

    /// Whether the bound cookie is `Secure` (the default): turn it off only
    /// for plain-HTTP development, where a browser would not send it back.
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Ends a bound session whose cookie arrives without a valid bound
    /// cookie (outside the refresh endpoint, and unless the browser says
    /// it skipped a refresh), instead of only treating the request as
    /// anonymous and emitting the event.
    #[must_use]
    pub fn end_session_on_missing_proof(mut self, end: bool) -> Self {
        self.end_on_missing_proof = end;
        self
    }
}

#[cfg(feature = "dbsc")]
fn checked_path(builder: &str, path: String) -> String {
    assert!(
        path.starts_with('/'),
        "DeviceBinding::{builder}: {path:?} must start with /"
    );
    path
}
