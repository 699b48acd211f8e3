//! The `.deb` as a user gets it: installed with apt-get into a clean Debian 12 root (not
//! this machine), which fetches the app's dependencies from the Debian mirror; the installed
//! app started there through WebDriver, its first admin created, and a test host set up
//! with the agent that came inside the package.
//!
//! The root runs no init: WebKitWebDriver and the app run chrooted in a mount namespace of
//! their own, which holds `/proc`, `/dev`, `/sys`, the X socket and the test's private
//! Secret Service bus, and vanishes with them. `cargo xtask test` builds the package
//! (`LEFT4ME_DEB`) and the root's image (`LEFT4ME_DESKTOP_IMAGE`).

use crate::flow::{add_host_and_trust_its_key, first_run, set_up};
use crate::support::{Driver, Xvfb, close, screenshot};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Mounts what a program in the root needs, then runs `$3…` chrooted. `$1` is the root,
/// `$2` a folder of this machine to show at the same path inside (or empty).
const ENTER_ROOT: &str = r#"set -e
root=$1; share=$2; shift 2
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mkdir -p "$root/tmp/.X11-unix"
mount --bind /tmp/.X11-unix "$root/tmp/.X11-unix"
if [ -n "$share" ]; then mkdir -p "$root$share"; mount --bind "$share" "$root$share"; fi
unset LEFT4ME_DATA_DIR LEFT4ME_AGENT XDG_RUNTIME_DIR
exec chroot "$root" "$@"
"#;

/// A clean Debian 12 root unpacked from the desktop image; removed on drop.
struct DebianRoot {
    dir: tempfile::TempDir,
}

impl DebianRoot {
    fn unpack(image: &Path) -> DebianRoot {
        // On disk beside the image, not in a small /tmp: WebKitGTK and its friends take
        // hundreds of megabytes.
        let dir = tempfile::Builder::new()
            .prefix("desktop-root-")
            .tempdir_in(image.parent().unwrap())
            .unwrap();
        let root = DebianRoot { dir };
        std::fs::create_dir(root.path()).unwrap();
        run(Command::new("tar")
            .args(["--numeric-owner", "-I", "zstd", "-xf"])
            .arg(image)
            .arg("-C")
            .arg(root.path()));
        root
    }

    /// The root itself; its folder also holds the WebDriver wrapper.
    fn path(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Runs `script` with sh inside the root, with this machine's name servers (apt needs
    /// the mirror) and apt's downloads kept in `archives` across runs.
    fn shell(&self, script: &str, archives: &Path) {
        std::fs::copy("/etc/resolv.conf", self.path().join("etc/resolv.conf")).unwrap();
        std::fs::create_dir_all(archives.join("partial")).unwrap();
        let inside = self.path().join("var/cache/apt/archives");
        let bind = format!(
            "mount --bind '{}' '{}' && {ENTER_ROOT}",
            archives.display(),
            inside.display()
        );
        run(Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &bind,
                "sh",
            ])
            .arg(self.path())
            .arg("")
            .args(["sh", "-c", script])
            .env("DEBIAN_FRONTEND", "noninteractive"));
    }

    /// A WebKitWebDriver for tauri-driver: the root's own, chrooted, so it and the app it
    /// starts are the root's WebKitGTK; `bus` is the folder of the Secret Service's socket.
    fn webdriver(&self, bus: &Path) -> PathBuf {
        let script = self.dir.path().join("webdriver-in-root.sh");
        let text = format!(
            "#!/bin/sh\nexec unshare --mount --propagation private sh -c '{}' sh '{}' '{}' \
             /usr/bin/WebKitWebDriver \"$@\"\n",
            ENTER_ROOT.replace('\'', r#"'\''"#),
            self.path().display(),
            bus.display()
        );
        std::fs::write(&script, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root, the package, the desktop image, the test hosts and the window tools: run `cargo xtask test`"]
async fn the_deb_installs_on_a_clean_debian_and_sets_up_a_host() {
    let deb = PathBuf::from(std::env::var_os("LEFT4ME_DEB").expect("LEFT4ME_DEB"));
    let image =
        PathBuf::from(std::env::var_os("LEFT4ME_DESKTOP_IMAGE").expect("LEFT4ME_DESKTOP_IMAGE"));
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").expect("the test's Secret Service");
    let bus_dir = Path::new(bus.strip_prefix("unix:path=").expect("a bus socket path"))
        .parent()
        .unwrap()
        .to_path_buf();
    // The flow test takes the first host; this one takes the last.
    let host = testkit::hosts().pop().expect("a test host");
    host.run(
        "root",
        "systemctl stop 'left4me-server@*' 'left4me-mount@*' 2>/dev/null; \
         rm -rf /var/lib/left4me /opt/left4me /etc/left4me",
    );

    let root = DebianRoot::unpack(&image);
    let archives = image.with_file_name("desktop-apt-archives");
    std::fs::copy(&deb, root.path().join("tmp/left4me.deb")).unwrap();
    // The package alone, as a user installs it: apt finds every library it needs.
    root.shell(
        "apt-get update -qq && apt-get install -y -qq /tmp/left4me.deb >/dev/null",
        &archives,
    );
    let missing = run(Command::new("chroot").arg(root.path()).args([
        "sh",
        "-c",
        "ldd /usr/bin/left4me | grep 'not found' || true",
    ]));
    assert_eq!(missing, "", "libraries the package's dependencies left out");
    let packaged_agent = root.path().join("usr/lib/left4me/l4d2-agent-x86_64");
    assert!(packaged_agent.is_file(), "the agent is in the package");
    // Then the test's own tool, which a user does not need.
    root.shell(
        "apt-get install -y -qq --no-install-recommends webkit2gtk-driver >/dev/null",
        &archives,
    );

    let xvfb = Xvfb::start();
    let scratch = tempfile::tempdir().unwrap();
    let driver = Driver::start_with(
        &xvfb.display,
        scratch.path(),
        &[],
        Some(&root.webdriver(&bus_dir)),
    );
    let client = driver.session(Path::new("/usr/bin/left4me")).await;
    first_run(&client).await;
    // The installed app keeps its data in the user's data folder of the root.
    assert!(
        root.path()
            .join("root/.local/share/left4me/left4me.db")
            .is_file(),
        "the database is in ~/.local/share/left4me"
    );
    add_host_and_trust_its_key(&client, &host).await;
    set_up(&client, &host).await;
    screenshot(&client, "package-host-ready.png").await;
    let on_host = host.run("root", "sha256sum /opt/left4me/l4d2-agent");
    assert_eq!(
        on_host.split_whitespace().next(),
        Some(sha256(&packaged_agent).as_str()),
        "the host runs the agent from the package"
    );
    close(client).await;
    drop(driver);
    drop(xvfb);
}
