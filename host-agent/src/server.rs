//! A server's life on the host, short of systemd. The owner declares a server
//! (`initialize`: its spec and RCON password in `servers/`) and forgets it (`forget`); root
//! lays out and mounts its game tree (`mount`, from the mount unit), unmounts it (`umount`)
//! and removes it (`remove_runtime`). Root reads the owner's declarations without following
//! a link, writes only in folders of its own, and has the overlays' bookkeeping done as the
//! owner and `server.cfg` written as the game account. Every input is validated before
//! anything is touched, and each operation on a server holds its lock.

use crate::accounts::{self, Account};
use crate::dir::{Dir, DirError};
use crate::error::{AgentError, io_context};
use crate::fsutil::{self, write_atomic};
use crate::host::Host;
use crate::input::{Secret, read_secret};
use crate::layout::{self, Layout, ServerPaths};
use crate::lock::{Lock, LockError};
use crate::mountinfo::{Mount, count_at};
use crate::mounts::{self, Stack};
use crate::names::server_name;
use crate::output::{Output, done};
use crate::sys::IdMap;
use left4me_protocol::agent::DoneReport;
use left4me_protocol::{InstanceSpec, OverlayName, ServerName};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest spec file the agent reads; real ones are a few hundred bytes.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;
/// The largest RCON password file the agent reads.
const MAX_RCON_BYTES: u64 = 4096;

fn busy(name: &ServerName, path: &Path, e: LockError) -> AgentError {
    match e {
        LockError::Busy => AgentError::Busy {
            what: "server",
            name: name.to_string(),
        },
        LockError::Io(e) => AgentError::failed(format!("cannot lock {}", path.display()), e),
    }
}

/// The owner's lock on a server's declaration.
fn declaration_lock(layout: &Layout, name: &ServerName) -> Result<Lock, AgentError> {
    let servers = layout.servers();
    fsutil::create_dir(&servers, 0o755).map_err(io_context("create", &servers))?;
    let path = layout.declaration_lock(name);
    Lock::try_acquire(&path).map_err(|e| busy(name, &path, e))
}

/// Root's lock on a server's runtime folder.
fn runtime_lock(server: &Dir, name: &ServerName) -> Result<Lock, AgentError> {
    let path = server.join(layout::LOCK);
    let file = server
        .lock_file(layout::LOCK)
        .map_err(|e| AgentError::failed(format!("cannot lock {}", path.display()), e))?;
    Lock::try_file(file).map_err(|e| busy(name, &path, e))
}

/// `initialize <name> -f <file>`: with `--rcon-password-stdin` the password is stdin's
/// first line, and with `-f -` the spec is the rest of stdin.
pub fn initialize_command(
    host: &Host<'_>,
    name: &str,
    file: &Path,
    rcon_password_stdin: bool,
    out: &mut Output<'_>,
) -> Result<(), AgentError> {
    let password = if rcon_password_stdin {
        let line = read_secret(Secret::FirstLine)?;
        if !line.ends_with('\n') {
            return Err(AgentError::Invalid(
                "--rcon-password-stdin: the password must be one line ending in a newline"
                    .to_owned(),
            ));
        }
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        None
    };
    let spec = read_spec_input(file)?;
    out.message(&initialize(host, name, &spec, password.as_deref())?)
}

/// The spec's text from a file, or from stdin for `-`.
fn read_spec_input(file: &Path) -> Result<String, AgentError> {
    let mut text = String::new();
    let result = if file == Path::new("-") {
        std::io::stdin()
            .take(MAX_SPEC_BYTES)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(MAX_SPEC_BYTES).read_to_string(&mut text))
    };
    result.map_err(|e| AgentError::Invalid(format!("cannot read spec {}: {e}", file.display())))?;
    Ok(text)
}

/// Declares a server, or changes its declaration: its spec and RCON password in `servers/`.
pub fn initialize(
    host: &Host<'_>,
    name: &str,
    spec_text: &str,
    rcon_password: Option<&str>,
) -> Result<DoneReport, AgentError> {
    let name = server_name(name)?;
    let spec = InstanceSpec::from_yaml(spec_text)
        .map_err(|e| AgentError::Invalid(format!("spec: {e}")))?;
    if let Some(password) = rcon_password {
        validate_rcon_password(password)?;
    }
    crate::limits::check_here(&spec.limits)?;
    for overlay in &spec.overlays {
        if !host.layout.overlay(overlay).is_dir() {
            return Err(AgentError::Invalid(format!(
                "spec: overlay {:?} does not exist on this host",
                overlay.as_str()
            )));
        }
    }
    // Declarations take turns while ports are handed out, so two servers declared at once
    // never get the same one.
    let servers = host.layout.servers();
    fsutil::create_dir(&servers, 0o755).map_err(io_context("create", &servers))?;
    let _turn = Lock::wait_for_dir(&servers).map_err(io_context("lock", &servers))?;
    let spec = settle_ports(host, &name, spec)?;
    let _lock = declaration_lock(&host.layout, &name)?;
    let mut changed = false;
    let yaml = spec.to_yaml();
    let spec_path = host.layout.spec_file(&name);
    if std::fs::read_to_string(&spec_path).ok().as_deref() != Some(yaml.as_str()) {
        write_atomic(&spec_path, yaml.as_bytes(), 0o644)
            .map_err(io_context("write", &spec_path))?;
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

/// Where the client's and SourceTV's ports are looked for when a spec leaves them out: this
/// far above the game port (as the app hands them out), so that game ports picked one after
/// another never land on them, as they would on srcds's defaults (27005 and 27020).
const CLIENT_PORT_OFFSET: u16 = 1000;
const TV_PORT_OFFSET: u16 = 2000;

/// Checks that no port of `spec` is another server's or taken on this host, and fills in a
/// free client port and SourceTV port where the spec leaves them out (keeping the ones the
/// server had). This server's own ports count as free: it may be running on them.
fn settle_ports(
    host: &Host<'_>,
    name: &ServerName,
    mut spec: InstanceSpec,
) -> Result<InstanceSpec, AgentError> {
    let others: Vec<(ServerName, InstanceSpec)> = list_specs(host)?
        .into_iter()
        .filter(|(other, _)| other != name)
        .collect();
    let previous = read_spec(host, name).ok();
    let own: BTreeSet<u16> = previous.iter().flat_map(InstanceSpec::ports).collect();
    let taken: Vec<crate::ports::Taken> = crate::ports::taken()
        .into_iter()
        .filter(|t| !own.contains(&t.port))
        .collect();
    for port in spec.ports() {
        if let Some((other, _)) = others.iter().find(|(_, s)| s.ports().contains(&port)) {
            return Err(AgentError::Invalid(format!(
                "spec: port {port} is already used by server {:?}",
                other.as_str()
            )));
        }
        if let Some(socket) = taken.iter().find(|t| t.port == port) {
            return Err(AgentError::Invalid(format!(
                "spec: port {port} is in use on this host (a {} socket of {})",
                socket.protocol,
                crate::accounts::describe(socket.uid)
            )));
        }
    }
    let mut avoid: BTreeSet<u16> = others.iter().flat_map(|(_, s)| s.ports()).collect();
    avoid.extend(taken.iter().map(|t| t.port));
    avoid.extend(spec.ports());
    let mut pick = |given: Option<u16>, had: Option<u16>, from: u16| -> Result<u16, AgentError> {
        let port = given
            .or(had.filter(|p| !avoid.contains(p)))
            .or_else(|| crate::ports::first_free(from, &avoid))
            .ok_or_else(|| AgentError::Invalid("spec: no free port is left".to_owned()))?;
        avoid.insert(port);
        Ok(port)
    };
    let had = previous.as_ref();
    let port = spec.port;
    spec.client_port = Some(pick(
        spec.client_port,
        had.and_then(|s| s.client_port),
        port.saturating_add(CLIENT_PORT_OFFSET),
    )?);
    if spec.source_tv() {
        spec.tv_port = Some(pick(
            spec.tv_port,
            had.and_then(|s| s.tv_port),
            port.saturating_add(TV_PORT_OFFSET),
        )?);
    }
    Ok(spec)
}

/// Where this host's agent reaches the server for A2S and RCON: its bind address, or
/// loopback when it binds all of them.
pub fn query_ip(spec: &InstanceSpec) -> std::net::Ipv4Addr {
    spec.ip
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST)
}

/// Removes a server's spec and RCON password: the owner's part of deleting it. Returns
/// whether there was anything to remove.
pub fn forget(layout: &Layout, name: &ServerName) -> Result<bool, AgentError> {
    if !layout.servers().is_dir() {
        return Ok(false);
    }
    let _lock = declaration_lock(layout, name)?;
    let mut changed = false;
    for path in [layout.spec_file(name), layout.rcon_file(name)] {
        match std::fs::remove_file(&path) {
            Ok(()) => changed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(AgentError::failed(
                    format!("cannot remove {}", path.display()),
                    e,
                ));
            }
        }
    }
    Ok(changed)
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

/// The server's RCON password, if it has one: the owner's file, read without following a
/// link.
pub fn rcon_password(host: &Host<'_>, name: &ServerName) -> Result<Option<String>, AgentError> {
    let owner = host.owner()?;
    let rel = Path::new("servers").join(layout::rcon_file_name(name));
    let bytes = host
        .state()?
        .read_beneath(&rel, owner.uid, MAX_RCON_BYTES)
        .map_err(|e| {
            AgentError::failed(
                format!("cannot read the RCON password of server \"{name}\""),
                e,
            )
        })?;
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    // Written by `initialize`, which checks it; checked again, as it ends up in server.cfg.
    let password = String::from_utf8_lossy(&bytes).trim().to_owned();
    validate_rcon_password(&password).map_err(|_| {
        AgentError::failed(
            format!("the RCON password of server \"{name}\" is damaged"),
            "set it again with `initialize --rcon-password-stdin`",
        )
    })?;
    Ok(Some(password))
}

/// The unit's environment file: the srcds command line the spec asks for, and which spec
/// the server started from ([`started_from`]).
pub fn env_file(spec: &InstanceSpec) -> String {
    format!(
        "# Written by l4d2-agent from the server's spec at each start; changes are overwritten.\nSRCDS_ARGS={}\n{STARTED_FROM}{}\n",
        srcds_args(spec).join(" "),
        start_digest(spec)
    )
}

const STARTED_FROM: &str = "LEFT4ME_SPEC=";

/// What of a spec only a start applies, as a digest: everything but what reaches a running
/// server at once (its limits, set on the unit; whether it is restarted when it hangs and
/// whether it goes first in a rollout, read when they are needed).
pub fn start_digest(spec: &InstanceSpec) -> String {
    let mut applied_at_start = spec.clone();
    applied_at_start.limits = Default::default();
    applied_at_start.restart_when_hung = false;
    applied_at_start.rollout_canary = false;
    let digest = ring::digest::digest(&ring::digest::SHA256, applied_at_start.to_yaml().as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of the spec the server last started from, from its environment file (None
/// before it ever started, or when an older agent started it).
pub fn started_from(layout: &Layout, name: &ServerName) -> Option<String> {
    let env = crate::fsutil::read_no_follow(&layout.env_file(name), 64 * 1024).ok()??;
    String::from_utf8_lossy(&env)
        .lines()
        .find_map(|line| line.strip_prefix(STARTED_FROM).map(str::to_owned))
}

/// srcds's arguments. `+map` comes last: srcds wants it after every other option.
pub fn srcds_args(spec: &InstanceSpec) -> Vec<String> {
    let ip = spec.ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    let mut args: Vec<String> = [
        "-game",
        "left4dead2",
        "-ip",
        &ip.to_string(),
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
    if let Some(port) = spec.client_port {
        args.extend(["+clientport".to_owned(), port.to_string()]);
    }
    if let (true, Some(port)) = (spec.source_tv(), spec.tv_port) {
        args.extend(["+tv_port".to_owned(), port.to_string()]);
    }
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

/// The server's spec as its owner declared it, read without following a link.
pub fn read_spec(host: &Host<'_>, name: &ServerName) -> Result<InstanceSpec, AgentError> {
    read_spec_in(&host.state()?, name, host.owner()?)
}

fn read_spec_in(
    state: &Dir,
    name: &ServerName,
    owner: Account,
) -> Result<InstanceSpec, AgentError> {
    let rel = Path::new("servers").join(layout::spec_file_name(name));
    let path = state.path().join(&rel);
    let bytes = state
        .read_beneath(&rel, owner.uid, MAX_SPEC_BYTES)
        .map_err(|e| AgentError::failed(format!("cannot read the spec of server \"{name}\""), e))?
        .ok_or_else(|| AgentError::NotFound {
            what: "server",
            name: name.to_string(),
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| AgentError::failed(format!("{} is damaged", path.display()), e))?;
    InstanceSpec::from_yaml(&text)
        .map_err(|e| AgentError::failed(format!("{} is damaged", path.display()), e))
}

/// Whether the owner has declared the server.
pub fn declared(host: &Host<'_>, name: &ServerName) -> Result<bool, AgentError> {
    match read_spec(host, name) {
        Ok(_) => Ok(true),
        Err(AgentError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// This process's own ids: root's when it runs as root.
fn own_ids() -> (u32, u32) {
    // SAFETY: these calls cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// The root-owned folder `runtime/<name>`, made if missing.
fn runtime_folder(state: &Dir, name: &ServerName) -> Result<Dir, AgentError> {
    let prepare = |e: DirError| AgentError::failed(format!("cannot prepare server \"{name}\""), e);
    let own = own_ids();
    let (runtime, _) = state.ensure_dir("runtime", 0o755, own).map_err(prepare)?;
    let (server, _) = runtime
        .ensure_dir(name.as_str(), 0o755, own)
        .map_err(prepare)?;
    Ok(server)
}

/// `runtime/<name>/`, root's, made if missing, for steps beside `mount` (a restore).
pub fn runtime_folder_for(state: &Dir, name: &ServerName) -> Result<Dir, AgentError> {
    runtime_folder(state, name)
}

/// Holds the server's runtime lock, as `mount` and `umount` do.
pub fn lock_runtime(server: &Dir, name: &ServerName) -> Result<Lock, AgentError> {
    runtime_lock(server, name)
}

/// Writes `server.cfg` into the upper layer and mounts the game tree.
pub fn mount(host: &Host<'_>, name: &str) -> Result<DoneReport, AgentError> {
    let name = server_name(name)?;
    let (owner, game) = (host.owner()?, host.game()?);
    let state = host.state()?;
    let spec = read_spec_in(&state, &name, owner)?;
    let paths = host.layout.server(&name);
    let server = runtime_folder(&state, &name)?;
    let _lock = runtime_lock(&server, &name)?;
    let mounted = count_at(&host.mount_table()?, &paths.merged()) > 0;
    if !mounted {
        // Content a fill staged while other servers ran takes effect at this start. The
        // overlays are the owner's: the owner moves them.
        accounts::run_as(owner, || {
            for overlay in &spec.overlays {
                crate::fill::apply_staged(&host.layout, overlay)?;
            }
            Ok(())
        })?;
    }
    for overlay in &spec.overlays {
        let rel = Path::new("overlays").join(overlay.as_str());
        let found = state
            .open_beneath(&rel)
            .map_err(|e| AgentError::failed(format!("cannot mount server \"{name}\""), e))?;
        if found.is_none() {
            return Err(AgentError::NotFound {
                what: "overlay",
                name: overlay.to_string(),
            });
        }
    }
    lay_out(&server, &paths, &spec, &host.mount_table()?, game, !mounted)
        .map_err(|e| AgentError::failed(format!("cannot prepare server \"{name}\""), e))?;
    write_env_file(&host.layout, &name, &spec)?;
    if !mounted {
        // The upper layer may be written only while nothing is mounted on it, and only as
        // the game account, whose folder it is.
        let password = rcon_password(host, &name)?;
        let includes = included_cfgs(&state, &spec.overlays);
        let cfg = server_cfg(&spec, &includes, password.as_deref());
        let upper = paths.upper();
        accounts::run_as(game, || write_server_cfg(&upper, &cfg))?;
    }
    let map = IdMap {
        from_uid: owner.uid,
        to_uid: game.uid,
        from_gid: owner.gid,
        to_gid: game.gid,
    };
    let changed = mounts::mount(
        host.sys,
        &stack(&host.layout, &name, &paths, &spec.overlays),
        map,
    )
    .map_err(|e| AgentError::failed(format!("cannot mount server \"{name}\""), e))?;
    accounts::run_as(owner, || {
        remove_unseen_retired(host, &spec.overlays, &name);
        crate::install::remove_unused_installs(&host.layout);
        Ok(())
    })?;
    Ok(done("mount", &name, changed))
}

/// Makes the server's folders that are not mounted on: `merged/`, `idmap/` and one folder
/// in it per layer, `work/` (root's, as overlayfs uses it as root) and, on a first mount,
/// `upper/` for the game.
fn lay_out(
    server: &Dir,
    paths: &ServerPaths,
    spec: &InstanceSpec,
    table: &[Mount],
    game: Account,
    first: bool,
) -> Result<(), DirError> {
    let own = own_ids();
    if first {
        if count_at(table, &paths.merged()) == 0 {
            server.ensure_dir("merged", 0o755, own)?;
        }
        server.ensure_dir("work", 0o700, own)?;
        server.ensure_dir("upper", 0o755, (game.uid, game.gid))?;
    }
    let (idmap, _) = server.ensure_dir("idmap", 0o755, own)?;
    let layers = spec
        .overlays
        .iter()
        .map(|o| o.as_str())
        .chain([layout::INSTALLATION_IDMAP]);
    for layer in layers {
        if count_at(table, &idmap.join(layer)) == 0 {
            idmap.ensure_dir(layer, 0o755, own)?;
        }
    }
    Ok(())
}

/// Writes the unit's environment file (root's, in root's folder) from the spec.
fn write_env_file(
    layout: &Layout,
    name: &ServerName,
    spec: &InstanceSpec,
) -> Result<(), AgentError> {
    let etc = layout.etc();
    let failed = |e: DirError| {
        AgentError::failed(
            format!("cannot write the environment of server \"{name}\""),
            e,
        )
    };
    let parent = Dir::open_trusted(etc.parent().unwrap_or(Path::new("/"))).map_err(failed)?;
    let leaf = etc
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (etc, _) = parent.ensure_dir(&leaf, 0o755, own_ids()).map_err(failed)?;
    etc.ensure_file(
        &layout::env_file_name(name),
        env_file(spec).as_bytes(),
        0o644,
    )
    .map_err(failed)?;
    Ok(())
}

/// Removes the retired versions of `overlays` that no mounted server other than `except`
/// may still see (a server mounted before a staged version was applied sees the old one).
fn remove_unseen_retired(host: &Host<'_>, overlays: &[OverlayName], except: &ServerName) {
    let (Ok(table), Ok(specs)) = (host.sys.mountinfo(), list_specs(host)) else {
        return;
    };
    for overlay in overlays {
        let seen = specs.iter().any(|(server, spec)| {
            server != except
                && spec.overlays.contains(overlay)
                && count_at(&table, &host.layout.server(server).merged()) > 0
        });
        if !seen {
            crate::fill::remove_retired(&host.layout, overlay);
        }
    }
}

/// The cfg files the overlays put in [`INCLUDE_DIR`], bottom overlay first, each name once
/// (the merged tree shows the top overlay's file of a name). Names are kept to plain cfg
/// file names, so an `exec` line cannot be bent. Read without following a link: a folder
/// planted as a link is skipped.
pub fn included_cfgs(state: &Dir, overlays: &[OverlayName]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for overlay in overlays.iter().rev() {
        let rel = Path::new("overlays")
            .join(overlay.as_str())
            .join(INCLUDE_DIR);
        let Ok(Some(dir)) = state.open_beneath(&rel) else {
            continue;
        };
        let mut found: Vec<String> = dir
            .names()
            .unwrap_or_default()
            .into_iter()
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

/// Writes `server.cfg` into the upper layer at `upper`; run as the game account, whose
/// folder it is, and still without following a link it planted.
fn write_server_cfg(upper: &Path, cfg: &str) -> Result<(), AgentError> {
    let failed = |e: DirError| AgentError::failed("cannot write server.cfg", e);
    let own = own_ids();
    let mut dir = Dir::open_no_follow(upper).map_err(failed)?;
    for part in ["left4dead2", "cfg"] {
        dir = dir.ensure_dir(part, 0o755, own).map_err(failed)?.0;
    }
    dir.write_file("server.cfg", cfg.as_bytes(), 0o640)
        .map_err(failed)
}

fn stack(
    layout: &Layout,
    name: &ServerName,
    paths: &ServerPaths,
    overlays: &[OverlayName],
) -> Stack {
    let overlays: Vec<(PathBuf, OverlayName)> = overlays
        .iter()
        .map(|o| (layout.overlay(o), o.clone()))
        .collect();
    Stack::new(paths, &overlays, &layout.installation_for(name))
}

/// Unmounts the game tree.
pub fn umount(host: &Host<'_>, name: &str) -> Result<DoneReport, AgentError> {
    let name = server_name(name)?;
    let paths = host.layout.server(&name);
    let state = host.state()?;
    let not_found = || AgentError::NotFound {
        what: "server",
        name: name.to_string(),
    };
    let failed = |e: DirError| AgentError::failed(format!("cannot unmount server \"{name}\""), e);
    let runtime = state
        .open_dir("runtime")
        .map_err(failed)?
        .ok_or_else(not_found)?;
    runtime.check_trusted().map_err(failed)?;
    let server = runtime
        .open_dir(name.as_str())
        .map_err(failed)?
        .ok_or_else(not_found)?;
    server.check_trusted().map_err(failed)?;
    let _lock = runtime_lock(&server, &name)?;
    let changed = mounts::unmount_server(host.sys, &paths)
        .map_err(|e| AgentError::failed(format!("cannot unmount server \"{name}\""), e))?;
    if let Ok(spec) = read_spec(host, &name) {
        accounts::run_as(host.owner()?, || {
            remove_unseen_retired(host, &spec.overlays, &name);
            crate::install::remove_unused_installs(&host.layout);
            Ok(())
        })?;
    }
    Ok(done("umount", &name, changed))
}

/// Unmounts a server's game tree and removes its runtime folder (the game's upper layer
/// with it, through descriptors) and its environment file: root's part of deleting it.
/// Returns whether there was anything.
pub fn remove_runtime(host: &Host<'_>, name: &ServerName) -> Result<bool, AgentError> {
    let state = host.state()?;
    let paths = host.layout.server(name);
    let failed = |e: DirError| AgentError::failed(format!("cannot delete server \"{name}\""), e);
    let mut changed = false;
    if let Some(runtime) = state.open_dir("runtime").map_err(failed)? {
        runtime.check_trusted().map_err(failed)?;
        if let Some(server) = runtime.open_dir(name.as_str()).map_err(failed)? {
            server.check_trusted().map_err(failed)?;
            let _lock = runtime_lock(&server, name)?;
            mounts::unmount_server(host.sys, &paths)
                .map_err(|e| AgentError::failed(format!("cannot unmount server \"{name}\""), e))?;
            // Never remove a tree that still has something mounted in it: that would delete
            // the overlays' or the install's files through the mount.
            let table = host.mount_table()?;
            if let Some(left) = table.iter().find(|m| m.target.starts_with(paths.dir())) {
                return Err(AgentError::failed(
                    format!("cannot delete server \"{name}\""),
                    format!("{} is still mounted", left.target.display()),
                ));
            }
            runtime.remove_tree(name.as_str()).map_err(failed)?;
            changed = true;
        }
    }
    let etc = host.layout.etc();
    match Dir::open_trusted(etc) {
        Ok(etc) => {
            changed |= etc
                .remove_file(&layout::env_file_name(name))
                .map_err(failed)?
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(failed(e)),
    }
    Ok(changed)
}

/// Deletes a server that runs under no unit (a state tree other than the host's): its
/// runtime, then its declaration (as the owner). A missing server is success with nothing
/// changed.
pub fn delete(host: &Host<'_>, name: &ServerName) -> Result<DoneReport, AgentError> {
    // A damaged spec is a declaration too.
    let declared = declared(host, name).unwrap_or(true);
    let removed = remove_runtime(host, name)?;
    accounts::run_as(host.owner()?, || forget(&host.layout, name).map(drop))?;
    Ok(done("delete", name, removed || declared))
}

/// Every declared server with its spec, by name.
pub fn list_specs(host: &Host<'_>) -> Result<Vec<(ServerName, InstanceSpec)>, AgentError> {
    let dir = host.layout.servers();
    let names = fsutil::named_entries(&dir, |n| {
        n.strip_suffix(".yaml")
            .and_then(|n| ServerName::new(n).ok())
    })
    .map_err(io_context("read", &dir))?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let (state, owner) = (host.state()?, host.owner()?);
    // A spec that cannot be read is not listed; `status` of that server says why.
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let spec = read_spec_in(&state, &name, owner).ok()?;
            Some((name, spec))
        })
        .collect())
}

/// The servers whose spec uses `overlay`.
pub fn users_of(host: &Host<'_>, overlay: &OverlayName) -> Result<Vec<String>, AgentError> {
    Ok(list_specs(host)?
        .into_iter()
        .filter(|(_, spec)| spec.overlays.contains(overlay))
        .map(|(name, _)| name.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_what_a_start_applies_makes_a_restart_wait() {
        let spec = |extra: &str| {
            InstanceSpec::from_yaml(&format!(
                "port: 27015\nlaunch:\n  map: c1m1_hotel\n  max_players: 8\n  tickrate: 30\n{extra}"
            ))
            .unwrap()
        };
        let plain = start_digest(&spec(""));
        assert_eq!(
            plain,
            start_digest(&spec(
                "limits:\n  cpu_weight: 200\nrestart_when_hung: true\nrollout_canary: true\n"
            ))
        );
        assert_ne!(plain, start_digest(&spec("cvars:\n  hostname: Friday\n")));
        assert!(env_file(&spec("")).ends_with(&format!("\nLEFT4ME_SPEC={plain}\n")));
    }

    use super::*;

    const SPEC: &str = "port: 27016\noverlays: [sourcemod]\nlaunch:\n  map: c2m1_highway\n  max_players: 8\n  tickrate: 60\n  flags: [-insecure]\ncvars:\n  hostname: Friday coop\n  sv_gametypes: coop\n";

    #[test]
    fn srcds_command_line_has_map_last() {
        let spec = InstanceSpec::from_yaml(SPEC).unwrap();
        assert_eq!(
            srcds_args(&spec).join(" "),
            "-game left4dead2 -ip 0.0.0.0 -port 27016 -maxplayers 8 -tickrate 60 -strictportbind -norestart -nobreakpad -insecure +exec server.cfg +map c2m1_highway"
        );
        let spec = InstanceSpec::from_yaml(&SPEC.replace(
            "port: 27016\n",
            "port: 27016\nip: 10.0.0.5\nclient_port: 27006\ntv_port: 27021\n",
        ))
        .unwrap();
        assert_eq!(
            srcds_args(&spec).join(" "),
            "-game left4dead2 -ip 10.0.0.5 -port 27016 -maxplayers 8 -tickrate 60 -strictportbind -norestart -nobreakpad -insecure +clientport 27006 +tv_port 27021 +exec server.cfg +map c2m1_highway"
        );
        assert_eq!(query_ip(&spec), std::net::Ipv4Addr::new(10, 0, 0, 5));
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
        let state = Dir::open_no_follow(dir.path()).unwrap();
        let includes = included_cfgs(&state, &overlays);
        assert_eq!(includes, ["a-competitive.cfg", "shared.cfg", "b-rates.cfg"]);
        let spec = InstanceSpec::from_yaml(SPEC).unwrap();
        let cfg = server_cfg(&spec, &includes, None);
        assert!(cfg.contains("exec left4me.d/a-competitive.cfg\nexec left4me.d/shared.cfg\nexec left4me.d/b-rates.cfg\nhostname"), "{cfg}");
    }
}
