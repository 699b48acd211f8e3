//! The real Secret Service: `cargo xtask test` runs one on a private D-Bus session
//! (gnome-keyring, unlocked) for the test run.

use app_core::secrets::{SecretKey, Secrets};
use std::process::Command;

const NEEDS: &str = "needs a Secret Service on the session bus; `cargo xtask test` starts one";

fn install_id() -> String {
    format!("test-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// What `secret-tool`, a separate libsecret client, finds for an entry.
fn lookup_from_outside(install: &str, name: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "left4me", "username"])
        .arg(format!("{install}/{name}"))
        .output()
        .expect("secret-tool runs (apt package libsecret-tools)");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

#[test]
#[ignore = "needs a Secret Service on the session bus; `cargo xtask test` starts one"]
fn secrets_round_trip_through_the_real_secret_service() {
    let install = install_id();
    let secrets = Secrets::os(&install).expect(NEEDS);
    let key = SecretKey::RconPassword { server: 7 };
    assert_eq!(secrets.get(&key).unwrap(), None);
    secrets.set(&key, b"hunter2 with spaces").unwrap();
    assert_eq!(
        secrets.get(&key).unwrap().as_deref().map(Vec::as_slice),
        Some(&b"hunter2 with spaces"[..])
    );
    // Another process sees it in the store: this is the OS store, not an in-process mock.
    assert_eq!(
        lookup_from_outside(&install, "server/7/rcon-password").as_deref(),
        Some("hunter2 with spaces")
    );
    secrets.set(&key, b"changed").unwrap();
    assert_eq!(secrets.get(&key).unwrap().unwrap().as_slice(), b"changed");
    secrets.delete(&key).unwrap();
    assert_eq!(secrets.get(&key).unwrap(), None);
    assert_eq!(
        lookup_from_outside(&install, "server/7/rcon-password"),
        None
    );
    secrets.delete(&key).unwrap();
}

#[test]
#[ignore = "needs a Secret Service on the session bus; `cargo xtask test` starts one"]
fn installs_do_not_share_secrets() {
    let a = Secrets::os(&install_id()).expect(NEEDS);
    let b = Secrets::os(&format!("{}-b", install_id())).expect(NEEDS);
    a.set(&SecretKey::AppSshKey, b"key of a").unwrap();
    assert_eq!(b.get(&SecretKey::AppSshKey).unwrap(), None);
    b.set(&SecretKey::AppSshKey, b"key of b").unwrap();
    assert_eq!(
        a.get(&SecretKey::AppSshKey).unwrap().unwrap().as_slice(),
        b"key of a"
    );
    a.delete(&SecretKey::AppSshKey).unwrap();
    b.delete(&SecretKey::AppSshKey).unwrap();
}

#[test]
#[ignore = "needs a Secret Service on the session bus; `cargo xtask test` starts one"]
fn a_vaults_secrets_move_into_the_os_store() {
    use app_core::vault::{KdfCost, Vault};
    let dir = tempfile::tempdir().unwrap();
    let install = install_id();
    let cheap = KdfCost {
        memory_kib: 8 * 1024,
        passes: 1,
        lanes: 1,
    };
    let vault = std::sync::Arc::new(
        Vault::create(&dir.path().join("vault"), "a long passphrase", cheap).unwrap(),
    );
    let in_vault = Secrets::vault(vault.clone(), &install);
    in_vault
        .set(&SecretKey::SteamLogin, b"owner\nsteam password")
        .unwrap();
    in_vault
        .set(&SecretKey::RconPassword { server: 4 }, b"rcon 4")
        .unwrap();
    // Nothing reached the OS store yet.
    assert_eq!(lookup_from_outside(&install, "steam/login"), None);

    let os = Secrets::os(&install).expect(NEEDS);
    assert_eq!(in_vault.move_into(&os).unwrap(), 2);
    assert_eq!(
        lookup_from_outside(&install, "steam/login").as_deref(),
        Some("owner\nsteam password")
    );
    assert_eq!(
        os.get(&SecretKey::RconPassword { server: 4 })
            .unwrap()
            .unwrap()
            .as_slice(),
        b"rcon 4"
    );
    // The vault is emptied and its file gone; what held the vault's secrets now reads and
    // writes the OS store.
    assert!(vault.entries().is_empty());
    assert!(!dir.path().join("vault").exists());
    assert!(!in_vault.in_vault());
    in_vault
        .set(&SecretKey::RconPassword { server: 5 }, b"rcon 5")
        .unwrap();
    assert_eq!(
        lookup_from_outside(&install, "server/5/rcon-password").as_deref(),
        Some("rcon 5")
    );
    os.delete(&SecretKey::RconPassword { server: 5 }).unwrap();
    os.delete(&SecretKey::SteamLogin).unwrap();
    os.delete(&SecretKey::RconPassword { server: 4 }).unwrap();
}
