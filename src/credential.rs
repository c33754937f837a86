//! How a session was proved: the factors (RFC 8176 authentication method
//! references) and the credentials it depends on.

use std::fmt;

/// A way a user proved who they are: an authentication method reference
/// (`amr`) registered by [RFC 8176](https://www.rfc-editor.org/rfc/rfc8176),
/// such as [`PWD`](Self::PWD) for a password or [`HWK`](Self::HWK) for a
/// hardware-bound key (a passkey on a security key or a platform
/// authenticator).
///
/// ```
/// use tower_sessions_auth::credential::Factor;
///
/// assert_eq!(Factor::from_name("hwk"), Some(Factor::HWK));
/// assert_eq!(Factor::SWK.as_str(), "swk");
/// assert_eq!(Factor::from_name("password"), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Factor(&'static str);

impl Factor {
    /// Biometric facial recognition.
    pub const FACE: Self = Self("face");
    /// Biometric fingerprint.
    pub const FPT: Self = Self("fpt");
    /// Geolocation.
    pub const GEO: Self = Self("geo");
    /// Proof of possession of a hardware-secured key (a security key, a
    /// platform authenticator's passkey).
    pub const HWK: Self = Self("hwk");
    /// Biometric iris scan.
    pub const IRIS: Self = Self("iris");
    /// Knowledge-based authentication.
    pub const KBA: Self = Self("kba");
    /// Multiple-channel authentication.
    pub const MCA: Self = Self("mca");
    /// Multiple-factor authentication.
    pub const MFA: Self = Self("mfa");
    /// A one-time password (a TOTP app, a recovery code).
    pub const OTP: Self = Self("otp");
    /// A personal identification number or pattern.
    pub const PIN: Self = Self("pin");
    /// A password.
    pub const PWD: Self = Self("pwd");
    /// Risk-based authentication.
    pub const RBA: Self = Self("rba");
    /// Biometric retina scan.
    pub const RETINA: Self = Self("retina");
    /// A smart card.
    pub const SC: Self = Self("sc");
    /// Confirmation by SMS.
    pub const SMS: Self = Self("sms");
    /// Proof of possession of a software-secured key (a synced passkey).
    pub const SWK: Self = Self("swk");
    /// Confirmation by telephone call.
    pub const TEL: Self = Self("tel");
    /// User presence test (a WebAuthn "user verified" flag, for one).
    pub const USER: Self = Self("user");
    /// Biometric voiceprint.
    pub const VBM: Self = Self("vbm");
    /// Windows integrated authentication.
    pub const WIA: Self = Self("wia");

    /// Every value RFC 8176 registers.
    pub const ALL: [Self; 20] = [
        Self::FACE,
        Self::FPT,
        Self::GEO,
        Self::HWK,
        Self::IRIS,
        Self::KBA,
        Self::MCA,
        Self::MFA,
        Self::OTP,
        Self::PIN,
        Self::PWD,
        Self::RBA,
        Self::RETINA,
        Self::SC,
        Self::SMS,
        Self::SWK,
        Self::TEL,
        Self::USER,
        Self::VBM,
        Self::WIA,
    ];

    /// The factor registered under `name`; `None` for any other string.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|factor| factor.0 == name)
    }

    /// The registered name: `pwd`, `hwk`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Factor({})", self.0)
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_name_round_trips_and_nothing_else_parses() {
        for factor in Factor::ALL {
            assert_eq!(Factor::from_name(factor.as_str()), Some(factor));
            assert_eq!(factor.to_string(), factor.as_str());
        }
        for unknown in ["", "PWD", "pwd ", "passkey", "otp,pwd"] {
            assert_eq!(Factor::from_name(unknown), None, "{unknown:?}");
        }
        assert_eq!(format!("{:?}", Factor::OTP), "Factor(otp)");
    }
}
