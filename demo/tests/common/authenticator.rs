//! A software WebAuthn authenticator for the passkey tests: a "virtual
//! passkey" that answers the demo's creation and request options as a
//! browser's `navigator.credentials.create` and `.get` would, with ES256
//! keys held in memory. No browser, no CTAP: the JSON goes straight to the
//! demo's finish routes. (The browser tests use Chromium's own virtual
//! authenticator instead, through WebDriver: `virtual_authenticator.rs`.)
//!
//! What it makes (WebAuthn Level 3, §6.1 and §6.5; RFC 9052/9053 for COSE):
//! - Registration, attestation format `none`: an attestation object, the
//!   CBOR map `{"fmt": "none", "attStmt": {}, "authData": bytes}`, whose
//!   authenticator data is SHA-256(rp id) | flags | sign count (u32, big
//!   endian) | AAGUID (16 zero bytes) | credential id length (u16, big
//!   endian) | credential id | COSE key `{1: 2, 3: -7, -1: 1, -2: x, -3: y}`.
//! - Authentication: authenticator data SHA-256(rp id) | flags | sign count,
//!   and a DER-encoded ECDSA P-256 signature with SHA-256 over the
//!   authenticator data followed by SHA-256(clientDataJSON).
//! - `clientDataJSON`: `{"type", "challenge", "origin", "crossOrigin"}` in
//!   that order, as browsers write it, the challenge as the options sent it.
//!
//! Every binary field of the JSON is base64url without padding, the form of
//! webauthn-rs-proto's `RegisterPublicKeyCredential` and
//! `PublicKeyCredential`. Credentials are discoverable: kept with their rp
//! id and the user handle they were made for, so that a sign-in needs no
//! username. The sign count stays 0 (the demo accepts it, and a synced
//! passkey reports 0 too).

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ciborium::Value as Cbor;
use p256::ecdsa::{signature::Signer as _, DerSignature, SigningKey, VerifyingKey};
use rand::RngCore as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// Authenticator data flag: the user was present.
pub const UP: u8 = 0x01;
/// Authenticator data flag: the user was verified (PIN, biometrics).
pub const UV: u8 = 0x04;
/// Authenticator data flag: the credential may be backed up (synced).
pub const BE: u8 = 0x08;
/// Authenticator data flag: the credential is backed up.
pub const BS: u8 = 0x10;
/// Authenticator data flag: attested credential data follows.
pub const AT: u8 = 0x40;

/// Length of the rp id hash, the flags and the sign count.
pub const AUTH_DATA_HEADER: usize = 32 + 1 + 4;

/// The origin a tampered `clientDataJSON` names.
pub const FOREIGN_ORIGIN: &str = "http://evil.example";

/// `bytes` as base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The bytes of base64url `text` without padding.
pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|err| panic!("not base64url without padding: {text:?}: {err}"))
}

/// Whether a credential may be synced: what the server reports as `hwk`
/// (bound to this device) or `swk` (a synced passkey).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backup {
    /// BE and BS clear: a device-bound key.
    DeviceBound,
    /// BE and BS set: a synced passkey, backed up.
    Synced,
}

impl Backup {
    fn flags(self) -> u8 {
        match self {
            Self::DeviceBound => 0,
            Self::Synced => BE | BS,
        }
    }
}

/// A deliberate fault in an answer, for the tests of what the server
/// refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// An assertion signed over other bytes: a well-formed signature that
    /// does not verify.
    Signature,
    /// `clientDataJSON` carries a challenge the server did not send.
    Challenge,
    /// `clientDataJSON` names [`FOREIGN_ORIGIN`].
    Origin,
    /// The UV flag clear: the user was present but not verified.
    NoUserVerification,
}

/// One discoverable credential.
#[derive(Clone)]
pub struct Credential {
    id: Vec<u8>,
    rp_id: String,
    user_handle: Vec<u8>,
    key: SigningKey,
    backup: Backup,
}

impl Credential {
    /// The credential id as the JSON's `id` carries it: base64url without
    /// padding (the demo's passkey id).
    pub fn id(&self) -> String {
        b64(&self.id)
    }

    /// The user handle (`user.id` of the creation options) it answers
    /// with.
    pub fn user_handle(&self) -> &[u8] {
        &self.user_handle
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    pub fn backup(&self) -> Backup {
        self.backup
    }

    /// The public key, for checking a signature in the authenticator's own
    /// tests.
    pub fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// SHA-256(rp id) | flags | sign count 0.
    fn authenticator_data(&self, flags: u8) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&0_u32.to_be_bytes());
        data
    }
}

/// A virtual authenticator in a browser at `origin`. Clone it to carry the
/// same passkeys to another browser (as a synced passkey is).
#[derive(Clone)]
pub struct Authenticator {
    origin: String,
    credentials: Vec<Credential>,
}

impl Authenticator {
    /// An authenticator with no credentials, in a page of `origin` (such
    /// as `http://localhost:8080`).
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            credentials: Vec::new(),
        }
    }

    /// The credentials it holds, oldest first.
    pub fn credentials(&self) -> &[Credential] {
        &self.credentials
    }

    /// The credential with this id (base64url).
    pub fn credential(&self, id: &str) -> &Credential {
        self.credentials
            .iter()
            .find(|credential| credential.id() == id)
            .unwrap_or_else(|| panic!("the authenticator holds no credential {id}"))
    }

    /// Forgets the credential `id`, as a user who deletes it from the
    /// device.
    pub fn forget(&mut self, id: &str) {
        self.credentials.retain(|credential| credential.id() != id);
    }

    /// `navigator.credentials.create(options)` with a new device-bound key:
    /// the registration credential as JSON.
    pub fn create(&mut self, options: &Value) -> Value {
        self.create_with(options, Backup::DeviceBound, None)
    }

    /// [`Authenticator::create`] with the backup flags of `backup`, and
    /// `tamper` applied. A tampered registration is not kept. Panics when
    /// the options offer no ES256, or `tamper` is [`Tamper::Signature`]
    /// (attestation `none` carries no signature).
    pub fn create_with(
        &mut self,
        options: &Value,
        backup: Backup,
        tamper: Option<Tamper>,
    ) -> Value {
        assert_ne!(
            tamper,
            Some(Tamper::Signature),
            "attestation none signs nothing"
        );
        let options = public_key(options);
        let offers_es256 = options["pubKeyCredParams"]
            .as_array()
            .is_some_and(|params| params.iter().any(|param| param["alg"] == -7));
        assert!(
            offers_es256,
            "the creation options offer no ES256: {options}"
        );
        let credential = Credential {
            id: random_bytes(32),
            rp_id: field(options, "/rp/id").to_owned(),
            user_handle: unb64(field(options, "/user/id")),
            key: new_key(),
            backup,
        };
        let client_data = self.client_data("webauthn.create", field(options, "/challenge"), tamper);

        let mut auth_data = credential.authenticator_data(flags(backup, tamper) | AT);
        auth_data.extend_from_slice(&[0; 16]);
        let id_len = u16::try_from(credential.id.len()).unwrap();
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&credential.id);
        auth_data.extend_from_slice(&cose_key(credential.key.verifying_key()));
        let attestation_object = to_cbor(&Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(Vec::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));

        let id = credential.id();
        if tamper.is_none() {
            self.credentials.push(credential);
        }
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation_object),
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get(options)` answered by the newest
    /// credential of the options' rp id: the assertion as JSON.
    pub fn get(&self, options: &Value) -> Value {
        let rp_id = field(public_key(options), "/rpId");
        let newest = self
            .credentials
            .iter()
            .rev()
            .find(|credential| credential.rp_id == rp_id)
            .unwrap_or_else(|| panic!("no credential for the rp id {rp_id:?}"));
        self.get_with(options, &newest.id(), None)
    }

    /// `navigator.credentials.get(options)` answered by the credential `id`
    /// (the user's choice among the passkeys offered), with `tamper`
    /// applied. Panics when that credential is of another rp id, or the
    /// options allow only other credentials: a real authenticator would not
    /// offer it.
    pub fn get_with(&self, options: &Value, id: &str, tamper: Option<Tamper>) -> Value {
        let options = public_key(options);
        let credential = self.credential(id);
        assert_eq!(
            field(options, "/rpId"),
            credential.rp_id,
            "the credential is of another rp id"
        );
        if let Some(allowed) = options["allowCredentials"].as_array() {
            assert!(
                allowed.is_empty() || allowed.iter().any(|allowed| allowed["id"] == id),
                "the options do not allow the credential {id}: {options}"
            );
        }
        let client_data = self.client_data("webauthn.get", field(options, "/challenge"), tamper);
        let auth_data = credential.authenticator_data(flags(credential.backup, tamper));

        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        if tamper == Some(Tamper::Signature) {
            signed.push(0);
        }
        let signature: DerSignature = credential.key.sign(&signed);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.as_bytes()),
                "userHandle": b64(&credential.user_handle),
            },
            "extensions": {},
        })
    }

    /// The `clientDataJSON` bytes for a ceremony of `kind`.
    fn client_data(&self, kind: &str, challenge: &str, tamper: Option<Tamper>) -> Vec<u8> {
        let other_challenge;
        let challenge = if tamper == Some(Tamper::Challenge) {
            other_challenge = b64(&random_bytes(32));
            &other_challenge
        } else {
            challenge
        };
        let origin = if tamper == Some(Tamper::Origin) {
            FOREIGN_ORIGIN
        } else {
            &self.origin
        };
        let quoted = |text: &str| serde_json::to_string(text).unwrap();
        format!(
            r#"{{"type":{},"challenge":{},"origin":{},"crossOrigin":false}}"#,
            quoted(kind),
            quoted(challenge),
            quoted(origin),
        )
        .into_bytes()
    }
}

/// The flags of an answer: UP and UV (the contract requires both), the
/// backup flags, less UV for [`Tamper::NoUserVerification`].
fn flags(backup: Backup, tamper: Option<Tamper>) -> u8 {
    let verified = if tamper == Some(Tamper::NoUserVerification) {
        0
    } else {
        UV
    };
    UP | verified | backup.flags()
}

/// The `publicKey` member of creation or request options.
fn public_key(options: &Value) -> &Value {
    let inner = &options["publicKey"];
    assert!(inner.is_object(), "no publicKey in the options: {options}");
    inner
}

/// The string at `pointer` in `value`.
fn field<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// A new P-256 key. (32 random bytes are a valid scalar but for a chance
/// of about 2^-32; drawn again then.)
fn new_key() -> SigningKey {
    loop {
        if let Ok(key) = SigningKey::from_slice(&random_bytes(32)) {
            return key;
        }
    }
}

/// The COSE_Key of `key`: EC2 (kty 2), ES256 (alg -7), P-256 (crv 1), and
/// the coordinates, in CTAP2's canonical key order.
fn cose_key(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_sec1_point(false);
    // Uncompressed SEC1: 0x04 | x | y.
    let (x, y) = point.as_bytes()[1..].split_at(32);
    let int = |n: i64| Cbor::Integer(n.into());
    to_cbor(&Cbor::Map(vec![
        (int(1), int(2)),
        (int(3), int(-7)),
        (int(-1), int(1)),
        (int(-2), Cbor::Bytes(x.to_vec())),
        (int(-3), Cbor::Bytes(y.to_vec())),
    ]))
}

fn to_cbor(value: &Cbor) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).unwrap();
    bytes
}
