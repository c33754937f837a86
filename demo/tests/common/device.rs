//! A device with Device Bound Session Credentials (DBSC) for the demo's
//! protocol tests: what a browser with DBSC does on the wire, with an ES256
//! key held in memory. No browser, no TPM.
//!
//! What it makes and reads (W3C WebAppSec DBSC editor's draft, "DBSC
//! Formats"; RFC 7515/7518 for JWS; RFC 9651 for structured fields):
//! - Proofs: compact JWS, every part base64url without padding. The header
//!   is `{"alg": "ES256", "typ": "dbsc+jwt"}`, with the public key as a JWK
//!   (`{"kty": "EC", "crv": "P-256", "x", "y"}`) in a registration proof
//!   and without it in a refresh proof; the payload is `{"jti": <the
//!   challenge>}`. The signature is ECDSA P-256 with SHA-256 over
//!   `header.payload`, as the raw 64 bytes `r || s` (not DER).
//! - `Secure-Session-Response` and `Sec-Secure-Session-Id` values: an
//!   sf-string, `"…"` with `\` and `"` escaped.
//! - `Secure-Session-Registration`: an sf-list of inner lists of algorithm
//!   tokens with the parameters `path`, `challenge` (and `authorization`),
//!   `(ES256 RS256);path="/dbsc/register";challenge="…"`.
//! - `Secure-Session-Challenge`: an sf-list of strings with the parameter
//!   `id`, `"challenge";id="session identifier"`.
//!
//! For the refusals, it also makes what a careless or hostile client would:
//! unsigned (`alg: none`) and `HS256` tokens, DER signatures, any header
//! and payload.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, KeyInit as _, Mac as _};
use p256::ecdsa::{signature::Signer as _, DerSignature, Signature, SigningKey, VerifyingKey};
use rand::RngCore as _;
use serde_json::{json, Value};
use sha2::Sha256;

/// The `typ` of a DBSC proof.
pub const TYP: &str = "dbsc+jwt";

/// `bytes` as base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The bytes of base64url `text` without padding, `None` if it is not.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// What a JWS signs: `b64(header) "." b64(payload)`, each the compact
/// JSON text of the value.
pub fn signing_input(header: &Value, payload: &Value) -> String {
    let header = serde_json::to_vec(header).unwrap();
    let payload = serde_json::to_vec(payload).unwrap();
    format!("{}.{}", b64(&header), b64(&payload))
}

/// An unsecured JWS (`alg: none`, RFC 7515 §A.5): the signing input and an
/// empty signature.
pub fn unsigned(header: &Value, payload: &Value) -> String {
    format!("{}.", signing_input(header, payload))
}

/// A JWS "signed" with HMAC-SHA256 under `secret`, whatever `header` says.
pub fn hs256(secret: &[u8], header: &Value, payload: &Value) -> String {
    let input = signing_input(header, payload);
    let mac = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64(&mac))
}

/// HMAC-SHA256 of `data` under `secret` (RFC 2104).
pub fn hmac_sha256(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The three parts of a compact JWS: header and payload as JSON, and the
/// signature's bytes; `None` when `jwt` is not that.
pub fn decode(jwt: &str) -> Option<(Value, Value, Vec<u8>)> {
    let mut parts = jwt.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((
        serde_json::from_slice(&unb64(header)?).ok()?,
        serde_json::from_slice(&unb64(payload)?).ok()?,
        unb64(signature)?,
    ))
}

/// Whether `jwt` carries an ES256 signature (raw `r || s`) by `key` over
/// its first two parts, as they are written.
pub fn verifies(jwt: &str, key: &VerifyingKey) -> bool {
    use p256::ecdsa::signature::Verifier as _;
    let Some((input, signature)) = jwt.rsplit_once('.') else {
        return false;
    };
    let Some(signature) = unb64(signature).and_then(|raw| Signature::from_slice(&raw).ok()) else {
        return false;
    };
    key.verify(input.as_bytes(), &signature).is_ok()
}

/// A device: its P-256 key pair.
pub struct Device {
    key: SigningKey,
}

impl Device {
    /// A device with a new random key.
    pub fn new() -> Self {
        // 32 random bytes are a valid scalar but for a chance of about
        // 2^-32 (zero, or not below the group order): draw again then.
        loop {
            let mut bytes = [0_u8; 32];
            rand::thread_rng().fill_bytes(&mut bytes);
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Self { key };
            }
        }
    }

    /// A device with the private key `key`.
    pub fn with_key(key: SigningKey) -> Self {
        Self { key }
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as SEC1 bytes, uncompressed: `04 || x || y`.
    pub fn sec1(&self) -> Vec<u8> {
        self.verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The public key as a JWK (RFC 7518 §6.2.1): the coordinates as 32
    /// bytes each, base64url.
    pub fn jwk(&self) -> Value {
        let sec1 = self.sec1();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(&sec1[1..33]),
            "y": b64(&sec1[33..65]),
        })
    }

    /// The header of this device's registration proof.
    pub fn registration_header(&self) -> Value {
        json!({ "alg": "ES256", "typ": TYP, "jwk": self.jwk() })
    }

    /// The registration proof for `challenge`.
    pub fn registration_proof(&self, challenge: &str) -> String {
        self.sign(&self.registration_header(), &json!({ "jti": challenge }))
    }

    /// The refresh proof for `challenge`: no key in its header.
    pub fn refresh_proof(&self, challenge: &str) -> String {
        self.sign(
            &json!({ "alg": "ES256", "typ": TYP }),
            &json!({ "jti": challenge }),
        )
    }

    /// `header` and `payload`, whatever they say, signed as ES256 is: the
    /// raw `r || s`.
    pub fn sign(&self, header: &Value, payload: &Value) -> String {
        let input = signing_input(header, payload);
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }

    /// [`Device::sign`] with the signature DER-encoded, as X.509 and
    /// WebAuthn carry it but JWS does not.
    pub fn sign_der(&self, header: &Value, payload: &Value) -> String {
        let input = signing_input(header, payload);
        let signature: DerSignature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.as_bytes()))
    }
}

/// `text` as an sf-string (RFC 9651 §4.1.6): in double quotes, with `\`
/// and `"` escaped; `None` when it holds a character an sf-string cannot
/// (outside printable ASCII).
pub fn sf_string(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if !(' '..='~').contains(&c) {
            return None;
        }
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// A bare item of a structured field, of the kinds DBSC uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bare {
    Integer(i64),
    String(String),
    Token(String),
    Boolean(bool),
}

/// An item's or inner list's parameters, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Bare)>);

impl Params {
    /// The value of `key`; the last one when it repeats, as RFC 9651 says.
    pub fn get(&self, key: &str) -> Option<&Bare> {
        self.0
            .iter()
            .rev()
            .find_map(|(name, value)| (name == key).then_some(value))
    }

    /// The value of `key` when it is a string.
    pub fn string(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Bare::String(text) => Some(text.as_str()),
            _ => None,
        }
    }
}

/// A member of an sf-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Item(Bare, Params),
    InnerList(Vec<(Bare, Params)>, Params),
}

/// Parses `text` as an sf-list (RFC 9651 §4.2.1) of integers, strings,
/// tokens and booleans (no decimals, byte sequences, dates or display
/// strings): the error says where it stopped.
pub fn parse_list(text: &str) -> Result<Vec<Member>, String> {
    let mut parser = Parser::new(text);
    let mut members = Vec::new();
    while !parser.at_end() {
        members.push(parser.member()?);
        parser.skip_ows();
        if parser.at_end() {
            break;
        }
        parser.expect(b',')?;
        parser.skip_ows();
        if parser.at_end() {
            return Err(parser.error("a member after the last comma"));
        }
    }
    Ok(members)
}

/// Parses `text` as an sf-item (RFC 9651 §4.2.3).
pub fn parse_item(text: &str) -> Result<(Bare, Params), String> {
    let mut parser = Parser::new(text);
    let bare = parser.bare_item()?;
    let params = parser.params()?;
    if !parser.at_end() {
        return Err(parser.error("the end of the item"));
    }
    Ok((bare, params))
}

struct Parser<'t> {
    text: &'t [u8],
    at: usize,
}

impl<'t> Parser<'t> {
    /// Leading and trailing spaces are not part of a field (§4.2).
    fn new(text: &'t str) -> Self {
        Self {
            text: text.trim_matches(' ').as_bytes(),
            at: 0,
        }
    }

    fn error(&self, expected: &str) -> String {
        format!(
            "expected {expected} at byte {} of {:?}",
            self.at,
            String::from_utf8_lossy(self.text)
        )
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at == self.text.len()
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("{:?}", char::from(byte))))
        }
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn member(&mut self) -> Result<Member, String> {
        if self.peek() != Some(b'(') {
            let bare = self.bare_item()?;
            return Ok(Member::Item(bare, self.params()?));
        }
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_sp();
            if self.peek() == Some(b')') {
                self.at += 1;
                return Ok(Member::InnerList(items, self.params()?));
            }
            let bare = self.bare_item()?;
            items.push((bare, self.params()?));
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return Err(self.error("a space or ')' after an inner list's item"));
            }
        }
    }

    fn params(&mut self) -> Result<Params, String> {
        let mut params = Params::default();
        while self.peek() == Some(b';') {
            self.at += 1;
            self.skip_sp();
            let key = self.key()?;
            let value = if self.peek() == Some(b'=') {
                self.at += 1;
                self.bare_item()?
            } else {
                Bare::Boolean(true)
            };
            params.0.push((key, value));
        }
        Ok(params)
    }

    fn key(&mut self) -> Result<String, String> {
        let start = self.at;
        match self.peek() {
            Some(b'a'..=b'z' | b'*') => self.at += 1,
            _ => return Err(self.error("a key")),
        }
        while let Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*') = self.peek() {
            self.at += 1;
        }
        Ok(String::from_utf8(self.text[start..self.at].to_vec()).unwrap())
    }

    fn bare_item(&mut self) -> Result<Bare, String> {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'?') => {
                self.at += 1;
                let value = match self.peek() {
                    Some(b'0') => false,
                    Some(b'1') => true,
                    _ => return Err(self.error("0 or 1 after '?'")),
                };
                self.at += 1;
                Ok(Bare::Boolean(value))
            }
            Some(b'-' | b'0'..=b'9') => self.integer(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'*') => Ok(self.token()),
            _ => Err(self.error("an integer, a string, a token or a boolean")),
        }
    }

    fn string(&mut self) -> Result<Bare, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Bare::String(out));
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(byte @ (b'"' | b'\\')) => out.push(char::from(byte)),
                        _ => return Err(self.error("'\"' or '\\' after '\\' in a string")),
                    }
                }
                Some(byte @ 0x20..=0x7e) => out.push(char::from(byte)),
                _ => return Err(self.error("a printable character or the closing '\"'")),
            }
            self.at += 1;
        }
    }

    fn integer(&mut self) -> Result<Bare, String> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        let count = self.at - digits;
        if count == 0 || count > 15 || self.peek() == Some(b'.') {
            return Err(self.error("an integer of 1 to 15 digits (no decimals)"));
        }
        let text = std::str::from_utf8(&self.text[start..self.at]).unwrap();
        Ok(Bare::Integer(text.parse().unwrap()))
    }

    fn token(&mut self) -> Bare {
        let start = self.at;
        self.at += 1;
        while let Some(byte) = self.peek() {
            let tchar = byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&byte);
            if !tchar {
                break;
            }
            self.at += 1;
        }
        Bare::Token(String::from_utf8(self.text[start..self.at].to_vec()).unwrap())
    }
}

/// One offer of `Secure-Session-Registration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The algorithms the server accepts, in its order.
    pub algorithms: Vec<String>,
    pub path: String,
    pub challenge: String,
    pub authorization: Option<String>,
}

/// The offers of a `Secure-Session-Registration` value: each an inner list
/// of tokens with a string `path` and a string `challenge`.
pub fn registrations(header: &str) -> Result<Vec<Registration>, String> {
    parse_list(header)?
        .into_iter()
        .map(|member| {
            let Member::InnerList(items, params) = member else {
                return Err(format!("not an inner list: {member:?}"));
            };
            let algorithms = items
                .into_iter()
                .map(|(item, _)| match item {
                    Bare::Token(name) => Ok(name),
                    other => Err(format!("an algorithm that is no token: {other:?}")),
                })
                .collect::<Result<_, _>>()?;
            let string = |key: &str| {
                params
                    .string(key)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("no string {key:?} in {params:?}"))
            };
            Ok(Registration {
                algorithms,
                path: string("path")?,
                challenge: string("challenge")?,
                authorization: params.string("authorization").map(str::to_owned),
            })
        })
        .collect()
}

/// One challenge of `Secure-Session-Challenge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub challenge: String,
    /// The session identifier it is for.
    pub id: String,
}

/// The challenges of a `Secure-Session-Challenge` value: each a string
/// with a string `id`.
pub fn challenges(header: &str) -> Result<Vec<Challenge>, String> {
    parse_list(header)?
        .into_iter()
        .map(|member| match member {
            Member::Item(Bare::String(challenge), params) => Ok(Challenge {
                challenge,
                id: params
                    .string("id")
                    .ok_or_else(|| format!("no string \"id\" in {params:?}"))?
                    .to_owned(),
            }),
            other => Err(format!("not a string with parameters: {other:?}")),
        })
        .collect()
}
