//! Desktop habits in the real window: one app per data folder, a close that asks first
//! while jobs run, notifications that can be turned off, the window's place kept, and the
//! desktop's own folder dialog.
//!
//! A job "runs" here because its row says so: the app's own jobs need a host, and what is
//! tested is how the app treats the jobs it has not finished, which it reads from its
//! database (a second app would mark them interrupted at its start).

use crate::flow::first_run;
use crate::open_window;
use crate::support::{
    ask_window_to_close, click, close, element, screenshot, type_into, wait_for_text,
};
use app_core::instance::{self, Claim};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A job of the admin, running in the app of `data`; returns its id.
fn running_job(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("left4me.db")).unwrap();
    db.execute(
        "INSERT INTO jobs (owner_id, kind, target, state, created_ms, started_ms)
         VALUES ((SELECT id FROM users WHERE username = 'admin'), 'install', 'host test-1',
                 'running', 0, 0)",
        [],
    )
    .unwrap();
    db.last_insert_rowid()
}

fn job_state(data: &Path, id: i64) -> String {
    rusqlite::Connection::open(data.join("left4me.db"))
        .unwrap()
        .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

/// Whether an app still holds the data folder (asking it to show itself if so).
fn app_holds(data: &Path) -> bool {
    match instance::claim(data) {
        Ok(Claim::Handed) => true,
        Ok(Claim::First(_)) => false,
        // Holding the folder while it ends.
        Err(instance::InstanceError::NoAnswer { .. }) => true,
        Err(e) => panic!("{e}"),
    }
}

/// Waits until the app of `data` has ended.
async fn app_ended(data: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while app_holds(data) {
        assert!(Instant::now() < deadline, "the app did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn a_second_launch_hands_over_and_leaves_the_first_apps_jobs_alone() {
    let (data, xvfb, driver, client) = open_window().await;
    first_run(&client).await;
    let job = running_job(data.path());

    let mut second = Command::new(env!("CARGO_BIN_EXE_left4me"))
        .env("LEFT4ME_DATA_DIR", data.path())
        .env("DISPLAY", &xvfb.display)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second launch is still running: it opened a second app");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut said).unwrap();
    assert!(status.success(), "{status}: {said}");
    assert!(said.contains("already running"), "{said}");
    // It never opened the database: the first app's job is untouched.
    assert_eq!(job_state(data.path(), job), "running");
    // And the first window goes on.
    click(&client, "#nav-jobs").await;
    wait_for_text(&client, "#jobs-table", "host test-1").await;

    close(client).await;
    drop(driver);
    drop(xvfb);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn closing_while_a_job_runs_asks_first_and_names_it() {
    let (data, xvfb, driver, client) = open_window().await;
    first_run(&client).await;
    running_job(data.path());

    ask_window_to_close(&xvfb.display, "left4me");
    wait_for_text(
        &client,
        "#close-dialog-jobs",
        "Installing the game: host test-1",
    )
    .await;
    wait_for_text(&client, "#close-dialog-title", "while 1 job runs").await;
    screenshot(&client, "close-while-a-job-runs.png").await;
    click(&client, "#close-dialog-cancel").await;
    // Kept open: the window goes on, without the question.
    click(&client, "#nav-jobs").await;
    wait_for_text(&client, "#jobs-table", "host test-1").await;
    assert!(app_holds(data.path()), "the app is still running");

    ask_window_to_close(&xvfb.display, "left4me");
    // The click closes the window under WebDriver, whose answer to it may be an error.
    let _ = element(&client, "#close-dialog-confirm")
        .await
        .click()
        .await;
    app_ended(data.path()).await;

    let _ = client.close().await;
    drop(driver);
    drop(xvfb);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn closing_with_no_job_running_just_closes() {
    let (data, xvfb, driver, client) = open_window().await;
    first_run(&client).await;
    assert!(app_holds(data.path()));
    ask_window_to_close(&xvfb.display, "left4me");
    app_ended(data.path()).await;
    let _ = client.close().await;
    drop(driver);
    drop(xvfb);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn desktop_notifications_are_turned_off_on_the_about_page() {
    let (data, xvfb, driver, client) = open_window().await;
    first_run(&client).await;
    click(&client, "#nav-about").await;
    let toggle = element(&client, "#notifications-toggle").await;
    assert_eq!(
        toggle.prop("checked").await.unwrap().as_deref(),
        Some("true")
    );
    toggle.click().await.unwrap();
    let setting = || {
        rusqlite::Connection::open(data.path().join("left4me.db"))
            .unwrap()
            .query_row(
                "SELECT value FROM app_meta WHERE key = 'desktop_notifications'",
                [],
                |r| r.get::<_, String>(0),
            )
            .ok()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while setting().as_deref() != Some("off") {
        assert!(Instant::now() < deadline, "the setting was not saved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The page shows it as the app keeps it.
    click(&client, "#nav-dashboard").await;
    click(&client, "#nav-about").await;
    let toggle = element(&client, "#notifications-toggle").await;
    assert_eq!(
        toggle.prop("checked").await.unwrap().as_deref(),
        Some("false")
    );
    screenshot(&client, "about-notifications-off.png").await;

    close(client).await;
    drop(driver);
    drop(xvfb);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn the_window_comes_back_where_it_was_left() {
    let (data, xvfb, driver, client) = open_window().await;
    client.set_window_rect(40, 30, 1100, 760).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = client.get_window_rect().await.unwrap();
    ask_window_to_close(&xvfb.display, "left4me");
    app_ended(data.path()).await;
    assert!(data.path().join("window.json").is_file());
    let _ = client.close().await;
    drop(driver);
    drop(xvfb);

    let app = Path::new(env!("CARGO_BIN_EXE_left4me"));
    let (_data, xvfb, driver, client) = crate::support::open_app_in(app, data, &[]).await;
    let back = client.get_window_rect().await.unwrap();
    assert_eq!(back, left, "where it was left, as WebDriver sees it");
    assert_ne!(
        (back.2, back.3),
        (1200, 800),
        "not the configured size: the test would prove nothing"
    );
    close(client).await;
    drop(driver);
    drop(xvfb);
}

/// Runs xdotool on `display`; returns what it printed.
fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("xdotool (apt package xdotool)");
    assert!(
        out.status.success(),
        "xdotool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver, tauri-driver and xdotool: run `cargo xtask test`"]
async fn an_upload_folder_is_chosen_in_the_desktops_folder_dialog() {
    let (_data, xvfb, driver, client) = open_window().await;
    first_run(&client).await;
    let chosen = tempfile::tempdir().unwrap();
    std::fs::create_dir(chosen.path().join("left4dead2")).unwrap();

    click(&client, "#nav-overlays").await;
    type_into(&client, "#overlay-name", "picked").await;
    click(&client, "#overlay-kind-upload").await;
    click(&client, "#create-overlay").await;
    wait_for_text(&client, "#overlay-picked", "upload a folder").await;
    click(&client, "#overlay-picked-choose").await;

    // The GTK folder dialog, a window of its own: the path typed as a person types it.
    let dialog = xdotool(
        &xvfb.display,
        &[
            "search",
            "--sync",
            "--name",
            "Choose the folder to upload into picked",
        ],
    );
    let dialog = dialog
        .lines()
        .next()
        .expect("the dialog's window")
        .to_owned();
    xdotool(&xvfb.display, &["windowfocus", "--sync", &dialog]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Ctrl+L opens the dialog's location entry; typing into it before it shows loses keys.
    xdotool(&xvfb.display, &["key", "ctrl+l"]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let path = chosen.path().display().to_string();
    xdotool(&xvfb.display, &["type", "--delay", "20", &path]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The entry completes "left4dead2/" inline, selected; Delete drops the suggestion.
    xdotool(&xvfb.display, &["key", "Delete"]);
    xdotool(&xvfb.display, &["key", "Return"]);
    let field = element(&client, "#overlay-picked-folder").await;
    let want = chosen.path().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = field.prop("value").await.unwrap().unwrap_or_default();
        if value.trim_end_matches('/') == want {
            break;
        }
        assert!(Instant::now() < deadline, "the field says {value:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    screenshot(&client, "folder-chosen.png").await;

    close(client).await;
    drop(driver);
    drop(xvfb);
}
