//! `l4d2-agent setup`: makes a fresh host ready, once, as root, and changes nothing when run
//! again. It creates the two accounts, the state folders with their owners and modes,
//! installs this binary to /opt/left4me, the unit template and the sudo rule, and can
//! authorise the app's SSH key for the `left4me` account.
//!
//! Every folder is made and checked through descriptors (`dir`), from folders only root can
//! change: the state root and `runtime/` first, so nothing in them can be swapped while the
//! rest is made. What lives in the owner's folders (its SSH keys) is written as the owner.
//! A host set up by an earlier agent, whose state root belonged to `left4me`, is moved to
//! this layout ([`upgrade`]).

use crate::accounts::{self, Account, GAME, OWNER};
use crate::dir::{Dir, DirError};
use crate::error::AgentError;
use crate::host::is_root;
use crate::layout::{DEFAULT_ROOT, Layout};
use crate::readiness;
use crate::systemd::Systemd;
use left4me_protocol::ServerName;
use left4me_protocol::agent::DoneReport;
use std::path::Path;
use std::process::Command;

pub const UNIT_DIR: &str = "/usr/local/lib/systemd/system";
pub const SUDOERS_DIR: &str = "/etc/sudoers.d";
pub const SUDOERS_NAME: &str = "left4me";
const SERVER_UNIT: &str = include_str!("../../deploy/left4me-server@.service");
const MOUNT_UNIT: &str = include_str!("../../deploy/left4me-mount@.service");
const SUDOERS: &str = include_str!("../../deploy/sudoers");
const GAVE_UP_UNIT: &str = include_str!("../../deploy/left4me-gave-up@.service");
const NOTIFY_UNIT: &str = include_str!("../../deploy/left4me-notify.service");
const NOTIFY_PATH: &str = include_str!("../../deploy/left4me-notify.path");
const WATCH_UNIT: &str = include_str!("../../deploy/left4me-watch.service");
const WATCH_TIMER: &str = include_str!("../../deploy/left4me-watch.timer");
const ROLLOUT_UNIT: &str = include_str!("../../deploy/left4me-rollout.service");
const ROLLOUT_PATH: &str = include_str!("../../deploy/left4me-rollout.path");
const SCHEDULE_UNIT: &str = include_str!("../../deploy/left4me-schedule@.service");
/// The owner's home: inside the state root, but its own.
const OWNER_HOME: &str = "/var/lib/left4me/home";
const ROOT: (u32, u32) = (0, 0);

fn failed(what: &str) -> impl Fn(DirError) -> AgentError + '_ {
    move |e| AgentError::failed(format!("cannot set up {what}"), e)
}

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
    // What the game needs from the host, before anything else changes: a host that cannot
    // run it is refused as it was found.
    readiness::check_machine()?;
    let layout = Layout::new(Path::new(DEFAULT_ROOT));
    let probe_in = Dir::open_trusted(&layout.runtimes())
        .or_else(|_| Dir::open_trusted(Path::new("/var/lib")))
        .map_err(failed("/var/lib"))?;
    readiness::check_mounts(&crate::sys::Linux, &probe_in)?;
    let mut changed = readiness::ensure_runtime()?;
    changed |= ensure_account(
        OWNER,
        &[
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            OWNER_HOME,
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
    let owner_ids = (owner.uid, owner.gid);

    changed |= upgrade(&layout, owner)?;
    let var_lib = Dir::open_trusted(Path::new("/var/lib")).map_err(failed("/var/lib"))?;
    let (state, made) = var_lib
        .ensure_dir("left4me", 0o755, ROOT)
        .map_err(failed("the state folder"))?;
    changed |= made;
    for (name, mode, who) in [
        ("runtime", 0o755, ROOT),
        ("home", 0o700, owner_ids),
        ("installation", 0o755, owner_ids),
        ("installs", 0o755, owner_ids),
        ("overlays", 0o755, owner_ids),
        ("servers", 0o755, owner_ids),
        ("automation", 0o700, owner_ids),
        ("backups", 0o700, owner_ids),
    ] {
        changed |= state
            .ensure_dir(name, mode, who)
            .map_err(failed("the state folder"))?
            .1;
    }
    changed |= ensure_home(OWNER, OWNER_HOME)?;
    let etc = Dir::open_trusted(Path::new("/etc")).map_err(failed("/etc"))?;
    let (etc_left4me, made) = etc
        .ensure_dir("left4me", 0o755, ROOT)
        .map_err(failed("/etc/left4me"))?;
    changed |= made;
    changed |= readiness::record_probe(&etc_left4me)?;
    let opt = Dir::open_trusted(Path::new("/opt")).map_err(failed("/opt"))?;
    let (opt, made) = opt
        .ensure_dir("left4me", 0o755, ROOT)
        .map_err(failed("/opt/left4me"))?;
    changed |= made;
    // Where `install` puts steamcmd when the host has none: the agent runs it as left4me.
    changed |= opt
        .ensure_dir("steamcmd", 0o755, owner_ids)
        .map_err(failed("/opt/left4me"))?
        .1;
    let me = std::fs::read("/proc/self/exe").map_err(crate::error::io_context(
        "read",
        Path::new("/proc/self/exe"),
    ))?;
    changed |= opt
        .ensure_file("l4d2-agent", &me, 0o755)
        .map_err(failed("/opt/left4me"))?;

    let units = system_dir(Path::new(UNIT_DIR))?;
    let mut units_changed = false;
    for (name, text) in [
        ("left4me-server@.service", SERVER_UNIT),
        ("left4me-mount@.service", MOUNT_UNIT),
        ("left4me-gave-up@.service", GAVE_UP_UNIT),
        ("left4me-notify.service", NOTIFY_UNIT),
        ("left4me-notify.path", NOTIFY_PATH),
        ("left4me-watch.service", WATCH_UNIT),
        ("left4me-watch.timer", WATCH_TIMER),
        ("left4me-schedule@.service", SCHEDULE_UNIT),
        ("left4me-rollout.service", ROLLOUT_UNIT),
        ("left4me-rollout.path", ROLLOUT_PATH),
    ] {
        units_changed |= units
            .ensure_file(name, text.as_bytes(), 0o644)
            .map_err(failed(UNIT_DIR))?;
    }
    if units_changed {
        systemd
            .daemon_reload()
            .map_err(|e| AgentError::failed("cannot reload systemd", e))?;
        changed = true;
    }
    // Notifications go out as they are queued, hung servers are looked for, and a rollout
    // goes on as soon as it is asked for (enabling twice changes nothing).
    for unit in [
        "left4me-notify.path",
        "left4me-watch.timer",
        "left4me-rollout.path",
    ] {
        for action in ["enable", "start"] {
            systemd
                .control(action, unit)
                .map_err(|e| AgentError::failed(format!("cannot enable {unit}"), e))?;
        }
    }
    changed |= ensure_sudoers()?;
    if let Some(key) = authorized_key {
        changed |= authorize_key(&layout, owner, key)?;
    }
    Ok(crate::output::done(
        "setup",
        &crate::host::hostname(),
        changed,
    ))
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

/// Points the account's home at `home` (hosts set up before had it at the state root).
fn ensure_home(name: &str, home: &str) -> Result<bool, AgentError> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(crate::error::io_context("read", Path::new("/etc/passwd")))?;
    if accounts::home_in(&passwd, name).as_deref() == Some(Path::new(home)) {
        return Ok(false);
    }
    let out = Command::new("usermod")
        .args(["--home", home, name])
        .output()
        .map_err(|e| AgentError::failed("cannot run usermod", e))?;
    if out.status.success() {
        return Ok(true);
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    // usermod refuses while the account has processes (the app's SSH session, its systemd
    // user instance). They keep the old HOME in their environment, which is harmless: the
    // passwd entry is changed the way usermod would, under the same lock.
    if !said.contains("currently used by process") {
        return Err(AgentError::failed(
            format!("cannot move the home of {name:?} to {home}"),
            said,
        ));
    }
    set_home_in_passwd(name, home)?;
    Ok(true)
}

/// The passwd text with `name`'s home set to `home`; None when `name` has no entry.
pub fn passwd_with_home(passwd: &str, name: &str, home: &str) -> Option<String> {
    let mut found = false;
    let mut text = String::with_capacity(passwd.len() + home.len());
    for line in passwd.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() == 7 && fields[0] == name {
            fields[5] = home;
            found = true;
            text.push_str(&fields.join(":"));
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    found.then_some(text)
}

// The shadow suite's lock on /etc/passwd and /etc/shadow (in glibc and musl alike).
unsafe extern "C" {
    fn lckpwdf() -> libc::c_int;
    fn ulckpwdf() -> libc::c_int;
}

/// Sets `name`'s home in /etc/passwd under the shadow suite's lock, replacing the file whole.
fn set_home_in_passwd(name: &str, home: &str) -> Result<(), AgentError> {
    let failed =
        |e: String| AgentError::failed(format!("cannot move the home of {name:?} to {home}"), e);
    // SAFETY: lckpwdf and ulckpwdf take no arguments; the lock is released below.
    if unsafe { lckpwdf() } != 0 {
        return Err(failed(
            "/etc/passwd is locked by another program".to_owned(),
        ));
    }
    let result = (|| {
        let etc = Dir::open_trusted(Path::new("/etc")).map_err(|e| e.to_string())?;
        let passwd = etc
            .read_file("passwd", 16 << 20)
            .map_err(|e| e.to_string())?
            .ok_or("/etc/passwd cannot be read")?;
        let passwd = String::from_utf8_lossy(&passwd);
        let text = passwd_with_home(&passwd, name, home).ok_or("the account has no entry")?;
        etc.write_file("passwd", text.as_bytes(), 0o644)
            .map_err(|e| e.to_string())
    })();
    // SAFETY: releases the lock taken above.
    unsafe { ulckpwdf() };
    result.map_err(failed)
}

/// Adds `user` to `group` unless it is a member already (or the group does not exist).
fn ensure_in_group(user: &str, group: &str) -> Result<bool, AgentError> {
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(crate::error::io_context("read", Path::new("/etc/group")))?;
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

/// A system folder (root's), made with its missing parents; existing folders are used as
/// they are, but only through folders root alone can change.
pub(crate) fn system_dir(path: &Path) -> Result<Dir, AgentError> {
    let mut existing = path;
    let mut missing = Vec::new();
    while !existing.is_dir() {
        missing.push(
            existing
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    let mut dir = Dir::open_trusted(existing).map_err(failed("a system folder"))?;
    for name in missing.iter().rev() {
        dir = dir
            .ensure_dir(name, 0o755, ROOT)
            .map_err(failed("a system folder"))?
            .0;
    }
    Ok(dir)
}

/// Installs the sudo rule after `visudo` has checked it: a broken sudoers file would lock
/// every admin out of sudo.
fn ensure_sudoers() -> Result<bool, AgentError> {
    let dir = Dir::open_trusted(Path::new(SUDOERS_DIR)).map_err(|e| {
        AgentError::failed(
            "cannot install the sudo rule",
            format!("{e} (is sudo installed?)"),
        )
    })?;
    if dir
        .read_file(SUDOERS_NAME, SUDOERS.len() as u64)
        .map_err(failed(SUDOERS_DIR))?
        .as_deref()
        == Some(SUDOERS.as_bytes())
    {
        return Ok(false);
    }
    // sudo skips files in sudoers.d whose names contain a dot: the candidate is never live.
    let candidate = ".left4me.new";
    dir.write_file(candidate, SUDOERS.as_bytes(), 0o440)
        .map_err(failed(SUDOERS_DIR))?;
    let check = Command::new("visudo")
        .args(["-c", "-q", "-f"])
        .arg(dir.join(candidate))
        .output();
    let _ = dir.remove_file(candidate);
    let valid = check.as_ref().is_ok_and(|o| o.status.success());
    if !valid {
        let why = match check {
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(e) => format!("cannot run visudo: {e} (is sudo installed?)"),
        };
        return Err(AgentError::failed("the sudo rule did not pass visudo", why));
    }
    dir.write_file(SUDOERS_NAME, SUDOERS.as_bytes(), 0o440)
        .map_err(failed(SUDOERS_DIR))?;
    Ok(true)
}

/// Moves a host set up by an earlier agent to this layout. There, the state root was the
/// owner's home, specs lived in `runtime/<name>/spec.yaml`, RCON passwords and environment
/// files in an `/etc/left4me` of the owner's, and `runtime/` was the owner's: all places the
/// owner could swap under root. Refused while a server is mounted. Returns whether it did
/// anything.
pub fn upgrade(layout: &Layout, owner: Account) -> Result<bool, AgentError> {
    let var_lib = Dir::open_trusted(Path::new("/var/lib")).map_err(failed("/var/lib"))?;
    let Some(state) = var_lib
        .open_dir("left4me")
        .map_err(failed("the state folder"))?
    else {
        return Ok(false);
    };
    let (uid, _, _) = state.owner_and_mode().map_err(failed("the state folder"))?;
    if uid == 0 {
        return Ok(false);
    }
    let table = crate::mountinfo::read().map_err(crate::error::io_context(
        "read",
        Path::new(crate::mountinfo::PATH),
    ))?;
    let runtime = layout.runtimes();
    if let Some(mounted) = table.into_iter().find(|m| m.target.starts_with(&runtime)) {
        return Err(AgentError::failed(
            "cannot move this host to the new layout",
            format!(
                "{} is mounted: stop every server first (`l4d2-agent stop <name>`)",
                mounted.target.display()
            ),
        ));
    }
    // The owner moves its own files first, while the state root is still its own.
    accounts::run_as(owner, || move_owners_files(layout))?;
    // From here on nothing in the state root can be renamed by the owner.
    state.chown(0, 0).map_err(failed("the state folder"))?;
    state.chmod(0o755).map_err(failed("the state folder"))?;
    // The environment files become root's, written at each mount; the owner's go.
    let etc = Dir::open_trusted(Path::new("/etc")).map_err(failed("/etc"))?;
    if let Some(old) = etc.open_dir("left4me").map_err(failed("/etc/left4me"))? {
        old.chown(0, 0).map_err(failed("/etc/left4me"))?;
        old.chmod(0o755).map_err(failed("/etc/left4me"))?;
        for name in old.names().map_err(failed("/etc/left4me"))? {
            old.remove_tree(&name).map_err(failed("/etc/left4me"))?;
        }
    }
    // Each server keeps its upper layer (the game's) and work folder; root remakes the rest
    // at the next mount.
    let (runtime, _) = state
        .ensure_dir("runtime", 0o755, ROOT)
        .map_err(failed("runtime/"))?;
    for name in runtime.names().map_err(failed("runtime/"))? {
        let server = match (ServerName::new(name.as_str()), runtime.open_dir(&name)) {
            (Ok(_), Ok(Some(server))) => server,
            _ => {
                runtime.remove_tree(&name).map_err(failed("runtime/"))?;
                continue;
            }
        };
        server.chown(0, 0).map_err(failed("runtime/"))?;
        server.chmod(0o755).map_err(failed("runtime/"))?;
        for entry in server.names().map_err(failed("runtime/"))? {
            if entry != "upper" && entry != "work" {
                server.remove_tree(&entry).map_err(failed("runtime/"))?;
            }
        }
        if server
            .open_dir("work")
            .map_err(failed("runtime/"))?
            .is_some()
        {
            server
                .ensure_dir("work", 0o700, ROOT)
                .map_err(failed("runtime/"))?;
        }
    }
    Ok(true)
}

/// As the owner, in its own state root: its home's files into `home/`, specs into
/// `servers/`, RCON passwords out of `/etc/left4me`.
fn move_owners_files(layout: &Layout) -> Result<(), AgentError> {
    let io = |what: &str, path: &Path| crate::error::io_context(what, path);
    let root = layout.root();
    let home = layout.home();
    let servers = layout.servers();
    for dir in [&home, &servers] {
        crate::fsutil::create_dir(dir, if *dir == home { 0o700 } else { 0o755 })
            .map_err(io("create", dir))?;
    }
    let kept = [
        "automation",
        "backups",
        "home",
        "installation",
        "installs",
        "overlays",
        "runtime",
        "servers",
    ];
    for entry in std::fs::read_dir(root).map_err(io("read", root))?.flatten() {
        let name = entry.file_name();
        if !kept.iter().any(|k| name == *k) {
            let to = home.join(&name);
            std::fs::rename(entry.path(), &to).map_err(io("move", &entry.path()))?;
        }
    }
    if let Ok(entries) = std::fs::read_dir(layout.runtimes()) {
        for entry in entries.flatten() {
            let Ok(name) = ServerName::new(entry.file_name().to_string_lossy().as_ref()) else {
                continue;
            };
            let spec = entry.path().join("spec.yaml");
            if spec.is_file() {
                let to = layout.spec_file(&name);
                std::fs::rename(&spec, &to).map_err(io("move", &spec))?;
            }
            let rcon = Path::new("/etc/left4me").join(format!("{name}.rcon"));
            if let Ok(password) = std::fs::read(&rcon) {
                let to = layout.rcon_file(&name);
                crate::fsutil::write_atomic(&to, &password, 0o600).map_err(io("write", &to))?;
                std::fs::remove_file(&rcon).map_err(io("remove", &rcon))?;
            }
        }
    }
    Ok(())
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

/// Adds `key` to the owner's authorized_keys, as the owner: the file and its folder are the
/// owner's, so root only reads them (without following a link) to see whether the key is
/// there already.
fn authorize_key(layout: &Layout, owner: Account, key: &str) -> Result<bool, AgentError> {
    let failed = |e: DirError| AgentError::failed("cannot authorise the key", e);
    let home = layout.home();
    let state = Dir::open_trusted(layout.root()).map_err(failed)?;
    let existing = state
        .read_beneath(Path::new("home/.ssh/authorized_keys"), owner.uid, 1 << 20)
        .map_err(failed)?
        .unwrap_or_default();
    let existing = String::from_utf8_lossy(&existing).into_owned();
    let key_body = key.split_whitespace().nth(1).unwrap_or_default();
    if existing
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(key_body))
    {
        return Ok(false);
    }
    accounts::run_as(owner, || {
        let own = (owner.uid, owner.gid);
        let home = Dir::open_no_follow(&home).map_err(failed)?;
        let (ssh, _) = home.ensure_dir(".ssh", 0o700, own).map_err(failed)?;
        // Read again as the owner: what it holds now is what gets the new line.
        let mut text = ssh
            .read_beneath(Path::new("authorized_keys"), owner.uid, 1 << 20)
            .map_err(failed)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(key.trim());
        text.push('\n');
        ssh.write_file("authorized_keys", text.as_bytes(), 0o600)
            .map_err(failed)
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_is_changed_in_its_own_entry_only() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nleft4me:x:998:997::/var/lib/left4me:/bin/bash\nleft4me-game:x:997:996::/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(
            passwd_with_home(passwd, "left4me", "/var/lib/left4me/home").unwrap(),
            "root:x:0:0:root:/root:/bin/bash\nleft4me:x:998:997::/var/lib/left4me/home:/bin/bash\nleft4me-game:x:997:996::/nonexistent:/usr/sbin/nologin\n"
        );
        assert_eq!(passwd_with_home(passwd, "left", "/x"), None);
    }

    #[test]
    fn the_unit_keeps_what_the_32_bit_game_and_sourcemod_need() {
        // SystemCallArchitectures=native kills the 32-bit srcds at its first system call;
        // MemoryDenyWriteExecute= breaks SourceMod's JIT. Neither may ever be added.
        for line in SERVER_UNIT.lines().map(str::trim) {
            assert!(
                !line.starts_with("SystemCallArchitectures=")
                    && !line.starts_with("MemoryDenyWriteExecute="),
                "the server unit must not set {line:?}"
            );
        }
    }

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
        // The game's console goes through a terminal, and a stop reaches that process first.
        assert!(SERVER_UNIT.contains("\nExecStart=/opt/left4me/l4d2-agent console -- "));
        assert!(SERVER_UNIT.contains("\nKillMode=mixed\n"));
        assert!(MOUNT_UNIT.contains("\nExecStart=/opt/left4me/l4d2-agent mount %i\n"));
        assert!(MOUNT_UNIT.contains("\nExecStop=/opt/left4me/l4d2-agent umount %i\n"));
        assert!(MOUNT_UNIT.contains("\nStopWhenUnneeded=yes\n"));
        // A game's end is recorded by the agent as root, which becomes left4me at once; what
        // it starts and sends runs as left4me.
        assert!(SERVER_UNIT.contains("\nExecStopPost=-+/opt/left4me/l4d2-agent hook stopped %i\n"));
        assert!(SERVER_UNIT.contains("\nOnFailure=left4me-gave-up@%i.service\n"));
        for unit in [GAVE_UP_UNIT, NOTIFY_UNIT] {
            assert!(unit.contains("\nUser=left4me\n"), "{unit}");
            assert!(unit.contains("\nNoNewPrivileges=yes\n"), "{unit}");
        }
        assert!(WATCH_UNIT.contains("\nUser=left4me\n"));
        assert!(WATCH_TIMER.contains("\nOnUnitActiveSec=15s\n"));
        assert!(NOTIFY_PATH.contains("\nDirectoryNotEmpty=/var/lib/left4me/automation/outgoing\n"));
        // The sudo rule names the installed agent and its one subcommand.
        assert!(SUDOERS.contains(&format!(
            "NOPASSWD: {} privileged *",
            crate::service::INSTALLED_AGENT
        )));
    }
}
