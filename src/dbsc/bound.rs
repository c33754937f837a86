//! The bound cookie: the short-lived credential a device-bound session is
//! signed in with, refreshed only with a proof of the device's key.
//!
//! Its value is sealed ([`crate::seal`]) with the plaintext
//! `expires_at (8 bytes, Unix milliseconds, big-endian) || device id`:
//! it says "the device of this session proved its key recently". It is
//! checked against the device the session's record names, so it is worth
//! nothing for another session, and nothing once expired (give or take
//! a [grace](DeviceBinding::grace_ms) for a request sent as the browser's
//! copy ran out),
//! whatever the browser does with its `Max-Age`. Unlike the fast path's
//! pass, it still opens under a fallback secret: only the device can
//! renew it, so a rotation must not sign bound sessions out.

use axum::http::{HeaderMap, HeaderValue};

use super::{state::Device, DeviceBinding};
use crate::{
    hash::AuthKeys,
    request_cookies,
    seal::{self, Opening},
    times::{millis, UnixMillis},
};

/// Bound into every tag: no other sealed value opens as a bound cookie.
const PURPOSE: &[u8] = b"tower-sessions-auth.device-bound.v1";

/// Longer values are not decoded at all.
const MAX_VALUE_LEN: usize = 256;

/// The longest a bound cookie is still taken past its expiry: a request
/// the browser sent with its last moment's cookie, over a slow link or to
/// a server whose clock runs ahead, is not refused for it. A tenth of the
/// lifetime when that is shorter, so that a short-lived cookie stays short.
const MAX_GRACE_MS: UnixMillis = 30_000;

/// A bound cookie for `device`, valid until `expires_at`; `None` when the
/// OS gives no randomness.
pub(crate) fn seal_for(keys: &AuthKeys, device: &Device, expires_at: UnixMillis) -> Option<String> {
    seal::seal(
        keys,
        PURPOSE,
        &[&expires_at.to_be_bytes(), device.id.as_bytes()],
    )
}

/// Whether the request carries a bound cookie for `device`, sealed under
/// the current or a fallback secret, unexpired at `now` (give or take the
/// [grace](DeviceBinding::grace_ms)).
pub(crate) fn presented(
    binding: &DeviceBinding,
    keys: &AuthKeys,
    headers: &HeaderMap,
    device: &Device,
    now: UnixMillis,
) -> bool {
    request_cookies::named(headers, &binding.cookie_name).any(|value| {
        let mut buffer = [0_u8; MAX_VALUE_LEN];
        if value.len() > MAX_VALUE_LEN {
            return false;
        }
        let Some(plaintext) = seal::open(keys, Opening::WithFallbacks, PURPOSE, value, &mut buffer)
        else {
            return false;
        };
        let Some((expires_at, id)) = plaintext.split_first_chunk::<8>() else {
            return false;
        };
        now < i64::from_be_bytes(*expires_at).saturating_add(binding.grace_ms())
            && std::str::from_utf8(id).is_ok_and(|id| device.is(id))
    })
}

impl DeviceBinding {
    /// How long past its expiry a bound cookie is still taken: a tenth of
    /// its lifetime, at most [`MAX_GRACE_MS`].
    pub(crate) fn grace_ms(&self) -> UnixMillis {
        millis(self.lifetime / 10).min(MAX_GRACE_MS)
    }

    /// The `Set-Cookie` of a bound cookie `value`, living the configured
    /// lifetime.
    pub(crate) fn set_cookie(&self, value: &str) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "{}={value}; Max-Age={}; {}",
            self.cookie_name,
            self.lifetime.as_secs(),
            self.cookie_attributes()
        ))
        .ok()
    }

    /// The attributes of the bound cookie, as the session instructions
    /// repeat them to the browser.
    pub(crate) fn cookie_attributes(&self) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("Path=/; HttpOnly; SameSite=Lax{secure}")
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    const NOW: UnixMillis = 1_800_000_000_000;

    fn keys() -> AuthKeys {
        AuthKeys::new("the secret of the bound-cookie tests, long enough").unwrap()
    }

    fn device(id: &str) -> Device {
        Device {
            id: id.to_owned(),
            key: "es256.unused".to_owned(),
        }
    }

    fn with_cookie(line: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(line).unwrap());
        headers
    }

    #[test]
    fn a_bound_cookie_proves_its_device_until_it_expires() {
        let binding = DeviceBinding::new();
        let ours = device("our-device");
        let value = seal_for(&keys(), &ours, NOW + 1000).unwrap();
        let headers = with_cookie(&format!("other=1; tsa_bound={value}; x=y"));
        // The default lifetime of 10 minutes: 30 seconds' grace.
        assert_eq!(binding.grace_ms(), 30_000);
        assert!(presented(&binding, &keys(), &headers, &ours, NOW));
        assert!(presented(&binding, &keys(), &headers, &ours, NOW + 30_999));
        assert!(!presented(&binding, &keys(), &headers, &ours, NOW + 31_000));
        let short = DeviceBinding::new().with_lifetime(std::time::Duration::from_secs(2));
        assert_eq!(short.grace_ms(), 200);
        assert!(presented(&short, &keys(), &headers, &ours, NOW + 1199));
        assert!(!presented(&short, &keys(), &headers, &ours, NOW + 1200));
        assert!(!presented(
            &binding,
            &keys(),
            &headers,
            &device("their-device"),
            NOW
        ));
        let renamed = DeviceBinding::new().with_cookie_name("bound");
        assert!(!presented(&renamed, &keys(), &headers, &ours, NOW));
    }

    #[test]
    fn a_bound_cookie_survives_a_rotation_of_the_secret() {
        let binding = DeviceBinding::new();
        let ours = device("our-device");
        let old = "the old secret of the bound-cookie tests, long enough";
        let value = seal_for(&AuthKeys::new(old).unwrap(), &ours, NOW + 1000).unwrap();
        let headers = with_cookie(&format!("tsa_bound={value}"));
        let rotated = keys().with_fallback(old).unwrap();
        assert!(presented(&binding, &rotated, &headers, &ours, NOW));
        assert!(!presented(&binding, &keys(), &headers, &ours, NOW));
    }

    #[test]
    fn forged_foreign_and_oversized_cookies_prove_nothing() {
        let binding = DeviceBinding::new();
        let ours = device("our-device");
        let other_secret = AuthKeys::new("another secret of the bound-cookie tests, long").unwrap();
        let foreign = seal_for(&other_secret, &ours, NOW + 1000).unwrap();
        let pass_like = seal::seal(&keys(), b"another purpose", &[b"our-device"]).unwrap();
        let long = "A".repeat(MAX_VALUE_LEN + 1);
        for value in [
            foreign.as_str(),
            pass_like.as_str(),
            "",
            "!!",
            long.as_str(),
        ] {
            let headers = with_cookie(&format!("tsa_bound={value}"));
            assert!(
                !presented(&binding, &keys(), &headers, &ours, NOW),
                "{value:?}"
            );
        }
        assert!(!presented(&binding, &keys(), &HeaderMap::new(), &ours, NOW));
    }

    #[test]
    fn the_set_cookie_carries_the_lifetime_and_the_attributes() {
        let binding = DeviceBinding::new()
            .with_cookie_name("demo_bound")
            .with_lifetime(std::time::Duration::from_secs(600))
            .with_secure(true);
        let cookie = binding.set_cookie("VALUE").unwrap();
        assert_eq!(
            cookie.to_str().unwrap(),
            "demo_bound=VALUE; Max-Age=600; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
