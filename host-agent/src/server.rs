//! A server's life on the host, short of systemd: `initialize` (validate a spec, lay out
//! `runtime/<n>/`, write its environment file), `mount`/`umount` (its game tree), `delete`
//! and `list`. Every input is validated before anything is touched, and each operation on a
//! server holds its lock.

use crate::accounts::Account;
use crate::error::{AgentError, io_context};
use crate::fsutil::{self, write_atomic};
use crate::layout::{Layout, ServerPaths};
use crate::lock::{Lock, LockError};
use crate::mounts::{self, Stack};
use crate::sys::{IdMap, Mounter};
use left4me_protocol::agent::DoneReport;
use left4me_protocol::{InstanceSpec, OverlayName, ServerName};
use std::path::{Path, PathBuf};

/// What the server operations need from the host.
pub struct Host<'a> {
    pub layout: Layout,
    pub sys: &'a dyn Mounter,
    /// The accounts' names; looked up only by the operations that need them.
    pub owner_account: String,
    pub game_account: String,
}

impl Host<'_> {
    pub fn owner(&self) -> Result<Account, AgentError> {
        crate::accounts::lookup(&self.owner_account)
    }

    pub fn game(&self) -> Result<Account, AgentError> {
        crate::accounts::lookup(&self.game_account)
    }
}

pub fn parse_name(name: &str) -> Result<ServerName, AgentError> {
    ServerName::new(name).map_err(|e| AgentError::Invalid(e.to_string()))
}

fn done(action: &str, target: &ServerName, changed: bool) -> DoneReport {
    DoneReport {
        action: action.to_owned(),
        target: target.to_string(),
        changed,
    }
}

fn lock(paths: &ServerPaths, name: &ServerName) -> Result<Lock, AgentError> {
    Lock::try_acquire(&paths.lock()).map_err(|e| match e {
        LockError::Busy => AgentError::Busy {
            what: "server",
            name: name.to_string(),
        },
        LockError::Io(e) => {
            AgentError::failed(format!("cannot lock {}", paths.lock().display()), e)
        }
    })
}

/// Creates or updates `runtime/<name>/` from a spec's text.
pub fn initialize(
    host: &Host<'_>,
    name: &str,
    spec_text: &str,
    rcon_password: Option<&str>,
) -> Result<DoneReport, AgentError> {
    let name = parse_name(name)?;
    let spec = InstanceSpec::from_yaml(spec_text)
        .map_err(|e| AgentError::Invalid(format!("spec: {e}")))?;
    if let Some(password) = rcon_password {
        validate_rcon_password(password)?;
    }
    for overlay in &spec.overlays {
        if !host.layout.overlay(overlay).is_dir() {
            return Err(AgentError::Invalid(format!(
                "spec: overlay {:?} does not exist on this host",
                overlay.as_str()
            )));
        }
    }
    if let Some(other) = list_specs(&host.layout)?
        .into_iter()
        .find(|(other, s)| *other != name && s.port == spec.port)
    {
        return Err(AgentError::Invalid(format!(
            "spec: port {} is already used by server {:?}",
            spec.port,
            other.0.as_str()
        )));
    }

    let game = host.game()?;
    let paths = host.layout.server(&name);
    let existed = paths.spec().is_file();
    let create =
        |dir: &Path, mode| fsutil::create_dir(dir, mode).map_err(io_context("create", dir));
    create(&host.layout.runtimes(), 0o755)?;
    create(paths.dir(), 0o755)?;
    let _lock = lock(&paths, &name)?;
    for dir in [paths.upper(), paths.work()] {
        create(&dir, 0o755)?;
        // As the left4me account the agent cannot give them away; `mount`, which runs as
        // root, does it before the first start.
        if crate::service::is_root() {
            fsutil::chown(&dir, game.uid, game.gid).map_err(io_context("chown", &dir))?;
        }
    }
    create(&paths.merged(), 0o755)?;
    create(&paths.idmap_dir(), 0o755)?;
    create(&paths.idmap_installation(), 0o755)?;
    for overlay in &spec.overlays {
        create(&paths.idmap(overlay), 0o755)?;
    }

    let mut changed = !existed;
    let yaml = spec.to_yaml();
    if std::fs::read_to_string(paths.spec()).ok().as_deref() != Some(yaml.as_str()) {
        write_atomic(&paths.spec(), yaml.as_bytes(), 0o644)
            .map_err(io_context("write", &paths.spec()))?;
        changed = true;
    }
    let env = env_file(&spec);
    let env_path = host.layout.env_file(&name);
    if std::fs::read_to_string(&env_path).ok().as_deref() != Some(env.as_str()) {
        create(host.layout.etc(), 0o755)?;
        write_atomic(&env_path, env.as_bytes(), 0o644).map_err(io_context("write", &env_path))?;
        changed = true;
    }
    if let Some(password) = rcon_password {
        let path = host.layout.rcon_file(&name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(password) {
            write_atomic(&path, password.as_bytes(), 0o600).map_err(io_context("write", &path))?;
            changed = true;
        }
    }
    Ok(done("initialize", &name, changed))
}

/// An RCON password ends up quoted in `server.cfg`: printable, no quotes or semicolons.
pub fn validate_rcon_password(password: &str) -> Result<(), AgentError> {
    let ok = (8..=64).contains(&password.len())
        && password
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != ';');
    if ok {
        Ok(())
    } else {
        Err(AgentError::Invalid(
            "RCON password: use 8 to 64 printable characters without spaces, quotes or semicolons"
                .to_owned(),
        ))
    }
}

/// The server's RCON password, if it has one.
pub fn rcon_password(layout: &Layout, name: &ServerName) -> Result<Option<String>, AgentError> {
    let path = layout.rcon_file(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AgentError::failed(
            format!("cannot read {}", path.display()),
            e,
        )),
    }
}

/// The unit's environment file: the srcds command line the spec asks for.
pub fn env_file(spec: &InstanceSpec) -> String {
    format!(
        "# Written by l4d2-agent initialize; changes are overwritten.\nSRCDS_ARGS={}\n",
        srcds_args(spec).join(" ")
    )
}

/// srcds's arguments. `+map` comes last: srcds wants it after every other option.
pub fn srcds_args(spec: &InstanceSpec) -> Vec<String> {
    let mut args: Vec<String> = [
        "-game",
        "left4dead2",
        "-port",
        &spec.port.to_string(),
        "-maxplayers",
        &spec.launch.max_players.to_string(),
        "-tickrate",
        &spec.launch.tickrate.to_string(),
        "-strictportbind",
        "-norestart",
        "-nobreakpad",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(spec.launch.flags.iter().map(|f| f.as_arg().to_owned()));
    args.extend(["+exec", "server.cfg", "+map", spec.launch.map.as_str()].map(String::from));
    args
}

/// Where config overlays put their cfg files: `server.cfg` runs each of them first (bottom
/// overlay first), so a blueprint's own cvars still win.
pub const INCLUDE_DIR: &str = "left4dead2/cfg/left4me.d";

/// `server.cfg` from the spec's cvars, after `exec` lines for the overlays' included cfgs
/// (`left4me.d/<name>`). Values were validated (no quotes, semicolons or line breaks), so
/// each line sets exactly one cvar.
pub fn server_cfg(spec: &InstanceSpec, includes: &[String], rcon_password: Option<&str>) -> String {
    let mut text = String::from(
        "// Written by l4d2-agent from the server's blueprint; edits are overwritten.\n",
    );
    for include in includes {
        text.push_str(&format!("exec left4me.d/{include}\n"));
    }
    for (name, value) in &spec.cvars {
        text.push_str(&format!("{name} \"{value}\"\n"));
    }
    if let Some(password) = rcon_password {
        text.push_str(&format!("rcon_password \"{password}\"\n"));
    }
    text
}

pub fn read_spec(paths: &ServerPaths, name: &ServerName) -> Result<InstanceSpec, AgentError> {
    let text = match std::fs::read_to_string(paths.spec()) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AgentError::NotFound {
                what: "server",
                name: name.to_string(),
            });
        }
        Err(e) => {
            return Err(AgentError::failed(
                format!("cannot read {}", paths.spec().display()),
                e,
            ));
        }
    };
    InstanceSpec::from_yaml(&text)
        .map_err(|e| AgentError::failed(format!("{} is damaged", paths.spec().display()), e))
}

/// Writes `server.cfg` into the upper layer and mounts the game tree.
pub fn mount(host: &Host<'_>, name: &str) -> Result<DoneReport, AgentError> {
    let name = parse_name(name)?;
    let paths = host.layout.server(&name);
    let spec = read_spec(&paths, &name)?;
    let (owner, game) = (host.owner()?, host.game()?);
    let _lock = lock(&paths, &name)?;
    let table = host
        .sys
        .mountinfo()
        .map_err(|e| AgentError::failed("cannot read the mount table", e))?;
    if crate::mountinfo::count_at(&table, &paths.merged()) == 0 {
        // Content a fill staged while other servers ran takes effect at this start.
        for overlay in &spec.overlays {
            crate::overlay::apply_staged(&host.layout, overlay)?;
        }
    }
    for overlay in &spec.overlays {
        if !host.layout.overlay(overlay).is_dir() {
            return Err(AgentError::NotFound {
                what: "overlay",
                name: overlay.to_string(),
            });
        }
    }
    let stack = stack(&host.layout, &paths, &spec.overlays);
    let table = host
        .sys
        .mountinfo()
        .map_err(|e| AgentError::failed("cannot read the mount table", e))?;
    let mounted = crate::mountinfo::count_at(&table, &paths.merged()) > 0;
    if !mounted {
        // The upper layer may be written only while nothing is mounted on it.
        for dir in [paths.upper(), paths.work()] {
            fsutil::chown(&dir, game.uid, game.gid).map_err(io_context("chown", &dir))?;
        }
        let password = rcon_password(&host.layout, &name)?;
        let includes = included_cfgs(&host.layout, &spec.overlays);
        write_server_cfg(game, &paths, &spec, &includes, password.as_deref())?;
    }
    let map = IdMap {
        from_uid: owner.uid,
        to_uid: game.uid,
        from_gid: owner.gid,
        to_gid: game.gid,
    };
    let changed = mounts::mount(host.sys, &stack, map)
        .map_err(|e| AgentError::failed(format!("cannot mount server \"{name}\""), e))?;
    remove_unseen_retired(host, &spec.overlays, &name);
    Ok(done("mount", &name, changed))
}

/// Removes the retired versions of `overlays` that no mounted server other than `except`
/// may still see (a server mounted before a staged version was applied sees the old one).
fn remove_unseen_retired(host: &Host<'_>, overlays: &[OverlayName], except: &ServerName) {
    let (Ok(table), Ok(specs)) = (host.sys.mountinfo(), list_specs(&host.layout)) else {
        return;
    };
    for overlay in overlays {
        let seen = specs.iter().any(|(server, spec)| {
            server != except
                && spec.overlays.contains(overlay)
                && crate::mountinfo::count_at(&table, &host.layout.server(server).merged()) > 0
        });
        if !seen {
            crate::overlay::remove_retired(&host.layout, overlay);
        }
    }
}

/// The cfg files the overlays put in [`INCLUDE_DIR`], bottom overlay first, each name once
/// (the merged tree shows the top overlay's file of a name). Names are kept to plain cfg
/// file names, so an `exec` line cannot be bent.
pub fn included_cfgs(layout: &Layout, overlays: &[OverlayName]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for overlay in overlays.iter().rev() {
        let dir = layout.overlay(overlay).join(INCLUDE_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.ends_with(".cfg")
                    && n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            })
            .collect();
        found.sort();
        for name in found {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn write_server_cfg(
    game: Account,
    paths: &ServerPaths,
    spec: &InstanceSpec,
    includes: &[String],
    rcon_password: Option<&str>,
) -> Result<(), AgentError> {
    let mut dir = paths.upper();
    for part in ["left4dead2", "cfg"] {
        dir.push(part);
        if !dir.is_dir() {
            fsutil::create_dir(&dir, 0o755).map_err(io_context("create", &dir))?;
            fsutil::chown(&dir, game.uid, game.gid).map_err(io_context("chown", &dir))?;
        }
    }
    let cfg = dir.join("server.cfg");
    write_atomic(
        &cfg,
        server_cfg(spec, includes, rcon_password).as_bytes(),
        0o640,
    )
    .map_err(io_context("write", &cfg))?;
    fsutil::chown(&cfg, game.uid, game.gid).map_err(io_context("chown", &cfg))
}

fn stack(layout: &Layout, paths: &ServerPaths, overlays: &[OverlayName]) -> Stack {
    let overlays: Vec<(PathBuf, OverlayName)> = overlays
        .iter()
        .map(|o| (layout.overlay(o), o.clone()))
        .collect();
    Stack::new(paths, &overlays, &layout.installation())
}

/// Unmounts the game tree.
pub fn umount(host: &Host<'_>, name: &str) -> Result<DoneReport, AgentError> {
    let name = parse_name(name)?;
    let paths = host.layout.server(&name);
    if !paths.dir().is_dir() {
        return Err(AgentError::NotFound {
            what: "server",
            name: name.to_string(),
        });
    }
    let _lock = lock(&paths, &name)?;
    let changed = mounts::unmount_server(host.sys, &paths)
        .map_err(|e| AgentError::failed(format!("cannot unmount server \"{name}\""), e))?;
    if let Ok(spec) = read_spec(&paths, &name) {
        remove_unseen_retired(host, &spec.overlays, &name);
    }
    Ok(done("umount", &name, changed))
}

/// Unmounts and removes a server; a missing one is success with nothing changed.
pub fn delete(host: &Host<'_>, name: &str) -> Result<DoneReport, AgentError> {
    let name = parse_name(name)?;
    let paths = host.layout.server(&name);
    let env = host.layout.env_file(&name);
    if !paths.dir().exists() && !env.exists() {
        return Ok(done("delete", &name, false));
    }
    if paths.dir().exists() {
        let _lock = lock(&paths, &name)?;
        mounts::unmount_server(host.sys, &paths)
            .map_err(|e| AgentError::failed(format!("cannot unmount server \"{name}\""), e))?;
        // Never remove a tree that still has something mounted in it: that would delete the
        // overlays' or the install's files through the mount.
        let table = host
            .sys
            .mountinfo()
            .map_err(|e| AgentError::failed("cannot read the mount table", e))?;
        if let Some(left) = table.iter().find(|m| m.target.starts_with(paths.dir())) {
            return Err(AgentError::failed(
                format!("cannot delete server \"{name}\""),
                format!("{} is still mounted", left.target.display()),
            ));
        }
        std::fs::remove_dir_all(paths.dir()).map_err(io_context("remove", paths.dir()))?;
    }
    let rcon = host.layout.rcon_file(&name);
    match std::fs::remove_file(&rcon) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(AgentError::failed(
                format!("cannot remove {}", rcon.display()),
                e,
            ));
        }
        _ => {}
    }
    match std::fs::remove_file(&env) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(AgentError::failed(
                format!("cannot remove {}", env.display()),
                e,
            ));
        }
        _ => {}
    }
    Ok(done("delete", &name, true))
}

/// Every initialised server with its spec, by name.
pub fn list_specs(layout: &Layout) -> Result<Vec<(ServerName, InstanceSpec)>, AgentError> {
    let dir = layout.runtimes();
    let names = fsutil::named_entries(&dir, |n| ServerName::new(n).ok())
        .map_err(io_context("read", &dir))?;
    // A folder without a readable spec is a server whose first initialize was interrupted.
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let spec = read_spec(&layout.server(&name), &name).ok()?;
            Some((name, spec))
        })
        .collect())
}

/// The servers whose spec uses `overlay`.
pub fn users_of(layout: &Layout, overlay: &OverlayName) -> Result<Vec<String>, AgentError> {
    Ok(list_specs(layout)?
        .into_iter()
        .filter(|(_, spec)| spec.overlays.contains(overlay))
        .map(|(name, _)| name.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "port: 27016\noverlays: [sourcemod]\nlaunch:\n  map: c2m1_highway\n  max_players: 8\n  tickrate: 60\n  flags: [-insecure]\ncvars:\n  hostname: Friday coop\n  sv_gametypes: coop\n";

    #[test]
    fn srcds_command_line_has_map_last() {
        let spec = InstanceSpec::from_yaml(SPEC).unwrap();
        assert_eq!(
            srcds_args(&spec).join(" "),
            "-game left4dead2 -port 27016 -maxplayers 8 -tickrate 60 -strictportbind -norestart -nobreakpad -insecure +exec server.cfg +map c2m1_highway"
        );
    }

    #[test]
    fn server_cfg_sets_one_cvar_per_line() {
        let spec = InstanceSpec::from_yaml(SPEC).unwrap();
        assert_eq!(
            server_cfg(&spec, &[], None),
            "// Written by l4d2-agent from the server's blueprint; edits are overwritten.\nhostname \"Friday coop\"\nsv_gametypes \"coop\"\n"
        );
    }

    #[test]
    fn overlays_cfgs_run_first_bottom_overlay_first_each_name_once() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let add = |overlay: &str, file: &str| {
            let d = dir.path().join("overlays").join(overlay).join(INCLUDE_DIR);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(file), "sv_cheats 0\n").unwrap();
        };
        add("top", "b-rates.cfg");
        add("top", "shared.cfg");
        add("bottom", "a-competitive.cfg");
        add("bottom", "shared.cfg");
        add("bottom", "bad name;quit.cfg");
        let overlays = [
            OverlayName::new("top").unwrap(),
            OverlayName::new("bottom").unwrap(),
        ];
        let includes = included_cfgs(&layout, &overlays);
        assert_eq!(includes, ["a-competitive.cfg", "shared.cfg", "b-rates.cfg"]);
        let spec = InstanceSpec::from_yaml(SPEC).unwrap();
        let cfg = server_cfg(&spec, &includes, None);
        assert!(cfg.contains("exec left4me.d/a-competitive.cfg\nexec left4me.d/shared.cfg\nexec left4me.d/b-rates.cfg\nhostname"), "{cfg}");
    }
}
