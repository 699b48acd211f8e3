//! `cargo xtask bench [agent|fanout|ui]`: figures, printed, never asserted.
//!
//! `agent`: local figures from this machine; the systemd, A2S, backup and rollout ones
//! from a test host booted for the run. `follow`: a log follower's memory and CPU through a
//! 10-minute flood, on a test host of its own. `fanout`: app-core's status refresh of 50 servers on 5 test hosts
//! beside one OpenSSH process per server (the example `app-core/examples/fanout.rs`). `ui`:
//! the window's start-up, memory and dashboard figures beside the floor app in `bench/`
//! (the example `src-tauri/examples/bench_ui.rs`).

use crate::hosts::{self, Host};
use crate::{Result, tasks};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SPEC: &str = "port: 27015\noverlays: [maps]\nlaunch:\n  map: c1m1_hotel\n  max_players: 8\n  tickrate: 30\ncvars:\n  hostname: Bench\n";

pub fn main(args: &[String]) -> Result {
    match args.first().map(String::as_str) {
        None => agent()
            .and_then(|()| fanout())
            .and_then(|()| first())
            .and_then(|()| ui(&[])),
        Some("agent") => agent(),
        Some("follow") => follow(),
        Some("fanout") => fanout(),
        Some("first") => first(),
        Some("fleet") => ui(&["fleet".to_owned()]),
        Some("ui") => ui(&args[1..]),
        Some(other) => Err(format!(
            "unknown benchmark {other:?}: try `cargo xtask bench agent`, `follow`, `fanout`, `first`, `fleet` or `ui`"
        )
        .into()),
    }
}

fn agent() -> Result {
    let binary = tasks::agent_and_stand_ins()?;
    println!("l4d2-agent benchmarks (figures, not assertions)");
    let size = std::fs::metadata(&binary)?.len();
    println!(
        "  static binary size              {:>8.2} MiB   (target <= 6 MB)",
        size as f64 / (1 << 20) as f64
    );

    let dir = std::env::temp_dir().join(format!("left4me-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = local(&binary, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result?;

    if crate::setup::is_root() {
        on_host(&binary)?;
    } else {
        println!("  (systemd and A2S figures need root for a test host: run as root)");
    }
    Ok(())
}

/// Runs the agent under `root` on this machine with the current user as both accounts.
fn local_agent(binary: &Path, root: &Path, args: &[&str], stdin: Option<&str>) -> Result {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
    let mut child = Command::new(binary)
        .arg("--root")
        .arg(root)
        .args(["--owner-account", &user, "--game-account", &user])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(text) = stdin {
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "l4d2-agent {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn local(binary: &Path, root: &Path) -> Result {
    local_agent(binary, root, &["overlay", "create", "maps"], None)?;
    let servers = 20;
    for i in 0..servers {
        let spec = SPEC.replace("27015", &(27015 + i).to_string());
        local_agent(
            binary,
            root,
            &["initialize", &format!("s{i}"), "-f", "-"],
            Some(&spec),
        )?;
    }
    // Root lays out a server's runtime folders at its first mount; as root, mount each once.
    let mounted = crate::setup::is_root();
    if mounted {
        std::fs::create_dir_all(root.join("installation"))?;
        for i in 0..servers {
            local_agent(binary, root, &["mount", &format!("s{i}")], None)?;
            local_agent(binary, root, &["umount", &format!("s{i}")], None)?;
        }
    }
    let bytes = ["servers", "runtime", "etc"]
        .iter()
        .map(|d| disk_usage(&root.join(d)))
        .sum::<u64>();
    println!(
        "  disk per server                 {:>8.1} KiB   (target <= 1 MiB; {servers} servers, blocks allocated{})",
        bytes as f64 / servers as f64 / 1024.0,
        if mounted {
            ", each mounted once"
        } else {
            ", declared only: run as root to mount them"
        }
    );
    let times = (0..200)
        .map(|_| {
            let start = Instant::now();
            local_agent(binary, root, &["status", "s0", "--json"], None).map(|()| start.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    report(
        "status --json, stopped (this machine, no systemd)",
        times,
        "<= 3 ms",
    );
    Ok(())
}

/// Bytes allocated on disk below `dir` (what `du` counts), not following links.
fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = dir.symlink_metadata() else {
            continue;
        };
        total += meta.blocks() * 512;
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&dir)
        {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
    total
}

fn report(what: &str, mut times: Vec<Duration>, target: &str) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    let p95 = times[times.len() * 95 / 100];
    println!(
        "  {what:<50} median {:>7.2} ms  p95 {:>7.2} ms  (n={}, target {target})",
        ms(median),
        ms(p95),
        times.len()
    );
}

/// Figures from a booted test host: real systemd, real A2S over loopback.
fn on_host(binary: &Path) -> Result {
    hosts::up(1)?;
    let host = Host { index: 1 };
    let result = measure_on(&host, binary);
    let down = hosts::down();
    result.and(down)
}

/// `follow`: a log follower's memory and CPU over a long flood, on a test host of its own.
fn follow() -> Result {
    if !crate::setup::is_root() {
        return Err("the follow benchmark boots a test host: run it as root".into());
    }
    let binary = tasks::agent_and_stand_ins()?;
    hosts::up(1)?;
    let host = Host { index: 1 };
    let result = prepare(&host, &binary).and_then(|agent| {
        hosts::remote(&host, &format!("{agent} start bench >/dev/null"))?;
        follow_figures(&host, agent)?;
        hosts::remote(&host, &format!("{agent} delete bench >/dev/null"))
    });
    let down = hosts::down();
    result.map(drop).and(down)
}

/// Installs the agent, the stand-ins and the game on `host` and declares the server
/// `bench`; returns the agent's path there.
fn prepare(host: &Host, binary: &Path) -> Result<&'static str> {
    let dir = binary.parent().expect("the agent is in a folder");
    for name in ["l4d2-agent", "steamcmd_stand_in", "srcds_stand_in"] {
        hosts::scp(host, &dir.join(name), &format!("/root/{name}"))?;
    }
    let setup = "set -e; cd /root; ./l4d2-agent setup >/dev/null; \
        install -d -o left4me -g left4me /var/lib/left4me/home/tools; \
        install -o left4me -m 755 steamcmd_stand_in srcds_stand_in /var/lib/left4me/home/tools/; \
        su -s /bin/sh left4me -c 'cd /var/lib/left4me/home/tools && ./steamcmd_stand_in --write-tree steamcmd'; \
        su -s /bin/sh left4me -c 'STAND_IN_STEAMCMD_STEP_MS=0 /opt/left4me/l4d2-agent install --steamcmd /var/lib/left4me/home/tools/steamcmd/steamcmd.sh >/dev/null'; \
        su -s /bin/sh left4me -c '/opt/left4me/l4d2-agent overlay create maps >/dev/null'";
    hosts::remote(host, setup)?;
    hosts::remote(
        host,
        &format!(
            "su -s /bin/sh left4me -c '/opt/left4me/l4d2-agent initialize bench -f - --rcon-password-stdin >/dev/null' <<'EOF'\nbench-rcon-password\n{SPEC}EOF"
        ),
    )?;
    Ok("/opt/left4me/l4d2-agent")
}

fn measure_on(host: &Host, binary: &Path) -> Result {
    let agent = prepare(host, binary)?;
    report(
        "status --json, stopped (test host, D-Bus)",
        timed(host, &format!("{agent} status bench --json"), "true", 100)?,
        "<= 3 ms",
    );
    // Starting: the mount unit's mount, the server's unit start request, and the wait until
    // the game answers A2S on its port (the stand-in answers within milliseconds; the real
    // srcds takes seconds to load its map); stops untimed.
    report(
        "start until it answers A2S (test host)",
        timed(
            host,
            &format!("{agent} start bench"),
            &format!("{agent} stop bench >/dev/null || exit 1"),
            20,
        )?,
        "<= 150 ms",
    );
    hosts::remote(host, &format!("{agent} start bench >/dev/null"))?;
    // Wait until the server answers A2S, then time status with the live query.
    hosts::remote(
        host,
        &format!(
            "for i in $(seq 100); do {agent} status bench --json | grep -q '\"live\":{{' && exit 0; sleep 0.1; done; exit 1"
        ),
    )?;
    report(
        "status --json, running, with A2S (test host)",
        timed(host, &format!("{agent} status bench --json"), "true", 100)?,
        "<= 20 ms",
    );
    report(
        "console line to logs --follow (test host)",
        console_latency(host, agent, 40)?,
        "<= 100 ms",
    );
    // Stopping an idle server: `quit` typed on its console; starts untimed.
    report(
        "stop of an idle server (test host)",
        timed(
            host,
            &format!("{agent} stop bench"),
            &format!("{agent} start bench >/dev/null || exit 1; sleep 0.5"),
            10,
        )?,
        "well under the 30 s stop timeout",
    );
    backup_figures(host, agent)?;
    rollout_figures(host, agent)?;
    hosts::remote(host, &format!("{agent} delete bench >/dev/null"))?;
    Ok(())
}

/// `command` run `n` times on `host`, each run timed inside the host with `date +%s%N`;
/// `after` runs untimed between them.
fn timed(host: &Host, command: &str, after: &str, n: usize) -> Result<Vec<Duration>> {
    let script = format!(
        "for i in $(seq {n}); do s=$(date +%s%N); {command} >/dev/null || exit 1; e=$(date +%s%N); echo $((e - s)); {after}; done"
    );
    Ok(hosts::remote(host, &script)?
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .map(Duration::from_nanos)
        .collect())
}

/// A backup of the running server once its upper layer holds 50 MB: half of it files that
/// do not compress (random bytes, as demos and downloaded content are), half text that does
/// (logs, configs), written through the game's tree as the game would.
fn backup_figures(host: &Host, agent: &str) -> Result {
    let tree = "/var/lib/left4me/runtime/bench/merged/left4dead2/bench-data";
    hosts::remote(
        host,
        &format!(
            "set -e; {agent} status bench --json | grep -q '\"active_state\":\"active\"' || {agent} start bench >/dev/null
            su -s /bin/sh left4me-game -c 'set -e; mkdir -p {tree}; \
              for i in $(seq 25); do head -c 1048576 /dev/urandom > {tree}/random-$i.dem; done; \
              for i in $(seq 25); do seq -f \"L 12/01/2026 - 05:00:00: Player %g said gg\" 1 40000 | head -c 1048576 > {tree}/log-$i.log; done'"
        ),
    )?;
    report(
        "backup create, 50 MB upper, server running (test host)",
        timed(
            host,
            &format!("su -s /bin/sh left4me -c '{agent} backup create bench'"),
            "sleep 1",
            5,
        )?,
        "a few seconds",
    );
    let listed = hosts::remote(
        host,
        &format!("su -s /bin/sh left4me -c '{agent} backup list bench --json'"),
    )?;
    let bytes = number_after(&listed, "\"bytes\":").ok_or("no backup listed")?;
    let content = number_after(&listed, "\"content_bytes\":").ok_or("no backup listed")?;
    println!(
        "  backup archive of that upper                       {:>8.2} MiB   (of {:.2} MiB of files, half of them random)",
        bytes as f64 / (1 << 20) as f64,
        content as f64 / (1 << 20) as f64
    );
    Ok(())
}

/// The downtime each of three running servers sees when a new build is rolled across them
/// (from its stop to its first A2S answer on the new build), with no players to wait for
/// and the canary watched 10 s.
fn rollout_figures(host: &Host, agent: &str) -> Result {
    let owner = |command: &str| format!("su -s /bin/sh left4me -c '{command}'");
    for (name, port) in [("bench-2", 27016), ("bench-3", 27017)] {
        let spec = SPEC
            .replace("port: 27015", &format!("port: {port}"))
            .replace("[maps]", "[]");
        hosts::remote(
            host,
            &format!(
                "{} <<'EOF'\nbench-rcon-password\n{spec}EOF\n{agent} start {name} >/dev/null",
                owner(&format!(
                    "{agent} initialize {name} -f - --rcon-password-stdin >/dev/null"
                ))
            ),
        )?;
    }
    // Steam publishes a new build; the install builds it beside the running servers.
    hosts::remote(
        host,
        &format!(
            "set -e; echo 'build 16076000' >> /var/lib/left4me/home/tools/steamcmd/stand-in-steam.conf; {}; {}",
            owner(&format!(
                "STAND_IN_STEAMCMD_STEP_MS=0 {agent} install --steamcmd /var/lib/left4me/home/tools/steamcmd/steamcmd.sh >/dev/null"
            )),
            owner(&format!(
                "{agent} rollout start --drain-minutes 0 --check-seconds 10 >/dev/null"
            ))
        ),
    )?;
    let status = hosts::remote(
        host,
        &format!(
            "for i in $(seq 300); do s=$({}); case \"$s\" in *'\"state\":\"done\"'*) echo \"$s\"; exit 0;; *'\"state\":\"held\"'*) echo \"$s\" >&2; exit 1;; esac; sleep 1; done; echo 'the rollout did not end in 5 minutes' >&2; exit 1",
            owner(&format!("{agent} rollout status --json"))
        ),
    )?;
    let mut downtimes = Vec::new();
    for server in status.split("\"name\":\"").skip(1) {
        let name = server.split('"').next().unwrap_or("?");
        let object = server.split('}').next().unwrap_or("");
        if let Some(ms) = number_after(object, "\"downtime_ms\":") {
            downtimes.push(format!("{name} {:.2} s", ms as f64 / 1000.0));
        }
    }
    println!(
        "  rollout downtime per server (test host)            {}   (stop to A2S on the new build; the stand-in answers at once, a real srcds after loading its map)",
        downtimes.join(", ")
    );
    for name in ["bench-2", "bench-3"] {
        hosts::remote(host, &format!("{agent} delete {name} >/dev/null"))?;
    }
    Ok(())
}

/// The number right after the first `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A `logs --follow` (the agent and the journalctl it reads through) while the game prints
/// 1,000 lines a second, for `LEFT4ME_BENCH_FOLLOW_MINUTES` (10 unless set): the resident
/// memory of both every 30 s, their own (anonymous) apart from the files they map
/// (journalctl maps the journal's files, which the kernel can drop), and the CPU time they
/// took, as a share of one core.
fn follow_figures(host: &Host, agent: &str) -> Result {
    let minutes: u64 = std::env::var("LEFT4ME_BENCH_FOLLOW_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let seconds = minutes * 60;
    let script = format!(
        "trap \"pkill -f '^{agent} logs bench' || true\" EXIT
        {agent} logs bench --lines 0 --follow </dev/null >/dev/null 2>&1 &
        pid=$!
        sleep 2
        journal=$(pgrep -P $pid journalctl)
        {agent} rcon bench stand_in_flood {lines} 1000 >/dev/null
        rss() {{ awk '/^RssAnon/ {{a=$2}} /^RssFile/ {{f=$2}} END {{print a, f}}' /proc/$1/status; }}
        cpu() {{ awk '{{print $14 + $15}}' /proc/$1/stat; }}
        a0=$(cpu $pid); j0=$(cpu $journal)
        for i in $(seq {samples}); do
            sleep 30
            echo \"rss $((i * 30)) $(rss $pid) $(rss $journal)\"
        done
        echo \"cpu $(( $(cpu $pid) - a0 )) $(( $(cpu $journal) - j0 )) $(getconf CLK_TCK) {seconds}\"",
        lines = seconds * 1000 + 5000,
        samples = seconds / 30,
    );
    let out = hosts::remote(host, &script)?;
    println!(
        "  logs --follow through a flood of 1,000 lines/s for {minutes} min (test host): resident memory, its own + mapped files (the journal's, page cache)"
    );
    for line in out.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            [
                "rss",
                at,
                agent_anon,
                agent_file,
                journal_anon,
                journal_file,
            ] => println!(
                "    at {at:>4} s   agent {agent_anon:>6} + {agent_file:>5} KiB   journalctl {journal_anon:>6} + {journal_file:>6} KiB"
            ),
            ["cpu", agent_ticks, journal_ticks, hz, seconds] => {
                let share = |ticks: &str| -> f64 {
                    let (ticks, hz, seconds): (f64, f64, f64) = (
                        ticks.parse().unwrap_or(0.0),
                        hz.parse().unwrap_or(100.0),
                        seconds.parse().unwrap_or(1.0),
                    );
                    100.0 * ticks / hz / seconds
                };
                println!(
                    "    CPU: agent {:.1}% of a core, journalctl {:.1}%   (target: agent <= 10 MB resident, flat)",
                    share(agent_ticks),
                    share(journal_ticks)
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// From a console line being printed (an RCON `say`, sent `n` times) to it reaching a
/// `logs --follow` on the host. The game block-buffers a pipe, so this is what the terminal
/// the unit gives it buys. Times are taken on the host with bash's `$EPOCHREALTIME`.
fn console_latency(host: &Host, agent: &str, n: usize) -> Result<Vec<Duration>> {
    let script = format!(
        "rm -f /tmp/bench-follow /tmp/bench-sent
        trap \"pkill -f '^{agent} logs bench' || true\" EXIT
        ({agent} logs bench --lines 0 --follow | while IFS= read -r l; do printf '%s %s\\n' \"$EPOCHREALTIME\" \"$l\"; done) </dev/null >/tmp/bench-follow 2>/dev/null &
        sleep 1
        for i in $(seq {n}); do
            printf '%s mark-%s\\n' \"$EPOCHREALTIME\" \"$i\" >> /tmp/bench-sent
            {agent} rcon bench say mark-$i >/dev/null || echo \"rcon failed\" >&2
            sleep 0.05
        done
        sleep 1
        cat /tmp/bench-sent; echo --; cat /tmp/bench-follow"
    );
    // root's shell on the hosts is bash.
    let out = hosts::remote(host, &script)?;
    let (sent, seen) = out.split_once("--\n").ok_or("no marker lines")?;
    let time = |line: &str| -> Option<(f64, String)> {
        let (t, rest) = line.split_once(' ')?;
        Some((t.parse().ok()?, rest.to_owned()))
    };
    let seen: Vec<(f64, String)> = seen.lines().filter_map(time).collect();
    Ok(sent
        .lines()
        .filter_map(time)
        .filter_map(|(at, mark)| {
            let wanted = format!("Console: {mark}");
            let (arrived, _) = seen.iter().find(|(_, l)| l.ends_with(&wanted))?;
            Some(Duration::from_secs_f64((arrived - at).max(0.0)))
        })
        .collect())
}

/// The status fan-out on 5 hosts, run by app-core's `fanout` example.
fn fanout() -> Result {
    on_fresh_hosts("fanout", 5)
}

/// From "Add host" to the first server's A2S answer on a fresh host, with a 1 GiB install,
/// run by app-core's `first_server` example.
fn first() -> Result {
    on_fresh_hosts("first_server", 1)
}

/// Runs app-core's example `example` (a release build) against `hosts` freshly booted test
/// hosts, which are taken down afterwards.
fn on_fresh_hosts(example: &str, hosts: usize) -> Result {
    if !crate::setup::is_root() {
        return Err(format!("the {example} benchmark boots test hosts: run it as root").into());
    }
    let agent = tasks::agent_and_stand_ins()?;
    tasks::cargo()
        .args(["build", "--release", "--package", "left4me-core"])
        .args(["--example", example])
        .run()?;
    let secret_service = crate::secret_service::SecretService::start()?;
    hosts::up(hosts)?;
    let result = crate::cmd::Cmd::new(
        crate::workspace::target_dir()
            .join("release/examples")
            .join(example),
    )
    .env("L4D2_AGENT_STATIC", &agent)
    .env("LEFT4ME_TEST_HOSTS", hosts::inventory_path())
    .env("DBUS_SESSION_BUS_ADDRESS", &secret_service.address)
    .run();
    let down = hosts::down();
    drop(secret_service);
    result.and(down)
}

/// The window beside the floor app, both release builds with their bundles; `parts` picks
/// some of the window's figures (`start`, `memory`, `dashboard`, `log`, `install`), all
/// when empty.
fn ui(parts: &[String]) -> Result {
    if !crate::setup::is_root() {
        return Err("the window benchmark boots a test host: run it as root".into());
    }
    tasks::ui()?;
    tasks::bundle(&tasks::FLOOR_UI)?;
    tasks::cargo()
        .args([
            "build",
            "--release",
            "--package",
            "left4me-app",
            "--package",
            "left4me-floor",
            "--bins",
            "--example",
            "bench_ui",
        ])
        .run()?;
    let agent = tasks::agent_and_stand_ins()?;
    let secret_service = crate::secret_service::SecretService::start()?;
    let release = crate::workspace::target_dir().join("release");
    let bench = |parts: &[&str]| {
        crate::cmd::Cmd::new(release.join("examples/bench_ui"))
            .args(parts.iter().copied())
            .env("LEFT4ME_APP", release.join("left4me"))
            .env("LEFT4ME_FLOOR_APP", release.join("left4me-floor"))
            .env("TAURI_DRIVER", crate::setup::cargo_bin("tauri-driver"))
            .env("DBUS_SESSION_BUS_ADDRESS", &secret_service.address)
            .env("L4D2_AGENT_STATIC", &agent)
            .env("LEFT4ME_TEST_HOSTS", hosts::inventory_path())
            .run()
    };
    let picked = |all: &[&'static str]| -> Vec<&'static str> {
        all.iter()
            .copied()
            .filter(|p| parts.is_empty() || parts.iter().any(|q| q == p))
            .collect()
    };
    // The window's own figures first, with no test host booting beside them.
    let alone = picked(&["start", "memory", "dashboard"]);
    if !alone.is_empty() {
        bench(&alone)?;
    }
    // Then one test host, for the log view's flood and the install's progress.
    let with_host = picked(&["log", "install"]);
    if !with_host.is_empty() {
        hosts::up(1)?;
        let result = bench(&with_host);
        let down = hosts::down();
        result.and(down)?;
    }
    // The fleet only when asked for: 20 hosts and 1,000 servers take a while.
    if parts.iter().any(|p| p == "fleet") {
        hosts::up(FLEET_HOSTS)?;
        let result = bench(&["fleet"]);
        let down = hosts::down();
        result.and(down)?;
    }
    drop(secret_service);
    // Last, as its build replaces the release binary: what a user downloads.
    if !picked(&["package"]).is_empty() {
        package_sizes()?;
    }
    Ok(())
}

/// The test hosts the fleet benchmark spreads 1,000 servers over.
const FLEET_HOSTS: usize = 20;

/// The release packages' sizes: download and installed.
fn package_sizes() -> Result {
    let packages = crate::dist::build(crate::dist::Profile::Release)?;
    let mib = |path: &std::path::Path| -> Result<f64> {
        Ok(std::fs::metadata(path)?.len() as f64 / 1048576.0)
    };
    let installed_kib = crate::cmd::Cmd::new("dpkg-deb")
        .args(["--field"])
        .arg(&packages.deb)
        .arg("Installed-Size")
        .read()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .ok_or("dpkg-deb gave no Installed-Size")?;
    println!(
        "package  .deb {:.1} MiB (installed {:.1} MiB), .rpm {:.1} MiB",
        mib(&packages.deb)?,
        installed_kib / 1024.0,
        mib(&packages.rpm)?
    );
    Ok(())
}
