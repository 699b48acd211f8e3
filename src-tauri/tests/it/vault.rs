//! A computer with no OS credential store: the window offers the local vault, makes it with
//! the admin's passphrase, and asks for it at the next start. The app runs on a D-Bus
//! session of its own with nothing on it (no Secret Service, and no activation of one).

use crate::flow::{first_run, log_in};
use crate::support::{click, close, open_app_in, screenshot, text_of, type_into, wait_for_text};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const PASSPHRASE: &str = "a passphrase for the vault";

/// A session bus with nothing on it, stopped on drop; a keyring can be started on it later.
struct BareBus {
    child: Child,
    address: String,
    keyring: Option<Child>,
    dir: tempfile::TempDir,
}

impl BareBus {
    fn start() -> BareBus {
        let dir = tempfile::tempdir().unwrap();
        // No <servicedir>: nothing is started on demand, so no keyring appears.
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        BareBus {
            child,
            address: address.trim().to_owned(),
            keyring: None,
            dir,
        }
    }

    /// Starts gnome-keyring's Secret Service on the bus, unlocked, as a desktop session
    /// would once the admin installs one; returns when it answers.
    fn start_keyring(&mut self) {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(home.join("run")).unwrap();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon");
        use std::io::Write as _;
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(b"keyring of the vault test")
            .unwrap();
        self.keyring = Some(keyring);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let owner = Command::new("dbus-send")
                .arg(format!("--bus={}", self.address))
                .args([
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&owner.stdout).contains("boolean true") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the keyring did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for BareBus {
    fn drop(&mut self) {
        if let Some(mut keyring) = self.keyring.take() {
            let _ = keyring.kill();
            let _ = keyring.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `needle` is anywhere in the files of `dir` whose names start with `prefix`.
fn found_in(dir: &Path, prefix: &str, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let entry = entry.unwrap();
        entry.file_name().to_string_lossy().starts_with(prefix)
            && std::fs::read(entry.path())
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
    })
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Xvfb, WebKitWebDriver and tauri-driver: run `cargo xtask test`"]
async fn without_a_credential_store_the_secrets_go_to_a_vault_opened_by_its_passphrase() {
    let mut bus = BareBus::start();
    let env = [("DBUS_SESSION_BUS_ADDRESS", bus.address.clone())];
    let app = Path::new(env!("CARGO_BIN_EXE_left4me"));
    let (data, xvfb, driver, client) = open_app_in(app, tempfile::tempdir().unwrap(), &env).await;

    // Said plainly, with the store's own complaint, and a way on.
    wait_for_text(
        &client,
        "#vault-title",
        "No credential store on this computer",
    )
    .await;
    assert!(!text_of(&client, "#vault-reason").await.is_empty());
    type_into(&client, "#vault-passphrase", "too short").await;
    wait_for_text(&client, "#vault-passphrase-hint", "at least 10 characters").await;
    type_into(&client, "#vault-passphrase", PASSPHRASE).await;
    type_into(&client, "#vault-passphrase-again", PASSPHRASE).await;
    screenshot(&client, "vault-create.png").await;
    click(&client, "#vault-submit").await;
    // The app starts on the vault: its first run makes the app's SSH key, a secret.
    first_run(&client).await;
    let vault = data.path().join("vault");
    assert!(vault.is_file(), "the vault file");
    assert!(
        !found_in(data.path(), "vault", b"OPENSSH"),
        "the key is sealed in the vault"
    );
    assert!(
        !found_in(data.path(), "left4me.db", b"OPENSSH"),
        "no secret in SQLite"
    );
    assert!(
        !found_in(&data.path().join("logs"), "left4me", PASSPHRASE.as_bytes()),
        "no passphrase in the log"
    );
    close(client).await;
    drop(driver);
    drop(xvfb);

    // The next start asks for the passphrase; a wrong one changes nothing.
    let (data, xvfb, driver, client) = open_app_in(app, data, &env).await;
    wait_for_text(&client, "#vault-title", "Open the vault").await;
    type_into(&client, "#vault-passphrase", "not the passphrase at all").await;
    click(&client, "#vault-submit").await;
    wait_for_text(&client, "#vault-form", "the passphrase is wrong").await;
    screenshot(&client, "vault-wrong-passphrase.png").await;
    type_into(&client, "#vault-passphrase", PASSPHRASE).await;
    click(&client, "#vault-submit").await;
    log_in(&client, "admin", "admin password").await;
    assert!(data.path().join("vault").is_file());

    // A credential store appears; the About page moves the secrets there, and the vault goes.
    click(&client, "#nav-about").await;
    wait_for_text(&client, "#secrets-place", "local vault").await;
    bus.start_keyring();
    click(&client, "#nav-dashboard").await;
    click(&client, "#nav-about").await;
    click(&client, "#move-secrets").await;
    wait_for_text(
        &client,
        "#secrets-moved",
        "Moved 1 secret; the vault is removed",
    )
    .await;
    wait_for_text(&client, "#secrets-place", "kept in Secret Service").await;
    screenshot(&client, "vault-moved.png").await;
    assert!(!data.path().join("vault").exists());
    // The app's SSH key is in the keyring now, as another client sees it.
    let install: String = rusqlite::Connection::open(data.path().join("left4me.db"))
        .unwrap()
        .query_row(
            "SELECT value FROM app_meta WHERE key = 'install_id'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let key = Command::new("secret-tool")
        .args(["lookup", "service", "left4me", "username"])
        .arg(format!("{install}/app/ssh-key"))
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&key.stdout).contains("OPENSSH PRIVATE KEY"),
        "the key moved into the keyring"
    );
    close(client).await;
    drop(driver);
    drop(xvfb);

    // And the next start asks for nothing: the secrets are in the OS store.
    let (_data, xvfb, driver, client) = open_app_in(app, data, &env).await;
    log_in(&client, "admin", "admin password").await;
    close(client).await;
    drop(driver);
    drop(xvfb);
}
