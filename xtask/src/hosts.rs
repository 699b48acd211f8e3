//! Throwaway test hosts: Debian containers booted by systemd-nspawn with systemd as PID 1,
//! each in its own network namespace with an address on a bridge this harness creates, with
//! sshd and journald, and the capabilities overlayfs and idmapped mounts need.
//!
//! The root filesystem is built once with debootstrap and cached outside the clone
//! ([`cache_dir`]); each host boots from its own copy, so hosts come up in seconds. Nothing
//! of left4me is pre-installed: tests set hosts up as a user would.
//!
//! This machine's PID 1 is not systemd and its cgroups are hybrid, so the harness does what
//! systemd would: it gives each container its own cgroup in every hierarchy, and a tmpfs on
//! `/run/systemd/nspawn`. Its controllers (cpu, memory, pids) are bound to cgroup v1, so the
//! guests run cgroup v1 with writable controllers, and resource limits are enforced in them
//! ([`controllers_hierarchy`]). It never binds this machine's device nodes into a guest.

use crate::cmd::Cmd;
use crate::{Result, setup};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const SUITE: &str = "bookworm";
const INCLUDE: &str = "systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,sudo,iproute2,\
                       util-linux,procps,ca-certificates";
/// Bump when [`customize`] changes: the cached image is keyed on it.
const IMAGE_REVISION: u32 = 1;

/// Host names are `l4m-h<i>`; the same name is used for the netns, the machine and cgroups.
const NAME_PREFIX: &str = "l4m-h";
const BRIDGE: &str = "l4m-br0";
/// The harness's own /24: the bridge is `.1`, host `i` is `.(10 + i)`.
const SUBNET: &str = "10.213.77";
const CGROUP: &str = "left4me-testhosts";
/// The fleet benchmark boots 20.
const MAX_HOSTS: usize = 20;

/// The packages the harness needs on this machine.
const PACKAGES: &[&str] = &[
    "debootstrap",
    "systemd-container",
    "iproute2",
    "openssh-client",
    "zstd",
    // dpkg-scanpackages, for the hosts' package source.
    "dpkg-dev",
];

/// A running (or wanted) test host.
#[derive(Clone, Debug)]
pub struct Host {
    pub index: usize,
}

impl Host {
    pub fn name(&self) -> String {
        format!("{NAME_PREFIX}{}", self.index)
    }

    pub fn address(&self) -> String {
        format!("{SUBNET}.{}", 10 + self.index)
    }

    fn rootfs(&self) -> PathBuf {
        machines_dir().join(self.name())
    }

    /// The lock nspawn keeps beside the root folder while it runs it.
    fn lock_file(&self) -> PathBuf {
        machines_dir().join(format!(".#{}.lck", self.name()))
    }

    fn log(&self) -> PathBuf {
        state_dir().join(format!("{}.log", self.name()))
    }

    fn pid_file(&self) -> PathBuf {
        state_dir().join(format!("{}.pid", self.name()))
    }

    /// The PID of this host's systemd-nspawn, if it runs.
    fn nspawn_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_ours = args.first().is_some_and(|a| a.ends_with(b"systemd-nspawn"))
            && args
                .windows(2)
                .any(|w| w[0] == b"-M" && w[1] == self.name().as_bytes());
        is_ours.then_some(pid)
    }
}

/// `cargo xtask hosts …`
pub fn main(args: &[String]) -> Result {
    match args.first().map(String::as_str) {
        Some("up") => {
            let count = match args.get(1) {
                Some(n) => n
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_HOSTS).contains(n))
                    .ok_or_else(|| {
                        format!("host count {n:?}: give a number from 1 to {MAX_HOSTS}")
                    })?,
                None => 3,
            };
            up(count)?;
            print!("{}", describe(count));
            Ok(())
        }
        Some("down") => down(),
        Some("ssh") => {
            let index = args
                .get(1)
                .and_then(|i| i.parse().ok())
                .filter(|i| (1..=MAX_HOSTS).contains(i))
                .ok_or("usage: cargo xtask hosts ssh <index> [command…]")?;
            ssh(&Host { index }, &args[2..])
        }
        Some("image") => image().map(|path| println!("{}", path.display())),
        Some("desktop-image") => {
            crate::desktop::image().map(|path| println!("{}", path.display()))
        }
        _ => Err(
            "usage: cargo xtask hosts up [N] | down | ssh <index> [command…] | image | desktop-image"
                .into(),
        ),
    }
}

/// Boots hosts 1..=count that are not already running and waits until each answers ssh.
pub fn up(count: usize) -> Result {
    require_root()?;
    setup::ensure_packages(PACKAGES)?;
    let golden = golden_tree()?;
    std::fs::create_dir_all(state_dir())?;
    std::fs::create_dir_all(machines_dir())?;
    mount_nspawn_tmpfs()?;
    ensure_bridge()?;
    raise_inotify_limits(count)?;
    let hosts: Vec<Host> = (1..=count).map(|index| Host { index }).collect();
    let mut booting = Vec::new();
    for host in &hosts {
        if host.nspawn_pid().is_some() {
            eprintln!("{} is already up", host.name());
            continue;
        }
        // A host that died leaves its namespace, cgroups and root behind: clear them first.
        remove_host(host)?;
        boot(host, &golden)?;
        booting.push(host.clone());
    }
    for host in &booting {
        wait_for_ssh(host, Duration::from_secs(90))?;
        delegate_controllers(host)?;
    }
    write_inventory(count)?;
    Ok(())
}

/// The guests' root is this machine's root to the kernel, so every guest's systemd, journald
/// and `.path` units draw on root's one inotify allowance (128 instances by default): past a
/// few hosts a unit's start fails with "Job failed". Raised as container hosts do, never
/// lowered.
fn raise_inotify_limits(hosts: usize) -> Result {
    for (name, wanted) in [
        ("max_user_instances", 128 + 64 * hosts as u64),
        ("max_user_watches", 524_288),
    ] {
        let path = format!("/proc/sys/fs/inotify/{name}");
        let now: u64 = std::fs::read_to_string(&path)?.trim().parse()?;
        if now < wanted {
            std::fs::write(&path, wanted.to_string())
                .map_err(|e| format!("cannot raise fs.inotify.{name} to {wanted}: {e}"))?;
            eprintln!("fs.inotify.{name}: {now} -> {wanted}, for {hosts} test hosts");
        }
    }
    Ok(())
}

/// Stops every host and removes everything the harness made, then checks that nothing is
/// left: mounts, processes, links, namespaces, cgroups.
pub fn down() -> Result {
    require_root()?;
    let hosts = known_hosts();
    // Every guest halts at once (one may take its 20 s), then each is removed.
    for host in &hosts {
        if let Some(pid) = host.nspawn_pid() {
            signal(pid, "TERM");
        }
    }
    for host in hosts {
        remove_host(&host)?;
    }
    let _ = std::fs::remove_file(inventory_path());
    for root in cgroup_roots() {
        remove_cgroup_tree(&root.join(CGROUP));
    }
    if link_exists(BRIDGE) {
        Cmd::new("ip").args(["link", "del", BRIDGE]).run()?;
    }
    if is_mountpoint(Path::new("/run/systemd/nspawn")) {
        Cmd::new("umount").arg("/run/systemd/nspawn").run()?;
        let _ = std::fs::remove_dir("/run/systemd/nspawn");
    }
    // `ip netns add` bind-mounts /run/netns onto itself; drop it once no namespace is left.
    let netns_left = std::fs::read_dir("/run/netns").map_or(0, |d| d.count());
    if netns_left == 0 && is_mountpoint(Path::new("/run/netns")) {
        Cmd::new("umount").arg("/run/netns").run()?;
    }
    let leftovers = leftovers();
    if leftovers.is_empty() {
        eprintln!("hosts down: no mounts, processes, links, namespaces or cgroups left");
        Ok(())
    } else {
        Err(format!("hosts down left things behind:\n{}", leftovers.join("\n")).into())
    }
}

/// Runs `ssh root@host [command…]` with the harness's key, passing the exit status through.
pub fn ssh(host: &Host, command: &[String]) -> Result {
    let status = std::process::Command::new("ssh")
        .args(ssh_options())
        .arg(format!("root@{}", host.address()))
        .args(command)
        .status()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// Runs a shell script as root on `host` and returns its stdout; fails if it fails.
pub fn remote(host: &Host, script: &str) -> Result<String> {
    let out = std::process::Command::new("ssh")
        .args(ssh_options())
        .arg(format!("root@{}", host.address()))
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed on {}: {}",
            script.lines().next().unwrap_or(""),
            host.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Copies a file to `remote` on `host` as root.
pub fn scp(host: &Host, local: &Path, remote: &str) -> Result {
    let status = std::process::Command::new("scp")
        .arg("-q")
        .args(ssh_options())
        .arg(local)
        .arg(format!("root@{}:{remote}", host.address()))
        .status()
        .map_err(|e| format!("cannot run scp: {e}"))?;
    if !status.success() {
        return Err(format!("scp {} to {} failed", local.display(), host.name()).into());
    }
    Ok(())
}

fn ssh_options() -> Vec<String> {
    [
        "-i",
        &key_path().display().to_string(),
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
        "-o",
        "ConnectTimeout=2",
    ]
    .map(String::from)
    .to_vec()
}

// ---- image ----------------------------------------------------------------------------

/// Where the image, the golden tree and the harness's key are kept: outside the clone, so
/// CI and later runs reuse them. `LEFT4ME_CACHE` overrides it.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LEFT4ME_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("left4me")
}

pub fn hosts_cache() -> PathBuf {
    cache_dir().join("testhosts")
}

fn image_path() -> PathBuf {
    hosts_cache().join(format!("{SUITE}-r{IMAGE_REVISION}.tar.zst"))
}

/// Per-run state: PIDs, boot logs, the inventory. On /run, so a reboot forgets it.
fn state_dir() -> PathBuf {
    PathBuf::from("/run/left4me-testhosts")
}

/// The hosts' root filesystems: on disk, because overlayfs needs a real upper filesystem.
fn machines_dir() -> PathBuf {
    hosts_cache().join("machines")
}

/// The private key that logs in as root (and `admin`) on every host.
pub fn key_path() -> PathBuf {
    hosts_cache().join("id_ed25519")
}

/// Builds the cached root filesystem image unless it exists; returns its path.
pub fn image() -> Result<PathBuf> {
    debootstrap_image(&image_path(), "test host", INCLUDE, customize)
}

/// A Debian `SUITE` minbase root with `include`, changed by `customize`, cached as a
/// zstd tarball at `image` unless it is there already.
pub fn debootstrap_image(
    image: &Path,
    what: &str,
    include: &str,
    customize: fn(&Path) -> Result,
) -> Result<PathBuf> {
    if image.exists() {
        return Ok(image.to_path_buf());
    }
    require_root()?;
    setup::ensure_packages(PACKAGES)?;
    let cache = image.parent().expect("an image path has a folder");
    std::fs::create_dir_all(cache)?;
    let build = image.with_extension("build");
    remove_tree(&build)?;
    eprintln!("building the {what} image (debootstrap {SUITE}, a few minutes, once)");
    let log = image.with_extension("log");
    let log_file = std::fs::File::create(&log)?;
    let status = std::process::Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={include}"), SUITE])
        .arg(&build)
        .arg(mirror())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .status()?;
    if !status.success() {
        return Err(format!("debootstrap failed ({status}); see {}", log.display()).into());
    }
    customize(&build)?;
    drop_apt_downloads(&build)?;
    let partial = image.with_extension("partial");
    Cmd::new("sh")
        .arg("-c")
        .arg(
            "tar -C \"$1\" --numeric-owner --xattrs --xattrs-include='*' -cf - . \
             | zstd -q -T0 -3 -f -o \"$2\"",
        )
        .args(["sh"])
        .arg(&build)
        .arg(&partial)
        .run()?;
    std::fs::rename(&partial, image)?;
    remove_tree(&build)?;
    eprintln!("{what} image: {}", image.display());
    Ok(image.to_path_buf())
}

/// The Debian mirror debootstrap uses; `LEFT4ME_DEBIAN_MIRROR` overrides it.
pub fn mirror() -> String {
    std::env::var("LEFT4ME_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_owned())
}

/// What every host shares: an `admin` account with passwordless sudo (the "SSH account with
/// sudo" an admin gives left4me), key-only sshd, and no timers that would wake up mid-test.
fn customize(root: &Path) -> Result {
    let write = |path: &str, text: &str| write_file(&root.join(path), text);
    write("etc/machine-id", "")?;
    for entry in std::fs::read_dir(root.join("etc/ssh"))? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ssh_host_"))
        {
            std::fs::remove_file(path)?;
        }
    }
    write("etc/hostname", "localhost\n")?;
    add_sudo_account(root, "admin")?;
    write("etc/sudoers.d/admin", "admin ALL=(ALL) NOPASSWD:ALL\n")?;
    set_mode(&root.join("etc/sudoers.d/admin"), 0o440)?;
    write(
        "etc/ssh/sshd_config.d/test-host.conf",
        "PasswordAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\n",
    )?;
    // pam_env complains on every login without a locale.
    write("etc/default/locale", "LANG=C.UTF-8\n")?;
    for unit in [
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "e2scrub_all.timer",
        "e2scrub_reap.service",
        "fstrim.timer",
        "dpkg-db-backup.timer",
        "systemd-pstore.service",
    ] {
        let _ = Cmd::new("chroot")
            .arg(root)
            .args(["systemctl", "disable", unit])
            .read();
    }
    Ok(())
}

/// Drops the packages debootstrap downloaded and apt's lists: an image carries neither.
fn drop_apt_downloads(root: &Path) -> Result {
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in std::fs::read_dir(root.join(dir))? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(path)?;
            }
        }
    }
    Ok(())
}

/// The image unpacked once; every host starts as a copy of it.
fn golden_tree() -> Result<PathBuf> {
    let image = image()?;
    let golden = hosts_cache().join(format!("golden-r{IMAGE_REVISION}.{GOLDEN_REVISION}"));
    if golden.exists() {
        return Ok(golden);
    }
    let partial = hosts_cache().join("golden.partial");
    remove_tree(&partial)?;
    std::fs::create_dir_all(&partial)?;
    Cmd::new("sh")
        .arg("-c")
        .arg(
            "zstd -dc -T0 \"$1\" | tar -C \"$2\" --numeric-owner --xattrs --xattrs-include='*' -xf -",
        )
        .arg("sh")
        .arg(&image)
        .arg(&partial)
        .run()?;
    add_sysop(&partial)?;
    add_package_source(&partial)?;
    // Hosts run cgroup v1 where the machine's controllers are bound to it, and in a container
    // systemd then never hears that a cgroup emptied: a user manager's stop after the last
    // session waits out its timeout, and a new login of that user waits with it (sshd answers
    // nothing meanwhile). User managers are kept running instead.
    std::fs::create_dir_all(partial.join("etc/systemd/logind.conf.d"))?;
    write_file(
        &partial.join("etc/systemd/logind.conf.d/test-host.conf"),
        "[Login]\nUserStopDelaySec=infinity\n",
    )?;
    std::fs::rename(&partial, &golden)?;
    // Golden trees of earlier revisions are no longer used: hosts are copies, not overlays.
    for entry in std::fs::read_dir(hosts_cache())? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("golden-r") && path != golden {
            remove_tree(&path)?;
        }
    }
    Ok(golden)
}

/// Changes to the unpacked image that need no new image; bump to rebuild the golden tree.
const GOLDEN_REVISION: u32 = 5;

/// Where a host finds its package source: the harness's small apt repository.
const PACKAGE_SOURCE: &str = "var/local/left4me-test-apt";
/// What `l4d2-agent setup` installs for the 32-bit game; the repository holds these and
/// whatever they need that the image lacks.
const RUNTIME_PACKAGES: &[&str] = &["lib32gcc-s1", "lib32stdc++6"];

/// The hosts reach no Debian mirror. Their only package source is a flat apt repository of
/// the 32-bit runtime, in the host's own tree, so that `setup` installs it for real (apt,
/// dpkg, the i386 loader appearing) and a test can take the source away.
fn add_package_source(root: &Path) -> Result {
    let debs = runtime_debs(root)?;
    let repo = root.join(PACKAGE_SOURCE);
    std::fs::create_dir_all(&repo)?;
    for entry in std::fs::read_dir(&debs)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            std::fs::copy(&path, repo.join(path.file_name().unwrap()))?;
        }
    }
    let packages = Cmd::new("dpkg-scanpackages")
        .args(["--multiversion", "."])
        .current_dir(&repo)
        .read()
        .ok_or("dpkg-scanpackages failed on the test hosts' package source")?;
    write_file(&repo.join("Packages"), &packages)?;
    write_file(
        &root.join("etc/apt/sources.list"),
        &format!("deb [trusted=yes] file:/{PACKAGE_SOURCE} ./\n"),
    )
}

/// The .deb files of [`RUNTIME_PACKAGES`] as an image needs them, downloaded once (from the
/// mirror, resolved against the image's own package database) and kept in the cache.
fn runtime_debs(root: &Path) -> Result<PathBuf> {
    let debs = hosts_cache().join(format!("runtime-debs-r{IMAGE_REVISION}"));
    if debs.exists() {
        return Ok(debs);
    }
    let work = hosts_cache().join("runtime-debs.partial");
    remove_tree(&work)?;
    for dir in ["lists/partial", "archives/partial", "parts", "preferences"] {
        std::fs::create_dir_all(work.join(dir))?;
    }
    let keyring = root.join("usr/share/keyrings/debian-archive-keyring.gpg");
    write_file(
        &work.join("sources.list"),
        &format!(
            "deb [signed-by={}] {} {SUITE} main\n",
            keyring.display(),
            mirror()
        ),
    )?;
    let options: Vec<String> = [
        format!(
            "Dir::State::status={}",
            root.join("var/lib/dpkg/status").display()
        ),
        format!(
            "Dir::Etc::SourceList={}",
            work.join("sources.list").display()
        ),
        format!("Dir::Etc::SourceParts={}", work.join("parts").display()),
        format!(
            "Dir::Etc::PreferencesParts={}",
            work.join("preferences").display()
        ),
        format!("Dir::State::Lists={}", work.join("lists").display()),
        format!("Dir::Cache={}", work.display()),
        format!("Dir::Cache::Archives={}", work.join("archives").display()),
        "APT::Architecture=amd64".to_owned(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_owned(), o])
    .collect();
    eprintln!("downloading the 32-bit runtime for the test hosts' package source");
    Cmd::new("apt-get")
        .args(&options)
        .args(["-q", "update"])
        .run()?;
    Cmd::new("apt-get")
        .args(&options)
        .args([
            "-q",
            "-y",
            "--no-install-recommends",
            "--download-only",
            "install",
        ])
        .args(RUNTIME_PACKAGES)
        .run()?;
    std::fs::rename(work.join("archives"), &debs)?;
    remove_tree(&work)?;
    Ok(debs)
}

/// The account an admin without key set-up would give: `sysop`, whose sudo asks for its
/// password, and who logs in over SSH with that password (not `operator`: Debian has a
/// group of that name).
fn add_sysop(root: &Path) -> Result {
    add_sudo_account(root, "sysop")?;
    let mut chpasswd = std::process::Command::new("chroot")
        .arg(root)
        .arg("chpasswd")
        .stdin(Stdio::piped())
        .spawn()?;
    chpasswd
        .stdin
        .take()
        .expect("piped")
        .write_all(format!("sysop:{SYSOP_PASSWORD}\n").as_bytes())?;
    if !chpasswd.wait()?.success() {
        return Err("chpasswd for sysop failed".into());
    }
    write_file(
        &root.join("etc/ssh/sshd_config.d/zz-sysop.conf"),
        "Match User sysop\n    PasswordAuthentication yes\n",
    )
}

/// A login account in the `sudo` group (whose sudo asks for the password unless a rule
/// says otherwise).
fn add_sudo_account(root: &Path, name: &str) -> Result {
    Cmd::new("chroot")
        .arg(root)
        .args([
            "useradd",
            "--create-home",
            "--shell",
            "/bin/bash",
            "--groups",
            "sudo",
            name,
        ])
        .run()
}

/// The test hosts' `sysop` password; testkit knows it too. A test credential only.
const SYSOP_PASSWORD: &str = "sysop-test-password";

// ---- one host ---------------------------------------------------------------------------

fn boot(host: &Host, golden: &Path) -> Result {
    let name = host.name();
    let root = host.rootfs();
    Cmd::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(golden)
        .arg(&root)
        .run()?;
    give_identity(host, &root)?;

    // Network: our own namespace, a veth pair with eth0 inside, the outer end on our bridge.
    let outer = format!("{name}-v");
    Cmd::new("ip").args(["netns", "add", &name]).run()?;
    Cmd::new("ip")
        .args([
            "link", "add", &outer, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ])
        .run()?;
    Cmd::new("ip")
        .args(["link", "set", &outer, "master", BRIDGE, "up"])
        .run()?;
    let in_ns = |args: &[&str]| Cmd::new("ip").args(["-n", &name]).args(args).run();
    in_ns(&["link", "set", "lo", "up"])?;
    in_ns(&[
        "addr",
        "add",
        &format!("{}/24", host.address()),
        "dev",
        "eth0",
    ])?;
    in_ns(&["link", "set", "eth0", "up"])?;

    // Without a cgroup of its own in every hierarchy, each --keep-unit container started
    // from the root cgroup would use the same /payload cgroup and they would collide.
    let cgroups: Vec<PathBuf> = cgroup_roots()
        .iter()
        .map(|root| root.join(CGROUP).join(&name))
        .collect();
    for dir in &cgroups {
        std::fs::create_dir_all(dir)?;
        // A cgroup v1 cpuset takes no process until it is given CPUs and memory nodes.
        if dir.join("cpuset.cpus").exists() {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let mut up = dir.parent();
                let mut value = String::new();
                while let Some(parent) = up {
                    value = std::fs::read_to_string(parent.join(file)).unwrap_or_default();
                    if !value.trim().is_empty() {
                        break;
                    }
                    up = parent.parent();
                }
                for level in [dir.parent().unwrap(), dir.as_path()] {
                    if std::fs::read_to_string(level.join(file))
                        .unwrap_or_default()
                        .trim()
                        .is_empty()
                    {
                        std::fs::write(level.join(file), value.trim())?;
                    }
                }
            }
        }
    }
    let log = std::fs::File::create(host.log())?;
    // sh moves itself into the cgroups, then becomes systemd-nspawn; setsid detaches it from
    // this process so the host outlives `cargo xtask`.
    let mut script = String::new();
    for dir in &cgroups {
        let _ = write!(script, "echo $$ > '{}/cgroup.procs' && ", dir.display());
    }
    script.push_str("exec systemd-nspawn \"$@\"");
    let child = std::process::Command::new("setsid")
        .args(["sh", "-c", &script, "sh"])
        .args([
            "--quiet",
            "--boot",
            "--register=no",
            "--keep-unit",
            "--link-journal=no",
        ])
        .arg(format!("--directory={}", root.display()))
        .args(["-M", &name])
        .arg(format!("--network-namespace-path=/run/netns/{name}"))
        .arg("--console=read-only")
        .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", controllers_hierarchy())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{name}: cannot start systemd-nspawn: {e}"))?;
    std::fs::write(host.pid_file(), format!("{}\n", child.id()))?;
    eprintln!("{name}: booting at {}", host.address());
    Ok(())
}

/// Gives a fresh copy its own hostname, machine id, SSH host key and the harness's key.
fn give_identity(host: &Host, root: &Path) -> Result {
    let name = host.name();
    write_file(&root.join("etc/hostname"), &format!("{name}\n"))?;
    // debootstrap's minbase writes no /etc/hosts.
    let hosts = format!("127.0.0.1 localhost\n127.0.1.1 {name}\n::1 localhost ip6-localhost\n");
    write_file(&root.join("etc/hosts"), &hosts)?;
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")?;
    std::fs::write(
        root.join("etc/machine-id"),
        format!("{}\n", uuid.trim().replace('-', "")),
    )?;
    Cmd::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", &name, "-f"])
        .arg(root.join("etc/ssh/ssh_host_ed25519_key"))
        .run()?;
    let public_key = ensure_key()?.with_extension("pub");
    let public = std::fs::read_to_string(&public_key)
        .map_err(|e| format!("cannot read {}: {e}", public_key.display()))?;
    for (home, owner) in [("root", None), ("home/admin", Some("admin"))] {
        let ssh = root.join(home).join(".ssh");
        std::fs::create_dir_all(&ssh)?;
        set_mode(&ssh, 0o700)?;
        write_file(&ssh.join("authorized_keys"), &public)?;
        set_mode(&ssh.join("authorized_keys"), 0o600)?;
        if let Some(owner) = owner {
            Cmd::new("chroot")
                .arg(root)
                .args([
                    "chown",
                    "-R",
                    &format!("{owner}:{owner}"),
                    &format!("/{home}/.ssh"),
                ])
                .run()?;
        }
    }
    Ok(())
}

fn ensure_key() -> Result<PathBuf> {
    let key = key_path();
    if !key.exists() {
        std::fs::create_dir_all(hosts_cache())?;
        Cmd::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "left4me-testhosts",
                "-f",
            ])
            .arg(&key)
            .run()?;
    }
    Ok(key)
}

fn wait_for_ssh(host: &Host, timeout: Duration) -> Result {
    let started = Instant::now();
    loop {
        // The PID is setsid's, then sh's, then systemd-nspawn's: the same process throughout.
        let alive = std::fs::read_to_string(host.pid_file())
            .ok()
            .and_then(|pid| pid.trim().parse().ok())
            .is_some_and(process_alive);
        if !alive {
            return Err(boot_failure(host, "systemd-nspawn exited"));
        }
        let answered = std::process::Command::new("ssh")
            .args(ssh_options())
            .arg(format!("root@{}", host.address()))
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if answered {
            eprintln!(
                "{}: ssh ready after {:.1} s",
                host.name(),
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(boot_failure(host, "no ssh answer within 90 s"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An error naming the host, with the end of its boot log.
fn boot_failure(host: &Host, what: &str) -> Box<dyn std::error::Error> {
    let log = std::fs::read_to_string(host.log()).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "test host {} failed to boot: {what}\n--- {} (last lines) ---\n{}",
        host.name(),
        host.log().display(),
        tail.join("\n")
    )
    .into()
}

/// Stops a host (if it runs) and removes its namespace, cgroups, root copy and PID file.
fn remove_host(host: &Host) -> Result {
    let name = host.name();
    if let Some(pid) = host.nspawn_pid() {
        // SIGTERM makes nspawn send SIGRTMIN+3 to the guest: a clean systemd halt.
        signal(pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if process_alive(pid) {
            eprintln!("{name}: did not halt in 20 s, killing it");
            signal(pid, "KILL");
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!("{name}: stopped");
    }
    // A guest whose nspawn died (killed, crashed) keeps running as an orphan: its cgroup
    // still holds it.
    kill_cgroup(&name);
    for root in cgroup_roots() {
        remove_cgroup_tree(&root.join(CGROUP).join(&name));
    }
    if Path::new("/run/netns").join(&name).exists() {
        // Deleting the namespace also destroys the veth pair.
        Cmd::new("ip").args(["netns", "del", &name]).run()?;
    }
    // The kernel removes the outer end of the veth pair shortly after the namespace; delete
    // it ourselves only if it stays (its namespace was gone already).
    let outer = format!("{name}-v");
    let deadline = Instant::now() + Duration::from_secs(3);
    while link_exists(&outer) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if link_exists(&outer) {
        Cmd::new("ip").args(["link", "del", &outer]).run()?;
    }
    remove_tree(&host.rootfs())?;
    // nspawn removes its lock on the root folder as it exits; one killed (a guest that
    // would not halt) leaves it behind.
    let lock = host.lock_file();
    match std::fs::remove_file(&lock) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {}: {e}", lock.display()).into()),
    }
    let _ = std::fs::remove_file(host.pid_file());
    Ok(())
}

fn signal(pid: u32, signal: &str) {
    let _ = Cmd::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .read();
}

/// Whether `pid` exists and is not a zombie. (Its cmdline is no test: it reads empty while
/// the process is in the middle of an exec.)
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

// ---- the machine's side ---------------------------------------------------------------

/// The hosts this harness knows of: those with a PID file, a root copy, a namespace or a
/// cgroup.
fn known_hosts() -> Vec<Host> {
    (1..=MAX_HOSTS)
        .map(|index| Host { index })
        .filter(|h| {
            h.pid_file().exists()
                || h.rootfs().exists()
                || h.lock_file().exists()
                || Path::new("/run/netns").join(h.name()).exists()
                || cgroup_roots()
                    .iter()
                    .any(|root| root.join(CGROUP).join(h.name()).exists())
        })
        .collect()
}

fn require_root() -> Result {
    if setup::is_root() {
        Ok(())
    } else {
        Err("test hosts need root (network namespaces, cgroups, systemd-nspawn)".into())
    }
}

/// nspawn keeps state in /run/systemd/nspawn and cannot clean it up unless it is a tmpfs.
fn mount_nspawn_tmpfs() -> Result {
    let dir = Path::new("/run/systemd/nspawn");
    std::fs::create_dir_all(dir)?;
    if !is_mountpoint(dir) {
        Cmd::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=755", "left4me-nspawn"])
            .arg(dir)
            .run()?;
    }
    Ok(())
}

fn ensure_bridge() -> Result {
    if link_exists(BRIDGE) {
        return Ok(());
    }
    // Refuse to shadow a network this machine already uses.
    let addresses = Cmd::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .read()
        .unwrap_or_default();
    if addresses.contains(&format!(" {SUBNET}.")) {
        return Err(format!(
            "{SUBNET}.0/24 is already in use on this machine; the test hosts need it for themselves"
        )
        .into());
    }
    Cmd::new("ip")
        .args(["link", "add", BRIDGE, "type", "bridge"])
        .run()?;
    Cmd::new("ip")
        .args(["addr", "add", &format!("{SUBNET}.1/24"), "dev", BRIDGE])
        .run()?;
    Cmd::new("ip").args(["link", "set", BRIDGE, "up"]).run()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// This machine's cgroup controllers (cpu, memory, pids) are bound to cgroup v1 hierarchies
/// that cannot be given up (the machine's own services live in them), so its unified
/// hierarchy has none of them. A guest given the unified hierarchy could set limits on its
/// units that nothing enforces. On such a machine the guests get the v1 hierarchies instead
/// (each in a cgroup of its own, see `cgroup_roots`), as systemd 252 still runs them, and
/// their limits are real: `MemoryMax=` is `memory.limit_in_bytes`, `CPUWeight=` `cpu.shares`.
fn controllers_hierarchy() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "1"
    } else {
        "0"
    }
}

/// nspawn mounts a guest's v1 controller hierarchies read-only, so its systemd cannot make
/// cgroups in them. As root in the guest, the harness makes its own subtree's mounts
/// writable and has systemd look again (what systemd would do for a delegated container).
fn delegate_controllers(host: &Host) -> Result {
    if controllers_hierarchy() == "1" {
        return Ok(());
    }
    let script = "set -e; for c in cpu cpuacct cpuset memory pids blkio; do \
         if mountpoint -q /sys/fs/cgroup/$c; then mount -o remount,bind,rw /sys/fs/cgroup/$c; fi; \
         done; systemctl daemon-reexec; systemctl is-system-running --wait >/dev/null || true";
    let done = std::process::Command::new("ssh")
        .args(ssh_options())
        .arg(format!("root@{}", host.address()))
        .arg(script)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("{}: cannot run ssh: {e}", host.name()))?;
    if !done.success() {
        return Err(format!(
            "{}: cannot give its systemd the cgroup controllers",
            host.name()
        )
        .into());
    }
    Ok(())
}

/// The cgroup hierarchies nspawn's --keep-unit uses: the unified one, or on a hybrid machine
/// the named systemd hierarchy, the unified one and the controllers' (see
/// `controllers_hierarchy`).
fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    [
        "systemd", "unified", "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices",
        "freezer",
    ]
    .iter()
    .map(|h| base.join(h))
    .filter(|p| p.exists())
    .collect()
}

/// Kills every process left in a host's cgroups and waits until they are gone.
fn kill_cgroup(name: &str) {
    let dirs: Vec<PathBuf> = cgroup_roots()
        .iter()
        .map(|root| root.join(CGROUP).join(name))
        .collect();
    let pids = || -> Vec<u32> { dirs.iter().flat_map(|d| cgroup_pids(d)).collect() };
    if pids().is_empty() {
        return;
    }
    eprintln!("{name}: killing the processes its guest left behind");
    for dir in &dirs {
        // cgroup.kill (cgroup v2, Linux 5.14) kills the whole subtree at once.
        if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
            for pid in cgroup_pids(dir) {
                signal(pid, "KILL");
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The processes in a cgroup and the cgroups below it.
fn cgroup_pids(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(cgroup_pids(&entry.path()));
            }
        }
    }
    pids
}

/// Removes a cgroup and the cgroups the guest made below it, deepest first.
fn remove_cgroup_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn is_mountpoint(path: &Path) -> bool {
    mount_points().iter().any(|m| m == path)
}

/// Mount points from /proc/self/mountinfo (field 5, with octal escapes undone).
fn mount_points() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .collect()
}

fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Everything of the harness still present: what `down` must leave empty.
fn leftovers() -> Vec<String> {
    let mut found = Vec::new();
    let cache = hosts_cache();
    for mount in mount_points() {
        let text = mount.display().to_string();
        if mount.starts_with(&cache)
            || text.starts_with(&format!("/run/netns/{NAME_PREFIX}"))
            || mount == Path::new("/run/systemd/nspawn")
        {
            found.push(format!("mount: {text}"));
        }
    }
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for entry in procs.flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("systemd-nspawn") && cmdline.contains(NAME_PREFIX) {
                found.push(format!(
                    "process {}: {}",
                    entry.file_name().to_string_lossy(),
                    cmdline.trim()
                ));
            }
        }
    }
    if let Ok(links) = std::fs::read_dir("/sys/class/net") {
        for link in links.flatten() {
            let name = link.file_name().to_string_lossy().into_owned();
            if name.starts_with(NAME_PREFIX) || name == BRIDGE {
                found.push(format!("link: {name}"));
            }
        }
    }
    if let Ok(namespaces) = std::fs::read_dir("/run/netns") {
        for ns in namespaces.flatten() {
            let name = ns.file_name().to_string_lossy().into_owned();
            if name.starts_with(NAME_PREFIX) {
                found.push(format!("network namespace: {name}"));
            }
        }
    }
    for root in cgroup_roots() {
        let dir = root.join(CGROUP);
        for pid in cgroup_pids(&dir) {
            found.push(format!("process {pid} in {}", dir.display()));
        }
        if dir.exists() {
            found.push(format!("cgroup: {}", dir.display()));
        }
    }
    if let Ok(machines) = std::fs::read_dir(machines_dir()) {
        for machine in machines.flatten() {
            found.push(format!("root filesystem: {}", machine.path().display()));
        }
    }
    found
}

// ---- inventory ----------------------------------------------------------------------

/// A file tests read to find the hosts: one `index name address` line per host, and the key.
pub fn inventory_path() -> PathBuf {
    state_dir().join("inventory")
}

fn write_inventory(count: usize) -> Result {
    std::fs::write(inventory_path(), describe(count))?;
    Ok(())
}

fn describe(count: usize) -> String {
    let mut text = format!("key {}\n", key_path().display());
    for index in 1..=count {
        let host = Host { index };
        let _ = writeln!(text, "host {} {} {}", index, host.name(), host.address());
    }
    text
}

// ---- small file helpers -------------------------------------------------------------------

pub fn write_file(path: &Path, text: &str) -> Result {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

fn remove_tree(path: &Path) -> Result {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()).into())
        }
        _ => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn hosts_stay_inside_the_harness_subnet() {
        for index in 1..=MAX_HOSTS {
            let host = Host { index };
            assert!(host.address().starts_with(&format!("{SUBNET}.")));
            // Interface names are limited to 15 bytes.
            assert!(format!("{}-v", host.name()).len() <= 15);
        }
    }
}
