//! The HTML pages: askama templates (HTML-escaped) and how they become
//! responses.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use super::{activity::Entry, devices::Device, error::AppError};

/// `/`: who is signed in and what they can do.
#[derive(Template)]
#[template(path = "home.html")]
pub(crate) struct Home {
    /// `None` for an anonymous visitor.
    pub(crate) username: Option<String>,
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

/// `/password`.
#[derive(Template)]
#[template(path = "password.html")]
pub(crate) struct Password {
    pub(crate) username: String,
    pub(crate) error: Option<&'static str>,
}

/// `/confirm`: the password again, before a sensitive action.
#[derive(Template)]
#[template(path = "confirm.html")]
pub(crate) struct Confirm {
    pub(crate) username: String,
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

/// Renders `page` with `status`.
pub(crate) fn render<T: Template>(status: StatusCode, page: &T) -> Result<Response, AppError> {
    Ok((status, Html(page.render()?)).into_response())
}
