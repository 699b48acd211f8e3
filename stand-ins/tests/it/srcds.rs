use super::install;
use l4d2_agent::{a2s, rcon};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "stand-in-rcon-secret";

/// A running stand-in server on loopback, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    /// The terminal's controlling side: what is written here, the server reads as typed.
    console: std::fs::File,
}

impl Server {
    /// Installs a tree, configures it, starts the server on a terminal (where its console
    /// arrives a line at a time) and waits until it answers A2S.
    fn start(tree: &Path, extra_args: &str) -> Server {
        let port = free_port();
        let (master, slave) = terminal();
        let mut command = command(tree, port, extra_args);
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = command.spawn().expect("start the stand-in srcds_run");
        drop(command);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let console = std::fs::File::from(master.try_clone().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(std::fs::File::from(master))
                .lines()
                .map_while(Result::ok)
            {
                sink.lock()
                    .unwrap()
                    .push(line.trim_end_matches('\r').to_owned());
            }
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let server = Server {
            child,
            addr,
            lines,
            console,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.query().info().is_err() {
            assert!(
                Instant::now() < deadline,
                "no A2S answer: {:?}",
                server.lines()
            );
        }
        server
    }

    fn query(&self) -> a2s::Client {
        a2s::Client::new(self.addr, Duration::from_millis(300)).unwrap()
    }

    fn rcon(&self) -> rcon::Client {
        rcon::Client::connect(self.addr, PASSWORD, Duration::from_secs(5)).unwrap()
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn wait_for_line(&self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.lines().iter().any(|l| l == wanted) {
            assert!(
                Instant::now() < deadline,
                "no line {wanted:?} in {:?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(tree: &Path, port: u16, extra_args: &str) -> Command {
    let mut command = Command::new(tree.join("srcds_run"));
    command
        .args(
            format!(
                "-game left4dead2 -ip 127.0.0.1 -port {port} +map c1m1_hotel -maxplayers 8 -tickrate 30 +exec server.cfg -strictportbind -norestart +clientport {} +tv_port {} {extra_args}",
                free_port(),
                free_port()
            )
            .split_whitespace(),
        )
        .current_dir(tree)
        // As the unit runs it: the game's tree is its home, with the Steam client library.
        .env("HOME", tree);
    command
}

/// The server with its console on pipes, as a unit's stdout would be without a terminal.
fn launch(tree: &Path, port: u16, extra_args: &str) -> Child {
    command(tree, port, extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stand-in srcds_run")
}

/// A pseudo-terminal: the side to read, and the side to give the server.
fn terminal() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors, owned at once.
    unsafe {
        assert_eq!(
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null()
            ),
            0
        );
        (
            std::os::fd::OwnedFd::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

/// A UDP socket for raw A2S requests (the stand-in ties each challenge to the asker's address).
fn query_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket
}

/// Sends one request and returns the one datagram that answers it.
fn exchange(socket: &UdpSocket, to: SocketAddr, request: &[u8]) -> Vec<u8> {
    socket.send_to(request, to).unwrap();
    let mut buf = [0u8; 1400];
    let n = socket.recv(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// Waits until the server on a pipe answers A2S (its console says nothing yet).
fn wait_for_a2s(port: u16) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let client = a2s::Client::new(addr, Duration::from_millis(300)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.info().is_err() {
        assert!(Instant::now() < deadline, "no A2S answer");
    }
}

/// A port free for both UDP and TCP on loopback, and never handed out before in this run: the
/// kernel may give the same ephemeral port to two binds in a row once the first is closed, so
/// the client and SourceTV ports of one server (or of two tests running at once) could clash.
fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if given.contains(&port) || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        given.push(port);
        return port;
    }
}

/// A fresh install with a server.cfg and two simulated players.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path());
    let game = dir.path().join("left4dead2");
    std::fs::write(
        game.join("cfg/server.cfg"),
        format!(
            "hostname \"Stand-in coop\"\nrcon_password \"{PASSWORD}\"\nsv_gametypes \"coop\"\n"
        ),
    )
    .unwrap();
    std::fs::write(game.join("stand-in-players.txt"), "Zoey,12\nFrancis,3\n").unwrap();
    let sdk32 = dir.path().join(".steam/sdk32");
    std::fs::create_dir_all(&sdk32).unwrap();
    std::fs::write(sdk32.join("steamclient.so"), "stand-in steamclient.so\n").unwrap();
    dir
}

#[test]
fn a2s_info_needs_the_challenge_and_reports_the_spec() {
    let tree = tree();
    let server = Server::start(tree.path(), "");

    // The first request is answered with a challenge, byte for byte as documented.
    let socket = query_socket();
    let first = exchange(&socket, server.addr, &a2s::info_request(None));
    assert_eq!(first.len(), 9);
    assert_eq!(&first[..5], &[0xFF, 0xFF, 0xFF, 0xFF, 0x41]);
    let challenge = i32::from_le_bytes(first[5..9].try_into().unwrap());
    let buf = exchange(&socket, server.addr, &a2s::info_request(Some(challenge)));
    let n = buf.len();
    assert_eq!(&buf[..6], &[0xFF, 0xFF, 0xFF, 0xFF, 0x49, 17]);
    let mut strings = b"Stand-in coop\0c1m1_hotel\0left4dead2\0Left 4 Dead 2\0".to_vec();
    strings.extend_from_slice(&550u16.to_le_bytes());
    strings.extend_from_slice(&[2, 8, 0, b'd', b'l', 0, 1]);
    assert_eq!(&buf[6..6 + strings.len()], &strings[..]);
    assert!(n > 6 + strings.len());

    let info = server.query().info().unwrap();
    assert_eq!(info.name, "Stand-in coop");
    assert_eq!(info.map, "c1m1_hotel");
    assert_eq!((info.players, info.max_players), (2, 8));
    assert_eq!(info.port, Some(server.addr.port()));
    let players = server.query().players().unwrap();
    let names: Vec<&str> = players.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Zoey", "Francis"]);
    assert_eq!(players[0].score, 12);
}

#[test]
fn a2s_rules_needs_the_challenge_and_hides_passwords() {
    let tree = tree();
    std::fs::write(
        tree.path().join("left4dead2/cfg/server.cfg"),
        format!(
            "hostname \"Stand-in versus\"\nrcon_password \"{PASSWORD}\"\nmp_gamemode \"versus\"\n\
             sv_password \"letmein\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(tree.path(), "");
    // Without the challenge: the challenge, as for players.
    let first = exchange(&query_socket(), server.addr, &a2s::rules_request(-1));
    assert!(matches!(
        a2s::parse_reply(&first),
        Ok(a2s::Reply::Challenge(_))
    ));
    let rules = server.query().rules().unwrap();
    let rule = |name: &str| {
        rules
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(rule("mp_gamemode"), Some("versus"));
    assert_eq!(
        rule("sv_password"),
        Some("1"),
        "a password shows only as set"
    );
    assert!(
        !rules
            .iter()
            .any(|(n, v)| n == "rcon_password" || v.contains(PASSWORD) || v == "letmein"),
        "{rules:?}"
    );
}

#[test]
fn rcon_runs_commands_with_the_configured_password() {
    let tree = tree();
    let server = Server::start(tree.path(), "");
    assert!(matches!(
        rcon::Client::connect(server.addr, "wrong", Duration::from_secs(5)),
        Err(rcon::RconError::BadPassword)
    ));

    let mut rcon = server.rcon();
    let status = rcon.exec("status").unwrap();
    assert!(status.contains("hostname: Stand-in coop"), "{status}");
    assert!(status.contains("map     : c1m1_hotel"), "{status}");
    assert!(status.contains("\"Zoey\""), "{status}");

    assert_eq!(rcon.exec("changelevel c2m1_highway").unwrap(), "");
    assert_eq!(server.query().info().unwrap().map, "c2m1_highway");
    server.wait_for_line("-------- Mapchange to c2m1_highway --------");
    assert_eq!(
        rcon.exec("changelevel c99_nowhere").unwrap(),
        "changelevel failed: c99_nowhere not found\n"
    );

    rcon.exec("say hello survivors").unwrap();
    server.wait_for_line("Console: hello survivors");
    assert_eq!(
        rcon.exec("sm plugins list").unwrap(),
        "Unknown command \"sm\"\n"
    );
    assert_eq!(
        rcon.exec("frobnicate").unwrap(),
        "Unknown command \"frobnicate\"\n"
    );

    // Longer than one packet: the end marker is what tells the answer is complete.
    let cvars = rcon.exec("cvarlist").unwrap();
    assert!(cvars.len() > rcon::MAX_BODY, "{}", cvars.len());
    assert!(cvars.ends_with("total convars/concommands\n"));
    // The connection stays usable after the marker's trailer packet.
    assert!(rcon.exec("status").unwrap().contains("c2m1_highway"));
}

#[test]
fn rcon_shows_srcds_quirks_on_the_wire() {
    let tree = tree();
    let server = Server::start(tree.path(), "");
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let read = || {
        rcon::Packet::read(&mut stream.try_clone().unwrap())
            .unwrap()
            .unwrap()
    };
    let write = |p: rcon::Packet| stream.try_clone().unwrap().write_all(&p.encode()).unwrap();

    write(rcon::Packet::new(5, rcon::SERVERDATA_AUTH, PASSWORD));
    // An empty RESPONSE_VALUE comes before the AUTH_RESPONSE.
    assert_eq!(
        read(),
        rcon::Packet::new(5, rcon::SERVERDATA_RESPONSE_VALUE, "")
    );
    assert_eq!(
        read(),
        rcon::Packet::new(5, rcon::SERVERDATA_AUTH_RESPONSE, "")
    );

    write(rcon::Packet::new(6, rcon::SERVERDATA_RESPONSE_VALUE, ""));
    assert_eq!(
        read(),
        rcon::Packet::new(6, rcon::SERVERDATA_RESPONSE_VALUE, "")
    );
    let trailer = read();
    assert_eq!(
        trailer.encode()[4..],
        [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    );

    // Commands before authentication are refused with id -1.
    let mut fresh = TcpStream::connect(server.addr).unwrap();
    fresh
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    fresh
        .write_all(&rcon::Packet::new(9, rcon::SERVERDATA_EXECCOMMAND, "status").encode())
        .unwrap();
    let refused = rcon::Packet::read(&mut fresh).unwrap().unwrap();
    assert_eq!(
        (refused.id, refused.kind),
        (-1, rcon::SERVERDATA_AUTH_RESPONSE)
    );
}

#[test]
fn sourcemod_plugins_are_listed_when_installed() {
    let tree = tree();
    let addons = tree.path().join("left4dead2/addons");
    std::fs::create_dir_all(addons.join("sourcemod/plugins")).unwrap();
    std::fs::write(
        addons.join("metamod.vdf"),
        "\"Plugin\"\n{\n\t\"file\"\t\"../left4dead2/addons/metamod/bin/server\"\n}\n",
    )
    .unwrap();
    for plugin in ["admin-flatfile.smx", "basecommands.smx"] {
        std::fs::write(addons.join("sourcemod/plugins").join(plugin), b"FFFF").unwrap();
    }
    std::fs::write(addons.join("2123456789.vpk"), b"\x34\x12\xaa\x55").unwrap();
    let server = Server::start(tree.path(), "");
    let list = server.rcon().exec("sm plugins list").unwrap();
    assert_eq!(
        list,
        "[SM] Listing 2 plugins:\n  01 \"admin-flatfile\" (1.12.0.7172) by AlliedModders LLC\n  02 \"basecommands\" (1.12.0.7172) by AlliedModders LLC\n"
    );
    server.wait_for_line("Adding addon: addons/2123456789.vpk");
    server.wait_for_line("[SM] Loaded plugin basecommands.smx");
}

#[test]
fn srcds_run_becomes_the_server_process_through_the_i386_srcds_linux() {
    let tree = tree();
    let server = Server::start(tree.path(), "");
    let pid = server.child.id();
    // `exec` all the way: the process started as srcds_run is the server, so the unit's
    // main process is the game, and its environment has the tree's libraries first.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("bin/srcds_stand_in"), "{}", exe.display());
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v.starts_with(b"LD_LIBRARY_PATH=.:bin:")),
        "srcds_run exported LD_LIBRARY_PATH"
    );
}

#[test]
fn srcds_run_refuses_a_tree_whose_srcds_linux_cannot_run() {
    use std::os::unix::fs::PermissionsExt;
    let tree = tree();
    let linux = tree.path().join("srcds_linux");
    std::fs::set_permissions(&linux, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = command(tree.path(), free_port(), "").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("'./srcds_linux' is not executable"));
    // An engine that is not where srcds_linux loads it from.
    std::fs::set_permissions(&linux, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(tree.path().join("bin/srcds_stand_in")).unwrap();
    let out = command(tree.path(), free_port(), "").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Failed to open dedicated_srv.so"));
}

#[test]
fn quit_ends_the_process_cleanly() {
    let tree = tree();
    let mut server = Server::start(tree.path(), "");
    let _ = server.rcon().exec("quit");
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn on_a_pipe_the_console_waits_for_4_kib_and_a_clean_quit_writes_it_out() {
    let tree = tree();
    let port = free_port();
    let mut child = launch(tree.path(), port, "");
    let mut stdout = child.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    wait_for_a2s(port);
    // Up and running, a few hundred bytes of console printed: stdio still holds them all.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        seen.lock().unwrap().len(),
        0,
        "the console reached the pipe early"
    );
    // Typed `quit` ends it cleanly, and exit() writes out what stdio held.
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _ = rcon::Client::connect(addr, PASSWORD, Duration::from_secs(5))
        .unwrap()
        .exec("quit");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&seen.lock().unwrap()).contains("Shutting down server") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(
        text.contains("Map c1m1_hotel loaded, tickrate 30\n"),
        "{text}"
    );
}

#[test]
fn sigint_shuts_down_cleanly_and_sigterm_loses_the_buffered_console() {
    use std::os::unix::process::ExitStatusExt;
    let tree = tree();
    for (signal, clean) in [("-INT", true), ("-TERM", false)] {
        let port = free_port();
        let child = launch(tree.path(), port, "");
        wait_for_a2s(port);
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let console = String::from_utf8_lossy(&out.stdout);
        if clean {
            assert_eq!(out.status.code(), Some(0));
            assert!(console.contains("Shutting down server"), "{console}");
        } else {
            assert_eq!(out.status.signal(), Some(15));
            assert_eq!(console, "", "stdio's buffer survived SIGTERM");
        }
    }
}

#[test]
fn typed_console_commands_are_run() {
    let tree = tree();
    let mut server = Server::start(tree.path(), "");
    server
        .console
        .write_all(b"say typed on the console\n")
        .unwrap();
    server.wait_for_line("Console: typed on the console");
    server.console.write_all(b"quit\n").unwrap();
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_crash_file_makes_it_crash_on_start() {
    use std::os::unix::process::ExitStatusExt;
    let tree = tree();
    std::fs::write(tree.path().join("left4dead2/stand-in-crash-on-start"), "").unwrap();
    // Killed by SIGSEGV; on a pipe, its last words die with it in stdio's buffer.
    let out = launch(tree.path(), free_port(), "")
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(11));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn strictportbind_fails_on_a_busy_port() {
    let tree = tree();
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut child = launch(tree.path(), port, "");
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        out.contains(&format!("Failed to bind to port {port} (-strictportbind)")),
        "{out}"
    );
}

#[test]
fn client_and_sourcetv_ports_are_bound_and_clash_under_strictportbind() {
    let tree = tree();
    let (client, tv) = (free_port(), free_port());
    let server = Server::start(tree.path(), &format!("+clientport {client} +tv_port {tv}"));
    server.wait_for_line(&format!(
        "Network: IP 127.0.0.1, mode MP, dedicated Yes, ports {} SV / {client} CL",
        server.addr.port()
    ));
    // A2S_INFO's extra data names SourceTV's port.
    let info = server.query().info().unwrap();
    assert_eq!(info.source_tv.map(|(port, _)| port), Some(tv));
    // A second server with the same client port cannot start under -strictportbind.
    let out = launch(tree.path(), free_port(), &format!("+clientport {client}"))
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("port unavailable ({client})")),
        "{out:?}"
    );
    // -nohltv: no SourceTV port at all.
    let quiet = Server::start(tree.path(), &format!("+clientport {} -nohltv", free_port()));
    assert_eq!(quiet.query().info().unwrap().source_tv, None);
}

#[test]
fn a_tree_that_drifts_takes_the_next_port_despite_strictportbind() {
    let tree = tree();
    std::fs::write(tree.path().join("left4dead2/stand-in-drifts"), "").unwrap();
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut child = launch(tree.path(), port, "");
    // It answers on the next port, and says so there.
    let addr: SocketAddr = format!("127.0.0.1:{}", port + 1).parse().unwrap();
    let client = a2s::Client::new(addr, Duration::from_millis(300)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let info = loop {
        if let Ok(info) = client.info() {
            break info;
        }
        assert!(Instant::now() < deadline, "no answer on the next port");
    };
    assert_eq!(info.port, Some(port + 1));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn without_the_steam_client_library_there_is_no_steam_and_no_vac() {
    let tree = tree();
    let server = Server::start(tree.path(), "");
    server.wait_for_line("Connection to Steam servers successful.");
    assert!(server.query().info().unwrap().vac);
    std::fs::remove_file(tree.path().join(".steam/sdk32/steamclient.so")).unwrap();
    let without = Server::start(tree.path(), "");
    without.wait_for_line(
        "[S_API FAIL] SteamAPI_Init() failed; unable to locate a running instance of Steam, or a local steamclient.so.",
    );
    assert!(!without.query().info().unwrap().vac);
    let status = without.rcon().exec("status").unwrap();
    assert!(status.contains(" insecure "), "{status}");
}
