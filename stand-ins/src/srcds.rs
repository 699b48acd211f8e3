//! The stand-in L4D2 server (`bin/srcds_stand_in`, started by the i386 `srcds_linux`). It takes srcds's command line, reads the game tree in its
//! working directory (`left4dead2/cfg/<exec file>`, `left4dead2/addons/`, `left4dead2/maps/`),
//! answers A2S_INFO, A2S_PLAYER and A2S_RULES on UDP and Source RCON on TCP of its port, and prints
//! console lines like srcds does.
//!
//! Knobs in the tree, for tests: `left4dead2/stand-in-players.txt` (one `name[,score]` per
//! line) is the simulated player list (`kick <name>` over RCON makes one leave); `left4dead2/stand-in-crash-on-start` makes it crash at
//! once, as a broken add-on would. The RCON command `stand_in_flood <lines> <rate> [timed]` prints
//! numbered console lines at a rate, for the log view's benchmark (`timed`: each line ends
//! with when it was printed); `stand_in_crash` makes it
//! die of SIGSEGV there and then, as a broken plugin would; `stand_in_hang` deadlocks it:
//! the process lives, answering nothing and ignoring `quit` and SIGINT. For backups,
//! `stand_in_remove <path>` and `stand_in_write <path> <bytes>` change the game tree, and
//! `stand_in_sqlite <n>` writes `n` transactions to a SQLite database in the background, as
//! a SourceMod plugin writes its own, until `stand_in_sqlite_stop` (`stand_in_ledger` counts
//! its rows). The build in the tree matters too: `left4dead2/steam.inf`'s `PatchVersion` is
//! the version A2S tells, and on a build whose `bin/server_srv.so` moved the functions
//! SourceMod's gamedata finds by signature, every plugin fails to load and says so in
//! SourceMod's error log, as after a real game update.
//!
//! Its console behaves like C stdio, which srcds uses: a line at a time on a terminal, 4 KiB
//! at a time on a pipe, and whatever is still buffered is lost when the process dies from a
//! signal or a crash. It reads console commands from stdin, as srcds does.
//!
//! Stopping it: `quit` (on the console or over RCON) and SIGINT end it cleanly, writing out
//! the console. The peers stop srcds that way (Pelican's egg types `quit`, its yolks image
//! stops with SIGINT, AMP sends `quit`). How srcds takes SIGTERM is unconfirmed (one report,
//! ValveSoftware/halflife#2167, says it shuts down cleanly), so the stand-in takes the harsher
//! reading: SIGTERM has its default effect, ending the process at once and losing the
//! buffered console.

use l4d2_agent::a2s::{self, Request};
use l4d2_agent::rcon::{self, Packet};
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The version string L4D2's A2S_INFO carries when the tree has no `steam.inf`.
pub const VERSION: &str = "2.2.4.3";
/// The game's library in `left4dead2/bin/`, whose functions SourceMod's gamedata finds by
/// byte signatures.
pub const SERVER_LIBRARY: &str = "server_srv.so";
/// What the stand-in library of a build that moved those functions holds.
pub const SIGNATURES_MOVED: &str = "stand-in server library: signatures moved\n";
/// L4D2's app id (the game's, not the dedicated server's).
pub const APP_ID: u16 = 550;
const GAME_DIR: &str = "left4dead2";
/// The cvars the stand-in lists in `A2S_RULES`, with their defaults: a few of L4D2's
/// public ones (which of its cvars carry `FCVAR_NOTIFY` is unconfirmed).
const NOTIFY_CVARS: &[(&str, &str)] = &[
    ("mp_gamemode", "coop"),
    ("sv_alltalk", "0"),
    ("sv_cheats", "0"),
    ("sv_gravity", "800"),
    ("sv_password", ""),
    ("sv_tags", ""),
];
const PROTECTED_CVARS: &[&str] = &["sv_password"];

/// What srcds's command line says.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub game: String,
    pub ip: IpAddr,
    pub port: u16,
    pub map: Option<String>,
    pub max_players: u8,
    pub tickrate: u16,
    pub exec: Vec<String>,
    pub strict_port_bind: bool,
    /// Whether `-ip` was given: without it, RCON binds the address the host's name resolves to.
    pub ip_given: bool,
    pub client_port: u16,
    /// SourceTV, unless `-nohltv`.
    pub source_tv: bool,
    pub tv_port: u16,
    pub insecure: bool,
    /// Other `+cvar value` pairs, applied after the config files.
    pub cvars: Vec<(String, String)>,
}

impl Options {
    /// Parses srcds's grammar: `-flag`, `-option value`, and `+command args…` (a `+` command
    /// takes the words up to the next `-` or `+` word).
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            game: String::new(),
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 27015,
            map: None,
            max_players: 8,
            tickrate: 30,
            exec: Vec::new(),
            strict_port_bind: false,
            ip_given: false,
            client_port: 27005,
            source_tv: true,
            tv_port: 27020,
            insecure: false,
            cvars: Vec::new(),
        };
        let mut words = args.iter().peekable();
        while let Some(word) = words.next() {
            let mut value = |name: &str| {
                words
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match word.as_str() {
                "-game" => options.game = value("-game")?,
                "-ip" => {
                    options.ip = value("-ip")?
                        .parse()
                        .map_err(|_| "-ip needs an address".to_owned())?;
                    options.ip_given = true;
                }
                "-port" => {
                    options.port = value("-port")?
                        .parse()
                        .map_err(|_| "-port needs a number".to_owned())?
                }
                "-maxplayers" => {
                    options.max_players = value("-maxplayers")?
                        .parse()
                        .map_err(|_| "-maxplayers needs a number".to_owned())?
                }
                "-tickrate" => {
                    options.tickrate = value("-tickrate")?
                        .parse()
                        .map_err(|_| "-tickrate needs a number".to_owned())?
                }
                "-strictportbind" => options.strict_port_bind = true,
                "-insecure" => options.insecure = true,
                "-nohltv" => options.source_tv = false,
                // Accepted and meaningless here.
                "-norestart" | "-console" | "-usercon" | "-nobreakpad" | "-debug" => {}
                "-frametime" => {
                    value(word)?;
                }
                "+clientport" => {
                    options.client_port = value(word)?
                        .parse()
                        .map_err(|_| "+clientport needs a number".to_owned())?
                }
                "+tv_port" => {
                    options.tv_port = value(word)?
                        .parse()
                        .map_err(|_| "+tv_port needs a number".to_owned())?
                }
                plus if plus.starts_with('+') => {
                    let mut args = Vec::new();
                    while let Some(next) = words.peek() {
                        if next.starts_with('+') || next.starts_with('-') {
                            break;
                        }
                        args.push(words.next().unwrap().clone());
                    }
                    let name = &plus[1..];
                    match name {
                        "map" => options.map = args.into_iter().next(),
                        "exec" | "servercfgfile" => options.exec.extend(args),
                        "sv_setmax" => {
                            if let Some(n) = args.first().and_then(|n| n.parse().ok()) {
                                options.max_players = n;
                            }
                        }
                        _ => options.cvars.push((name.to_owned(), args.join(" "))),
                    }
                }
                // srcds ignores switches it does not know.
                _ => {}
            }
        }
        if options.game != GAME_DIR {
            return Err(format!(
                "-game {:?}: this server runs {GAME_DIR} only",
                options.game
            ));
        }
        Ok(options)
    }
}

/// The server's live state, shared by the query, RCON and console threads.
struct State {
    map: String,
    cvars: HashMap<String, String>,
    players: Vec<(String, i32)>,
    started: Instant,
    max_players: u8,
    vac: bool,
    port: u16,
    tv_port: Option<u16>,
    plugins: Option<Vec<String>>,
    /// `PatchVersion` from `steam.inf`.
    version: String,
    /// Per client address: the challenge it was given.
    challenges: HashMap<SocketAddr, i32>,
    tickrate: u16,
}

impl State {
    fn cvar(&self, name: &str) -> &str {
        self.cvars.get(name).map(String::as_str).unwrap_or("")
    }

    /// `A2S_RULES`: the public (`FCVAR_NOTIFY`) cvars with their values, the protected ones
    /// (passwords) only as `1` when set and `0` when not, as the Source engine sends them.
    fn rules(&self) -> Vec<(String, String)> {
        NOTIFY_CVARS
            .iter()
            .map(|(name, default)| {
                let value = self.cvars.get(*name).map(String::as_str).unwrap_or(default);
                let value = if PROTECTED_CVARS.contains(name) {
                    if value.is_empty() { "0" } else { "1" }
                } else {
                    value
                };
                ((*name).to_owned(), value.to_owned())
            })
            .collect()
    }

    fn info(&self) -> a2s::Info {
        a2s::Info {
            protocol: 17,
            name: match self.cvar("hostname") {
                "" => "Left 4 Dead 2".to_owned(),
                name => name.to_owned(),
            },
            map: self.map.clone(),
            folder: GAME_DIR.to_owned(),
            game: "Left 4 Dead 2".to_owned(),
            app_id: APP_ID,
            players: self.players.len() as u8,
            max_players: self.max_players,
            bots: 0,
            server_type: b'd',
            environment: b'l',
            password: !self.cvar("sv_password").is_empty(),
            vac: self.vac,
            version: self.version.clone(),
            port: Some(self.port),
            steam_id: Some(85_568_392_920_039_424 + u64::from(self.port)),
            source_tv: self.tv_port.map(|port| (port, "SourceTV".to_owned())),
            keywords: Some(format!(
                "{},{}",
                match self.cvar("sv_gametypes") {
                    "" => "coop",
                    modes => modes,
                },
                if self.players.is_empty() { "empty" } else { "" }
            )),
            game_id: Some(u64::from(APP_ID)),
        }
    }

    fn player_list(&self) -> Vec<a2s::Player> {
        let connected = self.started.elapsed().as_secs_f32();
        self.players
            .iter()
            .enumerate()
            .map(|(i, (name, score))| a2s::Player {
                index: i as u8,
                name: name.clone(),
                score: *score,
                duration: connected + 60.0 * i as f32,
            })
            .collect()
    }
}

/// What C stdio holds back of the console before it writes it out.
/// Prints one console line the way srcds's stdio does (see [`crate::stdio`]).
fn console(line: &str) {
    crate::stdio::print_line(line);
}

/// Writes out what the console still holds, as `exit()` does with stdio's buffers.
pub fn flush_console() {
    crate::stdio::flush();
}

/// Ends the server cleanly: the console is written out, as `exit()` would.
fn shut_down(reason: &str) -> ! {
    console(reason);
    console("Shutting down server");
    flush_console();
    std::process::exit(0)
}

/// Set by `stand_in_hang`: the server no longer acts on anything.
static HUNG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// SIGINT asks for a clean shutdown; SIGTERM keeps its default effect (see the module's doc).
/// One thread waits for SIGINT, blocked in every other thread (they are all started after
/// this and inherit the mask): an idle server costs no wakeups, as a fleet of them on one
/// test machine needs.
fn handle_signals() {
    // SAFETY: builds a signal set we own and blocks it in this thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        loop {
            let mut signal = 0;
            // SAFETY: waits for a signal of a set we own.
            let waited = unsafe { libc::sigwait(&set, &mut signal) };
            if waited == 0 && !HUNG.load(std::sync::atomic::Ordering::SeqCst) {
                shut_down("Signal 2 (SIGINT) received");
            }
        }
    });
}

/// Console commands typed on stdin, as srcds reads them; their output goes to the console.
fn read_console_input(state: Arc<Mutex<State>>) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
            let (answer, quit) = execute(line.trim(), &state);
            for text in answer.lines() {
                console(text);
            }
            if quit {
                shut_down("quit");
            }
            line.clear();
        }
    });
}

/// Prints `lines` numbered console lines at `rate` a second, as a busy server with verbose
/// logging does (for the log view's benchmark): `flood <n> of <lines>`, from 1; `timed`
/// appends ` at <µs since the epoch>`, taken as the line goes to the console.
fn flood(lines: u64, rate: u64, timed: bool) {
    let start = std::time::Instant::now();
    for n in 1..=lines {
        let due = start + std::time::Duration::from_secs_f64((n - 1) as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
        if timed {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros();
            console(&format!("flood {n} of {lines} at {at}"));
        } else {
            console(&format!("flood {n} of {lines}"));
        }
    }
}

/// Runs the server until `quit` or a signal; returns the process exit code.
pub fn run(options: Options, root: &Path) -> i32 {
    let game = root.join(GAME_DIR);
    if !game.is_dir() {
        console(&format!(
            "Error: game directory {} not found",
            game.display()
        ));
        return 1;
    }
    handle_signals();
    console("Console initialized.");
    console(&format!("Game.dll loaded for \"{}\"", "Left 4 Dead 2"));
    if game.join("stand-in-crash-on-start").exists() {
        console("Segmentation fault (core dumped)");
        crate::crash();
    }
    for addon in files_with_extension(&game.join("addons"), "vpk") {
        console(&format!("Adding addon: addons/{addon}"));
    }
    let plugins = sourcemod_plugins(&game).map(|plugins| load_plugins(&game, plugins));
    let version = patch_version(&game).unwrap_or_else(|| VERSION.to_owned());

    let mut cvars = HashMap::new();
    let exec = if options.exec.is_empty() {
        vec!["server.cfg".to_owned()]
    } else {
        options.exec.clone()
    };
    for file in &exec {
        let path = game.join("cfg").join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                console(&format!("Executing dedicated server config file {file}"));
                cvars.extend(parse_cfg(&text));
            }
            Err(_) => console(&format!("Couldn't exec {file}")),
        }
    }
    cvars.extend(options.cvars.iter().cloned());

    let Some(map) = options.map.clone() else {
        console("No map specified (+map); nothing to run");
        return 1;
    };
    if !map_exists(&game, &map) {
        console(&format!("map load failed: {map} not found or invalid"));
        return 1;
    }

    let bound = match bind(&options, &game) {
        Ok(bound) => bound,
        Err(message) => {
            console(&message);
            return 1;
        }
    };
    let port = bound.port;
    console(&format!(
        "Network: IP {}, mode MP, dedicated Yes, ports {port} SV / {} CL",
        options.ip, bound.client_port
    ));
    if let Some(tv_port) = bound.tv_port {
        console(&format!("SourceTV port {tv_port}"));
    }
    console(&format!("RCON listening on {}:{port}", bound.rcon_ip));

    // srcds loads the Steam client from the account's home; without it, no Steam: no VAC,
    // no master-server listing.
    let steam = steam_client_found();
    if steam {
        console("Connection to Steam servers successful.");
        console(&format!(
            "   VAC secure mode is {}.",
            if options.insecure {
                "disabled"
            } else {
                "activated"
            }
        ));
    } else {
        console(
            "[S_API FAIL] SteamAPI_Init() failed; unable to locate a running instance of Steam, or a local steamclient.so.",
        );
    }
    let players = read_players(&game);
    let state = Arc::new(Mutex::new(State {
        map: map.clone(),
        cvars,
        players: Vec::new(),
        started: Instant::now(),
        max_players: options.max_players,
        vac: steam && !options.insecure,
        port,
        tv_port: bound.tv_port,
        plugins: plugins.clone(),
        version,
        challenges: HashMap::new(),
        tickrate: options.tickrate,
    }));
    if let Some(plugins) = &plugins {
        console("[SM] SourceMod loaded");
        for plugin in plugins {
            console(&format!("[SM] Loaded plugin {plugin}"));
        }
    }
    console(&format!("-------- Mapchange to {map} --------"));
    console(&format!("Map {map} loaded, tickrate {}", options.tickrate));
    for (name, score) in players {
        console(&format!(
            "Client \"{name}\" connected (10.{}.0.{}:27005).",
            port % 256,
            state.lock().unwrap().players.len() + 2
        ));
        state.lock().unwrap().players.push((name, score));
    }

    let query_state = Arc::clone(&state);
    let Bound {
        queries,
        rcon: listener,
        _client,
        _tv,
        ..
    } = bound;
    std::thread::spawn(move || serve_queries(queries, query_state));
    read_console_input(Arc::clone(&state));
    for stream in listener.incoming().flatten() {
        let state = Arc::clone(&state);
        std::thread::spawn(move || serve_rcon(stream, state));
    }
    0
}

/// The sockets a running server holds.
struct Bound {
    queries: UdpSocket,
    rcon: TcpListener,
    port: u16,
    rcon_ip: IpAddr,
    /// Held for the server's life, as srcds holds its client and SourceTV sockets.
    _client: UdpSocket,
    client_port: u16,
    _tv: Option<UdpSocket>,
    tv_port: Option<u16>,
}

/// Binds like srcds: the game port (UDP for play and queries, TCP for RCON), the client
/// port, and SourceTV's unless `-nohltv`. Without `-ip`, RCON's TCP socket goes to the
/// address the host's name resolves to, which is 127.0.1.1 on stock Debian and Ubuntu, while
/// UDP takes every address. A busy port fails the start under `-strictportbind` and moves to
/// the next free one otherwise; with `left4dead2/stand-in-drifts` in the tree the game port
/// moves even under `-strictportbind`, as L4D2 may not honour it (unconfirmed).
fn bind(options: &Options, game: &Path) -> Result<Bound, String> {
    let strict = options.strict_port_bind && !game.join("stand-in-drifts").exists();
    let rcon_ip = if options.ip_given {
        options.ip
    } else {
        host_name_address().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    let tries = if strict { 1 } else { 10 };
    let mut last = String::new();
    let mut game_sockets = None;
    for port in options.port..options.port.saturating_add(tries) {
        match (
            UdpSocket::bind(SocketAddr::new(options.ip, port)),
            TcpListener::bind(SocketAddr::new(rcon_ip, port)),
        ) {
            (Ok(udp), Ok(tcp)) => {
                game_sockets = Some((udp, tcp, port));
                break;
            }
            (Err(e), _) | (_, Err(e)) => {
                last = format!("WARNING: UDP_OpenSocket: port: {port} bind: {e}");
                console(&last);
            }
        }
    }
    let Some((queries, rcon, port)) = game_sockets else {
        return Err(if strict {
            format!("Failed to bind to port {} (-strictportbind)", options.port)
        } else {
            last
        });
    };
    // A second server with the same client or SourceTV port fails under -strictportbind
    // ("port unavailable (27005)", LinuxGSM#639); without it, the next free port is taken.
    let other_tries = if options.strict_port_bind { 1 } else { 10 };
    let free_udp = |from: u16, what: &str| -> Result<(UdpSocket, u16), String> {
        for port in from..from.saturating_add(other_tries) {
            match UdpSocket::bind(SocketAddr::new(options.ip, port)) {
                Ok(socket) => return Ok((socket, port)),
                Err(e) => console(&format!("WARNING: {what} port {port} unavailable: {e}")),
            }
        }
        Err(format!(
            "Unable to open the {what} port: port unavailable ({from})"
        ))
    };
    let (client, client_port) = free_udp(options.client_port, "client")?;
    let (tv, tv_port) = if options.source_tv {
        let (socket, port) = free_udp(options.tv_port, "SourceTV")?;
        (Some(socket), Some(port))
    } else {
        (None, None)
    };
    Ok(Bound {
        queries,
        rcon,
        port,
        rcon_ip,
        _client: client,
        client_port,
        _tv: tv,
        tv_port,
    })
}

/// Whether `$HOME/.steam/sdk32/steamclient.so` is there, where srcds looks for it.
fn steam_client_found() -> bool {
    std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .is_some_and(|home| home.join(".steam/sdk32/steamclient.so").is_file())
}

/// The IPv4 address /etc/hosts gives this host's name, as srcds's gethostbyname finds it
/// (the stand-in is a static program without NSS, so it reads the file itself).
fn host_name_address() -> Option<IpAddr> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    address_in_hosts(&hosts, name.trim())
}

/// The first IPv4 address an /etc/hosts text gives `name`.
pub fn address_in_hosts(hosts: &str, name: &str) -> Option<IpAddr> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_whitespace();
        let address: Ipv4Addr = words.next()?.parse().ok()?;
        words.any(|w| w == name).then_some(IpAddr::V4(address))
    })
}

fn serve_queries(socket: UdpSocket, state: Arc<Mutex<State>>) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        // srcds drops what it does not understand.
        let Ok(request) = a2s::parse_request(&buf[..n]) else {
            continue;
        };
        let mut state = state.lock().unwrap();
        let challenge = *state
            .challenges
            .entry(from)
            .or_insert_with(|| (crate::random_u32() & 0x7FFF_FFFF) as i32);
        let answer = match request {
            Request::Info { challenge: given } if given == Some(challenge) => {
                a2s::encode_info(&state.info())
            }
            Request::Players { challenge: given } if given == challenge => {
                a2s::encode_players(&state.player_list())
            }
            Request::Rules { challenge: given } if given == challenge => {
                a2s::encode_rules(&state.rules())
            }
            _ => a2s::encode_challenge(challenge),
        };
        drop(state);
        for packet in a2s::split(&answer, crate::random_u32() as i32) {
            let _ = socket.send_to(&packet, from);
        }
    }
}

fn serve_rcon(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut authenticated = false;
    while let Ok(Some(packet)) = Packet::read(&mut stream) {
        let mut replies = Vec::new();
        match packet.kind {
            rcon::SERVERDATA_AUTH => {
                let password = state.lock().unwrap().cvar("rcon_password").to_owned();
                authenticated = !password.is_empty() && packet.body == password.as_bytes();
                replies.push(Packet::new(packet.id, rcon::SERVERDATA_RESPONSE_VALUE, ""));
                let id = if authenticated { packet.id } else { -1 };
                replies.push(Packet::new(id, rcon::SERVERDATA_AUTH_RESPONSE, ""));
                if !authenticated {
                    console("RCON: bad password attempt");
                }
            }
            _ if !authenticated => {
                replies.push(Packet::new(-1, rcon::SERVERDATA_AUTH_RESPONSE, ""));
            }
            rcon::SERVERDATA_EXECCOMMAND => {
                let command = String::from_utf8_lossy(&packet.body).into_owned();
                let (answer, quit) = execute(&command, &state);
                for chunk in answer.as_bytes().chunks(rcon::MAX_BODY) {
                    replies.push(Packet::new(
                        packet.id,
                        rcon::SERVERDATA_RESPONSE_VALUE,
                        chunk,
                    ));
                }
                if answer.is_empty() {
                    replies.push(Packet::new(packet.id, rcon::SERVERDATA_RESPONSE_VALUE, ""));
                }
                send_all(&mut stream, &replies);
                if quit {
                    shut_down("quit (over RCON)");
                }
                continue;
            }
            rcon::SERVERDATA_RESPONSE_VALUE => {
                // The end marker: mirrored, then the odd trailer srcds adds.
                replies.push(Packet::new(packet.id, rcon::SERVERDATA_RESPONSE_VALUE, ""));
                replies.push(Packet::new(
                    packet.id,
                    rcon::SERVERDATA_RESPONSE_VALUE,
                    rcon::TRAILER_BODY,
                ));
            }
            _ => {}
        }
        send_all(&mut stream, &replies);
    }
}

fn send_all(stream: &mut TcpStream, packets: &[Packet]) {
    for packet in packets {
        if stream.write_all(&packet.encode()).is_err() {
            return;
        }
    }
}

/// Runs one console command; returns its output and whether the server should quit.
fn execute(command: &str, state_arc: &Arc<Mutex<State>>) -> (String, bool) {
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut state = state_arc.lock().unwrap();
    let answer = match words.as_slice() {
        [] => String::new(),
        ["status"] => status(&state),
        // srcds's table; the game keeps its tickrate, a hair under it as a real one does.
        ["stats"] => format!(
            "CPU    In_(KB/s)  Out_(KB/s)  Uptime  Map_changes  FPS      Players  Connects\n\
             0.00   0.00       0.00        {}       1            {:.2}    {}        {}\n",
            state.started.elapsed().as_secs() / 60,
            f32::from(state.tickrate) - 0.03,
            state.players.len(),
            state.players.len()
        ),
        ["stand_in_flood", lines, rate, timed @ ..] if timed.is_empty() || timed == ["timed"] => {
            match (lines.parse::<u64>(), rate.parse::<u64>()) {
                (Ok(lines), Ok(rate)) if rate > 0 => {
                    let timed = !timed.is_empty();
                    std::thread::spawn(move || flood(lines, rate, timed));
                    format!("flooding the console with {lines} lines at {rate} a second\n")
                }
                _ => "usage: stand_in_flood <lines> <lines a second> [timed]\n".to_owned(),
            }
        }
        // A knob for tests: the game hangs as a deadlocked plugin makes it. The process lives
        // on, but its state stays locked: no query, RCON command or console line is answered
        // again, `quit` included, and SIGINT is ignored; only SIGKILL ends it.
        ["stand_in_hang"] => {
            HUNG.store(true, std::sync::atomic::Ordering::SeqCst);
            let state = Arc::clone(state_arc);
            std::thread::spawn(move || {
                let _held = state.lock();
                loop {
                    std::thread::park();
                }
            });
            String::new()
        }
        // Knobs for tests of backups: the game's own files change while it runs. A file or
        // folder of the game tree removed (overlayfs records it in the upper layer), a file
        // written, and SourceMod's SQLite database written to as a plugin does.
        ["stand_in_remove", path] => match game_path(path) {
            Some(target) => {
                let removed = if target.is_dir() {
                    std::fs::remove_dir_all(&target)
                } else {
                    std::fs::remove_file(&target)
                };
                match removed {
                    Ok(()) => format!("removed {path}\n"),
                    Err(e) => format!("cannot remove {path}: {e}\n"),
                }
            }
            None => "usage: stand_in_remove <path in the game tree>\n".to_owned(),
        },
        ["stand_in_write", path, bytes] => match (game_path(path), bytes.parse::<usize>()) {
            (Some(target), Ok(bytes)) => match write_noise(&target, bytes) {
                Ok(()) => format!("wrote {bytes} bytes to {path}\n"),
                Err(e) => format!("cannot write {path}: {e}\n"),
            },
            _ => "usage: stand_in_write <path in the game tree> <bytes>\n".to_owned(),
        },
        ["stand_in_sqlite", transactions] => match transactions.parse::<u64>() {
            Ok(n) => {
                std::thread::spawn(move || {
                    if let Err(e) = write_database(n) {
                        console(&format!("stand-in database: {e}"));
                    }
                });
                format!("writing {n} transactions to {STAND_IN_DATABASE}\n")
            }
            Err(_) => "usage: stand_in_sqlite <transactions>\n".to_owned(),
        },
        ["stand_in_sqlite_stop"] => {
            STOP_WRITING.store(true, std::sync::atomic::Ordering::SeqCst);
            // Stopped between two transactions: the count is final once it answers.
            while WRITING.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            STOP_WRITING.store(false, std::sync::atomic::Ordering::SeqCst);
            "stand-in database: writer stopped\n".to_owned()
        }
        ["stand_in_ledger"] => match read_ledger() {
            Ok((rows, sum)) => format!("ledger: {rows} rows, sum {sum}\n"),
            Err(e) => format!("ledger: {e}\n"),
        },
        // A knob for tests: the game crashes as a broken plugin makes it (SIGSEGV).
        ["stand_in_crash"] => {
            console("Segmentation fault (core dumped)");
            crate::crash();
        }
        ["changelevel" | "map", map] => {
            let game = std::env::current_dir().unwrap_or_default().join(GAME_DIR);
            if map_exists(&game, map) {
                state.map = (*map).to_owned();
                console(&format!("-------- Mapchange to {map} --------"));
                String::new()
            } else {
                format!("changelevel failed: {map} not found\n")
            }
        }
        // srcds's own: the player leaves, as any player does when kicked.
        ["kick", ..] => {
            let name = words[1..].join(" ");
            let name = name.trim_matches('"');
            match state.players.iter().position(|(n, _)| n == name) {
                Some(i) => {
                    state.players.remove(i);
                    console(&format!("Dropped {name} from server (Kicked by Console)"));
                    String::new()
                }
                None => format!("Can't kick \"{name}\", no such player\n"),
            }
        }
        ["say", ..] => {
            console(&format!("Console: {}", words[1..].join(" ")));
            String::new()
        }
        // srcds's `echo`: the text back, as the console prints it.
        ["echo", text @ ..] => format!("{}\n", text.join(" ")),
        ["hostname"] => format!("\"hostname\" = \"{}\"\n", state.cvar("hostname")),
        ["sm", rest @ ..] => match &state.plugins {
            None => "Unknown command \"sm\"\n".to_owned(),
            Some(plugins) if rest == ["plugins", "list"] => {
                let mut text = format!("[SM] Listing {} plugins:\n", plugins.len());
                for (i, plugin) in plugins.iter().enumerate() {
                    let name = plugin.trim_end_matches(".smx");
                    text.push_str(&format!(
                        "  {:02} \"{name}\" (1.12.0.7172) by AlliedModders LLC\n",
                        i + 1
                    ));
                }
                text
            }
            Some(_) => "[SM] Usage: sm <command> [arguments]\n".to_owned(),
        },
        ["cvarlist"] => cvarlist(&state),
        ["quit" | "exit"] => return (String::new(), true),
        [name, value @ ..] if state.cvars.contains_key(*name) => {
            if value.is_empty() {
                format!("\"{name}\" = \"{}\"\n", state.cvar(name))
            } else {
                state.cvars.insert((*name).to_owned(), value.join(" "));
                String::new()
            }
        }
        [name, ..] => format!("Unknown command \"{name}\"\n"),
    };
    (answer, false)
}

/// Where the stand-in keeps a database as SourceMod's plugins keep theirs.
pub const STAND_IN_DATABASE: &str = "left4dead2/addons/sourcemod/data/sqlite/stand-in.sq3";

/// A path in the game tree (the working directory), or None for one that could leave it.
fn game_path(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    path.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then(|| path.to_path_buf())
}

/// `bytes` of noise (incompressible, as demo and log files nearly are) into a new file.
fn write_noise(path: &Path, bytes: usize) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ bytes as u64;
    let mut data = Vec::with_capacity(bytes + 8);
    while data.len() < bytes {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        data.extend_from_slice(&seed.to_le_bytes());
    }
    data.truncate(bytes);
    std::fs::write(path, data)
}

/// Writes `transactions` to the stand-in database as a plugin does, in SQLite's default
/// rollback-journal mode, a millisecond apart: each adds a row of +n and one of -n, so a
/// whole copy of the database always sums to zero and holds an even number of rows.
fn write_database(transactions: u64) -> rusqlite::Result<()> {
    WRITING.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = write_transactions(transactions);
    WRITING.store(false, std::sync::atomic::Ordering::SeqCst);
    console(&format!(
        "stand-in database: {} transactions written",
        written?
    ));
    Ok(())
}

/// A writer is at work, and asked to stop.
static WRITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static STOP_WRITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn write_transactions(transactions: u64) -> rusqlite::Result<u64> {
    let path = Path::new(STAND_IN_DATABASE);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let mut db = rusqlite::Connection::open(path)?;
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, pad BLOB)",
    )?;
    let mut written = 0;
    for n in 1..=transactions as i64 {
        if STOP_WRITING.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let tx = db.transaction()?;
        let pad = vec![0x5au8; 512];
        tx.execute(
            "INSERT INTO ledger (amount, pad) VALUES (?1, ?2)",
            rusqlite::params![n, pad],
        )?;
        tx.execute(
            "INSERT INTO ledger (amount, pad) VALUES (?1, ?2)",
            rusqlite::params![-n, pad],
        )?;
        tx.commit()?;
        written += 1;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(written)
}

/// The stand-in database's rows and their sum, as the game sees them now.
fn read_ledger() -> rusqlite::Result<(i64, i64)> {
    let db = rusqlite::Connection::open_with_flags(
        STAND_IN_DATABASE,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    db.query_row(
        "SELECT count(*), coalesce(sum(amount), 0) FROM ledger",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

fn status(state: &State) -> String {
    let mut text = format!(
        "hostname: {}\nversion : {} 9066 {}  (unknown)\nudp/ip  : 0.0.0.0:{} [ public n/a ]\nos      :  Linux Dedicated\nmap     : {}\nplayers : {} humans, 0 bots ({} max) (not hibernating)\n\n# userid name uniqueid connected ping loss state rate adr\n",
        state.info().name,
        state.version,
        if state.vac { "secure" } else { "insecure" },
        state.port,
        state.map,
        state.players.len(),
        state.max_players
    );
    for (i, player) in state.player_list().iter().enumerate() {
        let secs = player.duration as u64;
        text.push_str(&format!(
            "# {} {} \"{}\" STEAM_1:0:{} {:02}:{:02} 40 0 active 30000 10.0.0.{}:27005\n",
            i + 2,
            i + 1,
            player.name,
            1000 + i,
            secs / 60,
            secs % 60,
            i + 2
        ));
    }
    text.push_str("#end\n");
    text
}

/// A listing long enough to need several RCON packets, like the real one (thousands of lines).
fn cvarlist(state: &State) -> String {
    let mut text = String::from("cvar list\n--------------\n");
    let mut names: Vec<&String> = state.cvars.keys().collect();
    names.sort();
    for name in &names {
        text.push_str(&format!(
            "{name:<40} : {:<10} : , \"sv\"\n",
            state.cvar(name)
        ));
    }
    for i in 0..400 {
        text.push_str(&format!(
            "stand_in_cvar_{i:03}                        : 0          : , \"sv\", \"cheat\"\n"
        ));
    }
    text.push_str(&format!(
        "--------------\n{} total convars/concommands\n",
        names.len() + 400
    ));
    text
}

/// `name value` lines of a .cfg file; `//` starts a comment, values may be quoted.
pub fn parse_cfg(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split("//").next().unwrap_or("").trim();
            let (name, value) = line.split_once(char::is_whitespace)?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

fn map_exists(game: &Path, map: &str) -> bool {
    !map.is_empty()
        && !map.contains(['/', '\\', '.'])
        && game.join("maps").join(format!("{map}.bsp")).is_file()
}

fn files_with_extension(dir: &Path, extension: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| PathBuf::from(e.file_name()))
                .filter(|p| p.extension().is_some_and(|e| e == extension))
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// SourceMod's plugins when SourceMod and MetaMod are installed in the tree.
fn sourcemod_plugins(game: &Path) -> Option<Vec<String>> {
    let addons = game.join("addons");
    let installed = addons.join("metamod.vdf").is_file() && addons.join("sourcemod").is_dir();
    installed.then(|| files_with_extension(&addons.join("sourcemod/plugins"), "smx"))
}

/// `PatchVersion` of the tree's `steam.inf`, as the engine reads it for A2S.
fn patch_version(game: &Path) -> Option<String> {
    std::fs::read_to_string(game.join("steam.inf"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("PatchVersion="))
        .map(|v| v.trim().to_owned())
}

/// Loads SourceMod's plugins: the ones that load. On a build whose library moved the
/// functions their gamedata finds by signature, each fails in `OnPluginStart` as real ones
/// do after a game update, and SourceMod writes that to its error log of the day
/// (`addons/sourcemod/logs/errors_YYYYMMDD.log`, lines as SourceMod 1.12 writes them).
fn load_plugins(game: &Path, plugins: Vec<String>) -> Vec<String> {
    let library = std::fs::read_to_string(game.join("bin").join(SERVER_LIBRARY));
    if library.ok().as_deref() != Some(SIGNATURES_MOVED) || plugins.is_empty() {
        return plugins;
    }
    let (date, stamp) = log_time();
    let logs = game.join("addons/sourcemod/logs");
    let file = logs.join(format!("errors_{date}.log"));
    let mut text = format!(
        "L {stamp}: SourceMod error session started\nL {stamp}: Info (map \"c1m1_hotel\") (file \"{}\")\n",
        file.display()
    );
    for plugin in &plugins {
        let source = plugin.trim_end_matches(".smx");
        text.push_str(&format!(
            "L {stamp}: [SM] Exception reported: Failed to find signature: CTerrorPlayer::OnStaggered\n\
             L {stamp}: [SM] Blaming: {plugin}\n\
             L {stamp}: [SM] Call stack trace:\n\
             L {stamp}: [SM]   [0] SetFailState\n\
             L {stamp}: [SM]   [1] Line 120, {source}.sp::OnPluginStart\n\
             L {stamp}: [SM] Unable to load plugin \"{plugin}\": Error detected in plugin startup (see error logs)\n"
        ));
    }
    let written = std::fs::create_dir_all(&logs).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| f.write_all(text.as_bytes()))
    });
    if let Err(e) = written {
        console(&format!("[SM] cannot write {}: {e}", file.display()));
    }
    Vec::new()
}

/// The local date and time as SourceMod's logs name and stamp them: `20240901` and
/// `09/01/2024 - 21:58:29`.
fn log_time() -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives for the call.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    let (year, month, day) = (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    (
        format!("{year:04}{month:02}{day:02}"),
        format!(
            "{month:02}/{day:02}/{year:04} - {:02}:{:02}:{:02}",
            tm.tm_hour, tm.tm_min, tm.tm_sec
        ),
    )
}

fn read_players(game: &Path) -> Vec<(String, i32)> {
    std::fs::read_to_string(game.join("stand-in-players.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| match line.rsplit_once(',') {
            Some((name, score)) => (name.to_owned(), score.trim().parse().unwrap_or(0)),
            None => (line.to_owned(), 0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn takes_the_real_command_line() {
        let options = Options::parse(&args(
            "-game left4dead2 -port 27016 +map c2m1_highway -maxplayers 12 -tickrate 60 \
             +exec server.cfg -strictportbind -norestart -insecure +sv_gametypes versus",
        ))
        .unwrap();
        assert_eq!(options.port, 27016);
        assert_eq!(options.map.as_deref(), Some("c2m1_highway"));
        assert_eq!(options.max_players, 12);
        assert_eq!(options.tickrate, 60);
        assert_eq!(options.exec, ["server.cfg"]);
        assert!(options.strict_port_bind && options.insecure);
        assert_eq!(
            options.cvars,
            [("sv_gametypes".to_owned(), "versus".to_owned())]
        );
        assert!(Options::parse(&args("-game csgo +map de_dust2")).is_err());
        assert!(Options::parse(&args("-game left4dead2 -port")).is_err());
    }

    #[test]
    fn the_host_name_resolves_as_on_stock_debian() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1 l4m-h1.example l4m-h1 # the host\n::1 localhost ip6-localhost\n";
        assert_eq!(
            address_in_hosts(hosts, "l4m-h1"),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)))
        );
        assert_eq!(address_in_hosts(hosts, "elsewhere"), None);
    }

    #[test]
    fn cfg_lines_are_read_like_srcds() {
        let cfg = "hostname \"Friday coop\" // the name\nrcon_password secret\n// comment\n\nsv_gametypes \"coop,versus\"\n";
        assert_eq!(
            parse_cfg(cfg),
            [
                ("hostname".to_owned(), "Friday coop".to_owned()),
                ("rcon_password".to_owned(), "secret".to_owned()),
                ("sv_gametypes".to_owned(), "coop,versus".to_owned()),
            ]
        );
    }
}
