//! `l4d2-agent setup`: makes a fresh host ready, once, as root, and changes nothing when run
//! again. It creates the two accounts, the state folders with their owners and modes,
//! installs this binary to /opt/left4me, the unit template and the sudo rule, and can
//! authorise the app's SSH key for the `left4me` account.

use crate::accounts::{self, GAME, OWNER};
use crate::error::{AgentError, io_context};
use crate::fsutil::{self, write_atomic};
use crate::layout::{DEFAULT_ROOT, Layout};
use crate::service::{INSTALLED_AGENT, is_root};
use crate::systemd::Systemd;
use left4me_protocol::agent::DoneReport;
use std::path::Path;
use std::process::Command;

pub const UNIT_DIR: &str = "/usr/local/lib/systemd/system";
pub const SUDOERS_PATH: &str = "/etc/sudoers.d/left4me";
const SERVER_UNIT: &str = include_str!("../../deploy/left4me-server@.service");
const MOUNT_UNIT: &str = include_str!("../../deploy/left4me-mount@.service");
const SUDOERS: &str = include_str!("../../deploy/sudoers");

pub fn setup(
    systemd: &dyn Systemd,
    authorized_key: Option<&str>,
) -> Result<DoneReport, AgentError> {
    if !is_root() {
        return Err(AgentError::failed(
            "setup needs root",
            "run it once with sudo: sudo l4d2-agent setup",
        ));
    }
    if let Some(key) = authorized_key {
        validate_public_key(key)?;
    }
    let mut changed = false;
    changed |= ensure_account(
        OWNER,
        &[
            "--system",
            "--user-group",
            "--home-dir",
            DEFAULT_ROOT,
            "--shell",
            "/bin/bash",
        ],
    )?;
    changed |= ensure_account(
        GAME,
        &[
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
        ],
    )?;
    // The app reads servers' consoles from journald as left4me.
    changed |= ensure_in_group(OWNER, "systemd-journal")?;
    let owner = accounts::lookup(OWNER)?;

    let layout = Layout::new(Path::new(DEFAULT_ROOT));
    for dir in [
        layout.root().to_path_buf(),
        layout.installation(),
        layout.overlays(),
        layout.runtimes(),
        layout.etc().to_path_buf(),
    ] {
        changed |= ensure_dir(&dir, 0o755, Some((owner.uid, owner.gid)))?;
    }
    changed |= ensure_dir(Path::new("/opt/left4me"), 0o755, Some((0, 0)))?;
    // Where `install` puts steamcmd when the host has none: the agent runs it as left4me.
    changed |= ensure_dir(
        Path::new("/opt/left4me/steamcmd"),
        0o755,
        Some((owner.uid, owner.gid)),
    )?;

    let me =
        std::fs::read("/proc/self/exe").map_err(io_context("read", Path::new("/proc/self/exe")))?;
    changed |= ensure_file(Path::new(INSTALLED_AGENT), &me, 0o755)?;
    let mut units_changed = false;
    for (name, text) in [
        ("left4me-server@.service", SERVER_UNIT),
        ("left4me-mount@.service", MOUNT_UNIT),
    ] {
        units_changed |= ensure_file(&Path::new(UNIT_DIR).join(name), text.as_bytes(), 0o644)?;
    }
    if units_changed {
        systemd
            .daemon_reload()
            .map_err(|e| AgentError::failed("cannot reload systemd", e))?;
        changed = true;
    }
    changed |= ensure_sudoers()?;
    if let Some(key) = authorized_key {
        changed |= authorize_key(&layout, owner, key)?;
    }
    Ok(DoneReport {
        action: "setup".to_owned(),
        target: hostname(),
        changed,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "this host".to_owned())
}

fn ensure_account(name: &str, useradd: &[&str]) -> Result<bool, AgentError> {
    if accounts::lookup(name).is_ok() {
        return Ok(false);
    }
    let out = Command::new("useradd")
        .args(useradd)
        .arg(name)
        .output()
        .map_err(|e| AgentError::failed("cannot run useradd", e))?;
    if !out.status.success() {
        return Err(AgentError::failed(
            format!("cannot create the account {name:?}"),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(true)
}

/// Adds `user` to `group` unless it is a member already (or the group does not exist).
fn ensure_in_group(user: &str, group: &str) -> Result<bool, AgentError> {
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(io_context("read", Path::new("/etc/group")))?;
    let Some(line) = groups.lines().find(|l| l.split(':').next() == Some(group)) else {
        return Ok(false);
    };
    let members = line.rsplit(':').next().unwrap_or("");
    if members.split(',').any(|m| m == user) {
        return Ok(false);
    }
    let out = Command::new("usermod")
        .args(["--append", "--groups", group, user])
        .output()
        .map_err(|e| AgentError::failed("cannot run usermod", e))?;
    if !out.status.success() {
        return Err(AgentError::failed(
            format!("cannot add {user:?} to the group {group:?}"),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(true)
}

fn ensure_dir(dir: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<bool, AgentError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let before = std::fs::metadata(dir).ok();
    let right = before.as_ref().is_some_and(|m| {
        m.is_dir()
            && m.permissions().mode() & 0o7777 == mode
            && owner.is_none_or(|(uid, gid)| m.uid() == uid && m.gid() == gid)
    });
    if right {
        return Ok(false);
    }
    fsutil::create_dir(dir, mode).map_err(io_context("create", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(io_context("set the mode of", dir))?;
    if let Some((uid, gid)) = owner {
        fsutil::chown(dir, uid, gid).map_err(io_context("chown", dir))?;
    }
    Ok(true)
}

/// Writes `contents` to `path` unless it already holds exactly that; root-owned.
fn ensure_file(path: &Path, contents: &[u8], mode: u32) -> Result<bool, AgentError> {
    use std::os::unix::fs::PermissionsExt;
    let same = std::fs::read(path).is_ok_and(|c| c == contents)
        && std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_context("create", dir))?;
    }
    write_atomic(path, contents, mode).map_err(io_context("write", path))?;
    fsutil::chown(path, 0, 0).map_err(io_context("chown", path))?;
    Ok(true)
}

/// Installs the sudo rule after `visudo` has checked it: a broken sudoers file would lock
/// every admin out of sudo.
fn ensure_sudoers() -> Result<bool, AgentError> {
    let path = Path::new(SUDOERS_PATH);
    if std::fs::read(path).is_ok_and(|c| c == SUDOERS.as_bytes()) {
        return Ok(false);
    }
    let candidate = Path::new("/etc/sudoers.d/.left4me.new");
    write_atomic(candidate, SUDOERS.as_bytes(), 0o440).map_err(io_context("write", candidate))?;
    let check = Command::new("visudo")
        .args(["-c", "-q", "-f"])
        .arg(candidate)
        .output();
    let valid = check.as_ref().is_ok_and(|o| o.status.success());
    if !valid {
        let _ = std::fs::remove_file(candidate);
        let why = match check {
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(e) => format!("cannot run visudo: {e} (is sudo installed?)"),
        };
        return Err(AgentError::failed("the sudo rule did not pass visudo", why));
    }
    std::fs::rename(candidate, path).map_err(io_context("install", path))?;
    Ok(true)
}

/// An OpenSSH public key line: type, base64 body, optional comment; nothing else.
fn validate_public_key(key: &str) -> Result<(), AgentError> {
    let words: Vec<&str> = key.split_whitespace().collect();
    let known = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    ];
    let ok = words.len() >= 2
        && known.contains(&words[0])
        && words[1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        && !key.contains(['\n', '\r']);
    if ok {
        Ok(())
    } else {
        Err(AgentError::Invalid(
            "--authorize-key: not an OpenSSH public key line (type, key, optional comment)"
                .to_owned(),
        ))
    }
}

fn authorize_key(layout: &Layout, owner: accounts::Account, key: &str) -> Result<bool, AgentError> {
    let ssh = layout.root().join(".ssh");
    let file = ssh.join("authorized_keys");
    let existing = std::fs::read_to_string(&file).unwrap_or_default();
    let key_body = key.split_whitespace().nth(1).unwrap_or_default();
    if existing
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(key_body))
    {
        return Ok(false);
    }
    ensure_dir(&ssh, 0o700, Some((owner.uid, owner.gid)))?;
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(key.trim());
    text.push('\n');
    write_atomic(&file, text.as_bytes(), 0o600).map_err(io_context("write", &file))?;
    fsutil::chown(&file, owner.uid, owner.gid).map_err(io_context("chown", &file))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_checked() {
        assert!(
            validate_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE left4me@laptop").is_ok()
        );
        assert!(validate_public_key("ssh-ed25519 AAAA\nssh-rsa BBBB").is_err());
        assert!(validate_public_key("command=\"rm -rf /\" ssh-ed25519 AAAA").is_err());
        assert!(validate_public_key("ssh-ed25519").is_err());
    }

    #[test]
    fn the_units_run_the_game_unprivileged_over_a_tree_mounted_as_root() {
        assert!(SERVER_UNIT.contains("\nUser=left4me-game\n"));
        assert!(SERVER_UNIT.contains("\nBindsTo=left4me-mount@%i.service\n"));
        assert!(SERVER_UNIT.contains("\nRestart=on-failure\n"));
        assert!(SERVER_UNIT.contains("\nNoNewPrivileges=yes\n"));
        assert!(SERVER_UNIT.contains("\nProtectSystem=strict\n"));
        assert!(MOUNT_UNIT.contains("\nExecStart=/opt/left4me/l4d2-agent mount %i\n"));
        assert!(MOUNT_UNIT.contains("\nExecStop=/opt/left4me/l4d2-agent umount %i\n"));
        assert!(MOUNT_UNIT.contains("\nStopWhenUnneeded=yes\n"));
        // The sudo rule names the installed agent and its one subcommand.
        assert!(SUDOERS.contains(&format!("NOPASSWD: {INSTALLED_AGENT} privileged *")));
    }
}
