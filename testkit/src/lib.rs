//! What suites need to reach the test hosts that `cargo xtask test` boots: the inventory
//! (`LEFT4ME_TEST_HOSTS`), and ssh/scp with the harness's key. Uses OpenSSH's client, so a
//! failure here is never a bug of left4me's own SSH code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One host from the inventory.
#[derive(Debug, Clone)]
pub struct TestHost {
    pub name: String,
    pub address: String,
    pub key: PathBuf,
}

/// An account on every test host whose sudo asks for its password and who logs in over
/// SSH with that password: the "account with sudo" an admin without keys gives.
pub const SYSOP_USER: &str = "sysop";
/// Its password (a test credential; `cargo xtask hosts` sets it).
pub const SYSOP_PASSWORD: &str = "sysop-test-password";

/// The hosts of the inventory `LEFT4ME_TEST_HOSTS` names; panics with how to get them.
pub fn hosts() -> Vec<TestHost> {
    let path = std::env::var_os("LEFT4ME_TEST_HOSTS").expect(
        "LEFT4ME_TEST_HOSTS names the inventory of `cargo xtask hosts up` (run `cargo xtask test`)",
    );
    let text = std::fs::read_to_string(&path).expect("read the test host inventory");
    parse_inventory(&text)
}

pub fn parse_inventory(text: &str) -> Vec<TestHost> {
    let mut key = None;
    let mut hosts = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["key", path] => key = Some(PathBuf::from(path)),
            ["host", _, name, address] => hosts.push((name.to_string(), address.to_string())),
            _ => panic!("unexpected inventory line {line:?}"),
        }
    }
    let key = key.expect("the inventory names the key");
    hosts
        .into_iter()
        .map(|(name, address)| TestHost {
            name,
            address,
            key: key.clone(),
        })
        .collect()
}

const OPTIONS: &[&str] = &[
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
];

impl TestHost {
    /// The `ssh` command that runs `command` as `user`, to spawn as a test needs (to stream
    /// its output, say).
    pub fn ssh_command(&self, user: &str, command: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.arg("-i")
            .arg(&self.key)
            .args(OPTIONS)
            .arg(format!("{user}@{}", self.address))
            .arg(command);
        ssh
    }

    /// [`Self::ssh_command`] over one kept connection per `control` socket, as an expert's
    /// script would (OpenSSH's ControlMaster): the first call opens it, later ones reuse
    /// it, and it stays a minute after the last.
    pub fn ssh_command_multiplexed(&self, user: &str, control: &Path, command: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.arg("-i")
            .arg(&self.key)
            .args(OPTIONS)
            .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=60", "-o"])
            .arg(format!("ControlPath={}", control.display()))
            .arg(format!("{user}@{}", self.address))
            .arg(command);
        ssh
    }

    /// Runs `command` as `user`, with `stdin` fed to it.
    pub fn ssh_with_input(&self, user: &str, command: &str, stdin: impl AsRef<[u8]>) -> Output {
        let mut child = self
            .ssh_command(user, command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ssh");
        let mut input = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut input, stdin.as_ref()).unwrap();
        drop(input);
        child.wait_with_output().expect("wait for ssh")
    }

    pub fn ssh(&self, user: &str, command: &str) -> Output {
        self.ssh_with_input(user, command, "")
    }

    /// Runs `command` as `user` and returns its stdout; fails the test if it fails.
    #[track_caller]
    pub fn run(&self, user: &str, command: &str) -> String {
        self.run_with_input(user, command, "")
    }

    #[track_caller]
    pub fn run_with_input(&self, user: &str, command: &str, stdin: impl AsRef<[u8]>) -> String {
        let out = self.ssh_with_input(user, command, stdin);
        assert!(
            out.status.success(),
            "{}: `{command}` as {user} failed ({}): {}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Copies a local file to `remote` as `user`.
    #[track_caller]
    pub fn upload(&self, user: &str, local: &Path, remote: &str) {
        let out = Command::new("scp")
            .arg("-q")
            .arg("-i")
            .arg(&self.key)
            .args(OPTIONS)
            .arg(local)
            .arg(format!("{user}@{}:{remote}", self.address))
            .output()
            .expect("run scp");
        assert!(
            out.status.success(),
            "{}: scp {} failed: {}",
            self.name,
            local.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The harness's public key, to authorise on the hosts.
    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.key.with_extension("pub"))
            .expect("read the harness's public key")
            .trim()
            .to_owned()
    }
}

/// The static binaries `cargo xtask agent` built: the agent (`l4d2-agent`) and, beside it,
/// the stand-ins (`steamcmd`, `srcds_stand_in`).
pub fn static_binary(name: &str) -> PathBuf {
    let agent = PathBuf::from(std::env::var_os("L4D2_AGENT_STATIC").expect(
        "L4D2_AGENT_STATIC names the binary from `cargo xtask agent` (run `cargo xtask test`)",
    ));
    agent.with_file_name(name)
}

/// The lines a child process prints, as they come, on a channel fed by a thread of its own
/// (until the output ends or the receiver is dropped).
pub fn lines_of(output: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(output)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lays out a fresh stand-in steamcmd folder in `dir` (`steamcmd.sh`, `linux32/…`), as
/// Valve's tarball unpacks; returns the path of its `steamcmd.sh`.
pub fn steamcmd_tree(dir: &std::path::Path) -> PathBuf {
    let status = std::process::Command::new(static_binary("steamcmd_stand_in"))
        .arg("--write-tree")
        .arg(dir)
        .status()
        .expect("run steamcmd_stand_in --write-tree");
    assert!(status.success(), "steamcmd_stand_in --write-tree {dir:?}");
    dir.join("steamcmd.sh")
}

/// Valve's steamcmd tarball as the stand-ins make it: `steamcmd.sh` and `linux32/` with the
/// game server it installs beside it.
pub fn steamcmd_tarball() -> Vec<u8> {
    steamcmd_tarball_with("")
}

/// [`steamcmd_tarball`] whose stand-in Steam is set up by `steam` (its accounts, faults:
/// see `stand_ins::steam`).
pub fn steamcmd_tarball_with(steam: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    steamcmd_tree(dir.path());
    std::fs::write(dir.path().join("stand-in-steam.conf"), steam).expect("write the Steam");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    builder.follow_symlinks(false);
    builder
        .append_path_with_name(dir.path().join("steamcmd.sh"), "steamcmd.sh")
        .and_then(|()| {
            builder.append_path_with_name(
                dir.path().join("stand-in-steam.conf"),
                "stand-in-steam.conf",
            )
        })
        .and_then(|()| builder.append_dir_all("linux32", dir.path().join("linux32")))
        .expect("pack the stand-in steamcmd");
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish the tarball")
}

/// A small HTTP server for tests: answers GETs of the paths it was given with their bodies
/// (404 for others) and counts the requests. Serves until the test process ends.
pub struct FileServer {
    /// The URL of the first path given.
    pub url: String,
    /// `http://ip:port`, for building the URLs of the other paths.
    pub base: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FileServer {
    /// One file at `path`; `None` answers 404 there too. Listens on `ip` (loopback, or this
    /// machine's address on the test hosts' bridge).
    pub fn start(ip: &str, path: &str, body: Option<Vec<u8>>) -> FileServer {
        Self::start_many(ip, vec![(path.to_owned(), body)])
    }

    /// Several files; a `None` body answers 404.
    pub fn start_many(ip: &str, files: Vec<(String, Option<Vec<u8>>)>) -> FileServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind((ip, 0)).expect("bind the file server");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let url = format!("{base}{}", files.first().map_or("/", |f| f.0.as_str()));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&requests);
        let files: std::collections::BTreeMap<String, Option<Vec<u8>>> =
            files.into_iter().collect();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut reader = BufReader::new(&stream);
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut stream = &stream;
                let _ = match files.get(&path).cloned().flatten() {
                    Some(body) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| stream.write_all(&body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        FileServer {
            url,
            base,
            requests,
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A gzip tarball of `(path, content)` files, as release tarballs are made.
pub fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, *data)
            .expect("pack a file");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish the tarball")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_lines_are_read() {
        let hosts =
            parse_inventory("key /k/id\nhost 1 l4m-h1 10.213.77.11\nhost 2 l4m-h2 10.213.77.12\n");
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[1].address, "10.213.77.12");
        assert_eq!(hosts[0].key, Path::new("/k/id"));
    }
}
pub mod alliedmods;
pub mod workshop;

/// One request a [`Receiver`] took.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook endpoint for tests, shaped like Discord's: takes POSTs, answers 204, or, for
/// the requests numbered in `throttle` (from 1), 429 with Discord's body
/// (`{"retry_after": 1.5, …}`) and a `Retry-After` header, as Discord rate-limits a channel.
/// Keeps every request.
pub struct Receiver {
    pub base: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(ip: &str, throttle: &[usize]) -> Receiver {
        let last = throttle.iter().copied().max().unwrap_or(0);
        let answers: Vec<u16> = (1..=last)
            .map(|n| if throttle.contains(&n) { 429 } else { 204 })
            .collect();
        Self::answering(ip, &answers)
    }

    /// Answers the first requests with `answers` in turn (a 429 as Discord words it, any
    /// other status with a short body), and 204 after them.
    pub fn answering(ip: &str, answers: &[u16]) -> Receiver {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind((ip, 0)).expect("bind the receiver");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
        let log = std::sync::Arc::clone(&received);
        let answers = answers.to_vec();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut headers = Vec::new();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some((name, value)) = line.trim_end().split_once(':') {
                        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                    line.clear();
                }
                let length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let mut log = log.lock().unwrap();
                let number = log.len() + 1;
                let status = answers.get(number - 1).copied().unwrap_or(204);
                log.push(Received {
                    path,
                    headers,
                    body,
                    status,
                });
                drop(log);
                let mut stream = &stream;
                let _ = if status == 429 {
                    let body = r#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#;
                    stream.write_all(
                        format!(
                            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 2\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                } else if status == 204 {
                    stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                } else {
                    let body = r#"{"message": "Unknown Webhook", "code": 10015}"#;
                    stream.write_all(
                        format!(
                            "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                };
            }
        });
        Receiver { base, received }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests it answered 2xx: the messages delivered.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status < 300)
            .collect()
    }

    /// Waits until `n` messages were delivered, for at most `within`; returns them all.
    pub fn wait_for(&self, n: usize, within: std::time::Duration) -> Vec<Received> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n || std::time::Instant::now() > deadline {
                return delivered;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
