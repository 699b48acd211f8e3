//! Where things live on a host. Every path the agent touches derives from the state root
//! (`--root`, default `/var/lib/left4me`) or from the fixed deploy paths, and names are
//! validated types, so no path here can escape its folder.

use left4me_protocol::{OverlayName, ServerName};
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/left4me";

/// The folder under `idmap/` that presents the base install; `_` cannot start an overlay
/// name, so it never collides with one.
pub const INSTALLATION_IDMAP: &str = "_installation";

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

    pub fn installation(&self) -> PathBuf {
        self.root.join("installation")
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

    /// The environment file the server's unit reads.
    pub fn env_file(&self, name: &ServerName) -> PathBuf {
        self.etc.join(format!("{name}.env"))
    }

    /// The server's RCON password: mode 0600, owned by `left4me`, never in the spec.
    pub fn rcon_file(&self, name: &ServerName) -> PathBuf {
        self.etc.join(format!("{name}.rcon"))
    }

    pub fn etc(&self) -> &Path {
        &self.etc
    }
}

/// `runtime/<name>/` and what is inside it.
#[derive(Debug, Clone)]
pub struct ServerPaths {
    dir: PathBuf,
}

impl ServerPaths {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn spec(&self) -> PathBuf {
        self.dir.join("spec.yaml")
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

    /// The file `flock`ed while an operation runs on this server.
    pub fn lock(&self) -> PathBuf {
        self.dir.join(".lock")
    }
}
