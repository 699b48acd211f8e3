//! A private Secret Service for the test run: a D-Bus session bus of its own with
//! gnome-keyring on it, unlocked, in a throw-away folder. The keyring tests use the real
//! store this way without touching the user's own keyring or needing a desktop session.

use crate::Result;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SecretService {
    /// The bus address to put in `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
    dir: PathBuf,
    bus: Child,
    keyring: Option<Child>,
}

impl SecretService {
    pub fn start() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("left4me-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run"))?;
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", dir.join("bus").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start dbus-daemon (apt package dbus-daemon): {e}"))?;
        let mut address = String::new();
        BufReader::new(bus.stdout.take().expect("piped"))
            .read_line(&mut address)
            .map_err(|e| format!("dbus-daemon printed no address: {e}"))?;
        let address = address.trim().to_owned();
        let mut service = Self {
            address,
            dir,
            bus,
            keyring: None,
        };
        // A non-empty password: with an empty one gnome-keyring makes no default collection.
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &service.address)
            .env("HOME", &service.dir)
            .env("XDG_DATA_HOME", service.dir.join("data"))
            .env("XDG_RUNTIME_DIR", service.dir.join("run"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start gnome-keyring-daemon (apt package gnome-keyring): {e}")
            })?;
        keyring
            .stdin
            .take()
            .expect("piped")
            .write_all(b"left4me test keyring")?;
        service.keyring = Some(keyring);
        service.wait_for_owner()?;
        eprintln!("private Secret Service on {}", service.address);
        Ok(service)
    }

    fn wait_for_owner(&self) -> Result {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = Command::new("dbus-send")
                .arg(format!("--bus={}", self.address))
                .args([
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()?;
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(
                    "gnome-keyring did not take org.freedesktop.secrets within 15 s".into(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in self.keyring.iter_mut().chain([&mut self.bus]) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
