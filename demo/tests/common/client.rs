//! A browser-like HTTP client for the demo's contract tests, the demo on a
//! fresh SQLite file, and the steps most tests start with.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::sync::Arc;

use reqwest::{
    cookie::{CookieStore, Jar},
    header, redirect, Client, Response, StatusCode,
};
use serde_json::Value;
use tower_sessions_auth_demo::Config;

use super::{Server, TempDir};

pub const SECRET: &[u8] = b"demo test secret, 32 bytes or more, not for production";
pub const PASSWORD: &str = "correct horse";
pub const NEW_PASSWORD: &str = "battery staple";

/// The demo's configuration for `database_url`, signed with [`SECRET`].
pub fn config(database_url: &str) -> Config {
    super::config(database_url, SECRET)
}

/// One demo on a fresh SQLite file.
pub async fn sqlite_demo() -> (Server, TempDir) {
    let db = TempDir::new("demo_http");
    let server = Server::start(config(&db.sqlite_url())).await;
    (server, db)
}

/// A browser-like client: its own cookie jar, redirects not followed.
pub struct Browser {
    http: Client,
    jar: Arc<Jar>,
}

impl Browser {
    pub fn new() -> Self {
        Self::with_user_agent("demo-http-test")
    }

    /// A browser that sends `agent` as its `User-Agent`.
    pub fn with_user_agent(agent: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let http = Client::builder()
            .cookie_provider(jar.clone())
            .user_agent(agent)
            .redirect(redirect::Policy::none())
            .build()
            .unwrap();
        Self { http, jar }
    }

    pub async fn get(&self, url: &str) -> Response {
        self.http.get(url).send().await.unwrap()
    }

    pub async fn delete(&self, url: &str) -> Response {
        self.http.delete(url).send().await.unwrap()
    }

    /// The underlying client, for requests the helpers do not make.
    pub fn http(&self) -> &Client {
        &self.http
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> Response {
        self.http.post(url).form(form).send().await.unwrap()
    }

    pub async fn signup(&self, server: &Server, username: &str, password: &str) -> Response {
        let form = [("username", username), ("password", password)];
        self.post(&server.url("/signup"), &form).await
    }

    pub async fn login(&self, server: &Server, username: &str, password: &str) -> Response {
        let form = [("username", username), ("password", password)];
        self.post(&server.url("/login"), &form).await
    }

    /// The signed-in username by `/api/me`, `None` when anonymous.
    pub async fn me(&self, server: &Server) -> Option<String> {
        let response = self.get(&server.url("/api/me")).await;
        match response.status() {
            StatusCode::OK => {
                let body: Value = response.json().await.unwrap();
                Some(body["username"].as_str().unwrap().to_owned())
            }
            StatusCode::UNAUTHORIZED => None,
            other => panic!("unexpected /api/me status {other}"),
        }
    }

    /// The session cookie's value for `server`, if the jar holds one.
    pub fn session_id(&self, server: &Server) -> Option<String> {
        self.cookie(server, "demo_session")
    }

    /// The fast path's pass for `server`, if the jar holds one.
    pub fn pass(&self, server: &Server) -> Option<String> {
        self.cookie(server, "demo_pass")
    }

    /// The `Cookie` header this browser sends to `server`: what a thief
    /// of its cookies would replay.
    pub fn cookie_header(&self, server: &Server) -> String {
        let url = server.base.parse().unwrap();
        self.jar
            .cookies(&url)
            .map(|cookies| cookies.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The value of the cookie `name` (or `__Host-{name}`) for `server`.
    fn cookie(&self, server: &Server, name: &str) -> Option<String> {
        let url = server.base.parse().unwrap();
        let cookies = self.jar.cookies(&url)?;
        cookies.to_str().unwrap().split("; ").find_map(|pair| {
            let (found, value) = pair.split_once('=')?;
            let found = found.strip_prefix("__Host-").unwrap_or(found);
            (found == name).then(|| value.to_owned())
        })
    }
}

pub fn location(response: &Response) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

pub fn cache_control(response: &Response) -> &str {
    response.headers()[header::CACHE_CONTROL].to_str().unwrap()
}

pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

/// The new pass that `response` sets (`demo_pass` or `__Host-demo_pass`),
/// whole, with its attributes; `None` when it sets none or removes it.
pub fn set_pass(response: &Response) -> Option<String> {
    set_cookies(response).into_iter().find(|cookie| {
        let value = cookie
            .strip_prefix("demo_pass=")
            .or_else(|| cookie.strip_prefix("__Host-demo_pass="));
        value.is_some_and(|value| !value.starts_with(';') && !value.is_empty())
    })
}

/// Whether `response` removes the pass.
pub fn removes_pass(response: &Response) -> bool {
    set_cookies(response).iter().any(|cookie| {
        (cookie.starts_with("demo_pass=;") || cookie.starts_with("__Host-demo_pass=;"))
            && cookie.contains("Max-Age=0")
    })
}

/// Whether `response` sets or removes a pass at all.
pub fn touches_pass(response: &Response) -> bool {
    set_cookies(response)
        .iter()
        .any(|cookie| cookie.starts_with("demo_pass=") || cookie.starts_with("__Host-demo_pass="))
}

/// A browser signed up as `username` with [`PASSWORD`].
pub async fn signed_up(server: &Server, username: &str) -> Browser {
    let browser = Browser::new();
    let response = browser.signup(server, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    browser
}

/// A second browser signed in as `username`.
pub async fn signed_in(server: &Server, username: &str, password: &str) -> Browser {
    let browser = Browser::new();
    let response = browser.login(server, username, password).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "login of {username}"
    );
    assert_eq!(browser.me(server).await.as_deref(), Some(username));
    browser
}

/// The body of `GET path` for `browser`.
pub async fn page(browser: &Browser, server: &Server, path: &str) -> String {
    browser.get(&server.url(path)).await.text().await.unwrap()
}

/// The status of `GET /api/me` with `value` as the session cookie, sent by
/// a client with no jar: what a forged or replayed cookie gets.
pub async fn me_with_cookie(server: &Server, value: &str) -> StatusCode {
    Client::new()
        .get(server.url("/api/me"))
        .header(header::COOKIE, format!("demo_session={value}"))
        .send()
        .await
        .unwrap()
        .status()
}
