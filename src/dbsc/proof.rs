//! The proofs a device signs with its key (webappsec-dbsc, "DBSC Proof JWT
//! Syntax"): a compact JWS whose header says `typ: "dbsc+jwt"`, and the
//! device's public key as the session record keeps it.
//!
//! What is accepted, and nothing more:
//! - the compact serialization (RFC 7515 §7.1): three base64url parts
//!   without padding, whitespace or non-zero trailing bits, at most
//!   [`MAX_PROOF_LEN`] bytes in all, measured before anything is decoded;
//! - a header and a payload that are JSON objects (a repeated member name
//!   keeps its last value, which RFC 7515 §5.2 allows); a `crit` header is
//!   refused, since no extension is understood;
//! - `alg` ES256 (ECDSA P-256, SHA-256, the 64-byte `r || s` signature of
//!   RFC 7518 §3.4) or RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518
//!   §3.3). `none`, the HMAC algorithms and anything else are refused: an
//!   unsigned proof is never taken, a public key is never an HMAC secret.
//!   The draft allows `none` for sessions without a key; those bind
//!   nothing, so this module does not offer them;
//! - keys: P-256 points on the curve, RSA moduli of 2048 to 4096 bits. A
//!   JWK carrying private members is refused: that key is no longer the
//!   device's alone;
//! - the claims `jti` (the challenge: a non-empty string of at most 256
//!   bytes) and `authorization` (a string, when present). They are read
//!   only after the signature verified.
//!
//! Freshness is not decided here: the caller compares `jti` with the
//! challenge it issued and consumes that challenge.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use p256::ecdsa::{signature::Verifier as _, Signature as EcSignature, VerifyingKey as EcKey};
use rsa::{pkcs1v15, traits::PublicKeyParts as _, BigUint, RsaPublicKey};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The longest proof accepted, in bytes; a longer one is refused before
/// any decoding. A proof with a 4096-bit RSA key in its header is about
/// 1.9 KiB.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted, in bytes.
const MAX_JTI_LEN: usize = 256;

/// The `typ` every proof carries.
const PROOF_TYPE: &str = "dbsc+jwt";

/// RSA moduli accepted, in bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// The longest RSA modulus and exponent accepted, in bytes, checked on the
/// base64url text before it is decoded.
const RSA_MAX_MODULUS_BYTES: usize = 512;
const RSA_MAX_EXPONENT_BYTES: usize = 8;

/// The length of a P-256 coordinate, in bytes (RFC 7518 §6.2.1.2: the full
/// length, leading zeros kept).
const P256_COORDINATE_BYTES: usize = 32;

/// The longest stored key accepted by [`DeviceKey::from_stored`].
const MAX_STORED_LEN: usize = 1024;

/// JWK members that only a private key has (RFC 7518 §6.2.2 and §6.3.2).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// Why a proof or a key was refused. The reasons are fixed texts: nothing a
/// client sent is echoed into a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProofError {
    /// Longer than [`MAX_PROOF_LEN`].
    #[error("the DBSC proof is longer than {} bytes", MAX_PROOF_LEN)]
    TooLong,
    /// Not a compact JWS with JSON-object header and payload.
    #[error("the DBSC proof is malformed: {0}")]
    Malformed(&'static str),
    /// `typ` is missing or not `dbsc+jwt`.
    #[error("the DBSC proof's `typ` is not \"dbsc+jwt\"")]
    Typ,
    /// `alg` is not ES256 or RS256, or not the algorithm of the key.
    #[error("the DBSC proof's `alg` is not ES256 or RS256, or not its key's algorithm")]
    Algorithm,
    /// The key is missing, present where it must not be, or unusable.
    #[error("the DBSC proof's key is refused: {0}")]
    Key(&'static str),
    /// The signature does not verify with the key.
    #[error("the DBSC proof's signature does not verify")]
    Signature,
    /// The payload lacks a usable `jti`, or `authorization` is not a string.
    #[error("the DBSC proof's claims are refused: {0}")]
    Claims(&'static str),
}

/// The two signature algorithms a proof may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Es256,
    Rs256,
}

/// A device's public key, as registration proved it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum DeviceKey {
    /// ECDSA on P-256 with SHA-256.
    Es256(EcKey),
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256(RsaPublicKey),
}

impl fmt::Debug for DeviceKey {
    /// The algorithm only: a key identifies a device across sessions, so it
    /// stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DeviceKey").field(&self.algorithm()).finish()
    }
}

impl DeviceKey {
    /// The key of a public JWK (RFC 7517): `{kty: "EC", crv: "P-256", x, y}`
    /// or `{kty: "RSA", n, e}`. Other members (`kid`, `alg`, `use`, ...) are
    /// ignored, except private ones, which are refused.
    pub(crate) fn from_jwk(jwk: &Value) -> Result<Self, ProofError> {
        let jwk = jwk
            .as_object()
            .ok_or(ProofError::Key("the jwk is not a JSON object"))?;
        if PRIVATE_MEMBERS.iter().any(|name| jwk.contains_key(*name)) {
            return Err(ProofError::Key("the jwk holds a private key"));
        }
        match string_member(jwk, "kty") {
            Some("EC") => {
                if string_member(jwk, "crv") != Some("P-256") {
                    return Err(ProofError::Key("the EC key's curve is not P-256"));
                }
                let x = coordinate(jwk, "x")?;
                let y = coordinate(jwk, "y")?;
                // SEC1 uncompressed form: 0x04, then x, then y.
                let mut point = [0u8; 1 + 2 * P256_COORDINATE_BYTES];
                point[0] = 0x04;
                point[1..=P256_COORDINATE_BYTES].copy_from_slice(&x);
                point[1 + P256_COORDINATE_BYTES..].copy_from_slice(&y);
                EcKey::from_sec1_bytes(&point)
                    .map(Self::Es256)
                    .map_err(|_| ProofError::Key("the EC point is not on P-256"))
            }
            Some("RSA") => {
                let n = unsigned_member(jwk, "n", RSA_MAX_MODULUS_BYTES)?;
                let e = unsigned_member(jwk, "e", RSA_MAX_EXPONENT_BYTES)?;
                rsa_key(&n, &e)
            }
            Some(_) => Err(ProofError::Key("the jwk's kty is neither EC nor RSA")),
            None => Err(ProofError::Key("the jwk has no kty string")),
        }
    }

    /// The key as the session record keeps it: `es256.` and the base64url
    /// SEC1 compressed point, or `rs256.`, the base64url modulus, `.` and
    /// the base64url exponent (both big-endian, minimal). The prefix names
    /// the form, so another can follow. Only base64url characters and dots:
    /// no `;`, `=` or `,`.
    pub(crate) fn to_stored(&self) -> String {
        match self {
            Self::Es256(key) => format!(
                "es256.{}",
                URL_SAFE_NO_PAD.encode(key.to_encoded_point(true).as_bytes())
            ),
            Self::Rs256(key) => format!(
                "rs256.{}.{}",
                URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())
            ),
        }
    }

    /// The key back from [`to_stored`](Self::to_stored)'s form, with the
    /// same checks as a JWK.
    pub(crate) fn from_stored(text: &str) -> Result<Self, ProofError> {
        const NOT_STORED: ProofError = ProofError::Key("not a stored device key");
        if text.len() > MAX_STORED_LEN {
            return Err(NOT_STORED);
        }
        match text.split_once('.') {
            Some(("es256", point)) => {
                let point = URL_SAFE_NO_PAD.decode(point).map_err(|_| NOT_STORED)?;
                if point.len() != 1 + P256_COORDINATE_BYTES {
                    return Err(NOT_STORED);
                }
                EcKey::from_sec1_bytes(&point)
                    .map(Self::Es256)
                    .map_err(|_| ProofError::Key("the EC point is not on P-256"))
            }
            Some(("rs256", parts)) => {
                let (n, e) = parts.split_once('.').ok_or(NOT_STORED)?;
                let n = unsigned(n, RSA_MAX_MODULUS_BYTES)?;
                let e = unsigned(e, RSA_MAX_EXPONENT_BYTES)?;
                rsa_key(&n, &e)
            }
            _ => Err(NOT_STORED),
        }
    }

    /// The RFC 7638 JWK thumbprint with SHA-256: the hash of the required
    /// members in lexicographic order, without whitespace.
    pub(crate) fn thumbprint(&self) -> [u8; 32] {
        let canonical = match self {
            Self::Es256(key) => {
                let point = key.to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    // An uncompressed point always has both coordinates;
                    // the identity, which has none, is refused on input.
                    unreachable!("a P-256 verifying key is never the identity")
                };
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(x),
                    URL_SAFE_NO_PAD.encode(y)
                )
            }
            Self::Rs256(key) => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
                URL_SAFE_NO_PAD.encode(key.n().to_bytes_be())
            ),
        };
        Sha256::digest(canonical.as_bytes()).into()
    }

    /// The JWS `alg` this key verifies: `"ES256"` or `"RS256"`.
    pub(crate) fn algorithm(&self) -> &'static str {
        match self.kind() {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    fn kind(&self) -> Algorithm {
        match self {
            Self::Es256(_) => Algorithm::Es256,
            Self::Rs256(_) => Algorithm::Rs256,
        }
    }

    /// Whether `signature` is this key's signature of `signing_input`.
    fn verify(&self, signing_input: &str, signature: &[u8]) -> Result<(), ProofError> {
        let verified = match self {
            Self::Es256(key) => EcSignature::from_slice(signature)
                .ok()
                .map(|signature| key.verify(signing_input.as_bytes(), &signature)),
            Self::Rs256(key) => pkcs1v15::Signature::try_from(signature)
                .ok()
                .map(|signature| {
                    pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
                        .verify(signing_input.as_bytes(), &signature)
                }),
        };
        match verified {
            Some(Ok(())) => Ok(()),
            _ => Err(ProofError::Signature),
        }
    }
}

/// What a verified proof says.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    /// The challenge the proof answers.
    pub(crate) jti: String,
    /// The registration header's `authorization`, copied by the client.
    pub(crate) authorization: Option<String>,
}

impl fmt::Debug for Claims {
    /// `authorization` may be a credential of the application's: shown only
    /// as present or absent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("jti", &self.jti)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A registration proof: header `{typ: "dbsc+jwt", alg: ES256 | RS256,
/// jwk}`, signed by that jwk's key, whose algorithm must be `alg`. Returns
/// the key to keep for the session and the claims.
pub(crate) fn verify_registration(jwt: &str) -> Result<(DeviceKey, Claims), ProofError> {
    let proof = Compact::parse(jwt)?;
    let algorithm = proof.algorithm()?;
    let jwk = proof
        .header
        .get("jwk")
        .ok_or(ProofError::Key("a registration proof has no jwk"))?;
    let key = DeviceKey::from_jwk(jwk)?;
    if key.kind() != algorithm {
        return Err(ProofError::Algorithm);
    }
    key.verify(proof.signing_input, &proof.signature)?;
    let claims = claims(&proof.payload)?;
    Ok((key, claims))
}

/// A refresh proof, signed by the key registration proved: its `alg` must be
/// that key's, and it must not carry a `jwk` (the draft: "MUST not be
/// present for refresh requests").
pub(crate) fn verify_refresh(jwt: &str, key: &DeviceKey) -> Result<Claims, ProofError> {
    let proof = Compact::parse(jwt)?;
    let algorithm = proof.algorithm()?;
    if proof.header.contains_key("jwk") {
        return Err(ProofError::Key("a refresh proof carries a jwk"));
    }
    if key.kind() != algorithm {
        return Err(ProofError::Algorithm);
    }
    key.verify(proof.signing_input, &proof.signature)?;
    claims(&proof.payload)
}

/// A compact JWS taken apart, nothing verified yet.
struct Compact<'a> {
    /// `base64url(header) "." base64url(payload)`, what was signed.
    signing_input: &'a str,
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Compact<'a> {
    fn parse(jwt: &'a str) -> Result<Self, ProofError> {
        if jwt.len() > MAX_PROOF_LEN {
            return Err(ProofError::TooLong);
        }
        const NOT_THREE: ProofError = ProofError::Malformed("not three parts separated by dots");
        let (signing_input, signature) = jwt.rsplit_once('.').ok_or(NOT_THREE)?;
        let (header, payload) = signing_input.split_once('.').ok_or(NOT_THREE)?;
        if payload.contains('.') {
            return Err(NOT_THREE);
        }
        let header: Map<String, Value> = serde_json::from_slice(&part(header)?)
            .map_err(|_| ProofError::Malformed("the header is not a JSON object"))?;
        Ok(Self {
            signing_input,
            header,
            payload: part(payload)?,
            signature: part(signature)?,
        })
    }

    /// The header's algorithm, once `typ` and `crit` are checked.
    fn algorithm(&self) -> Result<Algorithm, ProofError> {
        if string_member(&self.header, "typ") != Some(PROOF_TYPE) {
            return Err(ProofError::Typ);
        }
        if self.header.contains_key("crit") {
            return Err(ProofError::Malformed(
                "the header names critical extensions",
            ));
        }
        match string_member(&self.header, "alg") {
            Some("ES256") => Ok(Algorithm::Es256),
            Some("RS256") => Ok(Algorithm::Rs256),
            _ => Err(ProofError::Algorithm),
        }
    }
}

/// One part of a compact JWS, decoded.
fn part(text: &str) -> Result<Vec<u8>, ProofError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ProofError::Malformed("a part is not base64url without padding"))
}

/// The claims of a payload whose signature verified.
fn claims(payload: &[u8]) -> Result<Claims, ProofError> {
    let mut payload: Map<String, Value> = serde_json::from_slice(payload)
        .map_err(|_| ProofError::Malformed("the payload is not a JSON object"))?;
    let jti = match payload.remove("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti,
        Some(Value::String(_)) => {
            return Err(ProofError::Claims("jti is empty or longer than 256 bytes"))
        }
        _ => return Err(ProofError::Claims("jti is missing or not a string")),
    };
    let authorization = match payload.remove("authorization") {
        None => None,
        Some(Value::String(authorization)) => Some(authorization),
        Some(_) => return Err(ProofError::Claims("authorization is not a string")),
    };
    Ok(Claims { jti, authorization })
}

fn string_member<'m>(object: &'m Map<String, Value>, name: &str) -> Option<&'m str> {
    object.get(name).and_then(Value::as_str)
}

/// A P-256 coordinate: exactly 32 bytes of base64url.
fn coordinate(
    jwk: &Map<String, Value>,
    name: &str,
) -> Result<[u8; P256_COORDINATE_BYTES], ProofError> {
    const BAD: ProofError = ProofError::Key("an EC coordinate is not 32 bytes of base64url");
    let text = string_member(jwk, name).ok_or(BAD)?;
    if text.len() != (P256_COORDINATE_BYTES * 4).div_ceil(3) {
        return Err(BAD);
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| BAD)?;
    bytes.try_into().map_err(|_| BAD)
}

/// An RSA member of a JWK (RFC 7518 §6.3.1): a string member holding an
/// unsigned big-endian integer in base64url.
fn unsigned_member(
    jwk: &Map<String, Value>,
    name: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, ProofError> {
    unsigned(
        string_member(jwk, name).ok_or(ProofError::Key("an RSA member is missing"))?,
        max_bytes,
    )
}

/// An unsigned big-endian integer in base64url: at most `max_bytes` bytes,
/// checked on the text before decoding, and without leading zero octets
/// (RFC 7518 §6.3.1.1: the minimum number of octets).
fn unsigned(text: &str, max_bytes: usize) -> Result<Vec<u8>, ProofError> {
    const BAD: ProofError = ProofError::Key("an RSA member is not a minimal base64url integer");
    if text.len() > (max_bytes * 4).div_ceil(3) {
        return Err(ProofError::Key("the RSA key is larger than 4096 bits"));
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| BAD)?;
    match bytes.first() {
        Some(&first) if first != 0 => Ok(bytes),
        _ => Err(BAD),
    }
}

/// An RSA public key of 2048 to 4096 bits, with rsa's own checks (odd
/// modulus, odd exponent from 3 to 2^33 - 1, below the modulus).
fn rsa_key(n: &[u8], e: &[u8]) -> Result<DeviceKey, ProofError> {
    let n = BigUint::from_bytes_be(n);
    if !RSA_BITS.contains(&n.bits()) {
        return Err(ProofError::Key("the RSA modulus is not 2048 to 4096 bits"));
    }
    RsaPublicKey::new(n, BigUint::from_bytes_be(e))
        .map(DeviceKey::Rs256)
        .map_err(|_| ProofError::Key("the RSA key is not valid"))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac as _};
    use p256::ecdsa::{signature::Signer as _, SigningKey as EcSigningKey};
    use proptest::prelude::*;
    use rsa::{pkcs1::DecodeRsaPrivateKey as _, signature::SignatureEncoding as _, RsaPrivateKey};
    use serde_json::json;

    use super::*;

    /// A 2048-bit RSA key made for these tests with `openssl genrsa 2048`
    /// (PKCS#1 DER in base64), so no test waits for a key generation.
    const TEST_RSA_KEY: &str = "
    MIIEpAIBAAKCAQEAoaSHH/32g4pKaXeMSzO4NW6ADUTmg7SvOSVZenbeMg+w3obk
    0pIAt8dygPZtGG5cDzyH6dVOwh09ocu/bjKHrh8C+3yt2AdxuWHxpr8ehiryaR0b
    0+29SDIsLuCKk+ceTRtzw6Atdb4AsGxwJ3YSZZM8oQQzZ6dLmUgoNuMaCvUtegtP
    zou3yr0M04sIpAWaaQh7+Vg2saO1wub/VZCtP4xqJVIVRRyZ0GlHjusxUCu0k78j
    Qub+inpiyoM3ozx2y3nAyxDexzA/CeArSPK1Y1/+CEm9uRksqIahPIk7kFInWVgJ
    69wL+0E35FGCk3eoHMtAG1GuqlGeodRw1hFACQIDAQABAoIBAARDazP3D+FizGxX
    mwOHXIoX1sVJOX1xgdCgSunUIkkQPGJC83YxVyPOkFc7iKxlCfhCtYDMbG+2wGyL
    /vA4lKpAegscVZdJBPq2gF6DraasxQJSol+dDONcI9AXTvH9N2gIIhRfqgTjV/0C
    cy47RHUM5Koh8S6NJubAh9Az/h8aH+5PLk6mzDZEJm49ndpgo+VAHEoFN+xUqnxT
    bVLwFAD4DWxPRz5sPYIeJTJITkmPFUlV0KYpMW5t73BcJHgoqjqyuOcg+genwJP6
    IKxCzo3bwfGpCctkwwtZMeliHxV77WpZI1gQFVXx8zbl9XZ/T+R52hVYaefE30ml
    8x2cEw0CgYEA1VWrRXLJsgovWCxb7d9JzSyV/Fcx7dLXHJyQQ66IhL0R6mgswBmu
    xUo+YKVRulqfXLnmOgaV/apgKxbE5iMELCI4WqDW2XMWzHD7wnFvQ9hzaECx4vSO
    orvuLwfTL5bc9UMN4oOADEuSdH/3l9OxC+Tqc1iGm2ZO77qbod/SszUCgYEAwfhU
    AyBU5k7p8YYg1gGNYikVCJe29ynBNtlTC5pD50duAgG3ZZQ+EgWX2bSG8voOCxZl
    72hXMfexQ1nZUBYX0JoNe2y4OUrcTJj68W/lx8WwXASCf2grbDTJ9lKXzzUxUi8l
    3OmnqAkupaVqfOMK2WpWQ8hepJtuMFF4sJPcwAUCgYEAi9YB1B3v04IVkohRIdTw
    /UoybhuBoNBJLHn7nkGzPr7oFWx/mNO82ZlW1ebHcY2hVBiOro5Olt2s99GO8wMU
    4xDzO4SeEB7+XLfabpQISMKCs11kvM1tCYKCF9XbOiB7aVCwsz9bGbQXpcGTu7OJ
    I7DDdSQb55TiPQVmqm6aH9kCgYEAvHiNMSh2Nf4RhHOebjK97NYcMOgxiMFSkvfh
    oFF5jz0xn9OJHrNHCH3UyV2HDop3oMBXtaL9rniNDfM8m3uMEk3NsdK2wjyCCA9R
    Lc1bSJxGu3JKVn+iSZaVcrlX9qcp0EAtmxSRqk2ZvKwY51Y4kX6oaV5Ez86S53IS
    Qgi6Iv0CgYBfj2Os9kc3faykdVsLRMYzlJmmloGP8qnV/l29mijE/S71fnMgS/66
    /SufpRhJJBdIuoSP05+i1+fk3C2VDTqAvyfzBWYoOOfrXlybtQvtutSGzECbI0Td
    bbee5WS+YAXJX1W2EadGYlpXqNcXUtPwFjTTedO0NqdUgKPSQPBJPg==
    ";

    /// The example key of RFC 7638 §3.1 (2048 bits) and its thumbprint.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

    /// The draft's `Secure-Session-Response` example.
    const DRAFT_EXAMPLE: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImRic2Mrand0In0.eyJhdWQiOiJodHRwczovL2V4YW1wbGUuY29tL3JlZyIsImp0aSI6ImN2IiwiaWF0IjoiMTcyNTU3OTA1NSIsImp3ayI6eyJrdHkiOiJFQyIsImNydiI6IlAtMjU2IiwieCI6IjZfR0Iydm9RMHFyb01oNk9sREZDRlNfU0pyaVFpMVBUdnZCT2hHWjNiSEkiLCJ5IjoiSWVnT0pVTHlFN1N4SF9DZDFLQ0VSN2xXQnZHRkhRLWgweHlqelVqRUlXRSJ9LCJhdXRob3JpemF0aW9uIjoiYWMifQ.6Fb_vVBDmfNghQiBmIGe8o7tBfYPbPCywhQruP0vIhxgmcJmuNTaMHeVn_M8ZnOm1_bzIitbZqCWEn-1Qzmtyw";

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An ES256 key from a fixed scalar: the same key in every run.
    fn ec_signer(seed: u8) -> EcSigningKey {
        EcSigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn ec_jwk(key: &EcSigningKey) -> Value {
        let point = key.verifying_key().to_encoded_point(false);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(point.x().unwrap()),
            "y": b64(point.y().unwrap()),
        })
    }

    fn rsa_signer() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            let der = STANDARD
                .decode(TEST_RSA_KEY.split_whitespace().collect::<String>())
                .unwrap();
            RsaPrivateKey::from_pkcs1_der(&der).unwrap()
        })
    }

    fn rsa_jwk(key: &RsaPublicKey) -> Value {
        json!({"kty": "RSA", "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())})
    }

    fn signing_input(header: &Value, payload: &Value) -> String {
        format!("{}.{}", b64(header.to_string()), b64(payload.to_string()))
    }

    fn sign_es(key: &EcSigningKey, header: &Value, payload: &Value) -> String {
        let input = signing_input(header, payload);
        let signature: EcSignature = key.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.to_bytes()))
    }

    fn sign_rs(header: &Value, payload: &Value) -> String {
        let input = signing_input(header, payload);
        let signature =
            pkcs1v15::SigningKey::<Sha256>::new(rsa_signer().clone()).sign(input.as_bytes());
        format!("{input}.{}", b64(signature.to_vec()))
    }

    fn registration_header(alg: &str, jwk: Value) -> Value {
        let mut header = refresh_header(alg);
        header["jwk"] = jwk;
        header
    }

    fn refresh_header(alg: &str) -> Value {
        json!({"typ": "dbsc+jwt", "alg": alg})
    }

    fn registration_claims() -> Value {
        json!({"jti": "challenge-1", "authorization": "ac"})
    }

    fn refresh_claims() -> Value {
        json!({"jti": "challenge-2"})
    }

    fn es_registration() -> String {
        let key = ec_signer(0x11);
        sign_es(
            &key,
            &registration_header("ES256", ec_jwk(&key)),
            &registration_claims(),
        )
    }

    fn es_refresh() -> String {
        sign_es(
            &ec_signer(0x11),
            &refresh_header("ES256"),
            &refresh_claims(),
        )
    }

    fn es_key() -> DeviceKey {
        DeviceKey::Es256(*ec_signer(0x11).verifying_key())
    }

    /// RS256 signing is slow in a debug build: each proof is made once.
    fn rs_registration() -> &'static str {
        static JWT: OnceLock<String> = OnceLock::new();
        JWT.get_or_init(|| {
            let jwk = rsa_jwk(&rsa_signer().to_public_key());
            sign_rs(&registration_header("RS256", jwk), &registration_claims())
        })
    }

    fn rs_refresh() -> &'static str {
        static JWT: OnceLock<String> = OnceLock::new();
        JWT.get_or_init(|| sign_rs(&refresh_header("RS256"), &refresh_claims()))
    }

    fn rs_key() -> DeviceKey {
        DeviceKey::Rs256(rsa_signer().to_public_key())
    }

    fn rfc7638_key() -> DeviceKey {
        DeviceKey::from_jwk(&json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})).unwrap()
    }

    /// A proof with this header and payload and an arbitrary signature.
    fn unsigned(header: &Value, payload: &Value, signature: &[u8]) -> String {
        format!("{}.{}", signing_input(header, payload), b64(signature))
    }

    #[test]
    fn es256_registration_then_refresh() {
        let (key, claims) = verify_registration(&es_registration()).unwrap();
        assert_eq!(key, es_key());
        assert_eq!(key.algorithm(), "ES256");
        assert_eq!(claims.jti, "challenge-1");
        assert_eq!(claims.authorization.as_deref(), Some("ac"));

        let claims = verify_refresh(&es_refresh(), &key).unwrap();
        assert_eq!(claims.jti, "challenge-2");
        assert_eq!(claims.authorization, None);
    }

    #[test]
    fn rs256_registration_then_refresh() {
        let (key, claims) = verify_registration(rs_registration()).unwrap();
        assert_eq!(key, rs_key());
        assert_eq!(key.algorithm(), "RS256");
        assert_eq!(claims.jti, "challenge-1");
        assert_eq!(claims.authorization.as_deref(), Some("ac"));

        let claims = verify_refresh(rs_refresh(), &key).unwrap();
        assert_eq!(claims.jti, "challenge-2");
    }

    #[test]
    fn both_forms_of_an_ecdsa_signature_verify() {
        // JWS does not ask for low-S signatures; p256 accepts either form.
        let key = ec_signer(0x11);
        let header = registration_header("ES256", ec_jwk(&key));
        let input = signing_input(&header, &registration_claims());
        let signature: EcSignature = key.sign(input.as_bytes());
        let (r, s) = signature.split_scalars();
        let other = EcSignature::from_scalars(r.to_bytes(), (-s).to_bytes()).unwrap();
        assert_ne!(other, signature);
        for signature in [signature, other] {
            let jwt = format!("{input}.{}", b64(signature.to_bytes()));
            assert!(verify_registration(&jwt).is_ok());
        }
    }

    #[test]
    fn the_drafts_example_does_not_verify() {
        // The example of `Secure-Session-Response` carries its jwk in the
        // payload, as an earlier draft did, not in the header.
        assert_eq!(
            verify_registration(DRAFT_EXAMPLE).unwrap_err(),
            ProofError::Key("a registration proof has no jwk")
        );
        // Its key is a point on P-256, but the signature is not by it.
        let payload = DRAFT_EXAMPLE.split('.').nth(1).unwrap();
        let payload: Value = serde_json::from_slice(&part(payload).unwrap()).unwrap();
        let key = DeviceKey::from_jwk(&payload["jwk"]).unwrap();
        assert_eq!(
            verify_refresh(DRAFT_EXAMPLE, &key).unwrap_err(),
            ProofError::Signature
        );
    }

    #[test]
    fn thumbprints_are_rfc_7638() {
        assert_eq!(b64(rfc7638_key().thumbprint()), RFC7638_THUMBPRINT);
        // The EC key's thumbprint as joserfc 1.6.5 computes it.
        assert_eq!(
            b64(es_key().thumbprint()),
            "OEurnbzOGbRad4qOD9lNK8VYMQGvg5cmLnVKeydAqL4"
        );
        // Optional members change nothing.
        let mut jwk = ec_jwk(&ec_signer(0x11));
        jwk["kid"] = json!("device");
        jwk["alg"] = json!("ES256");
        assert_eq!(
            DeviceKey::from_jwk(&jwk).unwrap().thumbprint(),
            es_key().thumbprint()
        );
    }

    #[test]
    fn stored_keys_round_trip_without_record_separators() {
        for key in [es_key(), rs_key(), rfc7638_key()] {
            let stored = key.to_stored();
            assert!(!stored.contains([';', '=', ',']), "{stored}");
            assert!(stored
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte)));
            assert_eq!(DeviceKey::from_stored(&stored).unwrap(), key);
        }
        assert!(es_key().to_stored().starts_with("es256."));
        assert!(rs_key().to_stored().starts_with("rs256."));

        let uncompressed = b64(ec_signer(0x11).verifying_key().to_encoded_point(false));
        let small_rsa = format!("rs256.{}.AQAB", b64([0xc1; 128]));
        for refused in [
            "",
            "es256",
            "es256.",
            "es256.AA",
            &format!("es256.{uncompressed}"),
            "rs256.",
            "rs256.AQAB",
            &small_rsa,
            "ES256.AAAA",
            "ed25519.AAAA",
            &"es256.".repeat(200),
        ] {
            assert!(DeviceKey::from_stored(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let key = ec_signer(0x11);
        for alg in ["none", "None", "NONE", ""] {
            let jwt = unsigned(
                &registration_header(alg, ec_jwk(&key)),
                &registration_claims(),
                b"",
            );
            assert!(jwt.ends_with('.'));
            assert_eq!(
                verify_registration(&jwt).unwrap_err(),
                ProofError::Algorithm
            );
            let jwt = unsigned(&refresh_header(alg), &refresh_claims(), b"");
            assert_eq!(
                verify_refresh(&jwt, &es_key()).unwrap_err(),
                ProofError::Algorithm
            );
        }
        // No `alg` at all, or not a string.
        let jwt = unsigned(&json!({"typ": "dbsc+jwt"}), &refresh_claims(), b"");
        assert_eq!(
            verify_refresh(&jwt, &es_key()).unwrap_err(),
            ProofError::Algorithm
        );
        let jwt = unsigned(
            &json!({"typ": "dbsc+jwt", "alg": ["ES256"]}),
            &refresh_claims(),
            b"",
        );
        assert_eq!(
            verify_refresh(&jwt, &es_key()).unwrap_err(),
            ProofError::Algorithm
        );
    }

    #[test]
    fn hmac_with_the_public_key_as_secret_is_refused() {
        // Algorithm confusion: whatever bytes of the public key an attacker
        // takes as the HMAC secret, HS256 is not an algorithm we verify.
        let key = ec_signer(0x11);
        let jwk = ec_jwk(&key);
        let secrets = [
            key.verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            key.verifying_key()
                .to_encoded_point(true)
                .as_bytes()
                .to_vec(),
            jwk.to_string().into_bytes(),
            es_key().to_stored().into_bytes(),
        ];
        for secret in secrets {
            for (header, payload) in [
                (
                    registration_header("HS256", jwk.clone()),
                    registration_claims(),
                ),
                (refresh_header("HS256"), refresh_claims()),
            ] {
                let input = signing_input(&header, &payload);
                let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
                mac.update(input.as_bytes());
                let jwt = format!("{input}.{}", b64(mac.finalize().into_bytes()));
                assert_eq!(
                    verify_registration(&jwt).unwrap_err(),
                    ProofError::Algorithm
                );
                assert_eq!(
                    verify_refresh(&jwt, &es_key()).unwrap_err(),
                    ProofError::Algorithm
                );
            }
        }
        for alg in [
            "HS384", "HS512", "ES384", "PS256", "EdDSA", "es256", "RS256 ",
        ] {
            let jwt = unsigned(&refresh_header(alg), &refresh_claims(), &[1; 64]);
            assert_eq!(
                verify_refresh(&jwt, &es_key()).unwrap_err(),
                ProofError::Algorithm
            );
        }
    }

    #[test]
    fn alg_must_match_the_key() {
        // Registration: the header says RS256, the jwk is an EC key.
        let key = ec_signer(0x11);
        let jwt = sign_es(
            &key,
            &registration_header("RS256", ec_jwk(&key)),
            &registration_claims(),
        );
        assert_eq!(
            verify_registration(&jwt).unwrap_err(),
            ProofError::Algorithm
        );
        let jwt = unsigned(
            &registration_header("ES256", rsa_jwk(&rsa_signer().to_public_key())),
            &registration_claims(),
            &[1; 64],
        );
        assert_eq!(
            verify_registration(&jwt).unwrap_err(),
            ProofError::Algorithm
        );
        // Refresh: a proof by one algorithm against a key of the other.
        assert_eq!(
            verify_refresh(&es_refresh(), &rs_key()).unwrap_err(),
            ProofError::Algorithm
        );
        assert_eq!(
            verify_refresh(rs_refresh(), &es_key()).unwrap_err(),
            ProofError::Algorithm
        );
    }

    #[test]
    fn typ_must_be_dbsc_jwt() {
        let key = ec_signer(0x11);
        for typ in [
            json!(null),
            json!("JWT"),
            json!("DBSC+JWT"),
            json!("dbsc+jwt "),
            json!(["dbsc+jwt"]),
        ] {
            let mut header = refresh_header("ES256");
            header["typ"] = typ;
            let jwt = sign_es(&key, &header, &refresh_claims());
            assert_eq!(
                verify_refresh(&jwt, &es_key()).unwrap_err(),
                ProofError::Typ
            );
        }
        let mut header = refresh_header("ES256");
        header.as_object_mut().unwrap().remove("typ");
        let jwt = sign_es(&key, &header, &refresh_claims());
        assert_eq!(
            verify_refresh(&jwt, &es_key()).unwrap_err(),
            ProofError::Typ
        );
    }

    #[test]
    fn the_jwk_belongs_in_registration_only() {
        let key = ec_signer(0x11);
        let jwt = sign_es(&key, &refresh_header("ES256"), &registration_claims());
        assert_eq!(
            verify_registration(&jwt).unwrap_err(),
            ProofError::Key("a registration proof has no jwk")
        );
        // A registration proof replayed as a refresh: its own key is the
        // registered one, and it is still refused.
        assert_eq!(
            verify_refresh(&es_registration(), &es_key()).unwrap_err(),
            ProofError::Key("a refresh proof carries a jwk")
        );
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        // Registration: the header names one key, another signed.
        let named = ec_signer(0x11);
        let signer = ec_signer(0x22);
        let jwt = sign_es(
            &signer,
            &registration_header("ES256", ec_jwk(&named)),
            &registration_claims(),
        );
        assert_eq!(
            verify_registration(&jwt).unwrap_err(),
            ProofError::Signature
        );
        // Refresh: signed by a key other than the registered one.
        let jwt = sign_es(&signer, &refresh_header("ES256"), &refresh_claims());
        assert_eq!(
            verify_refresh(&jwt, &es_key()).unwrap_err(),
            ProofError::Signature
        );
        assert_eq!(
            verify_refresh(rs_refresh(), &rfc7638_key()).unwrap_err(),
            ProofError::Signature
        );
    }

    #[test]
    fn a_tampered_proof_is_refused() {
        for (jwt, key) in [
            (es_registration(), es_key()),
            (rs_registration().to_owned(), rs_key()),
        ] {
            let [header, _, signature] = parts(&jwt);
            let other = b64(json!({"jti": "challenge-9", "authorization": "ac"}).to_string());
            let tampered = format!("{header}.{other}.{signature}");
            assert_eq!(
                verify_registration(&tampered).unwrap_err(),
                ProofError::Signature
            );
            // The signature of a registration does not cover a refresh header.
            let other_header = b64(refresh_header(key.algorithm()).to_string());
            let [_, payload, _] = parts(&jwt);
            let tampered = format!("{other_header}.{payload}.{signature}");
            assert_eq!(
                verify_refresh(&tampered, &key).unwrap_err(),
                ProofError::Signature
            );
        }
        // A signature of the wrong length.
        let jwt = es_refresh();
        let [header, payload, signature] = parts(&jwt);
        let mut short = part(signature).unwrap();
        short.pop();
        let jwt = format!("{header}.{payload}.{}", b64(&short));
        assert_eq!(
            verify_refresh(&jwt, &es_key()).unwrap_err(),
            ProofError::Signature
        );
        let jwt = format!("{header}.{payload}.");
        assert_eq!(
            verify_refresh(&jwt, &es_key()).unwrap_err(),
            ProofError::Signature
        );
    }

    fn parts(jwt: &str) -> [&str; 3] {
        let parts: Vec<&str> = jwt.split('.').collect();
        parts.try_into().unwrap()
    }

    #[test]
    fn length_is_checked_first() {
        let long = "a".repeat(MAX_PROOF_LEN + 1);
        assert_eq!(verify_registration(&long).unwrap_err(), ProofError::TooLong);
        assert_eq!(
            verify_refresh(&long, &es_key()).unwrap_err(),
            ProofError::TooLong
        );
        // A valid proof padded past the limit inside its payload.
        let key = ec_signer(0x11);
        let payload = json!({"jti": "c", "pad": "x".repeat(MAX_PROOF_LEN)});
        let jwt = sign_es(&key, &refresh_header("ES256"), &payload);
        assert_eq!(
            verify_refresh(&jwt, &es_key()).unwrap_err(),
            ProofError::TooLong
        );
        // At the limit, a proof is read.
        let header = refresh_header("ES256");
        let fixed = signing_input(&header, &json!({"jti": "c", "pad": ""})).len() + 1 + 86;
        let payload = json!({"jti": "c", "pad": "x".repeat((MAX_PROOF_LEN - fixed) * 3 / 4)});
        let jwt = sign_es(&key, &header, &payload);
        assert!(
            jwt.len() <= MAX_PROOF_LEN && jwt.len() > MAX_PROOF_LEN - 4,
            "{}",
            jwt.len()
        );
        assert!(verify_refresh(&jwt, &es_key()).is_ok());
    }

    #[test]
    fn only_the_compact_form_in_base64url_is_read() {
        let jwt = es_refresh();
        let [header, payload, signature] = parts(&jwt);
        let malformed = [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            format!("{header}.{payload}"),
            format!("{header}.{payload}.{signature}.{signature}"),
            format!("{header}=.{payload}.{signature}"),
            format!("{header}.{payload}.{signature}="),
            format!("{header} .{payload}.{signature}"),
            format!(" {header}.{payload}.{signature}"),
            format!("{header}.{payload}.{signature}\n"),
            format!("{}.{payload}.{signature}", header.replace('J', "+")),
            format!(
                "{header}.{payload}.{}",
                STANDARD.encode(part(signature).unwrap())
            ),
            format!("{header}.{payload}.{}", trailing_bits_set(signature)),
            format!("\"{header}.{payload}.{signature}\""),
        ];
        for jwt in &malformed {
            let refused = verify_refresh(jwt, &es_key()).unwrap_err();
            assert!(
                matches!(refused, ProofError::Malformed(_)),
                "{jwt}: {refused:?}"
            );
        }
    }

    /// The signature's last character with a trailing bit set: the same
    /// bytes to a lenient decoder, refused by a strict one.
    fn trailing_bits_set(signature: &str) -> String {
        // 64 bytes are 86 characters; the last carries 4 unused bits.
        let (head, last) = signature.split_at(signature.len() - 1);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet
            .iter()
            .position(|&c| c == last.as_bytes()[0])
            .unwrap();
        format!("{head}{}", alphabet[index | 1] as char)
    }

    #[test]
    fn header_and_payload_are_json_objects() {
        let key = ec_signer(0x11);
        let signature = b64([1; 64]);
        let payload = b64(refresh_claims().to_string());
        for header in [
            "[]",
            "\"dbsc+jwt\"",
            "null",
            "{",
            "{\"typ\":\"dbsc+jwt\",}",
            "",
        ] {
            let jwt = format!("{}.{payload}.{signature}", b64(header));
            assert_eq!(
                verify_refresh(&jwt, &es_key()).unwrap_err(),
                ProofError::Malformed("the header is not a JSON object"),
                "{header}"
            );
        }
        // A signed payload that is no object.
        let header = b64(refresh_header("ES256").to_string());
        for payload in ["[\"jti\"]", "\"challenge\"", "1", "", "{\"jti\":\"c\""] {
            let input = format!("{header}.{}", b64(payload));
            let signature: EcSignature = key.sign(input.as_bytes());
            let jwt = format!("{input}.{}", b64(signature.to_bytes()));
            assert_eq!(
                verify_refresh(&jwt, &es_key()).unwrap_err(),
                ProofError::Malformed("the payload is not a JSON object"),
                "{payload}"
            );
        }
    }

    #[test]
    fn critical_extensions_are_refused() {
        let mut header = refresh_header("ES256");
        header["crit"] = json!(["b64"]);
        header["b64"] = json!(false);
        let jwt = sign_es(&ec_signer(0x11), &header, &refresh_claims());
        assert!(matches!(
            verify_refresh(&jwt, &es_key()),
            Err(ProofError::Malformed(_))
        ));
    }

    #[test]
    fn claims_need_a_jti() {
        let key = ec_signer(0x11);
        let refused = [
            json!({}),
            json!({"authorization": "ac"}),
            json!({"jti": ""}),
            json!({"jti": "c".repeat(MAX_JTI_LEN + 1)}),
            json!({"jti": 1}),
            json!({"jti": null}),
            json!({"jti": ["c"]}),
            json!({"jti": "c", "authorization": 1}),
            json!({"jti": "c", "authorization": null}),
        ];
        for payload in refused {
            let jwt = sign_es(&key, &refresh_header("ES256"), &payload);
            let refused = verify_refresh(&jwt, &es_key()).unwrap_err();
            assert!(
                matches!(refused, ProofError::Claims(_)),
                "{payload}: {refused:?}"
            );
        }
        let longest = "c".repeat(MAX_JTI_LEN);
        let jwt = sign_es(
            &key,
            &refresh_header("ES256"),
            &json!({"jti": longest, "iat": 1}),
        );
        assert_eq!(verify_refresh(&jwt, &es_key()).unwrap().jti, longest);
    }

    #[test]
    fn rsa_keys_are_2048_to_4096_bits() {
        let jwk = |n: &[u8], e: &[u8]| json!({"kty": "RSA", "n": b64(n), "e": b64(e)});
        let e = [1, 0, 1];
        // Odd moduli with the top bit set; no factorization is needed to
        // build a public key.
        let modulus = |bytes: usize| {
            let mut n = vec![0xc5; bytes];
            n[bytes - 1] = 0x01 | 0xc5;
            n
        };
        assert!(DeviceKey::from_jwk(&jwk(&modulus(256), &e)).is_ok());
        assert!(DeviceKey::from_jwk(&jwk(&modulus(512), &e)).is_ok());
        let mut just_under = modulus(256);
        just_under[0] = 0x7f;
        for (n, e) in [
            (modulus(513), e.to_vec()),
            (modulus(2048), e.to_vec()),
            (modulus(128), e.to_vec()),
            (just_under, e.to_vec()),
            (modulus(256), vec![2]),
            (modulus(256), vec![1]),
            (modulus(256), vec![1, 0, 0, 0, 0, 0, 0, 1]),
            (modulus(256), vec![0, 1, 0, 1]),
            ([&[0][..], &modulus(256)].concat(), e.to_vec()),
        ] {
            let refused = DeviceKey::from_jwk(&jwk(&n, &e)).unwrap_err();
            assert!(matches!(refused, ProofError::Key(_)), "{} {e:?}", n.len());
        }
        for missing in ["n", "e"] {
            let mut jwk = rsa_jwk(&rsa_signer().to_public_key());
            jwk.as_object_mut().unwrap().remove(missing);
            assert!(DeviceKey::from_jwk(&jwk).is_err());
        }
    }

    #[test]
    fn ec_keys_are_points_on_p256() {
        let good = ec_jwk(&ec_signer(0x11));
        assert!(DeviceKey::from_jwk(&good).is_ok());
        let x = part(good["x"].as_str().unwrap()).unwrap();
        let y = part(good["y"].as_str().unwrap()).unwrap();
        let mut off_curve = y.clone();
        off_curve[31] ^= 1;
        let with = |member: &str, value: Value| {
            let mut jwk = good.clone();
            jwk[member] = value;
            jwk
        };
        let without = |member: &str| {
            let mut jwk = good.clone();
            jwk.as_object_mut().unwrap().remove(member);
            jwk
        };
        let refused = [
            with("y", json!(b64(&off_curve))),
            with("x", json!(b64([0; 32]))),
            with("y", json!(b64([0; 32]))),
            with("x", json!(b64([0xff; 32]))),
            with("x", json!(b64(&x[1..]))),
            with("x", json!(b64([&[0][..], &x].concat()))),
            with("y", json!(b64([y.as_slice(), &[0]].concat()))),
            with("x", json!(STANDARD.encode(&x))),
            with("x", json!(1)),
            with("crv", json!("P-384")),
            with("crv", json!("secp256k1")),
            with("kty", json!("OKP")),
            with("kty", json!("oct")),
            with("kty", json!("ec")),
            with("d", json!(b64([0x11; 32]))),
            without("x"),
            without("y"),
            without("crv"),
            without("kty"),
            json!([good.clone()]),
            json!(good.to_string()),
            json!(null),
        ];
        for jwk in refused {
            let refused = DeviceKey::from_jwk(&jwk).unwrap_err();
            assert!(matches!(refused, ProofError::Key(_)), "{jwk}: {refused:?}");
        }
        // In a registration proof, the same refusal.
        let jwt = sign_es(
            &ec_signer(0x11),
            &registration_header("ES256", with("y", json!(b64(&off_curve)))),
            &registration_claims(),
        );
        assert!(matches!(verify_registration(&jwt), Err(ProofError::Key(_))));
    }

    #[test]
    fn debug_output_hides_keys_and_authorization() {
        assert_eq!(format!("{:?}", es_key()), "DeviceKey(\"ES256\")");
        let (_, claims) = verify_registration(&es_registration()).unwrap();
        let shown = format!("{claims:?}");
        assert!(
            shown.contains("challenge-1") && !shown.contains("\"ac\""),
            "{shown}"
        );
    }

    /// Every change of one byte, for the properties below.
    fn flipped(jwt: &str, at: usize, mask: u8) -> Option<String> {
        let mut bytes = jwt.as_bytes().to_vec();
        let at = at % bytes.len();
        bytes[at] ^= mask;
        String::from_utf8(bytes).ok()
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_verifies(text in ".{0,600}") {
            prop_assert!(verify_registration(&text).is_err());
            prop_assert!(verify_refresh(&text, &es_key()).is_err());
            prop_assert!(verify_refresh(&text, &rs_key()).is_err());
            let _ = DeviceKey::from_stored(&text);
        }

        #[test]
        fn arbitrary_compact_forms_never_verify(
            header in "[A-Za-z0-9_-]{0,120}",
            payload in "[A-Za-z0-9_-]{0,120}",
            signature in "[A-Za-z0-9_-]{0,400}",
        ) {
            let jwt = format!("{header}.{payload}.{signature}");
            prop_assert!(verify_registration(&jwt).is_err());
            prop_assert!(verify_refresh(&jwt, &es_key()).is_err());
            prop_assert!(verify_refresh(&jwt, &rs_key()).is_err());
        }

        #[test]
        fn well_formed_proofs_with_arbitrary_signatures_never_verify(
            alg in prop::sample::select(vec!["ES256", "RS256", "none", "HS256"]),
            jti in "[ -~]{1,40}",
            signature in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let jwk = if alg == "RS256" {
                rsa_jwk(&rsa_signer().to_public_key())
            } else {
                ec_jwk(&ec_signer(0x11))
            };
            let payload = json!({"jti": jti});
            let jwt = unsigned(&registration_header(alg, jwk), &payload, &signature);
            prop_assert!(verify_registration(&jwt).is_err());
            let jwt = unsigned(&refresh_header(alg), &payload, &signature);
            prop_assert!(verify_refresh(&jwt, &es_key()).is_err());
            prop_assert!(verify_refresh(&jwt, &rs_key()).is_err());
        }

        #[test]
        fn arbitrary_jwks_never_panic(
            kty in prop::sample::select(vec!["EC", "RSA", "oct"]),
            crv in prop::sample::select(vec!["P-256", "P-384"]),
            x in prop::collection::vec(any::<u8>(), 0..40),
            y in prop::collection::vec(any::<u8>(), 0..40),
            n in prop::collection::vec(any::<u8>(), 0..600),
            e in prop::collection::vec(any::<u8>(), 0..10),
        ) {
            let jwk = json!({
                "kty": kty, "crv": crv, "x": b64(&x), "y": b64(&y), "n": b64(&n), "e": b64(&e),
            });
            if let Ok(key) = DeviceKey::from_jwk(&jwk) {
                prop_assert_eq!(DeviceKey::from_stored(&key.to_stored()), Ok(key));
            }
        }

        #[test]
        fn any_changed_byte_of_a_valid_proof_is_refused(
            at in 0_usize..2000,
            mask in 1_u8..=255,
        ) {
            if let Some(jwt) = flipped(&es_registration(), at, mask) {
                prop_assert!(verify_registration(&jwt).is_err());
            }
            if let Some(jwt) = flipped(&es_refresh(), at, mask) {
                prop_assert!(verify_refresh(&jwt, &es_key()).is_err());
            }
            if let Some(jwt) = flipped(rs_registration(), at, mask) {
                prop_assert!(verify_registration(&jwt).is_err());
            }
            if let Some(jwt) = flipped(rs_refresh(), at, mask) {
                prop_assert!(verify_refresh(&jwt, &rs_key()).is_err());
            }
        }

        #[test]
        fn any_cut_or_addition_is_refused(cut in 0_usize..2000, extra in "[A-Za-z0-9_.-]{1,4}") {
            for (jwt, key) in [(es_refresh(), es_key()), (rs_refresh().to_owned(), rs_key())] {
                let shorter = &jwt[..cut % jwt.len()];
                prop_assert!(verify_refresh(shorter, &key).is_err());
                let longer = format!("{jwt}{extra}");
                prop_assert!(verify_refresh(&longer, &key).is_err());
                let longer = format!("{extra}{jwt}");
                prop_assert!(verify_refresh(&longer, &key).is_err());
            }
        }
    }
}
