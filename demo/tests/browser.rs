//! The demo (the `tower-sessions-auth-demo` package) in real browsers: two headless Chromium
//! sessions, each with its own fresh profile, driven over WebDriver by
//! chromedriver. Both sign in as one user; a password change in the first
//! sends the second to the sign-in page by itself within 3 s (the page
//! listens to `/api/events`), which says why, while the first stays signed
//! in on its page. A third browser lists the signed-in devices and signs
//! one out, which goes to the sign-in page by itself too.
//!
//! A second test restarts Chromium on the same profile: a sign-in with
//! "Keep me signed in" survives it, a plain one does not. A third signs in
//! and out with `DEMO_SECURE_COOKIES=1`: the `__Host-` cookie is gone from
//! the browser afterwards.
//!
//! Two tests sign in with passkeys, each browser with a virtual
//! authenticator (WebDriver's WebAuthn extension, `common::virtual_authenticator`),
//! on the demo opened as `http://localhost:{port}` (browsers refuse an IP
//! address as a relying party id). The issue's scenario: a passkey
//! registered on the laptop moves to the phone and signs in there; the
//! laptop removes it, and the phone's page goes to the sign-in page by
//! itself within 3 s while the laptop and a password session stay. The
//! other: `/passkeys` asks an anonymous visitor to sign in, and a ceremony
//! that fails in the browser shows its error in `#passkey-error`.
//!
//! A screenshot of every step goes to `target/demo-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` on the `PATH` (Debian: packages
//! `chromium` and `chromium-driver`). Without them the test prints why it
//! skipped, except under `CI=true`, where it fails.
//!
//! The browsers are driven with fantoccini over plain HTTP to chromedriver
//! on loopback (hyper-util's `HttpConnector`; no TLS stack needed).

// The harness helpers below are test code too: a failed step should panic.
// (Clippy's `allow-unwrap-in-tests` covers only the `#[test]` functions.)
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use fantoccini::{elements::Element, error::CmdError, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::Client;
use serde_json::{json, Value};

use tower_sessions_auth_demo::Config;

use crate::common::{
    virtual_authenticator::{Transport, VirtualAuthenticator},
    Server, TempDir,
};

const PASSWORD: &str = "correct horse";
const NEW_PASSWORD: &str = "battery staple";
const NEWEST_PASSWORD: &str = "tr0ub4dor&3";

/// The session cookie's name with `DEMO_SECURE_COOKIES=1`.
const SECURE_COOKIE: &str = "__Host-demo_session";

/// How long a page may take to show what a step expects.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// How soon a signed-in page whose session ended elsewhere must be on the
/// sign-in page, without anybody touching it.
const LIVE_WITHIN: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// Harness: the demo server

/// The demo on a fresh SQLite file, on a free loopback port.
struct Demo {
    server: Server,
    _db: TempDir,
}

impl Demo {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The demo with `adjust` applied to its configuration.
    async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let db = TempDir::new("demo_browser");
        let mut config =
            common::config(&db.sqlite_url(), b"browser test secret, 32 bytes or more!!");
        adjust(&mut config);
        let server = Server::start(config).await;
        Self { server, _db: db }
    }

    /// The demo's address by name, `http://localhost:{port}`: passkeys need
    /// it, as browsers refuse an IP address as a relying party id. (The
    /// server listens on 127.0.0.1, where `localhost` leads.)
    fn localhost(&self) -> String {
        self.server.base.replacen("127.0.0.1", "localhost", 1)
    }

    /// The demo as with `DEMO_SECURE_COOKIES=1`: a `Secure` cookie named
    /// [`SECURE_COOKIE`]. Chromium keeps `Secure` cookies from
    /// `http://127.0.0.1`, a secure context, so no TLS is needed; the site's
    /// origin is that plain-HTTP address (`DEMO_ORIGIN`), since with secure
    /// cookies the cross-site check otherwise expects `https`.
    async fn start_secure() -> Self {
        let db = TempDir::new("demo_browser");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config =
            common::config(&db.sqlite_url(), b"browser test secret, 32 bytes or more!!");
        config.secure_cookies = true;
        config.origin = Some(format!("http://{}", listener.local_addr().unwrap()));
        let server = Server::start_on(listener, config).await;
        Self { server, _db: db }
    }
}

// ---------------------------------------------------------------------------
// Harness: chromedriver and a minimal WebDriver client

/// Finds `name` on the `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A chromedriver process on a free port, killed on drop.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start(binary: &Path) -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let status = format!("{}/status", driver.url);
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Ok(response) = Client::new().get(&status).send().await {
                let body: Value = response.json().await.unwrap();
                if body["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser: a WebDriver session with its own Chromium profile, fresh
/// unless given.
struct Browser {
    client: fantoccini::Client,
    name: &'static str,
    _profile: Option<TempDir>,
}

impl Browser {
    async fn open(driver: &Chromedriver, chromium: &Path, name: &'static str) -> Self {
        let profile = TempDir::new("demo_browser_profile");
        let mut browser = Self::open_in(driver, chromium, name, profile.path()).await;
        browser._profile = Some(profile);
        browser
    }

    /// A browser on the profile in `profile`, which outlives it: a second
    /// one opened there later is the same browser restarted.
    async fn open_in(
        driver: &Chromedriver,
        chromium: &Path,
        name: &'static str,
        profile: &Path,
    ) -> Self {
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1000,760".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": chromium, "args": args }),
        );
        // chromedriver listens on plain HTTP on loopback: no TLS connector.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|error| panic!("{name}: no WebDriver session: {error}"));
        Self {
            client,
            name,
            _profile: None,
        }
    }

    fn check<T>(&self, what: &str, result: Result<T, CmdError>) -> T {
        result.unwrap_or_else(|error| panic!("{}: WebDriver {what}: {error}", self.name))
    }

    async fn goto(&self, url: &str) {
        self.check("goto", self.client.goto(url).await);
    }

    async fn refresh(&self) {
        self.check("refresh", self.client.refresh().await);
    }

    async fn find(&self, css: &str) -> Element {
        self.check(css, self.client.find(Locator::Css(css)).await)
    }

    async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.check(css, element.send_keys(text).await);
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.check(css, element.click().await);
    }

    /// Fills the sign-in (or sign-up) form as alice with `password` and
    /// submits it.
    /// How many elements match `css`.
    async fn count(&self, css: &str) -> usize {
        let found = self.client.find_all(Locator::Css(css)).await;
        self.check(&format!("find {css}"), found).len()
    }

    async fn submit_as_alice(&self, password: &str) {
        self.fill(r#"input[name="username"]"#, "alice").await;
        self.fill(r#"input[name="password"]"#, password).await;
        self.click(r#"button[type="submit"]"#).await;
    }

    /// The page's URL and visible text; an `Err` while the page is changing.
    async fn location_and_text(&self) -> Result<(String, String), CmdError> {
        let url = self.client.current_url().await?;
        let text = self
            .client
            .execute("return document.body.innerText", Vec::new())
            .await?;
        Ok((
            url.path().to_owned(),
            text.as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// Waits until the page's path is `path` and its text holds `expected`.
    async fn expect_page(&self, path: &str, expected: &str) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let (at, text) = self.location_and_text().await.unwrap_or_default();
            if at == path && text.contains(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: expected {expected:?} on {path}, got {at}:\n{text}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page is at `target`, its path and query (such as
    /// `/login?next=%2Fpasskeys`), and its text holds `expected`.
    async fn expect_location(&self, target: &str, expected: &str) {
        let script = "return [location.pathname + location.search, document.body.innerText]";
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let state = self.client.execute(script, Vec::new()).await;
            let (at, text) = match &state {
                Ok(Value::Array(state)) if state.len() == 2 => (
                    state[0].as_str().unwrap_or_default(),
                    state[1].as_str().unwrap_or_default(),
                ),
                // The page is changing.
                _ => ("", ""),
            };
            if at == target && text.contains(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: expected {expected:?} on {target}, got {at}:\n{text}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `count` elements match `css` on the page at `path`.
    async fn expect_count(&self, path: &str, css: &str, count: usize) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let at = self
                .client
                .current_url()
                .await
                .map(|url| url.path().to_owned());
            let found = self
                .client
                .find_all(Locator::Css(css))
                .await
                .map(|all| all.len());
            if let (Ok(at), Ok(found)) = (&at, &found) {
                if at == path && *found == count {
                    return;
                }
            }
            if Instant::now() >= deadline {
                let (_, text) = self.location_and_text().await.unwrap_or_default();
                panic!(
                    "{}: expected {count} of {css} on {path}, got {found:?} on {at:?}:\n{text}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The attribute `name` of every element that matches `css`.
    async fn attrs(&self, css: &str, name: &str) -> Vec<String> {
        let found = self.client.find_all(Locator::Css(css)).await;
        let mut values = Vec::new();
        for element in self.check(&format!("find {css}"), found) {
            let value = self.check(&format!("{css} {name}"), element.attr(name).await);
            values.push(value.unwrap_or_default());
        }
        values
    }

    /// `GET path` from the page, with its cookies, as the page's own
    /// scripts would: the status and the JSON body (`null` if none).
    async fn api(&self, path: &str) -> (u16, Value) {
        let script = "const [path, done] = arguments; \
                      fetch(path, { cache: 'no-store', credentials: 'same-origin' }) \
                        .then(r => r.text().then(body => done([r.status, body]))) \
                        .catch(error => done([0, String(error)]));";
        let answer = self.client.execute_async(script, vec![json!(path)]).await;
        let answer = self.check(&format!("fetch {path}"), answer);
        let status = answer[0].as_u64().unwrap_or_default();
        assert_ne!(status, 0, "{}: fetch {path}: {}", self.name, answer[1]);
        let body = serde_json::from_str(answer[1].as_str().unwrap_or_default());
        (u16::try_from(status).unwrap(), body.unwrap_or(Value::Null))
    }

    /// Adds a virtual authenticator attached by `transport` to this
    /// browser: its passkeys from now on, with a user who is always there
    /// and verified.
    async fn authenticator(&self, transport: Transport) -> VirtualAuthenticator {
        let added = VirtualAuthenticator::add(&self.client, transport).await;
        self.check("add a virtual authenticator", added)
    }

    /// Waits until the passkey buttons' error element (`#passkey-error`)
    /// shows a message, and returns it.
    async fn expect_passkey_error(&self) -> String {
        let script = "const error = document.getElementById('passkey-error'); \
                      return error === null ? null \
                        : [error.innerText.trim(), error.getClientRects().length > 0]";
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let state = self.client.execute(script, Vec::new()).await;
            if let Ok(Value::Array(state)) = &state {
                let message = state[0].as_str().unwrap_or_default();
                if !message.is_empty() && state[1] == json!(true) {
                    return message.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: no message in #passkey-error: {state:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits, without touching the page, until it is at `target` (path and
    /// query) and its text holds `expected`, at most [`LIVE_WITHIN`] after
    /// `since`; returns whether the page it left showed the signed-out
    /// notice (`#signed-out`) first, saving a screenshot of that as
    /// `{shot}.png`.
    async fn expect_sent_to(
        &self,
        target: &str,
        expected: &str,
        since: Instant,
        shot: &str,
    ) -> bool {
        let script = "return [location.pathname + location.search, document.body.innerText, \
                      document.getElementById('signed-out') !== null]";
        let mut told = false;
        loop {
            let state = self.client.execute(script, Vec::new()).await;
            let (at, text, notice) = match &state {
                Ok(Value::Array(state)) if state.len() == 3 => (
                    state[0].as_str().unwrap_or_default(),
                    state[1].as_str().unwrap_or_default(),
                    state[2] == json!(true),
                ),
                // The page is changing.
                _ => ("", "", false),
            };
            if notice && !told {
                told = true;
                self.screenshot(shot).await;
            }
            if at == target && text.contains(expected) {
                eprintln!(
                    "{}: on {target} {:?} after the change",
                    self.name,
                    since.elapsed()
                );
                return told;
            }
            assert!(
                since.elapsed() <= LIVE_WITHIN,
                "{}: not on {target} with {expected:?} {LIVE_WITHIN:?} after the change; at {at}:\n{text}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts that the page is still `path`, signed in, without the
    /// signed-out notice.
    async fn expect_still_signed_in(&self, path: &str) {
        let (at, text) = self.location_and_text().await.unwrap();
        assert_eq!(at, path, "{}", self.name);
        assert!(text.contains("alice"), "{}: {text}", self.name);
        assert!(
            !text.contains("You were signed out"),
            "{}: {text}",
            self.name
        );
        assert_eq!(self.count("#signed-out").await, 0, "{}", self.name);
    }

    /// Whether the browser holds a cookie named `name` for the current page
    /// (its value is a session id: it is not returned, nor printed).
    async fn has_cookie(&self, name: &str) -> bool {
        let cookies = self.check("cookies", self.client.get_all_cookies().await);
        cookies.iter().any(|cookie| cookie.name() == name)
    }

    /// Saves a screenshot of the page as `target/demo-screenshots/{name}.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.check("screenshot", self.client.screenshot().await);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/demo-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the WebDriver session, which closes Chromium; a failure is
    /// ignored (the browser may be gone already).
    async fn close(&self) {
        let _ = self.client.clone().close().await;
    }
}

/// Chromium and chromedriver, or `None` (with the reason printed) when
/// missing outside CI. Under `CI=true` their absence fails the test.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = which("chromium").or_else(|| which("chromium-browser"));
    let driver = which("chromedriver");
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true: chromium and chromedriver must be installed for this test"
            );
            eprintln!(
                "skipped: chromium and chromedriver are not both on the PATH \
                 (Debian: apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------
// The test

#[tokio::test]
async fn two_browsers_password_change_ends_the_other_session() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let demo = Demo::start().await;
    let driver = Chromedriver::start(&chromedriver).await;
    let laptop = Arc::new(Browser::open(&driver, &chromium, "laptop").await);
    let phone = Arc::new(Browser::open(&driver, &chromium, "phone").await);
    let tablet = Arc::new(Browser::open(&driver, &chromium, "tablet").await);

    let base = demo.server.base.clone();
    let outcome = tokio::spawn({
        let (laptop, phone, tablet) = (laptop.clone(), phone.clone(), tablet.clone());
        async move {
            scenario(&base, &laptop, &phone).await;
            revoke_from_the_device_list(&base, &laptop, &tablet).await;
        }
    })
    .await;
    // Close every browser whether or not the scenario passed: a killed
    // chromedriver would leave its Chromium processes behind.
    laptop.close().await;
    phone.close().await;
    tablet.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// The steps, each checked in the page and saved as a screenshot.
async fn scenario(base: &str, laptop: &Browser, phone: &Browser) {
    let url = |path: &str| format!("{base}{path}");

    // Sign up on the laptop.
    laptop.goto(&url("/")).await;
    laptop.expect_page("/", "You are not signed in").await;
    laptop.screenshot("01-laptop-anonymous-home").await;
    laptop.click(r#"a[href="/signup"]"#).await;
    laptop.expect_page("/signup", "Create an account").await;
    laptop.fill(r#"input[name="username"]"#, "alice").await;
    laptop.fill(r#"input[name="password"]"#, PASSWORD).await;
    laptop.screenshot("02-laptop-signup-form").await;
    laptop.click(r#"button[type="submit"]"#).await;
    laptop.expect_page("/", "Signed in as alice").await;
    laptop.screenshot("03-laptop-signed-up").await;

    // The phone: a wrong password first, then the right one. It asks for
    // the password page, so sign-in sends it there (`next`).
    phone.goto(&url("/password")).await;
    phone.expect_page("/login", "Sign in").await;
    phone.submit_as_alice("not my password").await;
    phone
        .expect_page("/login", "Wrong username or password.")
        .await;
    phone.screenshot("04-phone-wrong-password").await;
    phone.fill(r#"input[name="password"]"#, PASSWORD).await;
    phone.click(r#"button[type="submit"]"#).await;
    phone.expect_page("/password", "Signed in as alice").await;
    phone.screenshot("05-phone-signed-in").await;

    // The laptop changes the password.
    laptop.click(r#"a[href="/password"]"#).await;
    laptop.expect_page("/password", "Change password").await;
    laptop
        .fill(r#"input[name="current_password"]"#, PASSWORD)
        .await;
    laptop
        .fill(r#"input[name="new_password"]"#, NEW_PASSWORD)
        .await;
    let since = Instant::now();
    laptop.click(r#"button[type="submit"]"#).await;
    laptop.expect_page("/", "Password changed.").await;
    laptop.screenshot("06-laptop-password-changed").await;

    // The phone, left alone on its page, says that it was signed out, then
    // is on the sign-in page within 3 s, told why; it comes back to the
    // password page after signing in.
    let told = phone
        .expect_sent_to(
            "/login?next=%2Fpassword",
            "your password was changed on another device",
            since,
            "07a-phone-told-it-was-signed-out",
        )
        .await;
    assert!(told, "phone: no signed-out notice on the page it left");
    phone
        .screenshot("07-phone-signed-out-by-password-change")
        .await;
    // The laptop is still on its page, signed in, and stays so.
    laptop.expect_still_signed_in("/").await;
    laptop.refresh().await;
    laptop.expect_page("/", "Signed in as alice").await;
    laptop.screenshot("08-laptop-still-signed-in").await;

    // Sign the phone in again (new password), then sign out other devices
    // from the laptop, without a password change.
    phone.submit_as_alice(NEW_PASSWORD).await;
    phone.expect_page("/password", "Signed in as alice").await;
    let since = Instant::now();
    laptop
        .click(r#"form[action="/sessions/logout-others"] button"#)
        .await;
    laptop
        .expect_page("/", "Your other sessions are signed out")
        .await;
    laptop
        .screenshot("09-laptop-signed-out-other-devices")
        .await;
    phone
        .expect_sent_to(
            "/login?next=%2Fpassword",
            "\"Sign out other devices\" was used on another device",
            since,
            "10a-phone-told-it-was-signed-out",
        )
        .await;
    phone.screenshot("10-phone-signed-out-by-laptop").await;
    laptop.expect_still_signed_in("/").await;

    // The phone signs in again and changes the password itself: now the
    // laptop is the one signed out.
    phone.submit_as_alice(NEW_PASSWORD).await;
    phone.expect_page("/password", "Change password").await;
    phone
        .fill(r#"input[name="current_password"]"#, NEW_PASSWORD)
        .await;
    phone
        .fill(r#"input[name="new_password"]"#, NEWEST_PASSWORD)
        .await;
    let since = Instant::now();
    phone.click(r#"button[type="submit"]"#).await;
    phone.expect_page("/", "Signed in as alice").await;
    laptop
        .expect_sent_to(
            "/login?next=%2F",
            "your password was changed on another device",
            since,
            "11a-laptop-told-it-was-signed-out",
        )
        .await;
    laptop.screenshot("11-laptop-signed-out-by-phone").await;

    // Sign out on the phone.
    phone.click(r#"form[action="/logout"] button"#).await;
    phone.expect_page("/login", "Sign in").await;
    phone.goto(&url("/")).await;
    phone.expect_page("/", "You are not signed in").await;
    phone.screenshot("12-phone-signed-out").await;
}

/// A third browser lists the signed-in devices and signs the laptop out
/// from there; the laptop, left alone, is on the sign-in page within 3 s,
/// told why.
async fn revoke_from_the_device_list(base: &str, laptop: &Browser, tablet: &Browser) {
    let url = |path: &str| format!("{base}{path}");
    laptop.goto(&url("/login")).await;
    laptop.submit_as_alice(NEWEST_PASSWORD).await;
    laptop.expect_page("/", "Signed in as alice").await;
    tablet.goto(&url("/sessions")).await;
    tablet.expect_page("/login", "Sign in").await;
    tablet.submit_as_alice(NEWEST_PASSWORD).await;
    tablet.expect_page("/sessions", "Signed-in devices").await;
    tablet.expect_page("/sessions", "This device").await;
    let devices = tablet.count("li.device").await;
    assert_eq!(devices, 2, "the laptop and the tablet");
    tablet.screenshot("13-tablet-signed-in-devices").await;

    let since = Instant::now();
    tablet
        .click(r#"form[action="/sessions/revoke"] button"#)
        .await;
    tablet
        .expect_page("/sessions", "That device is signed out.")
        .await;
    assert_eq!(tablet.count("li.device").await, 1);
    tablet.screenshot("14-tablet-signed-out-the-laptop").await;

    laptop
        .expect_sent_to(
            "/login?next=%2F",
            "You were signed out from another device",
            since,
            "15a-laptop-told-it-was-signed-out",
        )
        .await;
    laptop
        .screenshot("15-laptop-signed-out-from-the-list")
        .await;
}

/// "Keep me signed in" in a real browser: Chromium keeps a cookie with a
/// `Max-Age` on disk and forgets one without when it quits. Two profiles
/// sign in, one with the box ticked; both browsers quit and start again on
/// their profiles; only the remembered one is still signed in.
#[tokio::test]
async fn keep_me_signed_in_survives_a_browser_restart() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let demo = Demo::start().await;
    let driver = Chromedriver::start(&chromedriver).await;
    let base = demo.server.base.clone();
    let kept_profile = TempDir::new("demo_browser_kept");
    let plain_profile = TempDir::new("demo_browser_plain");

    // Before: sign in on both, the box ticked on one.
    let kept = Arc::new(Browser::open_in(&driver, &chromium, "kept", kept_profile.path()).await);
    let plain = Arc::new(Browser::open_in(&driver, &chromium, "plain", plain_profile.path()).await);
    let outcome = tokio::spawn({
        let (kept, plain, base) = (kept.clone(), plain.clone(), base.clone());
        async move {
            plain.goto(&format!("{base}/signup")).await;
            plain.submit_as_alice(PASSWORD).await;
            plain.expect_page("/", "Signed in as alice").await;
            kept.goto(&format!("{base}/login")).await;
            kept.expect_page("/login", "Keep me signed in").await;
            kept.fill(r#"input[name="username"]"#, "alice").await;
            kept.fill(r#"input[name="password"]"#, PASSWORD).await;
            kept.click(r#"input[name="remember"]"#).await;
            kept.screenshot("20-kept-sign-in-form").await;
            kept.click(r#"button[type="submit"]"#).await;
            kept.expect_page("/", "Signed in as alice").await;
        }
    })
    .await;
    // Quitting is the restart's first half: Chromium writes its cookies.
    kept.close().await;
    plain.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }

    // After: the same profiles in new Chromium processes.
    let kept = Arc::new(
        Browser::open_in(&driver, &chromium, "kept, restarted", kept_profile.path()).await,
    );
    let plain = Arc::new(
        Browser::open_in(&driver, &chromium, "plain, restarted", plain_profile.path()).await,
    );
    let outcome = tokio::spawn({
        let (kept, plain) = (kept.clone(), plain.clone());
        async move {
            kept.goto(&format!("{base}/")).await;
            kept.expect_page("/", "Signed in as alice").await;
            kept.screenshot("21-kept-after-restart").await;
            plain.goto(&format!("{base}/")).await;
            plain.expect_page("/", "You are not signed in").await;
            plain.screenshot("22-plain-after-restart").await;
        }
    })
    .await;
    kept.close().await;
    plain.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// `DEMO_SECURE_COOKIES=1`: signing out really removes the `__Host-` session
/// cookie from the browser. Chromium refuses a `Set-Cookie` for a
/// `__Host-` name without `Secure`, so a removal cookie that lacks it would
/// leave the old cookie in place.
#[tokio::test]
async fn signing_out_removes_the_secure_host_cookie_from_the_browser() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let demo = Demo::start_secure().await;
    let driver = Chromedriver::start(&chromedriver).await;
    let browser = Arc::new(Browser::open(&driver, &chromium, "secure").await);
    let base = demo.server.base.clone();
    let outcome = tokio::spawn({
        let browser = browser.clone();
        async move {
            browser.goto(&format!("{base}/signup")).await;
            browser.submit_as_alice(PASSWORD).await;
            browser.expect_page("/", "Signed in as alice").await;
            assert!(
                browser.has_cookie(SECURE_COOKIE).await,
                "no {SECURE_COOKIE} cookie after signing up"
            );
            browser.screenshot("30-secure-signed-in").await;

            browser.click(r#"form[action="/logout"] button"#).await;
            browser.expect_page("/login", "Sign in").await;
            assert!(
                !browser.has_cookie(SECURE_COOKIE).await,
                "the browser still holds its {SECURE_COOKIE} cookie after signing out"
            );
            browser.goto(&format!("{base}/")).await;
            browser.expect_page("/", "You are not signed in").await;
            assert!(!browser.has_cookie(SECURE_COOKIE).await);
            browser.screenshot("31-secure-signed-out").await;
        }
    })
    .await;
    browser.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

// ---------------------------------------------------------------------------
// Passkeys, with a virtual authenticator in each browser

/// How long a sign-in or confirmation counts as recent in the passkey
/// scenario (`DEMO_SUDO_SECS`): long enough for setting a password right
/// after signing up, even on a busy machine, short enough that removing a
/// passkey later asks for a new proof after a short wait.
const PASSKEY_SUDO_WINDOW: Duration = Duration::from_secs(5);

/// The issue's scenario. Alice signs up with a passkey on the laptop (no
/// password), sets a password there, and signs in with it elsewhere. The
/// laptop registers a second passkey, which moves to the phone, where it
/// signs alice in. The laptop removes that passkey: the phone, left alone
/// on its page, is signed out within 3 s and says so; the laptop and the
/// password session stay signed in.
#[tokio::test]
async fn removing_a_passkey_signs_out_the_browser_that_used_it() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let demo = Demo::start_with(|config| config.sudo_window = PASSKEY_SUDO_WINDOW).await;
    let driver = Chromedriver::start(&chromedriver).await;
    let laptop = Arc::new(Browser::open(&driver, &chromium, "laptop").await);
    let phone = Arc::new(Browser::open(&driver, &chromium, "phone").await);
    let base = demo.localhost();
    let outcome = tokio::spawn({
        let (laptop, phone) = (laptop.clone(), phone.clone());
        async move { passkey_scenario(&base, &laptop, &phone).await }
    })
    .await;
    laptop.close().await;
    phone.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

async fn passkey_scenario(base: &str, laptop: &Browser, phone: &Browser) {
    let url = |path: &str| format!("{base}{path}");
    let laptop_keys = laptop.authenticator(Transport::Platform).await;

    // Sign up on the laptop with a passkey: a discoverable credential for
    // `localhost`, whose user handle is the account's 16-byte id.
    laptop.goto(&url("/signup")).await;
    laptop.expect_page("/signup", "Create an account").await;
    laptop.fill(r#"input[name="username"]"#, "alice").await;
    laptop.screenshot("40-laptop-passkey-signup").await;
    let signing_up = Instant::now();
    laptop.click("#passkey-signup").await;
    laptop.expect_page("/", "Signed in as alice").await;
    laptop
        .screenshot("41-laptop-signed-up-with-a-passkey")
        .await;
    let held = laptop.check("credentials", laptop_keys.credentials().await);
    let [first] = held.as_slice() else {
        panic!("laptop: expected one passkey in the authenticator, got {held:?}");
    };
    assert!(first.is_resident_credential, "{first:?}");
    assert_eq!(first.rp_id, "localhost");
    let handle = first.user_handle.as_deref().unwrap_or_default();
    assert_eq!(handle.len(), 22, "a 16-byte user handle: {first:?}");
    let (status, me) = laptop.api("/api/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "alice");
    // The virtual authenticator's credentials are not backup-eligible.
    assert_eq!(me["amr"], json!(["hwk", "user"]));

    // The account has no password: the form asks only for a new one, and
    // the fresh sign-up is proof enough to set it.
    laptop.goto(&url("/password")).await;
    laptop
        .expect_count("/password", r#"input[name="new_password"]"#, 1)
        .await;
    assert_eq!(
        laptop.count(r#"input[name="current_password"]"#).await,
        0,
        "a passwordless account has no current password to give"
    );
    laptop.screenshot("42-laptop-set-a-password").await;
    laptop
        .fill(
            r#"form[action="/password"] input[name="new_password"]"#,
            PASSWORD,
        )
        .await;
    laptop
        .click(r#"form[action="/password"] button[type="submit"]"#)
        .await;
    eprintln!(
        "laptop: set a password {:?} after signing up",
        signing_up.elapsed()
    );
    laptop.expect_page("/", "Signed in as alice").await;

    // Elsewhere, a plain HTTP client signs in with that password.
    let elsewhere = common::client::Browser::new();
    let form = [("username", "alice"), ("password", PASSWORD)];
    let response = elsewhere.post(&url("/login"), &form).await;
    assert_eq!(response.status(), 303, "password sign-in");
    let me: Value = elsewhere.get(&url("/api/me")).await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["amr"], json!(["pwd"]));

    // The laptop adds a second passkey, on a security key: its own
    // authenticator already holds alice's first one, which the server
    // excludes from a new registration. The page lists both, by the ids
    // the authenticators hold them under.
    let security_key = laptop.authenticator(Transport::SecurityKey).await;
    laptop.goto(&url("/passkeys")).await;
    laptop.expect_count("/passkeys", "li.passkey", 1).await;
    laptop.click("#add-passkey").await;
    laptop.expect_count("/passkeys", "li.passkey", 2).await;
    // The last proof the laptop may have given (if registering counts).
    let proved = Instant::now();
    laptop.screenshot("43-laptop-two-passkeys").await;
    let held = laptop.check("credentials", laptop_keys.credentials().await);
    assert_eq!(held.len(), 1, "the first passkey only: {held:?}");
    let on_key = laptop.check("credentials", security_key.credentials().await);
    let [second] = on_key.as_slice() else {
        panic!("laptop: expected one passkey on the security key, got {on_key:?}");
    };
    assert_ne!(second.credential_id, first.credential_id);
    assert_eq!(second.user_handle, first.user_handle, "one account");
    let mut listed = laptop.attrs("li.passkey", "data-passkey-id").await;
    listed.sort();
    let mut expected = vec![first.credential_id.clone(), second.credential_id.clone()];
    expected.sort();
    assert_eq!(listed, expected, "the listed ids are the credential ids");

    // The security key moves to the phone (the WebDriver way: its passkey,
    // private key included, into an authenticator there) and signs alice
    // in: the only passkey the phone has.
    let phone_key = phone.authenticator(Transport::SecurityKey).await;
    phone.check("add credential", phone_key.add_credential(second).await);
    laptop.check("unplug", security_key.remove().await);
    phone.goto(&url("/login")).await;
    phone.expect_page("/login", "Sign in").await;
    phone.click("#passkey-login").await;
    phone.expect_page("/", "Signed in as alice").await;
    phone
        .screenshot("44-phone-signed-in-with-the-passkey")
        .await;
    let (status, me) = phone.api("/api/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["amr"], json!(["hwk", "user"]));

    // The laptop removes the phone's passkey. Once its proof is older than
    // the window (a bounded wait for what is left of it), it confirms with
    // its own passkey first.
    let wait = (proved + PASSKEY_SUDO_WINDOW).saturating_duration_since(Instant::now());
    eprintln!("laptop: waits {wait:?} for its proof to age");
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    let delete = format!(
        r#"li.passkey[data-passkey-id="{}"] form button"#,
        second.credential_id
    );
    laptop.goto(&url("/passkeys")).await;
    laptop.expect_count("/passkeys", "li.passkey", 2).await;
    laptop.click(&delete).await;
    laptop
        .expect_location("/confirm?next=%2Fpasskeys", "")
        .await;
    laptop.expect_count("/confirm", "#passkey-confirm", 1).await;
    laptop
        .screenshot("45-laptop-confirms-with-its-passkey")
        .await;
    laptop.click("#passkey-confirm").await;
    laptop.expect_count("/passkeys", "li.passkey", 2).await;
    let since = Instant::now();
    laptop.click(&delete).await;
    laptop.expect_count("/passkeys", "li.passkey", 1).await;
    laptop
        .screenshot("46-laptop-removed-the-phones-passkey")
        .await;
    let left = laptop.attrs("li.passkey", "data-passkey-id").await;
    assert_eq!(left, std::slice::from_ref(&first.credential_id));

    // The phone, left alone on its page, says that it was signed out, then
    // is on the sign-in page within 3 s, told why (the event stream's
    // reason, `credential_removed`, in the demo's words).
    let told = phone
        .expect_sent_to(
            "/login?next=%2F",
            "the passkey this session signed in with was removed",
            since,
            "47a-phone-told-it-was-signed-out",
        )
        .await;
    assert!(told, "phone: no signed-out notice on the page it left");
    phone.screenshot("47-phone-signed-out-by-the-removal").await;
    let (status, _) = phone.api("/api/me").await;
    assert_eq!(status, 401, "phone: still signed in");

    // The laptop and the password session stay signed in.
    assert_eq!(laptop.count("#signed-out").await, 0, "laptop");
    let (status, me) = laptop.api("/api/me").await;
    assert_eq!(status, 200, "laptop: {me}");
    laptop.goto(&url("/")).await;
    laptop.expect_page("/", "Signed in as alice").await;
    laptop.screenshot("48-laptop-still-signed-in").await;
    let response = elsewhere.get(&url("/api/me")).await;
    assert_eq!(response.status(), 200, "the password session");
}

/// The passkey pages' edges: `/passkeys` asks an anonymous visitor to sign
/// in and comes back after; a ceremony that fails in the browser (no
/// passkey for the site, or the user not verified) says so in
/// `#passkey-error` and signs nobody in or up.
#[tokio::test]
async fn passkey_pages_ask_to_sign_in_and_show_failed_ceremonies() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let demo = Demo::start().await;
    let driver = Chromedriver::start(&chromedriver).await;
    let browser = Arc::new(Browser::open(&driver, &chromium, "visitor").await);
    let base = demo.localhost();
    let outcome = tokio::spawn({
        let browser = browser.clone();
        async move { passkey_edges(&base, &browser).await }
    })
    .await;
    browser.close().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

async fn passkey_edges(base: &str, browser: &Browser) {
    let url = |path: &str| format!("{base}{path}");
    let keys = browser.authenticator(Transport::Platform).await;

    // Anonymous: to the sign-in page, which comes back to /passkeys.
    browser.goto(&url("/passkeys")).await;
    browser
        .expect_location("/login?next=%2Fpasskeys", "Sign in")
        .await;

    // The authenticator holds no passkey for the site.
    browser.click("#passkey-login").await;
    let message = browser.expect_passkey_error().await;
    eprintln!("visitor: sign-in without a passkey: {message:?}");
    browser.screenshot("50-visitor-no-passkey").await;
    browser
        .expect_location("/login?next=%2Fpasskeys", "Sign in")
        .await;
    assert_eq!(browser.api("/api/me").await.0, 401);

    // The user is not verified: no account.
    browser.goto(&url("/signup")).await;
    browser.expect_page("/signup", "Create an account").await;
    browser.fill(r#"input[name="username"]"#, "bob").await;
    browser.check("uv", keys.set_user_verified(false).await);
    browser.click("#passkey-signup").await;
    let message = browser.expect_passkey_error().await;
    eprintln!("visitor: sign-up, user not verified: {message:?}");
    browser.screenshot("51-visitor-not-verified").await;
    browser.expect_page("/signup", "Create an account").await;
    assert_eq!(browser.api("/api/me").await.0, 401);

    // Verified, the same name is still free.
    browser.check("uv", keys.set_user_verified(true).await);
    browser.click("#passkey-signup").await;
    browser.expect_page("/", "Signed in as bob").await;

    // Signed out, /passkeys again: the passkey signs in and the page lists
    // it.
    browser.click(r#"form[action="/logout"] button"#).await;
    browser.expect_page("/login", "Sign in").await;
    browser.goto(&url("/passkeys")).await;
    browser
        .expect_location("/login?next=%2Fpasskeys", "Sign in")
        .await;
    browser.click("#passkey-login").await;
    browser.expect_count("/passkeys", "li.passkey", 1).await;
    browser.screenshot("52-visitor-back-on-passkeys").await;
    let held = browser.check("credentials", keys.credentials().await);
    let ids: Vec<String> = held.into_iter().map(|c| c.credential_id).collect();
    assert_eq!(browser.attrs("li.passkey", "data-passkey-id").await, ids);
}
