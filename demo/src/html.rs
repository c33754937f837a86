//! The browser routes: pages, forms, redirects.

use axum::{
    extract::{Query, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    Form,
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use tower_sessions_auth::{
    registry::{Revocation, SessionHandle},
    safe_next, AuthRejection, AuthSession, EndReason, LoginRequired, RecentAuth, SessionEnded,
};

use super::{
    accounts::{authenticate, check_new_password, check_username},
    activity, devices,
    error::AppError,
    pages::{self, render},
    times::SessionTimes,
    users::User,
    AppState,
};

/// A one-time message for the next page that shows notices (home and
/// sign-in), kept in the session.
#[derive(Serialize, Deserialize, Clone, Copy)]
pub(crate) enum Notice {
    Welcome,
    PasswordChanged,
    /// A first password was set on an account that had only passkeys.
    PasswordSet,
    PasskeyRemoved,
    OthersSignedOut,
    DeviceSignedOut,
    AccountDeleted,
    /// This browser's session was ended by a password change elsewhere.
    EndedByPasswordChange,
    /// ... by "Sign out other devices" elsewhere.
    EndedBySignOutElsewhere,
    /// ... because the account is gone.
    EndedAccountGone,
    /// ... from the list of signed-in devices elsewhere.
    EndedRevoked,
    /// ... because it was unused for too long, or reached its maximum age.
    EndedExpired,
    /// ... because the passkey it signed in with was removed.
    EndedPasskeyRemoved,
    /// ... for another reason (unreadable session data).
    EndedOther,
}

impl Notice {
    const KEY: &'static str = "demo.notice";

    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Welcome => "Welcome! Your account is ready.",
            Self::PasswordChanged => {
                "Password changed. Your other sessions are signed out; this one stays."
            }
            Self::PasswordSet => {
                "Password set: you can now sign in with it as well as with your passkeys. \
                 Your other sessions are signed out; this one stays."
            }
            Self::PasskeyRemoved => "Passkey removed. The sessions it signed in are signed out.",
            Self::OthersSignedOut => "Your other sessions are signed out; this one stays.",
            Self::DeviceSignedOut => "That device is signed out.",
            Self::AccountDeleted => "Your account is deleted, and all its sessions with it.",
            Self::EndedByPasswordChange => {
                "You were signed out because your password was changed on another device. \
                 Sign in with the new password."
            }
            Self::EndedBySignOutElsewhere => {
                "You were signed out because \"Sign out other devices\" was used on another \
                 device."
            }
            Self::EndedAccountGone => {
                "You were signed out because the account you were signed in to no longer exists."
            }
            Self::EndedRevoked => "You were signed out from another device.",
            Self::EndedExpired => {
                "You were signed out because this session was unused for too long, or \
                 reached its maximum age. Please sign in again."
            }
            Self::EndedPasskeyRemoved => {
                "You were signed out because the passkey this session signed in with was \
                 removed."
            }
            Self::EndedOther => "You were signed out. Please sign in again.",
        }
    }

    fn ended(reason: EndReason) -> Self {
        match reason {
            EndReason::CredentialChanged => Self::EndedByPasswordChange,
            EndReason::EpochChanged => Self::EndedBySignOutElsewhere,
            EndReason::UserGone => Self::EndedAccountGone,
            EndReason::Revoked => Self::EndedRevoked,
            EndReason::Expired => Self::EndedExpired,
            EndReason::CredentialRemoved => Self::EndedPasskeyRemoved,
            _ => Self::EndedOther,
        }
    }

    pub(crate) async fn set(self, session: &Session) -> Result<(), AppError> {
        session.insert(Self::KEY, self).await?;
        Ok(())
    }

    pub(crate) async fn take(session: &Session) -> Result<Option<Self>, AppError> {
        Ok(session.remove::<Self>(Self::KEY).await?)
    }
}

/// Middleware inside `AuthLayer`: when the layer ended this browser's
/// session on this request, leaves a notice saying why for the page that is
/// shown now (home), or after the redirect to the sign-in page. The JSON
/// API and the WebSocket get no session for it.
pub(crate) async fn explain_ended_session(req: Request, next: Next) -> Response {
    let ended = req.extensions().get::<SessionEnded>().copied();
    let session = req.extensions().get::<Session>().cloned();
    if let (Some(ended), Some(session)) = (ended, session) {
        let path = req.uri().path();
        if !path.starts_with("/api/") && path != "/ws" {
            if let Err(err) = Notice::ended(ended.reason()).set(&session).await {
                return err.into_response();
            }
        }
    }
    next.run(req).await
}

/// `GET /`.
pub(crate) async fn home(
    State(state): State<AppState>,
    auth: AuthSession<User>,
) -> Result<Response, AppError> {
    let notice = Notice::take(auth.session()).await?.map(Notice::text);
    let activity = match auth.user() {
        Some(user) => activity::recent(&state.users, user.id).await?,
        None => Vec::new(),
    };
    let page = pages::Home {
        username: auth.user().map(|user| user.username.clone()),
        has_password: auth.user().is_some_and(User::has_password),
        notice,
        error: None,
        activity,
    };
    render(StatusCode::OK, &page)
}

/// The sign-up form's fields.
#[derive(Deserialize)]
pub(crate) struct SignupForm {
    username: String,
    password: String,
}

/// `GET /signup`.
pub(crate) async fn signup_form() -> Result<Response, AppError> {
    let page = pages::Signup {
        username: String::new(),
        error: None,
    };
    render(StatusCode::OK, &page)
}

/// `POST /signup`: creates the user and signs them in.
pub(crate) async fn signup(
    State(state): State<AppState>,
    mut auth: AuthSession<User>,
    Form(form): Form<SignupForm>,
) -> Result<Response, AppError> {
    let refuse = |status, error| {
        let page = pages::Signup {
            username: form.username.clone(),
            error: Some(error),
        };
        render(status, &page)
    };
    let username = match check_username(&form.username) {
        Ok(name) => name,
        Err(error) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, error),
    };
    if let Err(error) = check_new_password(&form.password) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, error);
    }
    let hash = state.passwords.hash(form.password.clone()).await?;
    let Some(user) = state.users.create(username, &hash).await? else {
        return refuse(
            StatusCode::CONFLICT,
            "That username is taken. Choose another.",
        );
    };
    auth.login(&user).await?;
    Notice::Welcome.set(auth.session()).await?;
    Ok(Redirect::to("/").into_response())
}

/// The query of `GET /login`.
#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the form, carrying `next` through.
pub(crate) async fn login_form(
    session: Session,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let page = pages::Login {
        username: String::new(),
        next: local_next(query.next.as_deref()),
        remember: false,
        notice: Notice::take(&session).await?.map(Notice::text),
        error: None,
    };
    render(StatusCode::OK, &page)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
    /// The "Keep me signed in" checkbox: `1` when ticked.
    remember: Option<String>,
}

/// `POST /login`: signs in, for the browser session or, with `remember=1`,
/// for [`Config::remember_days`](crate::Config::remember_days), and goes to
/// `next` (a local path only), else `/`.
pub(crate) async fn login(
    State(state): State<AppState>,
    mut auth: AuthSession<User>,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = local_next(form.next.as_deref());
    let remember = form.remember.as_deref() == Some("1");
    match authenticate(&state, &form.username, form.password).await? {
        Some(user) => {
            auth.login_with(&user, SessionTimes::sign_in(remember))
                .await?;
            let target = if next.is_empty() { "/" } else { next.as_str() };
            Ok(Redirect::to(target).into_response())
        }
        None => {
            let page = pages::Login {
                username: form.username,
                next,
                remember,
                notice: None,
                error: Some("Wrong username or password."),
            };
            render(StatusCode::UNAUTHORIZED, &page)
        }
    }
}

/// `next` if it is a path on this site, else empty.
fn local_next(next: Option<&str>) -> String {
    next.and_then(safe_next).unwrap_or_default().to_owned()
}

/// `POST /logout`: ends this session.
pub(crate) async fn logout(mut auth: AuthSession<User>) -> Result<Response, AppError> {
    auth.logout().await?;
    Ok(Redirect::to("/login").into_response())
}

/// `GET /password`.
pub(crate) async fn password_form(
    LoginRequired(user): LoginRequired<User>,
) -> Result<Response, AppError> {
    let page = pages::Password {
        has_password: user.has_password(),
        username: user.username,
        error: None,
    };
    render(StatusCode::OK, &page)
}

/// The password form's fields. An account without a password sends no
/// current one.
#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    current_password: String,
    new_password: String,
}

/// Where a browser proves itself again before setting a first password.
const CONFIRM_FOR_PASSWORD: &str = "/confirm?next=%2Fpassword";

/// `POST /password`: stores the new hash and keeps this session, which ends
/// every other session of the user.
///
/// The current password must match; an account without one (signed up
/// with a passkey) sets its first password with a recent sign-in or
/// confirmation instead, else it is sent to confirm first.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    LoginRequired(user): LoginRequired<User>,
    recent: Result<RecentAuth<User>, AuthRejection>,
    mut auth: AuthSession<User>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let refuse = |status, error| {
        let page = pages::Password {
            username: user.username.clone(),
            has_password: user.has_password(),
            error: Some(error),
        };
        render(status, &page)
    };
    if user.has_password() {
        let stored = Some(user.password_hash.clone());
        if !state
            .passwords
            .verify(form.current_password, stored)
            .await?
        {
            return refuse(StatusCode::FORBIDDEN, "Your current password is wrong.");
        }
    } else if let Err(rejection) = recent {
        return Ok(match rejection {
            AuthRejection::ReauthRedirect { .. } => {
                Redirect::to(CONFIRM_FOR_PASSWORD).into_response()
            }
            rejection => rejection.into_response(),
        });
    }
    if let Err(error) = check_new_password(&form.new_password) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, error);
    }
    let hash = state.passwords.hash(form.new_password).await?;
    let Some(updated) = state.users.set_password(user.id, &hash).await? else {
        // Deleted meanwhile, from another session.
        auth.logout().await?;
        return Ok(Redirect::to("/").into_response());
    };
    auth.update_session_auth_hash(&updated).await?;
    let notice = if user.has_password() {
        Notice::PasswordChanged
    } else {
        Notice::PasswordSet
    };
    notice.set(auth.session()).await?;
    Ok(Redirect::to("/").into_response())
}

/// Where a browser confirms its password before an action of the
/// `/sessions` page: back to that page afterwards, not to the `POST` path.
const CONFIRM_FOR_SESSIONS: &str = "/confirm?next=%2Fsessions";

/// The refusal of a sensitive action of the `/sessions` page when the
/// sign-in or the last confirmation is older than the window: a browser
/// goes to [`CONFIRM_FOR_SESSIONS`] (`RecentAuth` would give `next` the
/// `POST` path, which cannot be loaded), an API client gets `403`, an
/// anonymous request the sign-in page.
fn refused_for_sessions(rejection: AuthRejection) -> Response {
    match rejection {
        AuthRejection::ReauthRedirect { .. } => Redirect::to(CONFIRM_FOR_SESSIONS).into_response(),
        rejection => rejection.into_response(),
    }
}

/// `POST /sessions/logout-others`: a new session epoch ends every other
/// session of the user, without a password change. Needs a recent sign-in
/// or confirmation.
pub(crate) async fn logout_others(
    State(state): State<AppState>,
    recent: Result<RecentAuth<User>, AuthRejection>,
    mut auth: AuthSession<User>,
) -> Result<Response, AppError> {
    let user = match recent {
        Ok(RecentAuth(user)) => user,
        Err(rejection) => return Ok(refused_for_sessions(rejection)),
    };
    let Some(updated) = state.users.bump_session_epoch(user.id).await? else {
        auth.logout().await?;
        return Ok(Redirect::to("/").into_response());
    };
    auth.update_session_auth_hash(&updated).await?;
    Notice::OthersSignedOut.set(auth.session()).await?;
    Ok(Redirect::to("/").into_response())
}

/// The account deletion form's field: empty for an account without a
/// password.
#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    password: String,
}

/// `POST /account/delete`: after the password is confirmed (an account
/// without one: after a recent sign-in or confirmation, else to `/confirm`
/// first), deletes the user. Every other session of the user finds no user
/// on its next request and ends; this one ends here.
pub(crate) async fn delete_account(
    State(state): State<AppState>,
    LoginRequired(user): LoginRequired<User>,
    recent: Result<RecentAuth<User>, AuthRejection>,
    mut auth: AuthSession<User>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, AppError> {
    if !user.has_password() && recent.is_err() {
        return Ok(Redirect::to("/confirm?next=%2F").into_response());
    }
    let stored = Some(user.password_hash.clone());
    if user.has_password() && !state.passwords.verify(form.password, stored).await? {
        let page = pages::Home {
            username: Some(user.username),
            has_password: true,
            notice: None,
            error: Some("Wrong password: your account was not deleted."),
            activity: activity::recent(&state.users, user.id).await?,
        };
        return render(StatusCode::FORBIDDEN, &page);
    }
    state.users.delete(user.id).await?;
    // Every session of the account leaves the list at once; this one is
    // signed out with them.
    auth.revoke_all_sessions().await?;
    Notice::AccountDeleted.set(auth.session()).await?;
    Ok(Redirect::to("/").into_response())
}

/// `GET /sessions`: the user's signed-in devices, each but this one with a
/// button that signs it out.
pub(crate) async fn sessions(
    State(state): State<AppState>,
    LoginRequired(user): LoginRequired<User>,
    auth: AuthSession<User>,
) -> Result<Response, AppError> {
    let page = pages::Sessions {
        username: user.username,
        notice: Notice::take(auth.session()).await?.map(Notice::text),
        devices: devices::listed(&auth, &state.times).await?,
    };
    render(StatusCode::OK, &page)
}

/// The field of the revoke form.
#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    handle: String,
}

/// `POST /sessions/revoke`: signs one device out. Another device: back to
/// `/sessions`; this one: to `/login`; a handle the user has no session
/// for: `404`, nothing revoked. Needs a recent sign-in or confirmation.
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    recent: Result<RecentAuth<User>, AuthRejection>,
    mut auth: AuthSession<User>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, AppError> {
    let user = match recent {
        Ok(RecentAuth(user)) => user,
        Err(rejection) => return Ok(refused_for_sessions(rejection)),
    };
    let revocation = match form.handle.parse::<SessionHandle>() {
        Ok(handle) => auth.revoke_session(&handle).await?,
        Err(_) => Revocation::NotFound,
    };
    match revocation {
        Revocation::Revoked => {
            Notice::DeviceSignedOut.set(auth.session()).await?;
            Ok(Redirect::to("/sessions").into_response())
        }
        Revocation::SignedOut => Ok(Redirect::to("/login").into_response()),
        _ => {
            let page = pages::Sessions {
                username: user.username,
                notice: Some("No such session: it may have ended already. Nothing was changed."),
                devices: devices::listed(&auth, &state.times).await?,
            };
            render(StatusCode::NOT_FOUND, &page)
        }
    }
}

/// The query of `GET /confirm`.
#[derive(Deserialize)]
pub(crate) struct ConfirmQuery {
    next: Option<String>,
}

/// `GET /confirm`: asks the signed-in user for their password or a passkey
/// before a sensitive action, carrying `next` through. (The passkey goes
/// through `/api/passkeys/login/…`, a step-up of this session.)
pub(crate) async fn confirm_form(
    LoginRequired(user): LoginRequired<User>,
    Query(query): Query<ConfirmQuery>,
) -> Result<Response, AppError> {
    let page = pages::Confirm {
        has_password: user.has_password(),
        username: user.username,
        next: local_next(query.next.as_deref()),
        error: None,
    };
    render(StatusCode::OK, &page)
}

/// The confirmation form's fields.
#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    password: String,
    next: Option<String>,
}

/// `POST /confirm`: the right password renews the re-authentication window
/// (and the session id) and goes to `next` (a local path only), else `/`;
/// a wrong one answers `401` with the form.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    LoginRequired(user): LoginRequired<User>,
    mut auth: AuthSession<User>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    let next = local_next(form.next.as_deref());
    let stored = Some(user.password_hash.clone());
    if !state.passwords.verify(form.password, stored).await? {
        let page = pages::Confirm {
            has_password: user.has_password(),
            username: user.username,
            next,
            error: Some("Wrong password. Nothing was changed."),
        };
        return render(StatusCode::UNAUTHORIZED, &page);
    }
    auth.reauthenticate(&user).await?;
    let target = if next.is_empty() { "/" } else { next.as_str() };
    Ok(Redirect::to(target).into_response())
}
