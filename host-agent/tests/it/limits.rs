//! A server's resource limits on a test host: they reach its unit (`systemctl show`) and its
//! cgroup's files, change at once on a running server, are lifted when taken out, are
//! refused where the host cannot hold them, and `status` shows the cgroup's figures and the
//! game's frame rate. The test hosts run cgroup v1 on machines whose controllers are bound
//! to v1 (see `cargo xtask hosts`), cgroup v2 elsewhere; both are checked.

use crate::on_hosts::{AGENT, Cleanup, RCON_PASSWORD, prepared_hosts, spec, take_turn};
use std::time::Duration;
use testkit::TestHost;

const UNIT: &str = "left4me-server@lim-1.service";

fn initialize(host: &TestHost, limits: &str) -> std::process::Output {
    host.ssh_with_input(
        "left4me",
        &format!("{AGENT} initialize lim-1 -f - --rcon-password-stdin"),
        format!("{RCON_PASSWORD}\n{}{limits}", spec(27080, "", "c1m1_hotel")),
    )
}

/// One file of the unit's cgroup, for `controller` on cgroup v1.
fn cgroup_file(host: &TestHost, v2: bool, controller: &str, file: &str) -> String {
    let base = if v2 {
        "/sys/fs/cgroup".to_owned()
    } else {
        format!("/sys/fs/cgroup/{controller}")
    };
    host.run(
        "root",
        &format!("cat \"{base}$(systemctl show -p ControlGroup --value {UNIT})/{file}\""),
    )
    .trim()
    .to_owned()
}

fn shown(host: &TestHost, property: &str) -> String {
    host.run(
        "root",
        &format!("systemctl show -p {property} --value {UNIT}"),
    )
    .trim()
    .to_owned()
}

fn main_pid(host: &TestHost) -> String {
    shown(host, "MainPID")
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn limits_reach_the_unit_and_its_cgroup_change_at_once_and_show_in_status() {
    let _turn = take_turn();
    let host = &prepared_hosts()[2];
    let agent = |command: &str| host.run("left4me", &format!("{AGENT} {command}"));
    let _cleanup = Cleanup(host, &["delete lim-1"]);
    let v2 = host
        .ssh("root", "test -e /sys/fs/cgroup/cgroup.controllers")
        .status
        .success();
    let limits = "limits:\n  cpu_weight: 1000\n  memory_max: 1610612736\n  tasks_max: 256\n  cpu_quota_percent: 150\n";
    let out = initialize(host, limits);
    assert!(out.status.success(), "{out:?}");
    agent("start lim-1");

    // systemd has them, and so has the kernel.
    assert_eq!(shown(host, "CPUWeight"), "1000");
    assert_eq!(shown(host, "MemoryMax"), "1610612736");
    assert_eq!(shown(host, "TasksMax"), "256");
    assert_eq!(shown(host, "CPUQuotaPerSecUSec"), "1.500000s");
    assert_eq!(shown(host, "CPUQuotaPeriodUSec"), "10ms");
    if v2 {
        assert_eq!(cgroup_file(host, v2, "", "cpu.weight"), "1000");
        assert_eq!(cgroup_file(host, v2, "", "memory.max"), "1610612736");
        assert_eq!(cgroup_file(host, v2, "", "pids.max"), "256");
        assert_eq!(cgroup_file(host, v2, "", "cpu.max"), "15000 10000");
    } else {
        // CPUWeight 1000 is ten times the default share (1024).
        assert_eq!(cgroup_file(host, v2, "cpu", "cpu.shares"), "10240");
        assert_eq!(
            cgroup_file(host, v2, "memory", "memory.limit_in_bytes"),
            "1610612736"
        );
        assert_eq!(cgroup_file(host, v2, "pids", "pids.max"), "256");
        assert_eq!(cgroup_file(host, v2, "cpu", "cpu.cfs_quota_us"), "15000");
        assert_eq!(cgroup_file(host, v2, "cpu", "cpu.cfs_period_us"), "10000");
    }

    // status shows the evidence: the game's own memory, its tasks, its frame rate.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let usage = loop {
        let status: serde_json::Value =
            serde_json::from_str(&agent("status lim-1 --json")).unwrap();
        if status["usage"]["fps_hundredths"].is_u64() || std::time::Instant::now() > deadline {
            break status["usage"].clone();
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(usage["cgroup"], if v2 { "v2" } else { "v1" }, "{usage}");
    assert!(usage["memory_anon"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["tasks"].as_u64().unwrap() >= 1, "{usage}");
    // CPU time is cpuacct's on cgroup v1, which systemd uses only mounted with cpu
    // (`cpu,cpuacct`, as distributions mount it); this machine mounts them apart.
    let accounted = v2 || host
        .ssh(
            "root",
            &format!(
                "test -d \"/sys/fs/cgroup/cpuacct$(systemctl show -p ControlGroup --value {UNIT})\""
            ),
        )
        .status
        .success();
    if accounted {
        assert!(usage["cpu_usec"].is_u64(), "{usage}");
    }
    assert_eq!(usage["oom_kills"], 0, "{usage}");
    assert_eq!(usage["fps_hundredths"], 2997, "{usage}");
    assert_eq!(usage["tickrate"], 30, "{usage}");
    let in_force: Vec<&str> = usage["in_force"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(in_force.contains(&"MemoryMax=1610612736"), "{usage}");
    let human = agent("status lim-1");
    assert!(
        human.contains("  game: 29.97 fps at tickrate 30\n"),
        "{human}"
    );

    // A changed weight reaches the running server at once; the game keeps running.
    let pid = main_pid(host);
    let out = initialize(host, &limits.replace("1000", "200"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(shown(host, "CPUWeight"), "200");
    if !v2 {
        assert_eq!(cgroup_file(host, v2, "cpu", "cpu.shares"), "2048");
    }
    assert_eq!(main_pid(host), pid, "not restarted");
    // Limits need no restart, so none is said to be waiting.
    let status = agent("status lim-1 --json");
    assert!(!status.contains("restart_applies"), "{status}");
    // Another map does: status says so until the restart.
    let changed = host.ssh_with_input(
        "left4me",
        &format!("{AGENT} initialize lim-1 -f - --rcon-password-stdin"),
        format!(
            "{RCON_PASSWORD}\n{}{}",
            spec(27080, "", "c2m1_highway"),
            limits.replace("1000", "200")
        ),
    );
    assert!(changed.status.success(), "{changed:?}");
    let status = agent("status lim-1 --json");
    assert!(status.contains("\"restart_applies\":true"), "{status}");
    let human = agent("status lim-1");
    assert!(
        human.contains("its spec changed since it started: a restart applies it"),
        "{human}"
    );
    agent("restart lim-1");
    let status = agent("status lim-1 --json");
    assert!(!status.contains("restart_applies"), "{status}");
    let pid = main_pid(host);
    // Back to the first map (applied at the next restart, which the rest of the test
    // does not need).
    let out = initialize(host, &limits.replace("1000", "200"));
    assert!(out.status.success(), "{out:?}");
    agent("restart lim-1");
    assert_ne!(main_pid(host), pid);
    let pid = main_pid(host);

    // Taken out, they are lifted.
    let out = initialize(host, "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(shown(host, "MemoryMax"), "infinity");
    assert_eq!(shown(host, "CPUQuotaPerSecUSec"), "infinity");
    assert_eq!(main_pid(host), pid);

    // What the host cannot hold is refused, and the spec stays as it was.
    let spec_before = host.run("root", "cat /var/lib/left4me/servers/lim-1.yaml");
    let refused = initialize(host, "limits:\n  memory_max: 1099511627776\n");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("memory_max 1.0 TiB is more than this host's memory"),
        "{stderr}"
    );
    let high = initialize(
        host,
        "limits:\n  memory_high: 1073741824\n  memory_max: 1610612736\n",
    );
    if v2 {
        assert!(high.status.success(), "{high:?}");
    } else {
        assert_eq!(high.status.code(), Some(2), "{high:?}");
        let stderr = String::from_utf8_lossy(&high.stderr);
        assert!(
            stderr.contains("memory_high needs cgroup v2, and this host's systemd runs cgroup v1"),
            "{stderr}"
        );
        assert_eq!(
            host.run("root", "cat /var/lib/left4me/servers/lim-1.yaml"),
            spec_before
        );
    }
}
