//! Backups on the test hosts: taken while the stand-in writes to a SQLite database and
//! changes its game tree, restored onto the changed server exactly (the files it deleted stay
//! deleted, the folder it replaced still hides what is below), restored as a new server on
//! another host, and refused when damaged or when the disk is full, changing nothing.

use crate::on_hosts::{AGENT, RCON_PASSWORD, prepared_hosts, spec, take_turn, wait_for_status};
use std::io::Read;
use std::time::Duration;
use testkit::TestHost;

const MERGED: &str = "/var/lib/left4me/runtime/bk-1/merged";
/// The stand-in writes to its database until it is told to stop: the backup runs while it
/// writes, however fast or slow the machine.
const TRANSACTIONS: i64 = 1_000_000;

fn agent(host: &TestHost, command: &str) -> String {
    host.run("left4me", &format!("{AGENT} {command}"))
}

fn json(host: &TestHost, command: &str) -> serde_json::Value {
    serde_json::from_str(&agent(host, &format!("{command} --json"))).unwrap()
}

fn rcon(host: &TestHost, server: &str, command: &str) -> String {
    agent(host, &format!("rcon {server} {command}"))
}

fn declare(host: &TestHost, server: &str, port: u16) {
    host.run_with_input(
        "left4me",
        &format!("{AGENT} initialize {server} -f - --rcon-password-stdin"),
        format!("{RCON_PASSWORD}\n{}", spec(port, "", "c1m1_hotel")),
    );
}

fn start(host: &TestHost, server: &str) {
    agent(host, &format!("start {server}"));
    wait_for_status(host, server, Duration::from_secs(30), |s| {
        s["live"]["map"] == "c1m1_hotel"
    });
}

/// Removes the servers and their backups, whatever the test left.
struct Gone<'a>(&'a TestHost, &'a [&'a str]);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        for server in self.1 {
            let _ = self.0.ssh("left4me", &format!("{AGENT} delete {server}"));
            let _ = self.0.ssh(
                "root",
                &format!("umount /var/lib/left4me/backups/{server} 2>/dev/null; rm -rf /var/lib/left4me/backups/{server}"),
            );
        }
    }
}

/// The rows of the stand-in's database in a backup archive: (rows, their sum, integrity).
fn ledger_in(archive: &[u8]) -> (i64, i64, String) {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.ends_with("sqlite/stand-in.sq3") {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("copy.sq3");
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            std::fs::write(&file, bytes).unwrap();
            let db = rusqlite::Connection::open(&file).unwrap();
            let integrity: String = db
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            let (rows, sum): (i64, i64) = db
                .query_row(
                    "SELECT count(*), coalesce(sum(amount), 0) FROM ledger",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            return (rows, sum, integrity);
        }
    }
    panic!("the archive holds no stand-in.sq3");
}

/// The stand-in's database as the running game sees it: its rows.
fn ledger_on(host: &TestHost, server: &str) -> i64 {
    let answer = rcon(host, server, "stand_in_ledger");
    answer
        .trim()
        .strip_prefix("ledger: ")
        .and_then(|rest| rest.split_once(" rows"))
        .and_then(|(rows, _)| rows.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"))
}

fn exists(host: &TestHost, path: &str) -> bool {
    host.ssh("root", &format!("test -e {path}"))
        .status
        .success()
}

fn get(host: &TestHost, server: &str, id: &str) -> Vec<u8> {
    let out = host.ssh("left4me", &format!("{AGENT} backup get {server} {id}"));
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn a_backup_taken_while_the_game_writes_restores_exactly_here_and_on_another_host() {
    let _turn = take_turn();
    let (host, other) = (&prepared_hosts()[1], &prepared_hosts()[2]);
    let _gone = Gone(host, &["bk-1"]);
    let _gone_there = Gone(other, &["bk-2"]);
    declare(host, "bk-1", 27090);
    start(host, "bk-1");

    // The game changes its tree: a file of the base install deleted (a whiteout), the maps
    // folder replaced by one with a single map (an opaque folder), and a database written
    // to while the backup runs.
    rcon(
        host,
        "bk-1",
        "stand_in_remove left4dead2/cfg/server_example.cfg",
    );
    rcon(host, "bk-1", "stand_in_remove left4dead2/maps");
    rcon(
        host,
        "bk-1",
        "stand_in_write left4dead2/maps/c1m1_hotel.bsp 4096",
    );
    assert!(rcon(host, "bk-1", "changelevel c2m1_highway").contains("not found"));
    rcon(host, "bk-1", &format!("stand_in_sqlite {TRANSACTIONS}"));
    std::thread::sleep(Duration::from_millis(500));
    let made = json(host, "backup create bk-1");
    assert_eq!(made["type"], "backup", "{made}");
    assert_eq!(made["kind"], "manual");
    assert_eq!(made["base_build"], "16075386");
    assert!(made["deleted"].as_u64().unwrap() >= 1, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    // Still writing after the backup: the copy is one transaction's state, whole.
    let during = ledger_on(host, "bk-1");
    std::thread::sleep(Duration::from_millis(200));
    assert!(ledger_on(host, "bk-1") > during, "the writer stopped early");
    rcon(host, "bk-1", "stand_in_sqlite_stop");
    let written = ledger_on(host, "bk-1");
    let archive = get(host, "bk-1", &id);
    let (rows, sum, integrity) = ledger_in(&archive);
    assert_eq!(integrity, "ok");
    assert!(
        rows > 0 && rows % 2 == 0 && sum == 0,
        "rows {rows}, sum {sum}"
    );
    // No journal beside it, and no server.cfg (made from the spec, RCON password included).
    let names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()))
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with("-journal")), "{names:?}");
    assert!(
        !names.iter().any(|n| n.ends_with("cfg/server.cfg")),
        "{names:?}"
    );
    assert!(!String::from_utf8_lossy(&archive).contains(RCON_PASSWORD));
    assert_eq!(
        names.first().map(String::as_str),
        Some("left4me-backup.json")
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("left4me-manifest.json")
    );

    // The server changes further: its database grew, a map comes back, a file goes.
    assert!(written > rows, "{written} rows now, {rows} in the backup");
    rcon(
        host,
        "bk-1",
        "stand_in_write left4dead2/maps/c2m1_highway.bsp 64",
    );
    rcon(
        host,
        "bk-1",
        "stand_in_write left4dead2/addons/later.txt 10",
    );
    assert_eq!(rcon(host, "bk-1", "changelevel c2m1_highway").trim(), "");
    rcon(host, "bk-1", "changelevel c1m1_hotel");

    // Restored: exactly as backed up, started again, with the undo kept.
    let restored = json(host, &format!("backup restore bk-1 {id}"));
    assert_eq!(restored["id"], id.as_str(), "{restored}");
    start(host, "bk-1");
    assert_eq!(ledger_on(host, "bk-1"), rows);
    assert!(!exists(
        host,
        &format!("{MERGED}/left4dead2/cfg/server_example.cfg")
    ));
    assert!(!exists(
        host,
        &format!("{MERGED}/left4dead2/addons/later.txt")
    ));
    assert!(rcon(host, "bk-1", "changelevel c2m1_highway").contains("not found"));
    assert!(exists(host, &format!("{MERGED}/left4dead2/cfg/server.cfg")));
    let list = json(host, "backup list bk-1");
    let kinds: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["before_restore", "manual"], "{list}");
    // The undo has what the restore replaced.
    let undo = list["backups"][0]["id"].as_str().unwrap().to_owned();
    let (undo_rows, _, _) = ledger_in(&get(host, "bk-1", &undo));
    assert_eq!(undo_rows, written);

    // On another host, as a new server: the archive travels as the app carries it.
    let put = other.ssh_with_input(
        "left4me",
        &format!("{AGENT} backup put bk-2 --json"),
        &archive,
    );
    assert!(put.status.success(), "{put:?}");
    declare(other, "bk-2", 27091);
    json(other, &format!("backup restore bk-2 {id}"));
    start(other, "bk-2");
    let merged = "/var/lib/left4me/runtime/bk-2/merged";
    assert_eq!(ledger_on(other, "bk-2"), rows);
    assert!(!exists(
        other,
        &format!("{merged}/left4dead2/cfg/server_example.cfg")
    ));
    assert!(rcon(other, "bk-2", "changelevel c2m1_highway").contains("not found"));
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn a_damaged_backup_or_a_full_disk_changes_nothing_and_says_why() {
    let _turn = take_turn();
    let host = &prepared_hosts()[1];
    let _gone = Gone(host, &["bk-3"]);
    declare(host, "bk-3", 27092);
    start(host, "bk-3");
    rcon(
        host,
        "bk-3",
        "stand_in_write left4dead2/addons/keep.txt 100",
    );
    let id = json(host, "backup create bk-3")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let archive = get(host, "bk-3", &id);
    rcon(
        host,
        "bk-3",
        "stand_in_write left4dead2/addons/after.txt 100",
    );
    let merged = "/var/lib/left4me/runtime/bk-3/merged";

    // Cut short, it is refused at the door and nothing is kept.
    let cut = host.ssh_with_input(
        "left4me",
        &format!("{AGENT} backup put bk-3"),
        &archive[..archive.len() / 2],
    );
    assert_eq!(cut.status.code(), Some(2), "{cut:?}");
    assert!(
        String::from_utf8_lossy(&cut.stderr).contains("the backup is damaged"),
        "{cut:?}"
    );
    assert_eq!(
        host.run(
            "left4me",
            "ls -A /var/lib/left4me/backups/bk-3 | grep -c partial || true"
        )
        .trim(),
        "0"
    );

    // Damaged on the host (a byte flipped in the middle): a restore refuses before it stops
    // the server, and the server keeps its files.
    host.run(
        "left4me",
        &format!(
            "f=/var/lib/left4me/backups/bk-3/{id}.tar.gz; n=$(( $(stat -c %s $f) / 2 )); \
             printf '\\x00\\x01\\x02\\x03' | dd of=$f bs=1 seek=$n conv=notrunc status=none"
        ),
    );
    let out = host.ssh("left4me", &format!("{AGENT} backup restore bk-3 {id}"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the backup is damaged"),
        "{out:?}"
    );
    let verify = host.ssh("left4me", &format!("{AGENT} backup verify bk-3 {id}"));
    assert!(!verify.status.success());
    assert!(exists(
        host,
        &format!("{merged}/left4dead2/addons/after.txt")
    ));
    wait_for_status(host, "bk-3", Duration::from_secs(10), |s| {
        s["active_state"] == "active"
    });
    assert_eq!(
        json(host, "backup list bk-3")["backups"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "no undo was made for a restore that did not happen"
    );

    // A full disk: the backup fails, says so, and leaves no partial archive.
    host.run(
        "root",
        "mount -t tmpfs -o size=64k,uid=$(id -u left4me),gid=$(id -g left4me),mode=0700 tmpfs /var/lib/left4me/backups/bk-3",
    );
    rcon(
        host,
        "bk-3",
        "stand_in_write left4dead2/addons/big.dem 1000000",
    );
    let full = host.ssh("left4me", &format!("{AGENT} backup create bk-3"));
    assert_eq!(full.status.code(), Some(1), "{full:?}");
    assert!(
        String::from_utf8_lossy(&full.stderr).contains("the disk is full; nothing was kept"),
        "{full:?}"
    );
    assert_eq!(
        host.run("left4me", "ls -A /var/lib/left4me/backups/bk-3")
            .trim(),
        ""
    );
    host.run("root", "umount /var/lib/left4me/backups/bk-3");
}
