//! Starts a private Xvfb and tauri-driver, opens the app through WebDriver and reads what
//! the UI rendered. Needs `Xvfb`, `WebKitWebDriver` and `tauri-driver` (path in
//! `$TAURI_DRIVER`, else on PATH), and the UI bundle built into the app: `cargo xtask test`
//! provides all of them.

use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An Xvfb server on a free display, stopped on drop.
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let (reader, writer) = std::io::pipe().expect("pipe");
        // -displayfd picks a free display and writes its number to the given fd (stdout).
        let child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(writer)
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (apt-get install xvfb, or run `cargo xtask test`)");
        let mut line = String::new();
        BufReader::new(reader)
            .read_line(&mut line)
            .expect("read Xvfb's display number");
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb exited without a display");
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tauri-driver in front of WebKitWebDriver, stopped on drop with SIGTERM: it stops
/// WebKitWebDriver (and so the app) only on SIGTERM or SIGINT, never on SIGKILL.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// `env` is given to the app (through tauri-driver and WebKitWebDriver, which pass their
    /// environment on).
    fn start(display: &str, data_dir: &Path, env: &[(&str, String)]) -> Driver {
        let program = std::env::var_os("TAURI_DRIVER").unwrap_or_else(|| "tauri-driver".into());
        let port = free_port();
        let child = Command::new(&program)
            .args(["--port", &port.to_string()])
            .args(["--native-port", &free_port().to_string()])
            .env("DISPLAY", display)
            .env("LEFT4ME_DATA_DIR", data_dir)
            // With it, WebDriver's Take Screenshot never returns.
            .env_remove("WEBKIT_DISABLE_COMPOSITING_MODE")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .spawn()
            .unwrap_or_else(|e| panic!("start {program:?} (run `cargo xtask test`): {e}"));
        let driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tauri-driver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    async fn session(&self, app: &Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("WebDriver session with the app")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// `target/screenshots/` in the workspace, where people look for them.
fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir.join(name)
}

pub async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the UI never showed {css}: {e}"))
        .text()
        .await
        .expect("element text")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn window_shows_facts_from_the_backend() {
    let (data, xvfb, driver, client) = open_window().await;

    // The database path is only known to the backend: seeing it proves the UI was rendered
    // from a command's answer.
    let database = data.path().join("left4me.db");
    assert_eq!(
        text_of(&client, "#database-path").await,
        database.display().to_string()
    );
    assert_eq!(
        text_of(&client, "#app-version").await,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        text_of(&client, "#schema-version").await,
        app_core::Store::latest_schema_version().to_string()
    );
    assert!(database.is_file(), "the app did not create its database");
    assert_eq!(client.title().await.unwrap(), "left4me");

    let png = tokio::time::timeout(Duration::from_secs(30), client.screenshot())
        .await
        .expect("WebDriver screenshot timed out")
        .expect("WebDriver screenshot");
    let path = screenshot_path("window-about.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());

    client.close().await.unwrap();
    drop(driver);
    drop(xvfb);
}

/// The app in a fresh data folder, in a window on its own Xvfb, driven through WebDriver.
async fn open_window() -> (tempfile::TempDir, Xvfb, Driver, Client) {
    open_window_with(&[]).await
}

/// `open_window` with `env` set for the app.
pub async fn open_window_with(env: &[(&str, String)]) -> (tempfile::TempDir, Xvfb, Driver, Client) {
    let data = tempfile::tempdir().unwrap();
    let xvfb = Xvfb::start();
    let driver = Driver::start(&xvfb.display, data.path(), env);
    let client = driver
        .session(Path::new(env!("CARGO_BIN_EXE_left4me")))
        .await;
    (data, xvfb, driver, client)
}

/// Waits until the element's text contains `expect`.
pub async fn wait_for_text(client: &Client, css: &str, expect: &str) -> String {
    wait_for_text_within(client, css, expect, Duration::from_secs(30)).await
}

pub async fn wait_for_text_within(
    client: &Client,
    css: &str,
    expect: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(expect) {
                    return text;
                }
            }
        }
        if Instant::now() >= deadline {
            screenshot(client, "failed.png").await;
            panic!("{css} never said {expect:?} (see target/screenshots/failed.png)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn type_into(client: &Client, css: &str, text: &str) {
    let field = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    field.clear().await.expect("clear the field");
    field.send_keys(text).await.expect("type into the field");
}

/// Clicks the element, waiting for it to appear first.
pub async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

pub async fn screenshot(client: &Client, name: &str) {
    let png = tokio::time::timeout(Duration::from_secs(30), client.screenshot())
        .await
        .expect("WebDriver screenshot timed out")
        .expect("WebDriver screenshot");
    std::fs::write(screenshot_path(name), png).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn first_run_login_logout_and_their_errors_in_the_window() {
    let (_data, xvfb, driver, client) = open_window().await;

    // The first run asks for the first admin, checking the form as it is typed.
    type_into(&client, "#first-run-form #username", "admin").await;
    type_into(&client, "#password", "admin password").await;
    type_into(&client, "#password-again", "admin passwort").await;
    assert_eq!(
        text_of(&client, "#password-again-hint").await,
        "the two passwords differ"
    );
    let submit = client.find(Locator::Css("#account-submit")).await.unwrap();
    assert!(
        submit.attr("disabled").await.unwrap().is_some(),
        "submit is disabled"
    );
    screenshot(&client, "first-run.png").await;
    type_into(&client, "#password-again", "admin password").await;
    assert!(
        client
            .find(Locator::Css("#password-again-hint"))
            .await
            .is_err()
    );
    click(&client, "#account-submit").await;
    assert_eq!(
        wait_for_text(&client, "#current-user", "admin").await,
        "admin"
    );
    screenshot(&client, "logged-in.png").await;

    // Out, and a wrong password says so where it was typed.
    click(&client, "#logout").await;
    type_into(&client, "#login-form #username", "admin").await;
    type_into(&client, "#password", "not the password").await;
    click(&client, "#account-submit").await;
    wait_for_text(&client, ".notice-error", "wrong username or password").await;
    screenshot(&client, "login-wrong-password.png").await;
    // Four more wrong tries use up the username's allowance; the next is refused for it.
    for _ in 0..4 {
        click(&client, "#account-submit").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    type_into(&client, "#password", "admin password").await;
    click(&client, "#account-submit").await;
    wait_for_text(
        &client,
        ".notice-error",
        "too many failed logins for \"admin\"",
    )
    .await;
    screenshot(&client, "login-rate-limited.png").await;
    assert!(
        client.find(Locator::Css("#current-user")).await.is_err(),
        "still logged out"
    );

    client.close().await.unwrap();
    drop(driver);
    drop(xvfb);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn an_admin_manages_accounts_in_the_window() {
    let (_data, xvfb, driver, client) = open_window().await;
    type_into(&client, "#first-run-form #username", "admin").await;
    type_into(&client, "#password", "admin password").await;
    type_into(&client, "#password-again", "admin password").await;
    click(&client, "#account-submit").await;
    wait_for_text(&client, "#current-user", "admin").await;

    click(&client, "#nav-accounts").await;
    wait_for_text(&client, "#users-table", "admin").await;
    type_into(&client, "#new-username", "alice").await;
    type_into(&client, "#new-password", "alice password").await;
    click(&client, "#create-user").await;
    wait_for_text(&client, "#user-alice", "alice").await;
    // The app keeps someone who can manage it: an admin cannot disable themselves.
    click(&client, r#"button[aria-label="Disable admin"]"#).await;
    wait_for_text(
        &client,
        ".notice-error",
        "you cannot disable your own account",
    )
    .await;
    click(&client, r#"button[aria-label="Disable alice"]"#).await;
    wait_for_text(&client, "#user-alice .state", "disabled").await;
    screenshot(&client, "accounts.png").await;

    // Alice's login now says why it is refused.
    click(&client, "#logout").await;
    type_into(&client, "#login-form #username", "alice").await;
    type_into(&client, "#password", "alice password").await;
    click(&client, "#account-submit").await;
    wait_for_text(
        &client,
        ".notice-error",
        "the account \"alice\" is disabled; ask an admin",
    )
    .await;

    client.close().await.unwrap();
    drop(driver);
    drop(xvfb);
}
