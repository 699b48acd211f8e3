//! Checks that the hosts booted by `cargo xtask hosts up` are what the other suites rely on:
//! systemd as PID 1, sshd with key login as root and as the sudo account `admin`, journald,
//! kernel overlayfs with several lower layers, and their own addresses.

use testkit::hosts as test_hosts;

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn hosts_run_systemd_sshd_and_journald() {
    let hosts = test_hosts();
    assert!(hosts.len() >= 2, "the suites expect several hosts");
    for host in &hosts {
        assert_eq!(
            host.run("root", "cat /proc/1/comm").trim(),
            "systemd",
            "{}",
            host.name
        );
        let state = host.ssh("root", "systemctl is-system-running --wait");
        let state = String::from_utf8_lossy(&state.stdout);
        assert!(
            matches!(state.trim(), "running" | "degraded"),
            "{}: system state {state:?}",
            host.name
        );
        assert_eq!(host.run("root", "hostname").trim(), host.name);
        assert!(
            host.run("root", "ip -4 -o addr show dev eth0")
                .contains(&host.address)
        );
        assert_eq!(host.run("root", "systemctl is-active ssh").trim(), "active");

        let marker = format!("left4me-journal-check-{}", host.name);
        host.run("root", &format!("logger -t left4me-test {marker}"));
        let journal = host.run("root", &format!(
            "for i in $(seq 50); do journalctl -t left4me-test -o cat | grep -q {marker} && break; sleep 0.1; done; journalctl -t left4me-test -o cat"
        ));
        assert!(
            journal.contains(&marker),
            "{}: journald lost the line",
            host.name
        );

        // The account an admin gives left4me: key login, passwordless sudo.
        let out = host.ssh("admin", "sudo -n id -u");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0",
            "{}",
            host.name
        );
    }
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn hosts_can_stack_overlayfs_layers() {
    for host in test_hosts() {
        let script = "set -e; d=$(mktemp -d); cd $d; mkdir low1 low2 upper work merged; \
            echo top > low1/f; echo bottom > low2/f; echo only-low2 > low2/g; \
            mount -t overlay overlay -o lowerdir=low1:low2,upperdir=upper,workdir=work merged; \
            cat merged/f merged/g; echo new > merged/g; cat upper/g; \
            umount merged; cd /; rm -rf $d";
        assert_eq!(
            host.run("root", script),
            "top\nonly-low2\nnew\n",
            "{}",
            host.name
        );
    }
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn hosts_reach_each_other_on_the_harness_bridge() {
    let hosts = test_hosts();
    let (first, second) = (&hosts[0], &hosts[1]);
    // bash's /dev/tcp: no extra tools needed in the guest.
    let out = first.run(
        "root",
        &format!(
            "timeout 3 bash -c 'exec 3<>/dev/tcp/{}/22 && head -c 4 <&3'",
            second.address
        ),
    );
    assert_eq!(out, "SSH-");
}
