//! The `/passkeys` page: the user's passkeys, adding one, removing one.

use std::time::SystemTime;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use tower_sessions_auth::{AuthRejection, AuthSession, LoginRequired, RecentAuth};

use super::{api::from_secs, Removal};
use crate::{
    devices::Moment,
    error::AppError,
    html::Notice,
    pages::{self, render, ShownPasskey},
    users::User,
    AppState,
};

/// What the passkey buttons run: the ceremonies between the JSON routes
/// and `navigator.credentials`.
const SCRIPT: &str = include_str!("../../static/passkeys.js");

/// `GET /static/passkeys.js`.
pub(crate) async fn script() -> Response {
    pages::script(SCRIPT)
}

/// `GET /passkeys` (anonymous: to the sign-in page, and back here).
pub(crate) async fn list(
    State(state): State<AppState>,
    LoginRequired(user): LoginRequired<User>,
    auth: AuthSession<User>,
) -> Result<Response, AppError> {
    let notice = Notice::take(auth.session()).await?.map(Notice::text);
    let page = page(&state, &user, notice).await?;
    render(StatusCode::OK, &page)
}

async fn page(
    state: &AppState,
    user: &User,
    notice: Option<&'static str>,
) -> Result<pages::Passkeys, AppError> {
    let now = SystemTime::now();
    let passkeys = state
        .users
        .passkeys_of(user.id)
        .await?
        .into_iter()
        .map(|listed| ShownPasskey {
            id: listed.id,
            name: listed.name,
            created_at: Moment::new(from_secs(listed.created_at), now),
        })
        .collect();
    Ok(pages::Passkeys {
        username: user.username.clone(),
        has_password: user.has_password(),
        notice,
        passkeys,
    })
}

/// Where a browser proves itself again before removing a passkey: back to
/// the list afterwards, not to the `POST` path.
const CONFIRM_FOR_PASSKEYS: &str = "/confirm?next=%2Fpasskeys";

/// `POST /passkeys/{id}/delete`: removes one of the user's passkeys, which
/// ends the sessions it signed in or confirmed, and goes back to the list;
/// `404` with the list when the user has no such passkey. Needs a recent
/// sign-in or confirmation.
pub(crate) async fn delete(
    State(state): State<AppState>,
    recent: Result<RecentAuth<User>, AuthRejection>,
    auth: AuthSession<User>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let user = match recent {
        Ok(RecentAuth(user)) => user,
        Err(AuthRejection::ReauthRedirect { .. }) => {
            return Ok(Redirect::to(CONFIRM_FOR_PASSKEYS).into_response())
        }
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let (status, notice) = match super::remove(&state, &user, &id).await? {
        Removal::Removed => {
            Notice::PasskeyRemoved.set(auth.session()).await?;
            return Ok(Redirect::to("/passkeys").into_response());
        }
        Removal::NotFound => (
            StatusCode::NOT_FOUND,
            "No such passkey: it may have been removed already. Nothing was changed.",
        ),
        Removal::LastWayIn => (
            StatusCode::CONFLICT,
            "Not removed: this passkey is the only \
             way to sign in to your account. Set a password or add another passkey first.",
        ),
    };
    render(status, &page(&state, &user, Some(notice)).await?)
}
