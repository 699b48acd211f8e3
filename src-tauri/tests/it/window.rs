//! The first run, the login and its errors, account management, a user's own password, an
//! overlay's edit and the restarts a refresh waits for, in the real window.

use crate::open_window;
use crate::support::{click, close, element, screenshot, text_of, type_into, wait_for_text};
use fantoccini::Locator;
use std::time::Duration;

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
    // Its own log, for bug reports, is named there too and tells of the start.
    let log = data.path().join("logs/left4me.log");
    assert_eq!(
        text_of(&client, "#log-path").await,
        log.display().to_string()
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains(" INFO  left4me "), "{logged}");
    assert!(logged.contains("starting, data in"), "{logged}");
    assert_eq!(client.title().await.unwrap(), "left4me");

    screenshot(&client, "window-about.png").await;

    close(client).await;
    drop(driver);
    drop(xvfb);
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

    close(client).await;
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

    close(client).await;
    drop(driver);
    drop(xvfb);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn a_large_fleet_shows_on_the_dashboard_a_page_at_a_time() {
    let data = crate::support::seeded(130);
    let (_data, xvfb, driver, client) = crate::support::open_app_in(
        std::path::Path::new(env!("CARGO_BIN_EXE_left4me")),
        data,
        &[],
    )
    .await;
    type_into(&client, "#login-form #username", "admin").await;
    type_into(&client, "#password", "admin password").await;
    click(&client, "#account-submit").await;
    wait_for_text(&client, "#dashboard-summary", "130 servers").await;
    let cards = || async {
        client
            .find_all(Locator::Css(".server-card"))
            .await
            .unwrap()
            .len()
    };
    assert_eq!(cards().await, 60, "the first page");
    // The hosts do not answer: the cards say so once the first status update is in.
    wait_for_text(&client, "#card-coop-0 .state", "host unreachable").await;
    screenshot(&client, "dashboard-fleet.png").await;
    // Scrolling to the end brings the next page; the button brings the last.
    client
        .execute(
            "document.querySelector('.cards-end').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    wait_for_text(&client, ".cards-end", "120 of 130 shown").await;
    click(&client, ".cards-end button").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cards().await < 130 {
        assert!(std::time::Instant::now() < deadline, "never all 130 cards");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(client.find(Locator::Css(".cards-end")).await.is_err());

    close(client).await;
    drop(driver);
    drop(xvfb);
}

/// The first admin of a fresh window, logged in.
async fn first_admin(client: &fantoccini::Client) {
    type_into(client, "#first-run-form #username", "admin").await;
    type_into(client, "#password", "admin password").await;
    type_into(client, "#password-again", "admin password").await;
    click(client, "#account-submit").await;
    wait_for_text(client, "#current-user", "admin").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn a_user_changes_their_own_password_in_the_window() {
    let (_data, xvfb, driver, client) = open_window().await;
    first_admin(&client).await;

    // Their own account is behind their name in the header.
    click(&client, "#current-user").await;
    wait_for_text(&client, "#own-username", "admin").await;
    // The new password is checked as it is typed; the current one by the backend.
    type_into(&client, "#current-password", "not my password").await;
    type_into(&client, "#new-password", "new admin password").await;
    type_into(&client, "#new-password-again", "new admin passwort").await;
    wait_for_text(
        &client,
        "#new-password-again-hint",
        "the two passwords differ",
    )
    .await;
    let submit = element(&client, "#change-password-submit").await;
    assert!(submit.attr("disabled").await.unwrap().is_some());
    type_into(&client, "#new-password-again", "new admin password").await;
    click(&client, "#change-password-submit").await;
    wait_for_text(&client, ".notice-error", "the current password is wrong").await;
    screenshot(&client, "password-wrong-current.png").await;
    type_into(&client, "#current-password", "admin password").await;
    click(&client, "#change-password-submit").await;
    wait_for_text(&client, "#password-changed", "Your password was changed").await;
    screenshot(&client, "password-changed.png").await;

    // The old password no longer logs in; the new one does.
    click(&client, "#logout").await;
    type_into(&client, "#login-form #username", "admin").await;
    type_into(&client, "#password", "admin password").await;
    click(&client, "#account-submit").await;
    wait_for_text(&client, ".notice-error", "wrong username or password").await;
    type_into(&client, "#password", "new admin password").await;
    click(&client, "#account-submit").await;
    wait_for_text(&client, "#current-user", "admin").await;

    close(client).await;
    drop(driver);
    drop(xvfb);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn an_overlays_source_is_edited_in_the_window() {
    let (_data, xvfb, driver, client) = open_window().await;
    first_admin(&client).await;

    click(&client, "#nav-overlays").await;
    type_into(&client, "#overlay-name", "maps").await;
    type_into(&client, "#overlay-items", "123 456").await;
    type_into(&client, "#overlay-description", "custom maps").await;
    click(&client, "#create-overlay").await;
    wait_for_text(&client, "#overlay-maps", "Workshop: 2 items, 0 collections").await;

    // The form starts from what fills it; a bad id is refused as it is typed.
    click(&client, r#"button[aria-label="Edit maps"]"#).await;
    assert_eq!(
        element(&client, "#edit-maps-items")
            .await
            .prop("value")
            .await
            .unwrap(),
        Some("123\n456".into())
    );
    type_into(&client, "#edit-maps-collections", "not-an-id").await;
    wait_for_text(
        &client,
        "#edit-maps-collections-hint",
        "\"not-an-id\" is not a Workshop id or link",
    )
    .await;
    let save = element(&client, "#edit-maps-save").await;
    assert!(save.attr("disabled").await.unwrap().is_some());
    type_into(&client, "#edit-maps-collections", "789").await;
    type_into(
        &client,
        "#edit-maps-description",
        "custom maps and a collection",
    )
    .await;
    screenshot(&client, "overlay-edit.png").await;
    click(&client, "#edit-maps-save").await;
    wait_for_text(&client, "#overlay-maps", "Workshop: 2 items, 1 collection").await;
    wait_for_text(&client, "#overlay-maps", "custom maps and a collection").await;
    assert!(
        client.find(Locator::Css("#edit-maps-form")).await.is_err(),
        "the form closes once saved"
    );

    close(client).await;
    drop(driver);
    drop(xvfb);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn the_overlay_page_offers_to_restart_the_servers_a_refresh_would_switch() {
    let data = crate::support::seeded_waiting_for_restart();
    let (_data, xvfb, driver, client) = crate::support::open_app_in(
        std::path::Path::new(env!("CARGO_BIN_EXE_left4me")),
        data,
        &[],
    )
    .await;
    type_into(&client, "#login-form #username", "admin").await;
    type_into(&client, "#password", "admin password").await;
    click(&client, "#account-submit").await;
    wait_for_text(&client, "#current-user", "admin").await;

    // The refreshed overlay waits on the host for coop-0's and coop-1's next start; coop-2
    // does not use it.
    click(&client, "#nav-overlays").await;
    let pending = wait_for_text(&client, "#overlay-maps-pending", "coop-1 on bench-0").await;
    assert!(pending.contains("coop-0 on bench-0"), "{pending}");
    assert!(!pending.contains("coop-2"), "{pending}");
    client
        .execute(
            "document.querySelector('#overlay-maps-pending').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    screenshot(&client, "overlay-pending-restarts.png").await;

    // Each is restarted on its own; this host was never set up, so the app refuses here.
    click(
        &client,
        r#"button[aria-label="Restart coop-0 with the new version"]"#,
    )
    .await;
    wait_for_text(
        &client,
        "#overlay-maps-pending .notice-error",
        "host \"bench-0\" is not set up yet",
    )
    .await;

    close(client).await;
    drop(driver);
    drop(xvfb);
}
