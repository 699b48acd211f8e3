//! What the less trusted accounts of a host can make root do for them. On hosts set up the
//! normal way, `left4me` (whose key is on the admin's laptop) and the game account (which runs
//! srcds and whatever its plugins and maps bring) each plant a trap: a symlink where root
//! expects a folder or a file, a hard link, a folder renamed while it is in use, or a process
//! that swaps a folder and a symlink with `renameat2(RENAME_EXCHANGE)` in a loop. Then a root
//! step runs: a start through the sudo rule, the mount unit started by systemd as at boot, a
//! stop, a delete, or `setup` run again by the admin.
//!
//! After each attempt the victims (root-owned files and folders outside left4me's tree) keep
//! their contents, owners and modes; none of their contents reaches anything the attacker can
//! read; no mount lands outside the server's own tree or layers a folder that is not an overlay
//! or the install; a stop or delete leaves the mount table as it was; and the root step either
//! works or fails with one clear line. A trap the account cannot even plant (permission
//! denied) is an attack prevented by the layout.

use super::on_hosts::{
    AGENT, RCON_PASSWORD, mount_table, overlay_tar, prepared_hosts, spec, take_turn,
};
use std::fmt::Write as _;
use testkit::TestHost;

/// Who plants a trap.
#[derive(Debug, Clone, Copy, PartialEq)]
enum By {
    /// The `left4me` login, over SSH with the app's key.
    Owner,
    /// The game account, as its plugins could.
    Game,
    /// Root plants what the game account could on a host whose kernel lets anyone hard-link
    /// files they cannot write (`fs.protected_hardlinks=0`): the agent must not rely on it.
    AsIfUnprotected,
}

/// The root step an attack waits for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// `l4d2-agent start` as left4me: the sudo rule, then the mount unit as root.
    Start,
    /// systemd starting the server by itself, as at boot: the mount unit as root.
    UnitStart,
    /// `l4d2-agent stop` as left4me, of a running server.
    Stop,
    /// `l4d2-agent delete` as left4me, through the sudo rule.
    Delete,
    /// `setup` run again by the admin, with a key to authorise.
    Setup,
    /// Start and stop, this many times, while a racer runs.
    Cycles(usize),
    /// Initialize, start and delete, this many times, while a racer runs.
    Deletes(usize),
    /// `privileged delete` of the server through the sudo rule, this many times, while a racer
    /// runs; nothing else.
    PrivilegedDeletes(usize),
}

struct Attack {
    name: &'static str,
    by: By,
    /// Shell run as `by`, with `$S` the server's name, `$L` the state root and `$RACER` a perl
    /// program that exchanges its two path arguments in a loop for its third (seconds).
    plant: &'static str,
    /// Shell run as root afterwards to put things back, with the same variables.
    undo: &'static str,
    step: Step,
    /// The server's name when it matters (`$S`); else one is made from the attack's index.
    server: Option<&'static str>,
}

/// The victims: root's own, outside left4me's tree. Their contents are markers that must
/// never show up where an attacker can read them.
const VICTIMS: &str = "\
umount -R -l /srv/victim 2>/dev/null || true
rm -rf /srv/victim /srv/victim-file /srv/planted
mkdir -m 700 /srv/victim /srv/victim/keep
printf 'VICTIM-DIR-5e2a9c\\n' > /srv/victim/precious
printf 'VICTIM-KEPT-5e2a9c\\n' > /srv/victim/keep/file
printf 'VICTIM-FILE-d41f03\\n' > /srv/victim-file
printf 'LEFT4ME_STOLEN=VICTIM-ENV-7c1e44\\n' > /etc/left4me-victim.env
chmod 600 /srv/victim/precious /srv/victim/keep/file /srv/victim-file /etc/left4me-victim.env
";

/// Every victim's path, owner, mode and checksum.
const SNAPSHOT: &str = "find /srv /etc/left4me-victim.env -printf '%p %u:%g %m %y\\n' | sort; \
    find /srv /etc/left4me-victim.env -type f -exec sha256sum {} + | sort";

/// The markers of the victims' contents.
const MARKERS: [&str; 3] = ["5e2a9c", "d41f03", "7c1e44"];

/// A public key `setup` has not seen, so that it has something to write.
const HOSTILE_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostileTestKeyHostileTestKeyHostile0 hostile-test";

/// Exchanges its first two paths in a loop until its time is up or it is told to stop, and
/// leaves the first one a folder again.
const RACER: &str = r#"$0 = "left4me-racer"; my ($d, $l, $t) = @ARGV; my $end = time + $t; $SIG{TERM} = sub { $end = 0 }; while (time < $end) { syscall(316, -100, $d, -100, $l, 2); } syscall(316, -100, $d, -100, $l, 2) if -l $d;"#;

/// Stops every racer and waits until they have put their folders back.
const STOP_RACERS: &str = "pkill -f 'left4me-[r]acer' || true; while pgrep -f 'left4me-[r]acer' >/dev/null; do sleep 0.05; done";

fn attacks() -> Vec<Attack> {
    use By::*;
    use Step::*;
    let attack = |name, by, plant, undo, step| Attack {
        name,
        by,
        plant,
        undo,
        step,
        server: None,
    };
    vec![
        // The state tree's folders swapped for links, against every root step.
        Attack {
            server: Some("victim"),
            ..attack(
                "runtime/ swapped for a link to /srv, then privileged delete",
                Owner,
                "mv $L/runtime $L/runtime.aside && ln -s /srv $L/runtime",
                "[ -L $L/runtime ] && rm $L/runtime && mv $L/runtime.aside $L/runtime || true",
                Delete,
            )
        },
        attack(
            "runtime/<server> swapped for a link, then delete",
            Owner,
            "mv $L/runtime/$S $L/runtime/$S.aside && ln -s /srv/victim $L/runtime/$S",
            "[ -L $L/runtime/$S ] && rm $L/runtime/$S && mv $L/runtime/$S.aside $L/runtime/$S || true",
            Delete,
        ),
        attack(
            "merged/ swapped for a link, then start",
            Owner,
            "rmdir $L/runtime/$S/merged && ln -s /srv/victim $L/runtime/$S/merged",
            "[ -L $L/runtime/$S/merged ] && rm $L/runtime/$S/merged || true",
            Start,
        ),
        attack(
            "merged/ swapped for a link, then systemd starts the unit",
            Owner,
            "rmdir $L/runtime/$S/merged && ln -s /srv/victim $L/runtime/$S/merged",
            "[ -L $L/runtime/$S/merged ] && rm $L/runtime/$S/merged || true",
            UnitStart,
        ),
        attack(
            "idmap/_installation swapped for a link, then start",
            Owner,
            "rmdir $L/runtime/$S/idmap/_installation && ln -s /srv/victim $L/runtime/$S/idmap/_installation",
            "[ -L $L/runtime/$S/idmap/_installation ] && rm $L/runtime/$S/idmap/_installation || true",
            Start,
        ),
        attack(
            "idmap/ swapped for a link, then start",
            Owner,
            "mv $L/runtime/$S/idmap $L/runtime/$S/idmap.aside && ln -s /srv/victim $L/runtime/$S/idmap",
            "[ -L $L/runtime/$S/idmap ] && rm $L/runtime/$S/idmap && mv $L/runtime/$S/idmap.aside $L/runtime/$S/idmap || true",
            Start,
        ),
        attack(
            "upper/ swapped for a link, then start",
            Owner,
            "mv $L/runtime/$S/upper $L/runtime/$S/upper.aside && ln -s /srv/victim $L/runtime/$S/upper",
            "[ -L $L/runtime/$S/upper ] && rm $L/runtime/$S/upper && mv $L/runtime/$S/upper.aside $L/runtime/$S/upper || true",
            Start,
        ),
        attack(
            "work/ swapped for a link, then start",
            Owner,
            "mv $L/runtime/$S/work $L/runtime/$S/work.aside && ln -s /srv/victim $L/runtime/$S/work",
            "[ -L $L/runtime/$S/work ] && rm $L/runtime/$S/work && mv $L/runtime/$S/work.aside $L/runtime/$S/work || true",
            Start,
        ),
        attack(
            "the server's lock file a link to a file root would create, then start",
            Owner,
            "ln -sfn /srv/planted $L/runtime/$S/.lock",
            "[ -L $L/runtime/$S/.lock ] && rm $L/runtime/$S/.lock || true",
            Start,
        ),
        attack(
            "runtime/<server> moved aside while mounted, a link in its place, then stop",
            Owner,
            "mv $L/runtime/$S $L/runtime/$S.aside && ln -s /srv/victim $L/runtime/$S",
            "[ -L $L/runtime/$S ] && rm $L/runtime/$S && mv $L/runtime/$S.aside $L/runtime/$S || true",
            Stop,
        ),
        attack(
            "runtime/ moved aside while mounted, a link in its place, then stop",
            Owner,
            "mv $L/runtime $L/runtime.aside && ln -s /srv $L/runtime",
            "[ -L $L/runtime ] && rm $L/runtime && mv $L/runtime.aside $L/runtime || true",
            Stop,
        ),
        // Files root reads for the server.
        attack(
            "the environment file a link to a root-only file, then start",
            Owner,
            "ln -sfn /etc/left4me-victim.env /etc/left4me/$S.env",
            "[ -L /etc/left4me/$S.env ] && rm /etc/left4me/$S.env || true",
            Start,
        ),
        attack(
            "the RCON password file a link to a root-only file, then start",
            Owner,
            "for f in /etc/left4me/$S.rcon $L/servers/$S.rcon; do [ -e $f ] && ln -sfn /srv/victim-file $f; done; true",
            "",
            Start,
        ),
        attack(
            "the spec a hard link to a root-only file, then start",
            AsIfUnprotected,
            "for f in $L/runtime/$S/spec.yaml $L/servers/$S.yaml; do [ -e $f ] && ln -f /srv/victim-file $f; done; true",
            "",
            Start,
        ),
        attack(
            "the RCON password file a hard link to a root-only file, then start",
            AsIfUnprotected,
            "for f in /etc/left4me/$S.rcon $L/servers/$S.rcon; do [ -e $f ] && ln -f /srv/victim-file $f; done; true",
            "",
            Start,
        ),
        attack(
            "servers/ swapped for a link, then start",
            Owner,
            "if [ -e $L/servers ]; then mv $L/servers $L/servers.aside && ln -s /srv/victim $L/servers; fi",
            "[ -L $L/servers ] && rm $L/servers && mv $L/servers.aside $L/servers || true",
            Start,
        ),
        attack(
            "overlays/ swapped for a link, then start",
            Owner,
            "mv $L/overlays $L/overlays.aside && ln -s /srv/victim $L/overlays",
            "[ -L $L/overlays ] && rm $L/overlays && mv $L/overlays.aside $L/overlays || true",
            Start,
        ),
        attack(
            "the spec a link to a root-only file, then start",
            Owner,
            "for f in $L/runtime/$S/spec.yaml $L/servers/$S.yaml; do [ -e $f ] && ln -sfn /srv/victim-file $f; done; true",
            "",
            Start,
        ),
        // Overlays and the install as lower layers.
        attack(
            "an overlay swapped for a link, then start",
            Owner,
            "mv $L/overlays/hostile $L/overlays/hostile.aside && ln -s /srv/victim $L/overlays/hostile",
            "[ -L $L/overlays/hostile ] && rm $L/overlays/hostile && mv $L/overlays/hostile.aside $L/overlays/hostile || true",
            Start,
        ),
        attack(
            "a staged overlay version that is a link, then start",
            Owner,
            "ln -s /srv/victim $L/overlays/.hostile.next",
            "[ -L $L/overlays/hostile ] && rm $L/overlays/hostile; rm -f $L/overlays/.hostile.next; \
             for d in $L/overlays/.hostile.retired-*; do [ -d $d ] && mv $d $L/overlays/hostile; done; true",
            Start,
        ),
        attack(
            "an overlay's fill lock a link to a file root would create, then start",
            Owner,
            "mkdir $L/overlays/.hostile.next && cp -a $L/overlays/hostile/. $L/overlays/.hostile.next/ && ln -sfn /srv/planted $L/overlays/.hostile.lock",
            "rm -f $L/overlays/.hostile.lock",
            Start,
        ),
        attack(
            "a retired overlay version that is a link, then start",
            Owner,
            "ln -s /srv/victim $L/overlays/.hostile.retired-1",
            "rm -f $L/overlays/.hostile.retired-1",
            Start,
        ),
        attack(
            "the install swapped for a link, then start",
            Owner,
            "mv $L/installation $L/installation.aside && ln -s /srv/victim $L/installation",
            "[ -L $L/installation ] && rm $L/installation && mv $L/installation.aside $L/installation || true",
            Start,
        ),
        attack(
            "installs/current a link to a root-only file, then start",
            Owner,
            "ln -sfn /srv/victim-file $L/installs/current",
            "rm -f $L/installs/current",
            Start,
        ),
        attack(
            "installs/current naming an install that is a link, then start",
            Owner,
            "ln -sfn /srv/victim $L/installs/7 && echo 7 > $L/installs/current",
            "rm -f $L/installs/7 $L/installs/current",
            Start,
        ),
        attack(
            "installs/current naming a path out of installs/, then start",
            Owner,
            "echo ../../../srv/victim > $L/installs/current",
            "rm -f $L/installs/current",
            Start,
        ),
        // The game account's own upper layer, where root renders server.cfg.
        attack(
            "the game's left4dead2/ a link, then start",
            Game,
            "rm -rf left4dead2 && ln -s /srv/victim left4dead2",
            "",
            Start,
        ),
        attack(
            "the game's cfg/ a link, then start",
            Game,
            "rm -rf left4dead2/cfg && ln -s /srv/victim left4dead2/cfg",
            "",
            Start,
        ),
        attack(
            "server.cfg's temporary file a link to a root-only file, then start",
            Game,
            "ln -sfn /srv/victim-file left4dead2/cfg/.server.cfg.tmp",
            "",
            Start,
        ),
        attack(
            "server.cfg's temporary file a hard link to a root-only file, then start",
            AsIfUnprotected,
            "ln -f /srv/victim-file left4dead2/cfg/.server.cfg.tmp",
            "",
            Start,
        ),
        attack(
            "server.cfg a link to a root-only file, then start",
            Game,
            "ln -sfn /srv/victim-file left4dead2/cfg/server.cfg",
            "",
            Start,
        ),
        attack(
            "a link out of the game's tree, then delete",
            Game,
            "ln -s /srv/victim escape && ln -s /srv/victim-file left4dead2/escape-file",
            "",
            Delete,
        ),
        // setup run again on a set-up host.
        attack(
            "left4me's .ssh a link, then setup",
            Owner,
            "mv ~/.ssh ~/.ssh.aside && ln -s /srv/victim ~/.ssh",
            "h=$(getent passwd left4me | cut -d: -f6); [ -L $h/.ssh ] && rm $h/.ssh && mv $h/.ssh.aside $h/.ssh || true",
            Setup,
        ),
        attack(
            "authorized_keys a link to a root-only file, then setup",
            Owner,
            "cp ~/.ssh/authorized_keys ~/.ssh/keys.aside && ln -sfn /srv/victim-file ~/.ssh/authorized_keys",
            "h=$(getent passwd left4me | cut -d: -f6); mv $h/.ssh/keys.aside $h/.ssh/authorized_keys",
            Setup,
        ),
        attack(
            "authorized_keys' temporary file a link to a root-only file, then setup",
            Owner,
            "cp ~/.ssh/authorized_keys ~/.ssh/keys.aside && ln -sfn /srv/victim-file ~/.ssh/.authorized_keys.tmp",
            "h=$(getent passwd left4me | cut -d: -f6); rm -f $h/.ssh/.authorized_keys.tmp; mv $h/.ssh/keys.aside $h/.ssh/authorized_keys",
            Setup,
        ),
        attack(
            "the install swapped for a link, then setup",
            Owner,
            "mv $L/installation $L/installation.aside && ln -s /srv/victim $L/installation",
            "[ -L $L/installation ] && rm $L/installation && mv $L/installation.aside $L/installation || true",
            Setup,
        ),
        attack(
            "runtime/ swapped for a link, then setup",
            Owner,
            "mv $L/runtime $L/runtime.aside && ln -s /srv/victim $L/runtime",
            "[ -L $L/runtime ] && rm $L/runtime && mv $L/runtime.aside $L/runtime || true",
            Setup,
        ),
        // Races: a folder and a link exchanged in a loop while root acts.
        attack(
            "merged/ and a link exchanged in a loop during starts and stops",
            Owner,
            "ln -s /srv/victim $L/runtime/$S/merged.link && \
             setsid -f perl -e \"$RACER\" $L/runtime/$S/merged $L/runtime/$S/merged.link 120 </dev/null >/dev/null 2>&1",
            "rm -f $L/runtime/$S/merged.link",
            Cycles(12),
        ),
        Attack {
            server: Some("victim"),
            ..attack(
                "runtime/ and a link to /srv exchanged in a loop during privileged deletes",
                Owner,
                "ln -s /srv $L/runtime.link && \
                 setsid -f perl -e \"$RACER\" $L/runtime $L/runtime.link 120 </dev/null >/dev/null 2>&1",
                "rm -f $L/runtime.link",
                PrivilegedDeletes(40),
            )
        },
        attack(
            "an overlay and a link exchanged in a loop during starts and stops",
            Owner,
            "ln -s /srv/victim $L/overlays/hostile.link && \
             setsid -f perl -e \"$RACER\" $L/overlays/hostile $L/overlays/hostile.link 120 </dev/null >/dev/null 2>&1",
            "rm -f $L/overlays/hostile.link",
            Cycles(12),
        ),
        attack(
            "the game's cfg/ and a link exchanged in a loop during starts and stops",
            Game,
            "ln -s /srv/victim left4dead2/cfg.link && \
             setsid -f perl -e \"$RACER\" $PWD/left4dead2/cfg $PWD/left4dead2/cfg.link 120 </dev/null >/dev/null 2>&1",
            "",
            Cycles(12),
        ),
        attack(
            "a folder of the game's and a link exchanged in a loop during deletes",
            Game,
            "rm -rf left4dead2/deep left4dead2/deep.link && mkdir -p left4dead2/deep/er && \
             ln -s /srv/victim left4dead2/deep.link && \
             setsid -f perl -e \"$RACER\" $PWD/left4dead2/deep $PWD/left4dead2/deep.link 120 </dev/null >/dev/null 2>&1",
            "",
            Deletes(6),
        ),
    ]
}

/// The state root, as the plants and undos see it.
const STATE: &str = "/var/lib/left4me";

fn prelude(server: &str) -> String {
    format!("set -e\nS={server}\nL={STATE}\nRACER='{RACER}'\n")
}

#[test]
#[ignore = "needs the test hosts: run `cargo xtask test`"]
fn hostile_accounts_cannot_make_root_act_for_them() {
    let _turn = take_turn();
    let hosts = prepared_hosts();
    let attacks = attacks();
    let results: Vec<(usize, Result<String, String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = hosts
            .iter()
            .enumerate()
            .map(|(h, host)| {
                let attacks = &attacks;
                scope.spawn(move || {
                    prepare(host);
                    let mut results = Vec::new();
                    for (i, attack) in attacks.iter().enumerate() {
                        if i % hosts.len() == h {
                            results.push((i, attempt(host, i, attack)));
                        }
                    }
                    finish(host);
                    results
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let mut report = String::new();
    let mut failed = 0;
    let mut sorted = results;
    sorted.sort_by_key(|(i, _)| *i);
    for (i, result) in &sorted {
        let name = attacks[*i].name;
        match result {
            Ok(how) => writeln!(report, "  held:     {name} ({how})").unwrap(),
            Err(why) => {
                failed += 1;
                writeln!(report, "  FAILED:   {name}: {why}").unwrap();
            }
        }
    }
    eprintln!("{} attacks, {failed} succeeded:\n{report}", sorted.len());
    assert_eq!(failed, 0, "attacks that worked:\n{report}");
}

/// Victims, and an overlay every attack's server layers.
fn prepare(host: &TestHost) {
    host.run_with_input(
        "left4me",
        &format!("{AGENT} overlay import hostile"),
        overlay_tar(),
    );
}

fn finish(host: &TestHost) {
    host.run(
        "root",
        &format!("{STOP_RACERS}; rm -rf /srv/* /etc/left4me-victim.env"),
    );
    let _ = host.ssh("left4me", &format!("{AGENT} overlay delete hostile"));
}

/// One attack on a fresh server; Ok says how it was held off, Err what it achieved.
fn attempt(host: &TestHost, index: usize, attack: &Attack) -> Result<String, String> {
    let server = attack
        .server
        .map_or_else(|| format!("hostile-{index}"), str::to_owned);
    let port = 27100 + index as u16;
    // Whatever an earlier run on these hosts left of this server goes first.
    cleanup(host, attack, &server);
    host.run("root", VICTIMS);
    let victims = host.run("root", SNAPSHOT);
    let baseline = mount_table(host);
    let result = (|| {
        let agent = |command: &str| host.ssh("left4me", &format!("{AGENT} {command}"));
        // A server that has run once: its upper layer, server.cfg and environment exist.
        expect_ok(&initialize(host, &server, port), "initialize")?;
        expect_ok(&agent(&format!("start {server}")), "the first start")?;
        expect_ok(&agent(&format!("stop {server}")), "the first stop")?;
        if attack.step == Step::Stop {
            expect_ok(
                &agent(&format!("start {server}")),
                "the start before the stop",
            )?;
        }
        if let Some(denied) = plant(host, attack, &server)? {
            return Ok(format!("could not plant it: {denied}"));
        }
        let cursor = host.run(
            "root",
            "journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p'",
        );
        let step = run_step(host, attack, &server, &victims, &baseline)?;
        check_victims(host, &victims)?;
        check_mounts(host)?;
        check_no_leak(host, &step, cursor.trim())?;
        if matches!(attack.step, Step::Stop | Step::Delete) {
            let after = mount_table(host);
            if after != baseline {
                return Err(format!(
                    "the mount table changed: {}",
                    diff(&baseline, &after)
                ));
            }
        }
        check_environment(host, &server)?;
        Ok(step.outcome)
    })();
    cleanup(host, attack, &server);
    let result = result.and_then(|how| {
        check_victims(host, &victims)?;
        Ok(how)
    });
    let after = mount_table(host);
    match result {
        Ok(_) if after != baseline => Err(format!(
            "mounts left behind after clean-up: {}",
            diff(&baseline, &after)
        )),
        other => other,
    }
}

/// Runs the attack's plant as its account; Some(why) when the account was refused.
fn plant(host: &TestHost, attack: &Attack, server: &str) -> Result<Option<String>, String> {
    let script = format!("{}{}\n", prelude(server), attack.plant);
    let upper = format!("{STATE}/runtime/{server}/upper");
    let out = match attack.by {
        By::Owner => host.ssh_with_input("left4me", "sh -s", script),
        By::Game => host.ssh_with_input(
            "root",
            &format!("cd {upper} && runuser -u left4me-game -- sh -s"),
            script,
        ),
        By::AsIfUnprotected => host.ssh_with_input("root", &format!("cd {upper} && sh -s"), script),
    };
    if out.status.success() {
        return Ok(None);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if stderr.contains("Permission denied") || stderr.contains("Operation not permitted") {
        Ok(Some(stderr.lines().next().unwrap_or_default().to_owned()))
    } else {
        Err(format!(
            "the trap could not be planted for another reason: {stderr}"
        ))
    }
}

/// What a root step printed, for the leak check, and how it ended.
struct StepRun {
    output: String,
    outcome: String,
}

fn run_step(
    host: &TestHost,
    attack: &Attack,
    server: &str,
    victims: &str,
    baseline: &str,
) -> Result<StepRun, String> {
    let agent = |command: &str| host.ssh("left4me", &format!("{AGENT} {command}"));
    let mut output = String::new();
    let mut outcomes = Vec::new();
    let mut record = |what: &str, out: std::process::Output| -> Result<(), String> {
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        outcomes.push(clear_outcome(what, &out)?);
        Ok(())
    };
    match attack.step {
        Step::Start => record("start", agent(&format!("start {server}")))?,
        Step::UnitStart => record(
            "systemctl start",
            host.ssh(
                "root",
                &format!("systemctl start left4me-server@{server}.service"),
            ),
        )?,
        Step::Stop => record("stop", agent(&format!("stop {server}")))?,
        Step::Delete => record("delete", agent(&format!("delete {server}")))?,
        Step::Setup => record(
            "setup",
            host.ssh(
                "admin",
                &format!("sudo {AGENT} setup --authorize-key '{HOSTILE_KEY}'"),
            ),
        )?,
        Step::Cycles(rounds) => {
            for _ in 0..rounds {
                record("start", agent(&format!("start {server}")))?;
                check_victims(host, victims)?;
                check_mounts(host)?;
                record("stop", agent(&format!("stop {server}")))?;
                check_victims(host, victims)?;
            }
        }
        Step::Deletes(rounds) => {
            for round in 0..rounds {
                if round > 0 {
                    expect_ok(&initialize(host, server, 27100), "initialize")?;
                    record("start", agent(&format!("start {server}")))?;
                    record("stop", agent(&format!("stop {server}")))?;
                    host.run("root", STOP_RACERS);
                    if let Some(denied) = plant(host, attack, server)? {
                        return Err(format!("the trap was planted once, then: {denied}"));
                    }
                }
                record("delete", agent(&format!("delete {server}")))?;
                check_victims(host, victims)?;
                let after = mount_table(host);
                if after != baseline {
                    return Err(format!(
                        "delete left mounts behind: {}",
                        diff(baseline, &after)
                    ));
                }
            }
        }
        Step::PrivilegedDeletes(rounds) => {
            for _ in 0..rounds {
                record(
                    "privileged delete",
                    host.ssh(
                        "left4me",
                        &format!("sudo -n {AGENT} privileged delete {server}"),
                    ),
                )?;
                check_victims(host, victims)?;
            }
        }
    }
    outcomes.dedup();
    Ok(StepRun {
        output,
        outcome: outcomes.join("; "),
    })
}

/// Success, or a failure that says what went wrong in one line; never a crash.
fn clear_outcome(what: &str, out: &std::process::Output) -> Result<String, String> {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() {
        return Ok(format!("{what} worked"));
    }
    let clear = !stderr.is_empty()
        && !stderr.contains("panicked")
        && (out.status.code().is_some_and(|c| (1..=4).contains(&c)));
    if clear {
        Ok(format!(
            "{what} refused: {}",
            stderr.lines().last().unwrap_or_default()
        ))
    } else {
        Err(format!("{what} ended unclearly ({}): {stderr}", out.status))
    }
}

fn initialize(host: &TestHost, server: &str, port: u16) -> std::process::Output {
    host.ssh_with_input(
        "left4me",
        &format!("{AGENT} initialize {server} -f - --rcon-password-stdin"),
        format!("{RCON_PASSWORD}\n{}", spec(port, "hostile", "c1m1_hotel")),
    )
}

fn expect_ok(out: &std::process::Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed before the attack: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn check_victims(host: &TestHost, before: &str) -> Result<(), String> {
    let now = host.run("root", SNAPSHOT);
    if now == before {
        Ok(())
    } else {
        Err(format!("a victim changed: {}", diff(before, &now)))
    }
}

/// No mount lands outside left4me's runtime tree, and every layer bound into it is an overlay
/// or the install.
fn check_mounts(host: &TestHost) -> Result<(), String> {
    let table = host.run("root", "cat /proc/self/mountinfo");
    for line in table.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (root, target) = (fields[3], fields[4]);
        if target.starts_with("/srv") || root.contains("/srv/") || root.ends_with("/srv") {
            return Err(format!("a mount reaches a victim: {line}"));
        }
        if target.starts_with(&format!("{STATE}/runtime/")) && target.contains("/idmap/") {
            let layer = [
                format!("{STATE}/overlays/"),
                format!("{STATE}/installation"),
            ]
            .iter()
            .any(|source| root.contains(source.as_str()));
            if !layer {
                return Err(format!("a layer is not an overlay or the install: {line}"));
            }
        }
    }
    Ok(())
}

/// The victims' contents reach nothing the attacker can read: not the step's output, not the
/// journal, not left4me's or the game's files.
fn check_no_leak(host: &TestHost, step: &StepRun, cursor: &str) -> Result<(), String> {
    for marker in MARKERS {
        if step.output.contains(marker) {
            return Err(format!(
                "the step's output shows a victim's contents: {}",
                step.output.trim()
            ));
        }
    }
    let pattern = MARKERS.join("\\|");
    let found = host.run(
        "root",
        &format!(
            "journalctl --no-pager -o cat --after-cursor='{cursor}' | grep -c '{pattern}' || true; \
             for f in $(grep -rl '{pattern}' {STATE} /etc/left4me 2>/dev/null); do \
                 [ \"$f\" -ef /srv/victim-file ] || echo \"$f\"; \
             done"
        ),
    );
    let mut lines = found.lines();
    let in_journal: usize = lines.next().unwrap_or("0").trim().parse().unwrap_or(0);
    let files: Vec<&str> = lines.collect();
    if in_journal > 0 || !files.is_empty() {
        return Err(format!(
            "a victim's contents leaked: {in_journal} journal lines, files {files:?}"
        ));
    }
    Ok(())
}

/// What systemd reads as root for the server's unit, if anything, is a file of root's in a
/// folder of root's, and the running game's environment holds nothing else of root's.
fn check_environment(host: &TestHost, server: &str) -> Result<(), String> {
    let env = host.run(
        "root",
        &format!(
            "stat -c '%U %F' /etc/left4me; \
             test -e /etc/left4me/{server}.env -o -L /etc/left4me/{server}.env && \
             stat -c '%U %F' /etc/left4me/{server}.env || true"
        ),
    );
    for line in env.lines() {
        if !line.starts_with("root ")
            || !(line.ends_with("directory") || line.ends_with("regular file"))
        {
            return Err(format!("the unit's environment is not root's alone: {env}"));
        }
    }
    let pid = host.run(
        "root",
        &format!("systemctl show -P MainPID left4me-server@{server}.service"),
    );
    let pid = pid.trim();
    if pid == "0" || pid.is_empty() {
        return Ok(());
    }
    let environ = host.run(
        "root",
        &format!("tr '\\0' '\\n' < /proc/{pid}/environ || true"),
    );
    if environ.contains("LEFT4ME_STOLEN") {
        return Err("the game's environment holds root's secret".to_owned());
    }
    Ok(())
}

/// Puts the host back: racers stopped, traps removed, the server gone, nothing mounted on
/// the victims.
fn cleanup(host: &TestHost, attack: &Attack, server: &str) {
    let undo = format!(
        "{}{STOP_RACERS}\nset +e\n{}\n\
         systemctl stop left4me-server@$S.service left4me-mount@$S.service 2>/dev/null\n\
         grep -o -e ' /srv[^ ]*' -e \" $L/runtime/$S.aside[^ ]*\" -e \" $L/runtime.aside[^ ]*\" /proc/self/mountinfo \
             | sort -r | xargs -r -n1 umount -l\n\
         rm -rf $L/runtime/$S.aside $L/runtime.aside\n\
         sed -i '/hostile-test/d' $(getent passwd left4me | cut -d: -f6)/.ssh/authorized_keys\n",
        prelude(server),
        attack.undo
    );
    host.run_with_input("root", "sh -s", undo);
    let _ = host.ssh("left4me", &format!("{AGENT} delete {server}"));
    // What a failed delete left: the server's own folders, never the victims.
    host.run(
        "root",
        &format!(
            "rm -rf {STATE}/runtime/{server} {STATE}/servers/{server}.* /etc/left4me/{server}.*; \
             rm -rf {STATE}/overlays/.hostile.*"
        ),
    );
    // An attack that worked may have cost the overlay itself.
    if !host
        .ssh(
            "left4me",
            &format!("test -d {STATE}/overlays/hostile -a ! -L {STATE}/overlays/hostile"),
        )
        .status
        .success()
    {
        host.run("root", &format!("rm -rf {STATE}/overlays/hostile"));
        prepare(host);
    }
}

/// The lines only one side has, a few of each.
fn diff(before: &str, after: &str) -> String {
    let only = |a: &str, b: &str| {
        let lines: Vec<String> = a
            .lines()
            .filter(|l| !b.lines().any(|m| m == *l))
            .map(str::to_owned)
            .collect();
        let more = lines.len().saturating_sub(4);
        let mut shown = lines.into_iter().take(4).collect::<Vec<_>>().join(" | ");
        if more > 0 {
            shown.push_str(&format!(" | and {more} more"));
        }
        shown
    };
    format!(
        "gone [{}], new [{}]",
        only(before, after),
        only(after, before)
    )
}
