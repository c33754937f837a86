//! Passkeys in a browser driven by WebDriver, without a person or a
//! security key: the WebAuthn extension of the WebDriver specification
//! (<https://w3c.github.io/webauthn/#sctn-automation>), which chromedriver
//! implements. A virtual authenticator added to a WebDriver session answers
//! that browser's `navigator.credentials.create` and `.get` at once, as a
//! platform authenticator or a security key whose user is present and
//! verified.
//!
//! fantoccini has no methods for these endpoints; it sends them as custom
//! commands ([`WebDriverCompatibleCommand`] through `Client::issue_cmd`).
//!
//! A test moves a passkey from one browser to another as the specification
//! allows: it reads the credential, private key included, from the first
//! browser's authenticator and adds it to one in the second.

use std::{fmt, str::FromStr};

use fantoccini::{error::CmdError, wd::WebDriverCompatibleCommand, Client};
// fantoccini's command trait is written with `http::Method` and `url::Url`;
// reqwest re-exports the same two types (http 1, url 2), so the tests need
// no dependency of their own for them.
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `url::ParseError`, named through the `Url` that reqwest re-exports.
type UrlError = <Url as FromStr>::Err;

/// A virtual authenticator in one browser (one WebDriver session): a CTAP2
/// authenticator that keeps discoverable credentials and verifies its user,
/// who always consents. It lives until removed, or as long as the WebDriver
/// session.
pub struct VirtualAuthenticator {
    client: Client,
    id: String,
}

/// How an authenticator is attached to the browser.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    /// Built into the device: a platform authenticator (`internal`).
    Platform,
    /// A security key plugged in over USB (`usb`).
    SecurityKey,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::Platform => "internal",
            Self::SecurityKey => "usb",
        }
    }
}

/// A credential held by a virtual authenticator, as the WebDriver
/// extension reads and writes it; binary fields in base64url without
/// padding.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// The credential id: the `id` of the `PublicKeyCredential` the
    /// browser returns for it.
    pub credential_id: String,
    /// Whether it is a discoverable credential (a passkey).
    pub is_resident_credential: bool,
    /// The relying party it belongs to (`localhost` for the tests).
    pub rp_id: String,
    /// The private key, PKCS #8: whoever holds it can sign in with the
    /// credential. Never printed.
    pub private_key: String,
    /// The user handle the relying party gave at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<String>,
    /// The signature counter.
    pub sign_count: u32,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("credential_id", &self.credential_id)
            .field("is_resident_credential", &self.is_resident_credential)
            .field("rp_id", &self.rp_id)
            .field("private_key", &"[redacted]")
            .field("user_handle", &self.user_handle)
            .field("sign_count", &self.sign_count)
            .finish()
    }
}

impl VirtualAuthenticator {
    /// Adds a virtual authenticator attached by `transport` to the browser
    /// of `client`. From then on it answers that browser's WebAuthn
    /// ceremonies. With several, Chromium leaves out one that holds a
    /// credential the relying party excludes (`excludeCredentials`) when
    /// registering, and asks one that holds a matching credential when
    /// signing in.
    pub async fn add(client: &Client, transport: Transport) -> Result<Self, CmdError> {
        let id = client
            .issue_cmd(WebAuthn::AddAuthenticator(transport))
            .await?;
        match id {
            Value::String(id) => Ok(Self {
                client: client.clone(),
                id,
            }),
            other => Err(CmdError::NotW3C(other)),
        }
    }

    /// The credentials it holds, each with its private key.
    pub async fn credentials(&self) -> Result<Vec<Credential>, CmdError> {
        let list = self
            .client
            .issue_cmd(WebAuthn::Credentials(self.id.clone()))
            .await?;
        serde_json::from_value(list.clone()).map_err(|_| CmdError::NotW3C(list))
    }

    /// Adds `credential`, such as one read from another browser's
    /// authenticator: then this browser can sign in with it too.
    pub async fn add_credential(&self, credential: &Credential) -> Result<(), CmdError> {
        let body = serde_json::to_value(credential)?;
        self.client
            .issue_cmd(WebAuthn::AddCredential(self.id.clone(), body))
            .await?;
        Ok(())
    }

    /// Removes it from the browser, with its credentials: a security key
    /// unplugged.
    pub async fn remove(self) -> Result<(), CmdError> {
        let command = WebAuthn::RemoveAuthenticator(self.id);
        self.client.issue_cmd(command).await?;
        Ok(())
    }

    /// Whether its user verification (the fingerprint or PIN) succeeds from
    /// now on; a ceremony that requires it fails with a `NotAllowedError`
    /// when it does not.
    pub async fn set_user_verified(&self, verified: bool) -> Result<(), CmdError> {
        let command = WebAuthn::SetUserVerified(self.id.clone(), verified);
        self.client.issue_cmd(command).await?;
        Ok(())
    }
}

/// The extension's commands, each with the authenticator id it is for.
#[derive(Debug)]
enum WebAuthn {
    /// `POST /session/{session id}/webauthn/authenticator`
    AddAuthenticator(Transport),
    /// `DELETE …/webauthn/authenticator/{authenticator id}`
    RemoveAuthenticator(String),
    /// `GET …/webauthn/authenticator/{authenticator id}/credentials`
    Credentials(String),
    /// `POST …/webauthn/authenticator/{authenticator id}/credential`
    AddCredential(String, Value),
    /// `POST …/webauthn/authenticator/{authenticator id}/uv`
    SetUserVerified(String, bool),
}

impl WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(&self, base_url: &Url, session_id: Option<&str>) -> Result<Url, UrlError> {
        // A connected client always has a session; without one the request
        // goes to a path the driver answers with an error.
        let session = session_id.unwrap_or_default();
        let authenticators = format!("session/{session}/webauthn/authenticator");
        let path = match self {
            Self::AddAuthenticator(_) => authenticators,
            Self::RemoveAuthenticator(id) => format!("{authenticators}/{id}"),
            Self::Credentials(id) => format!("{authenticators}/{id}/credentials"),
            Self::AddCredential(id, _) => format!("{authenticators}/{id}/credential"),
            Self::SetUserVerified(id, _) => format!("{authenticators}/{id}/uv"),
        };
        base_url.join(&path)
    }

    fn method_and_body(&self, _request_url: &Url) -> (Method, Option<String>) {
        match self {
            Self::AddAuthenticator(transport) => {
                let options = json!({
                    "protocol": "ctap2",
                    "transport": transport.name(),
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "isUserConsenting": true,
                });
                (Method::POST, Some(options.to_string()))
            }
            Self::Credentials(_) => (Method::GET, None),
            Self::AddCredential(_, credential) => (Method::POST, Some(credential.to_string())),
            Self::RemoveAuthenticator(_) => (Method::DELETE, None),
            Self::SetUserVerified(_, verified) => {
                let body = json!({ "isUserVerified": verified });
                (Method::POST, Some(body.to_string()))
            }
        }
    }
}
