//! The 32-bit runtime on the test hosts. Their image has none; their only package source is
//! the harness's small apt repository of it (`cargo xtask hosts`). `setup` installs it from
//! there with apt, and refuses, changing nothing, when the host has no source for it.

use crate::on_hosts::{AGENT, prepared_hosts, take_turn};
use testkit::TestHost;

/// What set-up would make or change, listed so that two listings can be compared.
fn snapshot(host: &TestHost) -> String {
    host.run(
        "admin",
        "sudo find /var/lib/left4me /etc/left4me /opt/left4me /usr/local/lib/systemd/system \
         /etc/sudoers.d -xdev -not -path '/var/lib/left4me/installation/*' \
         -not -path '/var/lib/left4me/runtime/*/*' -not -path '/var/lib/left4me/overlays/*/*' \
         -printf '%p %u:%g %m %s\\n' | sort; getent passwd left4me left4me-game; \
         dpkg --print-foreign-architectures; dpkg-query -W -f='${Package} ${Status}\\n' \
         libc6-i386 lib32gcc-s1 lib32stdc++6 2>/dev/null; ls -d /lib/ld-linux.so.2 2>&1; true",
    )
}

fn remove_runtime(host: &TestHost) {
    host.run(
        "admin",
        "sudo DEBIAN_FRONTEND=noninteractive apt-get -q -y purge lib32gcc-s1 lib32stdc++6 \
         libc6-i386 >/dev/null 2>&1; sudo dpkg --remove-architecture i386 2>/dev/null; true",
    );
    let missing = host.ssh("admin", "test -e /lib/ld-linux.so.2");
    assert!(
        !missing.status.success(),
        "{}: the loader is gone",
        host.name
    );
}

/// Puts apt and the package source back however the test ends, for the tests after it.
struct SourceBack<'a>(&'a TestHost);

impl Drop for SourceBack<'_> {
    fn drop(&mut self) {
        let _ = self.0.ssh(
            "admin",
            "test -e /usr/bin/apt-get.away && sudo mv /usr/bin/apt-get.away /usr/bin/apt-get; \
             test -e /etc/apt/sources.list.away && sudo mv /etc/apt/sources.list.away \
             /etc/apt/sources.list; sudo apt-get -q update >/dev/null 2>&1; \
             sudo /opt/left4me/l4d2-agent setup >/dev/null 2>&1",
        );
    }
}

#[test]
#[ignore = "needs the test hosts: cargo xtask test"]
fn setup_installs_the_32_bit_runtime_from_the_hosts_package_source_or_refuses_without_one() {
    let host = &prepared_hosts()[0];
    let _turn = take_turn();
    remove_runtime(host);

    // The real launch chain fails as srcds does on such a host: the i386 program cannot
    // even be executed, and srcds_run exits 127.
    let out = host.ssh(
        "admin",
        "cd / && sudo runuser -u left4me-game -- /var/lib/left4me/installation/srcds_run \
         -game left4dead2 -norestart -port 27999",
    );
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("srcds_linux: not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts = host.run("left4me", &format!("{AGENT} facts"));
    assert!(facts.contains("can run     no"), "{facts}");
    assert!(facts.contains("the 32-bit runtime is missing"), "{facts}");

    // No package source: refused with the reason and the command that would fix it, and
    // nothing else done (a unit file removed before stays removed).
    let _source_back = SourceBack(host);
    host.run(
        "admin",
        "sudo mv /etc/apt/sources.list /etc/apt/sources.list.away && sudo apt-get -q update \
         >/dev/null && sudo rm /usr/local/lib/systemd/system/left4me-mount@.service",
    );
    let before = snapshot(host);
    let out = host.ssh("admin", &format!("sudo {AGENT} setup"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for words in [
        "lacks the 32-bit runtime",
        "/lib/ld-linux.so.2",
        "Unable to locate package lib32gcc-s1",
        "sudo dpkg --add-architecture i386 && sudo apt-get update && sudo apt-get install \
         lib32gcc-s1 lib32stdc++6",
    ] {
        assert!(stderr.contains(words), "{words:?} in {stderr}");
    }
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert_eq!(snapshot(host), before, "a refused setup changed the host");
    assert!(!before.contains("\ni386\n"));

    // A host without apt (another distribution): the same refusal, naming what to install.
    host.run(
        "admin",
        "sudo mv /etc/apt/sources.list.away /etc/apt/sources.list && \
         sudo mv /usr/bin/apt-get /usr/bin/apt-get.away",
    );
    let out = host.ssh("admin", &format!("sudo {AGENT} setup"));
    host.run("admin", "sudo mv /usr/bin/apt-get.away /usr/bin/apt-get");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("has no apt") && stderr.contains("libstdc++ and libgcc_s"),
        "{stderr}"
    );
    assert_eq!(snapshot(host), before, "a refused setup changed the host");

    // With the source back, setup installs the runtime with apt and finishes its work.
    let out = host.run("admin", &format!("sudo {AGENT} setup --json"));
    assert!(out.contains("\"changed\":true"), "{out}");
    let after = snapshot(host);
    for installed in [
        "libc6-i386 install ok installed",
        "lib32gcc-s1 install ok installed",
        "lib32stdc++6 install ok installed",
        "\ni386\n",
        "/usr/local/lib/systemd/system/left4me-mount@.service root:root 644",
    ] {
        assert!(after.contains(installed), "{installed:?} in {after}");
    }
    let facts: serde_json::Value =
        serde_json::from_str(host.run("left4me", &format!("{AGENT} facts --json")).trim()).unwrap();
    let readiness = &facts["readiness"];
    assert_eq!(readiness["runtime_32bit"], true, "{facts}");
    assert_eq!(readiness["mounts_probed"], true, "{facts}");
    // The test hosts share this machine's disk, which may be small: only that may remain.
    for problem in readiness["problems"].as_array().unwrap() {
        assert!(problem.as_str().unwrap().contains("GB free"), "{facts}");
    }

    // And the game runs again: the launch chain reaches the server, which stops at once
    // with its own complaint about a bad port, not the loader's.
    let out = host.ssh(
        "admin",
        "cd / && sudo runuser -u left4me-game -- /var/lib/left4me/installation/srcds_run \
         -game left4dead2 -norestart -port none",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-port needs a number"),
        "{out:?}"
    );
}
