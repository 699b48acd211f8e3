//! russh against the real sshd of the test hosts.

use app_core::ssh::{self, Connection, Credential, Endpoint, ExecEvent, SshError};
use russh::keys::{PrivateKey, PublicKey};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{SYSOP_PASSWORD, SYSOP_USER, TestHost};
use zeroize::Zeroizing;

fn host() -> TestHost {
    testkit::hosts().into_iter().next().expect("a test host")
}

use crate::hosts_turn;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn endpoint(host: &TestHost, user: &str) -> Endpoint {
    Endpoint {
        address: host.address.clone(),
        port: 22,
        user: user.into(),
    }
}

fn harness_key(host: &TestHost) -> Credential {
    Credential::Key(Arc::new(
        russh::keys::load_secret_key(&host.key, None).unwrap(),
    ))
}

/// The host's key as OpenSSH's own tools read it from its file.
fn host_key_on_disk(host: &TestHost) -> PublicKey {
    let text = host.run("root", "cat /etc/ssh/ssh_host_ed25519_key.pub");
    PublicKey::from_openssh(text.trim()).unwrap()
}

async fn admin(host: &TestHost) -> Connection {
    Connection::open(
        &endpoint(host, "admin"),
        &host_key_on_disk(host),
        &harness_key(host),
    )
    .await
    .unwrap()
}

#[test]
#[ignore = "needs the test hosts: cargo xtask test"]
fn first_contact_reads_the_host_key_and_its_fingerprint() {
    let _turn = hosts_turn();
    let host = host();
    let key = runtime()
        .block_on(ssh::fetch_host_key(&host.address, 22))
        .unwrap();
    assert_eq!(key.key_data(), host_key_on_disk(&host).key_data());
    let expected = host.run("root", "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
    // "256 SHA256:… l4m-h1 (ED25519)"
    assert_eq!(
        ssh::fingerprint(&key),
        expected.split_whitespace().nth(1).unwrap()
    );
}

#[test]
#[ignore = "needs the test hosts: cargo xtask test"]
fn commands_return_their_output_exit_status_and_read_stdin() {
    let _turn = hosts_turn();
    let host = host();
    runtime().block_on(async {
        let conn = admin(&host).await;
        let out = conn
            .run("echo out; echo err >&2; exit 3", b"")
            .await
            .unwrap();
        assert_eq!(
            (out.status, &out.stdout[..], &out.stderr[..]),
            (Some(3), &b"out\n"[..], &b"err\n"[..])
        );
        let input = vec![b'x'; 300_000];
        let out = conn.run("wc -c", &input).await.unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "300000");
    });
}

#[test]
#[ignore = "needs the test hosts: cargo xtask test"]
fn many_commands_share_one_connection_within_sshds_session_limit() {
    let _turn = hosts_turn();
    let host = host();
    runtime().block_on(async {
        let conn = Arc::new(admin(&host).await);
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let conn = conn.clone();
                tokio::spawn(async move {
                    conn.run(&format!("sleep 0.05; echo {i} $SSH_CONNECTION"), b"")
                        .await
                })
            })
            .collect();
        let mut connections = std::collections::BTreeSet::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let out = task.await.unwrap().unwrap();
            assert_eq!(out.status, Some(0));
            let text = String::from_utf8(out.stdout).unwrap();
            let (n, connection) = text.trim().split_once(' ').unwrap();
            assert_eq!(n, i.to_string());
            connections.insert(connection.to_owned());
        }
        // sshd saw all 50 on one TCP connection (client address and port are the same).
        assert_eq!(connections.len(), 1, "{connections:?}");
    });
}

#[test]
#[ignore = "needs the test hosts: cargo xtask test"]
fn a_changed_host_key_is_refused_before_any_credential_is_sent() {
    let _turn = hosts_turn();
    let host = host();
    let impostor = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
        &[7; 32],
    ));
    let marker = format!("left4me-test-{}", std::process::id());
    let since = host.run("root", "date +%s").trim().to_owned();
    let err = runtime()
        .block_on(Connection::open(
            &endpoint(&host, SYSOP_USER),
            impostor.public_key(),
            &Credential::Password(Zeroizing::new(format!("{SYSOP_PASSWORD}-{marker}"))),
        ))
        .err()
        .expect("refused");
    let SshError::HostKeyChanged {
        expected, found, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(expected, &ssh::fingerprint(impostor.public_key()));
    assert_eq!(found, &ssh::fingerprint(&host_key_on_disk(&host)));
    assert!(err.to_string().starts_with(&format!(
        "the host key of {}:22 has changed: the confirmed key is SHA256:",
        host.address
    )));
    // sshd saw no login attempt at all.
    std::thread::sleep(Duration::from_millis(300));
    let log = host.run(
        "root",
        &format!("journalctl -q -u ssh --since @{since} -o cat | grep -E 'sysop|password' || true"),
    );
    assert_eq!(log, "", "sshd logged an authentication attempt");
}

#[test]
#[ignore = "needs the test hosts: cargo xtask test"]
fn password_and_agent_logins_work_and_wrong_ones_are_refused() {
    let _turn = hosts_turn();
    let host = host();
    let key = host_key_on_disk(&host);
    let rt = runtime();
    let password = |p: &str| Credential::Password(Zeroizing::new(p.to_owned()));
    let conn = rt
        .block_on(Connection::open(
            &endpoint(&host, SYSOP_USER),
            &key,
            &password(SYSOP_PASSWORD),
        ))
        .unwrap();
    let out = rt.block_on(conn.run("id -un", b"")).unwrap();
    assert_eq!(out.stdout, b"sysop\n");
    let err = rt
        .block_on(Connection::open(
            &endpoint(&host, SYSOP_USER),
            &key,
            &password("wrong password"),
        ))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "sysop@{}:22 refused the login with the password",
            host.address
        )
    );

    // A real ssh-agent holding the harness key.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&host.key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let conn = rt
        .block_on(Connection::open(
            &endpoint(&host, "admin"),
            &key,
            &Credential::Agent(socket.clone()),
        ))
        .unwrap();
    assert_eq!(
        rt.block_on(conn.run("id -un", b"")).unwrap().stdout,
        b"admin\n"
    );
    // An agent whose keys the host does not accept.
    std::process::Command::new("ssh-add")
        .arg("-D")
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    let err = rt
        .block_on(Connection::open(
            &endpoint(&host, "admin"),
            &key,
            &Credential::Agent(socket),
        ))
        .err()
        .unwrap();
    assert!(matches!(err, SshError::AuthRejected { .. }), "{err:?}");
    agent.kill().unwrap();
    agent.wait().unwrap();
}

#[test]
#[ignore = "needs the test hosts: cargo xtask test"]
fn terminate_stops_the_remote_command() {
    let _turn = hosts_turn();
    let host = host();
    runtime().block_on(async {
        let conn = admin(&host).await;
        let marker = format!("left4me-terminate-{}", std::process::id());
        let mut exec = conn
            .exec(&format!("echo started; exec -a {marker} sleep 60"))
            .await
            .unwrap();
        assert_eq!(
            exec.next().await.unwrap(),
            Some(ExecEvent::Stdout(b"started\n".to_vec()))
        );
        exec.terminate().await.unwrap();
        let started = Instant::now();
        while exec.next().await.unwrap().is_some() {}
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(
            exec.exit_status(),
            None,
            "killed by a signal: no exit status"
        );
        // The bracket keeps pgrep from matching the shell that runs it.
        let left = host.run(
            "root",
            &format!("pgrep -f '[{}]{}' || true", &marker[..1], &marker[1..]),
        );
        assert_eq!(left, "", "the remote command still runs");
    });
}

#[test]
#[ignore = "needs the test hosts: cargo xtask test"]
fn a_cut_connection_is_reported_as_lost() {
    let _turn = hosts_turn();
    let host = host();
    runtime().block_on(async {
        let conn = admin(&host).await;
        let mut exec = conn.exec("echo started; sleep 60").await.unwrap();
        assert!(exec.next().await.unwrap().is_some());
        // Kill the sshd process that serves our connection (not the harness's root one).
        host.run("root", "pkill -KILL -f '^sshd: admin' ");
        while exec.next().await.unwrap().is_some() {}
        assert_eq!(exec.exit_status(), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !conn.is_closed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(conn.is_closed());
        let err = conn.run("true", b"").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the connection to {} was lost", host.address)
        );
    });
}
