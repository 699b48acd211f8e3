//! The whole flow in the real window against a real test host: first run, add a host and
//! trust its key, set it up, a Steam account with Steam Guard whose code is typed in the
//! window, the install with visible progress, the account forgotten, an overlay and a blueprint, two
//! servers started and seen live on the dashboard, their log and RCON, a blueprint edit and
//! a restart, stop and delete, the jobs, and a second user who sees none of it.

use crate::open_window_with;
use crate::support::{
    click, close, element, screenshot, select, text_of, type_into, wait_for_text,
    wait_for_text_within,
};
use fantoccini::{Client, Locator};
use std::time::{Duration, Instant};
use testkit::{SYSOP_PASSWORD, SYSOP_USER, TestHost};

/// What the script overlay writes: a config the servers run, and the stand-in's player list.
const SCRIPT: &str = "mkdir -p left4dead2/cfg/left4me.d\n\
printf 'Ellis\\nNick\\nRochelle\\n' > left4dead2/stand-in-players.txt\n\
echo 'sv_allow_lobby_connect_only \"0\"' > left4dead2/cfg/left4me.d/e2e.cfg\n";

/// The Steam account the stand-in Steam knows: it owns the game and has Steam Guard by
/// e-mail, which asks for this code.
const STEAM_USER: &str = "e2e-owner";
const STEAM_PASSWORD: &str = "e2e-steam-password";
const GUARD_CODE: &str = "G4RD1";

/// Waits until `css` matches nothing.
async fn wait_gone(client: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.find(Locator::Css(css)).await.is_ok() {
        assert!(Instant::now() < deadline, "{css} never went away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn log_in(client: &Client, user: &str, password: &str) {
    type_into(client, "#login-form #username", user).await;
    type_into(client, "#password", password).await;
    click(client, "#account-submit").await;
    wait_for_text(client, "#current-user", user).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the test hosts, Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn the_whole_flow_in_the_window_against_a_test_host() {
    let host = testkit::hosts().into_iter().next().expect("a test host");
    // As fresh as a new machine for left4me (earlier suites leave theirs behind).
    host.run(
        "root",
        "systemctl stop 'left4me-server@*' 'left4me-mount@*' 2>/dev/null; \
         rm -rf /var/lib/left4me /opt/left4me /etc/left4me",
    );
    // The stand-in Steam knows an account that owns the game, with Steam Guard by e-mail.
    let steamcmd = testkit::FileServer::start(
        "10.213.77.1",
        "/steamcmd_linux.tar.gz",
        Some(testkit::steamcmd_tarball_with(&format!(
            "account {STEAM_USER} {STEAM_PASSWORD} guard=email code={GUARD_CODE}\n"
        ))),
    );
    let env = [
        (
            "LEFT4ME_AGENT",
            testkit::static_binary("l4d2-agent").display().to_string(),
        ),
        ("LEFT4ME_STEAMCMD_URL", steamcmd.url.clone()),
    ];
    let notifications = crate::notifications::Recorder::start().await;
    let (_data, xvfb, driver, client) = open_window_with(&env).await;

    first_run(&client).await;
    add_host_and_trust_its_key(&client, &host).await;
    set_up(&client, &host).await;
    install_with_steam_guard(&client, &host, &notifications).await;
    check_for_updates(&client, &host).await;
    forget_steam_account(&client, &host).await;
    let receiver = testkit::Receiver::start("10.213.77.1", &[]);
    notifications_are_sent_from_the_host(&client, &host, &receiver, _data.path()).await;
    overlay_and_blueprint(&client).await;
    create_and_start_servers(&client, &host).await;
    dashboard_live(&client).await;
    a_schedule_is_kept_by_its_host(&client, &host).await;
    a_crash_on_the_host_reaches_the_dashboard(&client, &host, &notifications, _data.path()).await;
    the_crash_was_sent_from_the_host(&host, &receiver).await;
    a_refresh_waits_for_restarts(&client).await;
    server_log_and_rcon(&client, &host).await;
    blueprint_edit_at_restart(&client).await;
    cores_as_a_map(&client).await;
    backed_up_and_restored(&client, &host).await;
    an_update_rolls_across_the_servers(&client, &host).await;
    a_changed_blueprint_restarts_one_server_at_a_time(&client, &host).await;
    a_backup_becomes_a_new_server(&client, &host).await;
    stop_and_delete(&client).await;
    jobs_with_their_logs(&client).await;
    second_user_sees_none_of_it(&client).await;
    last_server_leaves_the_host_clean(&client, &host).await;

    close(client).await;
    drop(driver);
    drop(xvfb);
}

/// The first run: the first admin, logged in, with nothing to show yet.
pub(crate) async fn first_run(client: &Client) {
    type_into(client, "#first-run-form #username", "admin").await;
    type_into(client, "#password", "admin password").await;
    type_into(client, "#password-again", "admin password").await;
    click(client, "#account-submit").await;
    wait_for_text(client, "#current-user", "admin").await;
    wait_for_text(client, "#no-servers", "No servers yet").await;
}

/// Adds the host; its key is shown for comparison with what the host itself prints.
pub(crate) async fn add_host_and_trust_its_key(client: &Client, host: &TestHost) {
    let card = format!("#host-{}", host.name);
    click(client, "#nav-hosts").await;
    type_into(client, "#host-name", &host.name).await;
    type_into(client, "#host-address", &host.address).await;
    type_into(client, "#host-admin", SYSOP_USER).await;
    click(client, "#add-host").await;
    wait_for_text(client, &format!("{card} .state"), "new").await;
    click(client, &format!("{card} .check-key")).await;
    let shown = text_of(client, "#host-fingerprint").await;
    let on_host = host.run("root", "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
    assert_eq!(Some(shown.as_str()), on_host.split_whitespace().nth(1));
    screenshot(client, "host-key.png").await;
    click(client, "#host-key-dialog-confirm").await;
    wait_for_text(client, &format!("{card} .state"), "key confirmed").await;
}

/// Sets the host up with the sudo account's password; the card says it can run the game.
pub(crate) async fn set_up(client: &Client, host: &TestHost) {
    let card = format!("#host-{}", host.name);
    type_into(client, "#setup-password", SYSOP_PASSWORD).await;
    click(client, "#setup-submit").await;
    wait_for_text_within(
        client,
        &format!("{card} .state"),
        "ready",
        Duration::from_secs(120),
    )
    .await;
    wait_for_text(client, &format!("{card} .host-facts"), "Debian GNU/Linux").await;
    // Set-up installed the 32-bit runtime and probed the mounts: the card says the host
    // can run the game before anyone installs it.
    wait_for_text(client, &format!("{card} .readiness"), "yes").await;
}

/// Installs the game with a Steam account whose Steam Guard code is typed in the window,
/// with its progress bar.
async fn install_with_steam_guard(
    client: &Client,
    host: &TestHost,
    notifications: &crate::notifications::Recorder,
) {
    let card = format!("#host-{}", host.name);
    // Installs log in with a Steam account; this host is new to it, so Steam Guard wants
    // the code it e-mailed, which the admin types in the window.
    type_into(client, "#steam-user", STEAM_USER).await;
    type_into(client, "#steam-password", STEAM_PASSWORD).await;
    click(client, "#save-steam").await;
    wait_for_text(client, "#steam-account-name", STEAM_USER).await;
    click(client, &format!("{card} .install")).await;
    wait_for_text_within(
        client,
        &format!("{card} .job-error"),
        "Steam Guard",
        Duration::from_secs(120),
    )
    .await;
    screenshot(client, "steam-guard.png").await;
    // The failed job is also a desktop notification, for an admin looking elsewhere.
    let body = notifications
        .wait_for("Installing the game failed", Duration::from_secs(10))
        .await;
    assert!(body.contains("Steam Guard"), "{body}");
    type_into(client, &format!("#guard-code-{}", host.name), GUARD_CODE).await;
    click(client, &format!("{card} .guard-submit")).await;
    let progress = format!("{card} progress[value]");
    element(client, &progress).await;
    let words = text_of(client, &format!("{card} .progress-words")).await;
    assert!(words.contains("pass ") && words.contains(" of "), "{words}");
    screenshot(client, "host-install.png").await;
    let build = format!("{card} .installed-build");
    let deadline = Instant::now() + Duration::from_secs(180);
    while text_of(client, &build).await == "not installed" {
        assert!(Instant::now() < deadline, "the install never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks Steam for a new build: none, then one.
async fn check_for_updates(client: &Client, host: &TestHost) {
    let card = format!("#host-{}", host.name);
    // Steam publishes nothing new: the check says so; then a new build is out.
    click(client, &format!("{card} .check-update")).await;
    wait_for_text(client, &format!("{card} .up-to-date"), "the public build").await;
    host.run(
        "root",
        "echo 'build 16075999' >> /opt/left4me/steamcmd/current/stand-in-steam.conf",
    );
    click(client, &format!("{card} .check-update")).await;
    wait_for_text(
        client,
        &format!("{card} .update-available"),
        "update available: build 16075999",
    )
    .await;
    screenshot(client, "hosts.png").await;
}

/// Forgets the Steam account, here and in steamcmd's cache on the host.
async fn forget_steam_account(client: &Client, host: &TestHost) {
    // The login is cached on the host; forgetting the account removes it there too.
    let cached = "/opt/left4me/steamcmd/current/config/config.vdf";
    assert!(
        host.run("root", &format!("cat {cached}"))
            .contains(STEAM_USER)
    );
    click(client, "#forget-steam").await;
    element(client, "#steam-form").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while host.run("root", &format!("test -e {cached} && echo kept || true")) == "kept\n" {
        assert!(Instant::now() < deadline, "the host kept the cached login");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const WEBHOOK_TOKEN: &str = "e2e-webhook-token-90c2";

/// A Discord target added in the window (a plain-http URL off the host's network is refused
/// as it is typed), then a test sent by the host, which proves the host reaches it. The
/// webhook's token is in the credential store, not the database or the log.
async fn notifications_are_sent_from_the_host(
    client: &Client,
    host: &TestHost,
    receiver: &testkit::Receiver,
    data: &std::path::Path,
) {
    click(client, "#nav-hosts").await;
    type_into(client, "#notify-name", "ops").await;
    select(client, "#notify-kind", "Discord").await;
    type_into(
        client,
        "#notify-url",
        "http://discord.example/api/webhooks/1/x",
    )
    .await;
    wait_for_text(client, "#notify-url-hint", "use https").await;
    let url = format!("{}/api/webhooks/4242/{WEBHOOK_TOKEN}", receiver.base);
    type_into(client, "#notify-url", &url).await;
    wait_gone(client, "#notify-url-hint").await;
    click(client, "#add-target").await;
    wait_for_text(
        client,
        "#target-ops",
        &format!("Discord at {}", receiver.base),
    )
    .await;
    click(client, &format!("#host-{} .notify-test", host.name)).await;
    wait_for_text_within(
        client,
        &format!("#notify-test-{}", host.name),
        "ops: delivered (HTTP 204)",
        Duration::from_secs(30),
    )
    .await;
    screenshot(client, "notifications.png").await;
    let sent = receiver.delivered();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].path, format!("/api/webhooks/4242/{WEBHOOK_TOKEN}"));
    assert_eq!(
        sent[0].json()["embeds"][0]["title"],
        format!("Test from left4me on {}", host.name)
    );
    for entry in std::fs::read_dir(data).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !bytes
                    .windows(WEBHOOK_TOKEN.len())
                    .any(|w| w == WEBHOOK_TOKEN.as_bytes()),
                "the token is in {}",
                entry.path().display()
            );
        }
    }
    let log = std::fs::read_to_string(data.join("logs/left4me.log")).unwrap_or_default();
    assert!(!log.contains(WEBHOOK_TOKEN));
}

/// The crash went to the Discord target too, from the host.
async fn the_crash_was_sent_from_the_host(host: &TestHost, receiver: &testkit::Receiver) {
    let sent = receiver.wait_for(2, Duration::from_secs(20));
    let title = sent
        .get(1)
        .map(|r| r.json()["embeds"][0]["title"].clone())
        .unwrap_or_default();
    assert_eq!(
        title,
        format!("coop-a crashed on {}", host.name),
        "{sent:?}"
    );
}

/// An overlay from a script, and a blueprint that uses it, its cvar checked as it is typed.
async fn overlay_and_blueprint(client: &Client) {
    click(client, "#nav-overlays").await;
    type_into(client, "#overlay-name", "e2e-cfg").await;
    click(client, "#overlay-kind-script").await;
    // WebDriver types a line break as the Enter key.
    type_into(client, "#overlay-script", &SCRIPT.replace('\n', "\u{E007}")).await;
    click(client, "#create-overlay").await;
    wait_for_text(client, "#overlay-e2e-cfg", "script, 3 lines").await;
    screenshot(client, "overlays.png").await;

    click(client, "#nav-blueprints").await;
    click(client, "#new-blueprint").await;
    type_into(client, "#blueprint-name", "Coop e2e").await;
    select(client, "#blueprint-add-overlay", "e2e-cfg").await;
    click(client, "#blueprint-add-overlay-button").await;
    type_into(client, "#blueprint-map", "c2m1_highway").await;
    // A cvar is checked as it is typed.
    click(client, "#add-cvar").await;
    type_into(client, "#cvar-0-name", "hostname").await;
    type_into(client, "#cvar-0-value", "bad\"; quit").await;
    wait_for_text(client, "#cvar-0-hint", "double quotes are not allowed").await;
    let save = client.find(Locator::Css("#save-blueprint")).await.unwrap();
    assert!(save.attr("disabled").await.unwrap().is_some());
    screenshot(client, "blueprint-editor.png").await;
    type_into(client, "#cvar-0-value", "left4me e2e").await;
    wait_gone(client, "#cvar-0-hint").await;
    click(client, "#save-blueprint").await;
    wait_for_text(client, "#blueprints-table", "Coop e2e").await;
}

/// Two servers, started; a third on a taken port is refused where it was asked for.
async fn create_and_start_servers(client: &Client, host: &TestHost) {
    click(client, "#nav-servers").await;
    for (name, port) in [
        ("coop-a", "27015"),
        ("coop-b", "27016"),
        ("coop-c", "27015"),
    ] {
        type_into(client, "#server-name", name).await;
        select(client, "#server-host", &host.name).await;
        select(client, "#server-blueprint", "Coop e2e").await;
        type_into(client, "#server-port", port).await;
        click(client, "#create-server").await;
        if name == "coop-c" {
            wait_for_text(client, "#new-server-form .notice-error", "27015").await;
        } else {
            wait_for_text(client, &format!("#server-{name}"), name).await;
        }
    }
    click(client, r#"button[aria-label="Start coop-a"]"#).await;
    click(client, r#"button[aria-label="Start coop-b"]"#).await;
    screenshot(client, "servers.png").await;
}

/// The dashboard shows them running with the map and the players, without a reload, and
/// fits the smallest window the app allows for.
async fn dashboard_live(client: &Client) {
    click(client, "#nav-dashboard").await;
    for name in ["coop-a", "coop-b"] {
        let card = format!("#card-{name}");
        wait_for_text_within(
            client,
            &format!("{card} .state"),
            "running",
            Duration::from_secs(120),
        )
        .await;
        wait_for_text(client, &format!("{card} .map"), "c2m1_highway").await;
        wait_for_text(client, &format!("{card} .players"), "3/8").await;
    }
    screenshot(client, "dashboard.png").await;
    // The smallest window the app allows for: nothing runs off the side.
    client.set_window_size(1024, 768).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fits = client
        .execute(
            "const row = (css) => document.querySelector(css).getBoundingClientRect().top; \
             return document.documentElement.scrollWidth <= window.innerWidth \
                 && Math.abs(row('#logout') - row('#nav-dashboard')) < 16;",
            vec![],
        )
        .await
        .unwrap();
    screenshot(client, "dashboard-1024x768.png").await;
    assert_eq!(
        fits.as_bool(),
        Some(true),
        "the dashboard fits 1024 px, its header on one line"
    );
}

/// A schedule made on the host card: read by the host's systemd in this computer's time
/// zone before it can be saved, a restart every 20 minutes held back until confirmed, then
/// kept by the host as a timer of its own.
async fn a_schedule_is_kept_by_its_host(client: &Client, host: &TestHost) {
    let h = &host.name;
    click(client, "#nav-hosts").await;
    click(client, &format!("#host-{h} .schedules-toggle")).await;
    let panel = format!("#schedules-{h}");
    wait_for_text(
        client,
        &format!("{panel} .no-schedules"),
        "No schedules on this host.",
    )
    .await;
    type_into(client, &format!("#schedule-name-{h}"), "weekday-restart").await;
    select(client, &format!("#schedule-server-{h}"), "coop-b").await;
    type_into(client, &format!("#schedule-calendar-{h}"), "*:0/20").await;
    click(client, &format!("{panel} .schedule-preview")).await;
    wait_for_text(
        client,
        &format!("{panel} .schedule-next"),
        "this restarts the server every 20 min",
    )
    .await;
    let save = element(client, &format!("{panel} .schedule-save")).await;
    assert!(
        save.attr("disabled").await.unwrap().is_some(),
        "a frequent restart needs its confirmation"
    );
    scroll_to(client, &format!("{panel} .schedule-next")).await;
    screenshot(client, "schedule-warning.png").await;
    // A changed calendar needs a new preview.
    type_into(client, &format!("#schedule-calendar-{h}"), "Mon..Fri 06:30").await;
    wait_gone(client, &format!("{panel} .schedule-next")).await;
    click(client, &format!("{panel} .schedule-preview")).await;
    wait_for_text(
        client,
        &format!("{panel} .schedule-next"),
        "Mon..Fri *-*-* 06:30:00",
    )
    .await;
    click(client, &format!("{panel} .schedule-save")).await;
    wait_for_text_within(
        client,
        "#schedule-weekday-restart",
        "restart coop-b, waiting up to 30 min for players to leave",
        Duration::from_secs(30),
    )
    .await;
    scroll_to(client, "#schedule-weekday-restart").await;
    screenshot(client, "schedules.png").await;
    // The host keeps it, and runs it with its own timer.
    let listed = host.run(
        "root",
        "runuser -u left4me -- /opt/left4me/l4d2-agent schedule list --json",
    );
    assert!(
        listed.contains(r#""calendar":"Mon..Fri 06:30""#),
        "{listed}"
    );
    assert!(listed.contains(r#""server":"coop-b""#), "{listed}");
    assert_eq!(
        host.run(
            "root",
            "systemctl is-active left4me-schedule-weekday-restart.timer"
        )
        .trim(),
        "active"
    );
    click(
        client,
        r#"button[aria-label="Remove schedule weekday-restart"]"#,
    )
    .await;
    wait_for_text(
        client,
        &format!("{panel} .no-schedules"),
        "No schedules on this host.",
    )
    .await;
    let timers = host.run("root", "systemctl list-timers --all --no-legend");
    assert!(!timers.contains("left4me-schedule-"), "{timers}");
    click(client, "#nav-dashboard").await;
}

/// coop-a's game crashes on the host: the host records it, and the dashboard shows it
/// with the cause and the console's last lines, a desktop notification tells it, and the
/// jobs screen keeps it after it is dismissed. systemd has the server running again.
async fn a_crash_on_the_host_reaches_the_dashboard(
    client: &Client,
    host: &TestHost,
    notifications: &crate::notifications::Recorder,
    data: &std::path::Path,
) {
    // (As root: the app's key is the only one left4me takes on this host.)
    let _ = host.ssh(
        "root",
        "runuser -u left4me -- /opt/left4me/l4d2-agent rcon coop-a stand_in_crash",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let away = client
            .execute(
                "const e = document.querySelector('#away'); return e ? e.textContent : '';",
                vec![],
            )
            .await
            .unwrap();
        if away.as_str().unwrap_or("").contains("coop-a crashed") {
            break;
        }
        if Instant::now() > deadline {
            screenshot(client, "failed.png").await;
            let outbox = host.run(
                "root",
                "runuser -u left4me -- /opt/left4me/l4d2-agent events",
            );
            let log = std::fs::read_to_string(data.join("logs/left4me.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "the dashboard never showed the crash; the host's events:\n{outbox}\nthe app's log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let away = text_of(client, "#away").await;
    assert!(away.contains("was killed by SIGSEGV"), "{away}");
    assert!(
        away.contains("Hosts keep their events for 30 days"),
        "{away}"
    );
    click(client, "#away .host-event details summary").await;
    wait_for_text(
        client,
        "#away pre.console",
        "Segmentation fault (core dumped)",
    )
    .await;
    screenshot(client, "away.png").await;
    let body = notifications
        .wait_for(
            &format!("coop-a crashed ({})", host.name),
            Duration::from_secs(10),
        )
        .await;
    assert!(body.contains("SIGSEGV"), "{body}");
    click(client, "#away-dismiss").await;
    wait_gone(client, "#away").await;
    click(client, "#nav-jobs").await;
    wait_for_text(client, "#host-event-log", "coop-a crashed").await;
    click(client, "#nav-dashboard").await;
    wait_for_text_within(
        client,
        "#card-coop-a .state",
        "running",
        Duration::from_secs(60),
    )
    .await;
}

/// The overlay refreshed while both servers run it: its new version waits, the overlay's
/// card names the servers still on the old one, and each is restarted from there in turn.
async fn a_refresh_waits_for_restarts(client: &Client) {
    click(client, "#nav-overlays").await;
    click(client, "#overlay-e2e-cfg-refresh").await;
    let pending = "#overlay-e2e-cfg-pending";
    wait_for_text_within(client, pending, "coop-a", Duration::from_secs(120)).await;
    wait_for_text(client, pending, "coop-b").await;
    wait_for_text(
        client,
        "#overlay-e2e-cfg",
        "new version waits for a restart",
    )
    .await;
    client
        .execute(
            "document.querySelector('#overlay-e2e-cfg-pending').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    screenshot(client, "overlay-refresh-waits.png").await;
    click(
        client,
        r#"button[aria-label="Restart coop-a with the new version"]"#,
    )
    .await;
    // Its start applied the new version; coop-b still runs the old one, and says so.
    let deadline = Instant::now() + Duration::from_secs(120);
    while text_of(client, pending).await.contains("coop-a") {
        assert!(Instant::now() < deadline, "coop-a is still listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_text(client, pending, "coop-b").await;
    click(
        client,
        r#"button[aria-label="Restart coop-b with the new version"]"#,
    )
    .await;
    wait_gone(client, pending).await;
    let card = text_of(client, "#overlay-e2e-cfg").await;
    assert!(!card.contains("waits for a restart"), "{card}");
    click(client, "#nav-dashboard").await;
    for card in ["#card-coop-a .state", "#card-coop-b .state"] {
        wait_for_text_within(client, card, "running", Duration::from_secs(120)).await;
    }
}

/// The server's page: its log as it is written, and RCON.
async fn server_log_and_rcon(client: &Client, host: &TestHost) {
    click(client, r#"button[aria-label="Open coop-a"]"#).await;
    wait_for_text(client, "#server-log", "Mapchange to c2m1_highway").await;
    // Who is playing, by name, from the status feed.
    for name in ["Ellis", "Nick", "Rochelle"] {
        wait_for_text(client, "#server-player-list", name).await;
    }
    type_into(client, "#rcon-command", "say hello from the window").await;
    click(client, "#rcon-send").await;
    wait_for_text(client, "#server-log", "Console: hello from the window").await;
    type_into(client, "#rcon-command", "status").await;
    click(client, "#rcon-send").await;
    wait_for_text(client, "#rcon-output", "map     : c2m1_highway").await;
    // The connection that carries the log ends (here: its agent is killed on the host).
    // The page says so instead of waiting for lines that cannot come, and follows again.
    assert!(client.find(Locator::Css("#log-ended")).await.is_err());
    // (The brackets keep pkill from matching the shell that runs it.)
    host.run("root", "pkill -f 'l4d2-agen[t].* logs coop-a .*--follo[w]'");
    wait_for_text(client, "#log-ended", "stopped following").await;
    click(client, "#log-follow-again").await;
    wait_gone(client, "#log-ended").await;
    wait_for_text(client, "#server-log", "Mapchange to c2m1_highway").await;
    type_into(client, "#rcon-command", "say followed again").await;
    click(client, "#rcon-send").await;
    wait_for_text(client, "#server-log", "Console: followed again").await;
    // The search keeps the lines that match, in any case (the host's journal also holds
    // earlier runs of a server of this name).
    type_into(client, "#log-search", "mapchange").await;
    let counts = wait_for_text(client, "#log-counts", "matching").await;
    let shown = text_of(client, "#server-log").await;
    assert!(
        shown.lines().all(|l| l.contains("Mapchange to ")),
        "{shown}"
    );
    assert!(
        counts.contains(&format!("{} matching", shown.lines().count())),
        "{counts}"
    );
    screenshot(client, "server.png").await;
}

/// An edit of the blueprint reaches the server at its restart.
async fn blueprint_edit_at_restart(client: &Client) {
    click(client, "#nav-blueprints").await;
    click(client, r#"button[aria-label="Edit Coop e2e"]"#).await;
    type_into(client, "#blueprint-map", "c3m1_plankcountry").await;
    // Limits, checked as they are typed: the soft memory limit must be below the hard one.
    type_into(client, "#blueprint-memory-max", "1536").await;
    type_into(client, "#blueprint-memory-high", "2048").await;
    wait_for_text(client, "#blueprint-limits-hint", "must be below memory_max").await;
    // (Typed away key by key: a cleared field tells the page nothing.)
    type_into(client, "#blueprint-memory-high", "1\u{E003}").await;
    wait_gone(client, "#blueprint-limits-hint").await;
    type_into(client, "#blueprint-cpu-weight", "1000").await;
    scroll_to(client, "#blueprint-limits").await;
    screenshot(client, "blueprint-limits.png").await;
    click(client, "#save-blueprint").await;
    wait_for_text(client, "#blueprints-table", "c3m1_plankcountry").await;
    wait_for_text(
        client,
        "#limits-now",
        "coop-a, coop-b get the new limits at their restart, with their other changes.",
    )
    .await;
    click(client, "#nav-servers").await;
    wait_for_text(client, "#server-coop-a", "(changed)").await;
    click(client, r#"button[aria-label="Restart coop-a"]"#).await;
    click(client, "#nav-dashboard").await;
    wait_for_text_within(
        client,
        "#card-coop-a .map",
        "c3m1_plankcountry",
        Duration::from_secs(120),
    )
    .await;
    // The restart set the limits on its unit; the server page shows them at work, and the
    // game keeping its tickrate.
    click(client, r#"button[aria-label="Open coop-a"]"#).await;
    click(client, "#usage-refresh").await;
    wait_for_text_within(
        client,
        "#usage-limits",
        "MemoryMax=1610612736",
        Duration::from_secs(20),
    )
    .await;
    wait_for_text(client, "#usage-limits", "CPUWeight=1000").await;
    wait_for_text(client, "#usage-fps", "29.97 fps at tickrate 30").await;
    wait_for_text(client, "#usage-oom", "0").await;
    scroll_to(client, "#server-usage").await;
    screenshot(client, "server-resources.png").await;
    // Now only the limits change: coop-a (restarted, nothing else waiting) gets them at
    // once; coop-b still waits for its restart, with the map.
    click(client, "#nav-blueprints").await;
    click(client, r#"button[aria-label="Edit Coop e2e"]"#).await;
    type_into(client, "#blueprint-cpu-weight", "500").await;
    click(client, "#save-blueprint").await;
    wait_for_text(client, "#limits-now", "New limits go to coop-a now").await;
    wait_for_text(
        client,
        "#limits-now",
        "coop-b gets the new limits at its restart, with its other changes.",
    )
    .await;
    screenshot(client, "blueprint-limits-now.png").await;
    click(client, "#nav-dashboard").await;
    click(client, r#"button[aria-label="Open coop-a"]"#).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        click(client, "#usage-refresh").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if text_of(client, "#usage-limits")
            .await
            .contains("CPUWeight=500")
        {
            break;
        }
        assert!(Instant::now() < deadline, "CPUWeight=500 never showed");
    }
}

/// Pinning to cores, on the server's page: the host's cores as a map, each with its
/// hardware threads. A host that cannot pin (cgroup v1, as test hosts on a hybrid machine
/// are) shows the map with the reason and takes no pick; one that can takes a pick and
/// gives it back.
async fn cores_as_a_map(client: &Client) {
    scroll_to(client, "#server-cores").await;
    wait_for_text(client, "#core-0", "core 0").await;
    assert!(text_of(client, "#core-0").await.contains("CPU 0"));
    let first = client.find(Locator::Css("#core-0")).await.unwrap();
    if client.find(Locator::Css("#cores-refused")).await.is_ok() {
        let why = text_of(client, "#cores-refused").await;
        assert!(why.contains("pinning to cores needs"), "{why}");
        assert!(first.attr("disabled").await.unwrap().is_some());
        screenshot(client, "server-cores.png").await;
    } else {
        click(client, "#core-0").await;
        wait_for_text(client, "#cores-save", "Pin to 1 core").await;
        click(client, "#cores-save").await;
        // Nothing else waits for coop-a's restart: the pin is in force at once.
        wait_for_text(client, "#cores-saved", "in force at once while it runs").await;
        screenshot(client, "server-cores.png").await;
        click(client, "#core-0").await;
        wait_for_text(client, "#cores-save", "Unpin").await;
        click(client, "#cores-save").await;
        wait_for_text(client, "#cores-saved", "in force at once").await;
    }
}

/// A backup made from the server's page is kept on the host and copied to this computer;
/// restoring it, after a confirmation, brings back the file the game had since and keeps
/// the server as it was as a backup of its own.
async fn backed_up_and_restored(client: &Client, host: &TestHost) {
    let merged = "/var/lib/left4me/runtime/coop-a/merged/left4dead2";
    scroll_to(client, "#server-backups").await;
    click(client, "#backup-now").await;
    wait_for_text_within(client, "#backups-table", "by hand", Duration::from_secs(60)).await;
    wait_for_text_within(
        client,
        "#backups-table .backup-copy",
        "yes",
        Duration::from_secs(30),
    )
    .await;
    // Changed after the backup: the restore takes it away again.
    host.run(
        "root",
        &format!("su -s /bin/sh left4me-game -c 'echo later > {merged}/later.txt'"),
    );
    click(client, "#backups-table .backup-restore").await;
    wait_for_text(client, "#backup-restore-dialog", "Restore coop-a from").await;
    screenshot(client, "server-backups.png").await;
    click(client, "#backup-restore-confirm").await;
    wait_for_text_within(
        client,
        "#backups-table",
        "before a restore",
        Duration::from_secs(120),
    )
    .await;
    // The undo backup is listed while the restore still runs: the job is over when the
    // server's buttons take clicks again.
    wait_gone(client, "#server-restart[disabled]").await;
    wait_for_text_within(client, "#server-state", "running", Duration::from_secs(60)).await;
    assert!(
        !host
            .ssh("root", &format!("test -e {merged}/later.txt"))
            .status
            .success()
    );
}

/// A game update is built beside the running servers, then rolled across them from the
/// host card: the canary the admin chose first, checked on the new build, then the other;
/// the old build is removed once no server runs it.
async fn an_update_rolls_across_the_servers(client: &Client, host: &TestHost) {
    let card = format!("#host-{}", host.name);
    let builds = format!("#builds-{}", host.name);
    click(client, "#nav-hosts").await;
    // Anonymously now that the account is forgotten: the build Steam published earlier.
    click(client, &format!("{card} .install")).await;
    wait_for_text_within(
        client,
        &format!("{card} .installed-build"),
        "16075999",
        Duration::from_secs(180),
    )
    .await;
    click(client, &format!("{card} .builds-toggle")).await;
    wait_for_text(
        client,
        &format!("{builds} .rollout-form"),
        "2 running servers are on an older build than the current one: coop-a, coop-b.",
    )
    .await;
    select(client, &format!("#rollout-canary-{}", host.name), "coop-b").await;
    // Their players (the stand-in's three) are not waited for; the canary is watched 10 s.
    type_into(client, &format!("#rollout-drain-{}", host.name), "0").await;
    type_into(client, &format!("#rollout-check-{}", host.name), "10").await;
    click(client, &format!("{builds} .rollout-start")).await;
    wait_for_text(client, &format!("#rollout-{}-coop-b", host.name), "canary").await;
    screenshot(client, "rollout.png").await;
    wait_for_text_within(
        client,
        &format!("#rollout-{} .rollout-state", host.name),
        "Rollout to build 16075999: done · 2 of 2 servers on build 16075999",
        Duration::from_secs(180),
    )
    .await;
    wait_for_text(
        client,
        &format!("#rollout-{}-coop-a", host.name),
        "on the new build",
    )
    .await;
    wait_for_text(
        client,
        &format!("{builds} .build-list"),
        "runs coop-a, coop-b",
    )
    .await;
    let listed = client
        .find_all(Locator::Css(&format!("{builds} .build-list li")))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "the old build is gone");
    screenshot(client, "rollout-done.png").await;
}

/// The blueprint of coop-a and coop-b changes while they run: from the host's builds panel,
/// the app hands them their new specs and the host restarts them one at a time, the chosen
/// one first.
async fn a_changed_blueprint_restarts_one_server_at_a_time(client: &Client, host: &TestHost) {
    let name = &host.name;
    click(client, "#nav-blueprints").await;
    click(client, r#"button[aria-label="Edit Coop e2e"]"#).await;
    type_into(client, "#blueprint-map", "c4m1_milltown_a").await;
    click(client, "#save-blueprint").await;
    wait_for_text(client, "#blueprints-table", "c4m1_milltown_a").await;
    click(client, "#nav-hosts").await;
    let toggle = format!("#host-{name} .builds-toggle");
    if element(client, &toggle)
        .await
        .attr("aria-expanded")
        .await
        .unwrap()
        .as_deref()
        != Some("true")
    {
        click(client, &toggle).await;
    }
    wait_for_text(
        client,
        &format!("#changes-{name}"),
        "Changes wait for a restart on 2 running servers:",
    )
    .await;
    wait_for_text(
        client,
        &format!("#changes-{name}-coop-a"),
        "coop-a: its blueprint changed",
    )
    .await;
    select(client, &format!("#changes-canary-{name}"), "coop-b").await;
    type_into(client, &format!("#changes-drain-{name}"), "0").await;
    type_into(client, &format!("#changes-check-{name}"), "10").await;
    scroll_to(client, &format!("#changes-{name}")).await;
    screenshot(client, "changes-waiting.png").await;
    click(client, &format!("#changes-{name} .changes-start")).await;
    wait_for_text_within(
        client,
        &format!("#rollout-{name} .rollout-state"),
        "Restart with changes: running",
        Duration::from_secs(60),
    )
    .await;
    wait_for_text(client, &format!("#rollout-{name}-coop-b"), "canary").await;
    screenshot(client, "changes-rollout.png").await;
    wait_for_text_within(
        client,
        &format!("#rollout-{name} .rollout-state"),
        "Restart with changes: done · 2 of 2 servers restarted with their changes",
        Duration::from_secs(180),
    )
    .await;
    wait_for_text(
        client,
        &format!("#rollout-{name}-coop-a"),
        "restarted with its changes",
    )
    .await;
    wait_gone(client, &format!("#changes-{name}")).await;
    click(client, "#nav-dashboard").await;
    for server in ["coop-a", "coop-b"] {
        wait_for_text_within(
            client,
            &format!("#card-{server} .map"),
            "c4m1_milltown_a",
            Duration::from_secs(30),
        )
        .await;
    }
}

/// coop-a's newest backup (the undo of its restore, which still had `later.txt`) becomes a
/// new server beside it, left stopped with those files; then it is deleted again.
async fn a_backup_becomes_a_new_server(client: &Client, host: &TestHost) {
    click(client, "#nav-dashboard").await;
    click(client, r#"button[aria-label="Open coop-a"]"#).await;
    scroll_to(client, "#server-backups").await;
    click(client, "#backups-table .backup-as-new").await;
    wait_for_text(client, "#restore-as-new", "A new server from backup").await;
    type_into(client, "#restore-as-new-name", "coop-z").await;
    type_into(client, "#restore-as-new-port", "27017").await;
    screenshot(client, "restore-as-new.png").await;
    click(client, "#restore-as-new-submit").await;
    wait_for_text(
        client,
        "#restore-as-new .made",
        &format!("Making coop-z on {}", host.name),
    )
    .await;
    click(client, "#nav-servers").await;
    wait_for_text_within(
        client,
        "#server-coop-z .state",
        "stopped",
        Duration::from_secs(60),
    )
    .await;
    let upper = "/var/lib/left4me/runtime/coop-z/upper/left4dead2";
    let deadline = Instant::now() + Duration::from_secs(60);
    while !host
        .ssh("root", &format!("test -e {upper}/later.txt"))
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "coop-z never got later.txt");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    click(client, r#"button[aria-label="Delete coop-z"]"#).await;
    click(client, "#delete-server-dialog-confirm").await;
    wait_gone(client, "#server-coop-z").await;
}

/// Stops one server and deletes it after confirming.
async fn stop_and_delete(client: &Client) {
    click(client, "#nav-servers").await;
    click(client, r#"button[aria-label="Stop coop-b"]"#).await;
    wait_for_text_within(
        client,
        "#server-coop-b .state",
        "stopped",
        Duration::from_secs(60),
    )
    .await;
    click(client, r#"button[aria-label="Delete coop-b"]"#).await;
    wait_for_text(client, "#delete-server-dialog", "Delete coop-b?").await;
    click(client, "#delete-server-dialog-confirm").await;
    wait_gone(client, "#server-coop-b").await;
}

/// Every step was a job, with its log.
async fn jobs_with_their_logs(client: &Client) {
    click(client, "#nav-jobs").await;
    wait_for_text(client, "#jobs-table", "install").await;
    // The one that failed is the install that waited for the Steam Guard code.
    select(client, "#jobs-state", "failed").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed_id = loop {
        let rows = client
            .find_all(Locator::Css("#jobs-table tr.job"))
            .await
            .unwrap_or_default();
        // The table is drawn again as jobs come and go: a row read mid-redraw is stale, and
        // the next look reads the new one.
        let mut states = Vec::new();
        for row in &rows {
            states.push(row.attr("class").await.ok().flatten().unwrap_or_default());
        }
        if states.len() == 1
            && states[0].contains("failed")
            && let Ok(Some(id)) = rows[0].attr("id").await
        {
            break id;
        }
        assert!(Instant::now() < deadline, "not one failed job: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    click(client, &format!("#{failed_id} button")).await;
    wait_for_text(client, &format!("#{failed_id}-log"), "Steam Guard").await;
    select(client, "#jobs-state", "Any state").await;
    let install_row = client
        .find(Locator::XPath(
            "//tr[contains(@class,'job') and contains(@class,'succeeded')][td[2][normalize-space()='install']]",
        ))
        .await
        .expect("the install job");
    let id = install_row.attr("id").await.unwrap().unwrap();
    click(client, &format!("#{id} button")).await;
    wait_for_text(client, &format!("#{id}-log"), "[").await;
    screenshot(client, "jobs.png").await;
}

/// A second user sees none of the first one's things.
async fn second_user_sees_none_of_it(client: &Client) {
    click(client, "#nav-accounts").await;
    type_into(client, "#new-username", "bob").await;
    type_into(client, "#new-password", "bob password").await;
    click(client, "#create-user").await;
    wait_for_text(client, "#user-bob", "bob").await;
    click(client, "#logout").await;
    log_in(client, "bob", "bob password").await;
    wait_for_text(client, "#no-servers", "No servers yet").await;
    click(client, "#nav-blueprints").await;
    wait_for_text(client, "#blueprints-title", "Blueprints").await;
    assert!(
        client
            .find(Locator::Css("#blueprints-table"))
            .await
            .is_err(),
        "bob sees no blueprints"
    );
    click(client, "#nav-overlays").await;
    wait_for_text(client, "#overlays-list", "sourcemod").await;
    assert!(
        client.find(Locator::Css("#overlay-e2e-cfg")).await.is_err(),
        "bob does not see admin's own overlay"
    );
}

/// Back as the admin: the last server goes, and the host is left clean.
async fn last_server_leaves_the_host_clean(client: &Client, host: &TestHost) {
    click(client, "#logout").await;
    log_in(client, "admin", "admin password").await;
    click(client, "#nav-servers").await;
    click(client, r#"button[aria-label="Delete coop-a"]"#).await;
    click(client, "#delete-server-dialog-confirm").await;
    wait_gone(client, "#server-coop-a").await;
    let units = host.run(
        "root",
        "systemctl list-units --all --plain --no-legend 'left4me-server@*' | wc -l",
    );
    assert_eq!(units.trim(), "0", "no server unit left on the host");
}

/// Scrolls the element to the middle of the window, for a screenshot of it (once the page
/// shows it: a page just opened may still be drawing).
async fn scroll_to(client: &Client, css: &str) {
    element(client, css).await;
    client
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
            vec![css.into()],
        )
        .await
        .unwrap();
}
