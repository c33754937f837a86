//! The HTML pages: askama templates (HTML-escaped) and how they become
//! responses.

use askama::Template;
use axum::{
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
};

use super::{
    activity::Entry,
    devices::{Device, Moment},
    error::AppError,
};

/// `/`: who is signed in and what they can do.
#[derive(Template)]
#[template(path = "home.html")]
pub(crate) struct Home {
    /// `None` for an anonymous visitor.
    pub(crate) username: Option<String>,
    /// Whether the signed-in account has a password (deleting it asks
    /// for it).
    pub(crate) has_password: bool,
    pub(crate) notice: Option<&'static str>,
    pub(crate) error: Option<&'static str>,
    /// The signed-in user's recent activity, newest first.
    pub(crate) activity: Vec<Entry>,
}

/// `/login`.
#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct Login {
    pub(crate) username: String,
    /// Where to go after signing in; checked again when the form comes back.
    pub(crate) next: String,
    /// "Keep me signed in" was ticked.
    pub(crate) remember: bool,
    /// Why this browser was signed out, when it just was.
    pub(crate) notice: Option<&'static str>,
    pub(crate) error: Option<&'static str>,
}

/// `/signup`.
#[derive(Template)]
#[template(path = "signup.html")]
pub(crate) struct Signup {
    pub(crate) username: String,
    pub(crate) error: Option<&'static str>,
}

/// `/password`: change it, or set one for an account without.
#[derive(Template)]
#[template(path = "password.html")]
pub(crate) struct Password {
    pub(crate) username: String,
    /// `false`: the account signs in with passkeys only, and the form sets
    /// a first password.
    pub(crate) has_password: bool,
    pub(crate) error: Option<&'static str>,
}

/// `/confirm`: the password or a passkey again, before a sensitive action.
#[derive(Template)]
#[template(path = "confirm.html")]
pub(crate) struct Confirm {
    pub(crate) username: String,
    /// `false`: only the passkey button is offered.
    pub(crate) has_password: bool,
    /// Where to go once confirmed; checked again when the form comes back.
    pub(crate) next: String,
    pub(crate) error: Option<&'static str>,
}

/// `/sessions`: the signed-in devices.
#[derive(Template)]
#[template(path = "sessions.html")]
pub(crate) struct Sessions {
    pub(crate) username: String,
    pub(crate) notice: Option<&'static str>,
    /// Most recently seen first.
    pub(crate) devices: Vec<Device>,
}

/// One passkey, ready to show.
pub(crate) struct ShownPasskey {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created_at: Moment,
}

/// `/passkeys`: the user's passkeys.
#[derive(Template)]
#[template(path = "passkeys.html")]
pub(crate) struct Passkeys {
    pub(crate) username: String,
    pub(crate) has_password: bool,
    pub(crate) notice: Option<&'static str>,
    /// Oldest first.
    pub(crate) passkeys: Vec<ShownPasskey>,
}

/// One of the pages' scripts, from this site's files: the
/// Content-Security-Policy allows no inline script.
pub(crate) fn script(source: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        source,
    )
        .into_response()
}

/// Renders `page` with `status`.
pub(crate) fn render<T: Template>(status: StatusCode, page: &T) -> Result<Response, AppError> {
    Ok((status, Html(page.render()?)).into_response())
}
