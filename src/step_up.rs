//! Routes that ask for a given factor, proved recently: a passkey before
//! the account is deleted, say.

use std::{marker::PhantomData, time::Duration};

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{
    backend::SessionUser,
    credential::Factor,
    extract::{confirm_location, proving_user},
    rejection::AuthRejection,
    times::millis,
};

/// What a [`RecentFactor`] route asks for: one of [`FACTORS`](Self::FACTORS),
/// proved within [`WINDOW`](Self::WINDOW).
///
/// ```
/// use std::time::Duration;
/// use tower_sessions_auth::{credential::Factor, step_up::FactorPolicy};
///
/// /// A one-time password within the last two minutes.
/// struct FreshOtp;
///
/// impl FactorPolicy for FreshOtp {
///     const FACTORS: &'static [Factor] = &[Factor::OTP];
///     const WINDOW: Option<Duration> = Some(Duration::from_secs(120));
/// }
/// ```
pub trait FactorPolicy: Send + Sync + 'static {
    /// The factors any one of which satisfies the route.
    const FACTORS: &'static [Factor];
    /// How recently: `None` for the layer's re-authentication window
    /// ([`ReauthPolicy`](crate::times::ReauthPolicy), default 10 minutes).
    const WINDOW: Option<Duration> = None;
}

/// A passkey (hardware- or software-bound key), within the layer's
/// re-authentication window.
#[derive(Debug, Clone, Copy)]
pub struct Passkey;

impl FactorPolicy for Passkey {
    const FACTORS: &'static [Factor] = &[Factor::HWK, Factor::SWK];
}

/// The signed-in user, who proved one of the factors of `P` recently:
/// [`RecentAuth`](crate::RecentAuth) for one kind of proof (ASVS 5.0
/// 7.5.3, re-authentication with a specific factor before a sensitive
/// change).
///
/// Outside the window, or when the session never proved such a factor:
///
/// - a **browser** (as [`RecentAuth`](crate::RecentAuth) tells one) is
///   sent (`303 See Other`) to the confirmation URL of the layer's
///   [`ReauthPolicy`](crate::times::ReauthPolicy) (default: the login
///   URL), with `next` and `factors` (the names, comma-separated:
///   `factors=hwk%2Cswk`) in the query, so that the page offers the right
///   proof;
/// - any other client gets `403 Forbidden` with the JSON body
///   `{"error":"factor required","factors":["hwk","swk"]}`
///   ([`AuthRejection::FactorRequired`]).
///
/// Proving the factor is [`AuthSession::reauthenticate_with`](crate::AuthSession::reauthenticate_with)
/// and its [`SignIn::factors`](crate::SignIn::factors): the session id
/// changes, the session stays.
///
/// ```
/// # #[derive(Clone)] struct User;
/// # impl tower_sessions_auth::SessionUser for User {
/// #     type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"$argon2id$..." } }
/// use tower_sessions_auth::step_up::{Passkey, RecentFactor};
///
/// async fn delete_account(RecentFactor(user, _): RecentFactor<User, Passkey>) -> &'static str {
///     // A passkey was used within the window.
///     "deleted"
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RecentFactor<U, P>(pub U, pub PhantomData<P>);

impl<U, P, S> FromRequestParts<S> for RecentFactor<U, P>
where
    U: SessionUser,
    P: FactorPolicy,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (user, checked, browser) = proving_user::<U>(parts)?;
        let context = &checked.context;
        let window = P::WINDOW.map_or_else(|| context.times.reauth_window_ms(), millis);
        let now = context.times.clock.now_ms();
        let recent = checked.claim.as_ref().is_some_and(|claim| {
            claim.proofs().any(|proof| {
                P::FACTORS.contains(&proof.factor) && now < proof.at.saturating_add(window)
            })
        });
        if recent {
            return Ok(Self(user, PhantomData));
        }
        let factors = P::FACTORS.to_vec();
        if !browser {
            return Err(AuthRejection::FactorRequired { factors });
        }
        let names: Vec<&str> = factors.iter().map(|factor| factor.as_str()).collect();
        let query = serde_urlencoded::to_string([("factors", names.join(","))]).unwrap_or_default();
        Err(AuthRejection::ReauthRedirect {
            location: format!("{}&{query}", confirm_location(checked, parts)),
        })
    }
}
