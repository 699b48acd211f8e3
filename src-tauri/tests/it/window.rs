//! The first run, the login and its errors, and account management, in the real window.

use crate::open_window;
use crate::support::{click, screenshot, text_of, type_into, wait_for_text};
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
    assert_eq!(client.title().await.unwrap(), "left4me");

    screenshot(&client, "window-about.png").await;

    client.close().await.unwrap();
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

    client.close().await.unwrap();
    drop(driver);
    drop(xvfb);
}
