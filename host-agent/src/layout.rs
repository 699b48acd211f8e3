//! Where things live on a host. Every path the agent touches derives from the state root
//! (`--root`, default `/var/lib/left4me`) or from the fixed deploy paths, and names are
//! validated types, so no path here can escape its folder.
//!
//! Who owns what is the host's privilege model (deploy/README.md has the table): the state
//! root, `runtime/` and each server's folders in it, and `/etc/left4me` belong to root;
//! `home/`, `installation/`, `overlays/` and `servers/` to the owner (`left4me`); a server's
//! `upper/` to the game account. Root acts only inside its own folders.

use left4me_protocol::{OverlayName, ServerName};
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/left4me";

/// The folder under `idmap/` that presents the base install; `_` cannot start an overlay
/// name, so it never collides with one.
pub const INSTALLATION_IDMAP: &str = "_installation";

/// The lock file's name in a server's runtime folder.
pub const LOCK: &str = ".lock";

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    etc: PathBuf,
}

impl Layout {
    /// The layout under `root`. The default root keeps environment files in `/etc/left4me`;
    /// any other root keeps them in `<root>/etc`, so tests touch nothing outside their root.
    pub fn new(root: &Path) -> Self {
        let etc = if root == Path::new(DEFAULT_ROOT) {
            PathBuf::from("/etc/left4me")
        } else {
            root.join("etc")
        };
        Self {
            root: root.to_path_buf(),
            etc,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The owner account's home: its SSH keys, steamcmd's login cache.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// The base install servers mount from their next start: `installs/<n>` when an
    /// update was built beside a mounted install (`installs/current` names it), else
    /// `installation/`, where the first install goes.
    pub fn installation(&self) -> PathBuf {
        match current_install(&self.installs()) {
            Some(n) => self.installs().join(n.to_string()),
            None => self.first_installation(),
        }
    }

    /// The base install `server` mounts at its next start: the one an open rollout keeps
    /// it on (the build it ran until its turn, the new one after), else [`Self::installation`].
    pub fn installation_for(&self, server: &ServerName) -> PathBuf {
        match read_rollout(&self.installs()).and_then(|r| r.install_for(server.as_str())) {
            Some(n) => self.install(n),
            None => self.installation(),
        }
    }

    /// The folder of install `n`: 0 is the first install's, `n` is `installs/<n>`.
    pub fn install(&self, n: u32) -> PathBuf {
        match n {
            0 => self.first_installation(),
            n => self.installs().join(n.to_string()),
        }
    }

    /// `installation/`: the first install's folder.
    pub fn first_installation(&self) -> PathBuf {
        self.root.join("installation")
    }

    /// The owner's folder for installs built beside a mounted one: `next` while it is
    /// built, then `<n>`; the `current` file names the one new mounts use.
    pub fn installs(&self) -> PathBuf {
        self.root.join("installs")
    }

    pub fn overlays(&self) -> PathBuf {
        self.root.join("overlays")
    }

    pub fn overlay(&self, name: &OverlayName) -> PathBuf {
        self.overlays().join(name.as_str())
    }

    pub fn runtimes(&self) -> PathBuf {
        self.root.join("runtime")
    }

    pub fn server(&self, name: &ServerName) -> ServerPaths {
        ServerPaths {
            dir: self.runtimes().join(name.as_str()),
        }
    }

    /// What the owner declares about its servers: each one's spec and RCON password.
    pub fn servers(&self) -> PathBuf {
        self.root.join("servers")
    }

    /// The server's instance spec, written by `initialize`.
    pub fn spec_file(&self, name: &ServerName) -> PathBuf {
        self.servers().join(spec_file_name(name))
    }

    /// The server's RCON password: mode 0600, owned by `left4me`, never in the spec.
    pub fn rcon_file(&self, name: &ServerName) -> PathBuf {
        self.servers().join(rcon_file_name(name))
    }

    /// The file the owner's operations on a server (`initialize`, forgetting it) `flock`.
    pub fn declaration_lock(&self, name: &ServerName) -> PathBuf {
        self.servers().join(format!(".{name}.lock"))
    }

    /// The owner's backups of servers: `backups/<server>/<id>.tar.gz`.
    pub fn backups(&self) -> PathBuf {
        self.root.join("backups")
    }

    /// The owner's automation folder: the event outbox, the notification targets and the
    /// messages waiting to be sent.
    pub fn automation(&self) -> PathBuf {
        self.root.join("automation")
    }

    /// Notifications waiting to be sent, one file each; the notifier's path unit watches it.
    pub fn outgoing(&self) -> PathBuf {
        self.automation().join("outgoing")
    }

    /// The environment file the server's unit reads: root's, written at each mount.
    pub fn env_file(&self, name: &ServerName) -> PathBuf {
        self.etc.join(env_file_name(name))
    }

    pub fn etc(&self) -> &Path {
        &self.etc
    }
}

/// The file in `installs/` that names the install new mounts use.
pub const CURRENT_INSTALL: &str = "current";
/// The file in `installs/` that holds the host's game update rollout.
pub const ROLLOUT: &str = "rollout.json";

/// The rollout `installs/rollout.json` holds (root reads it to mount); one that cannot be
/// read counts as none.
pub fn read_rollout(installs: &Path) -> Option<left4me_protocol::rollout::Rollout> {
    serde_json::from_slice(&read_owners_file(&installs.join(ROLLOUT), 1 << 20)?).ok()
}

/// At most `limit` bytes of a plain file of the owner's, read as root may: without following
/// a link, and without blocking on a FIFO put in its place.
fn read_owners_file(path: &Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The number `installs/current` holds. It is the owner's file, read without following a
/// link (root reads it to mount), and only a plain number is taken.
pub fn current_install(installs: &Path) -> Option<u32> {
    let text = read_owners_file(&installs.join(CURRENT_INSTALL), 16)?;
    let n: u32 = std::str::from_utf8(&text).ok()?.trim().parse().ok()?;
    (n > 0).then_some(n)
}

/// The spec's file name in `servers/`.
pub fn spec_file_name(name: &ServerName) -> String {
    format!("{name}.yaml")
}

/// The RCON password's file name in `servers/`.
pub fn rcon_file_name(name: &ServerName) -> String {
    format!("{name}.rcon")
}

/// The unit's environment file name in the environment folder.
pub fn env_file_name(name: &ServerName) -> String {
    format!("{name}.env")
}

/// `runtime/<name>/` and what is inside it: root's, but for `upper/`, which is the game's.
#[derive(Debug, Clone)]
pub struct ServerPaths {
    dir: PathBuf,
}

impl ServerPaths {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    pub fn idmap_dir(&self) -> PathBuf {
        self.dir.join("idmap")
    }

    pub fn idmap(&self, overlay: &OverlayName) -> PathBuf {
        self.idmap_dir().join(overlay.as_str())
    }

    pub fn idmap_installation(&self) -> PathBuf {
        self.idmap_dir().join(INSTALLATION_IDMAP)
    }

    /// The file root `flock`s while it mounts, unmounts or removes this server.
    pub fn lock(&self) -> PathBuf {
        self.dir.join(LOCK)
    }
}
