//! The stand-in's Steam: the accounts it knows, the build it publishes, and the faults it
//! plays, read from `stand-in-steam.conf` at the root of the steamcmd tree. Tests write that
//! file to set the scene; faults with a count are used up one by one (the file is rewritten
//! with the count lowered).
//!
//! ```text
//! build 16075386                      # the public build (STAND_IN_STEAMCMD_BUILDID wins)
//! patch 2.2.4.4                       # its PatchVersion in steam.inf, which A2S tells
//!                                     # (STAND_IN_STEAMCMD_PATCH wins; default 2.2.4.3)
//! signatures moved                    # the build's server_srv.so moved the functions
//!                                     # SourceMod's gamedata finds by signature, as game
//!                                     # updates do (STAND_IN_STEAMCMD_SIGNATURES=moved)
//! account alice s3cret guard=email code=4H7KQ
//! account bob s3cret guard=mobile approve-after=1500
//! account carol s3cret guard=twofactor code=77777 owns=no
//! fail login rate-limit 1             # the next login is refused: Rate Limit Exceeded
//! fail login no-connection 1          # … cannot reach Steam
//! fail login user-info-timeout 1      # … times out waiting for user info
//! fail update 0x602 2                 # the next two app_updates end in state 0x602
//! fail update appinfo-timeout 1       # … time out waiting for the app info
//! disk-free 1000000                   # the bytes free where the game goes
//! trace-progress /tmp/trace           # append `<unix ns> <percent>` per progress line, as
//!                                     # it is printed (for benchmarks of what shows it)
//! download 1073741824 52428800        # the install downloads this many bytes at this many
//!                                     # a second, into the game's `pak01_*.vpk` files
//! ```
//!
//! Without the file Steam knows no accounts (only anonymous logins work) and publishes
//! [`DEFAULT_BUILD`].

use std::path::{Path, PathBuf};

pub const DEFAULT_BUILD: &str = "16075386";
/// The `PatchVersion` of the default build: L4D2's since 2024.
pub const DEFAULT_PATCH: &str = "2.2.4.3";
pub const CONF: &str = "stand-in-steam.conf";

/// How an account proves a new machine is its owner's.
#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    None,
    /// A code mailed to the owner, asked for at a `Steam Guard code:` prompt.
    Email {
        code: String,
    },
    /// A code from the owner's authenticator app, asked for at a `Two-factor code:` prompt.
    TwoFactor {
        code: String,
    },
    /// A confirmation in the Steam app on the owner's phone; `None` never comes, and steamcmd
    /// waits for it for ever.
    Mobile {
        approve_after_ms: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub name: String,
    pub password: String,
    pub guard: Guard,
    pub owns_game: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    RateLimit,
    NoConnection,
    UserInfoTimeout,
    State602,
    AppInfoTimeout,
}

impl Fault {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Fault::RateLimit => ("login", "rate-limit"),
            Fault::NoConnection => ("login", "no-connection"),
            Fault::UserInfoTimeout => ("login", "user-info-timeout"),
            Fault::State602 => ("update", "0x602"),
            Fault::AppInfoTimeout => ("update", "appinfo-timeout"),
        }
    }

    fn parse(kind: &str, name: &str) -> Option<Fault> {
        [
            Fault::RateLimit,
            Fault::NoConnection,
            Fault::UserInfoTimeout,
            Fault::State602,
            Fault::AppInfoTimeout,
        ]
        .into_iter()
        .find(|f| f.words() == (kind, name))
    }
}

pub struct Steam {
    path: PathBuf,
    lines: Vec<String>,
    pub build: String,
    /// The build's `PatchVersion`.
    pub patch: String,
    /// Whether the build breaks SourceMod's signatures.
    pub signatures_moved: bool,
    pub accounts: Vec<Account>,
    pub disk_free: Option<u64>,
    /// Where to note when each progress line was printed.
    pub trace_progress: Option<PathBuf>,
    /// The bytes an install downloads and written, at what rate (bytes a second).
    pub download: Option<Download>,
}

/// An install's download, written at a fixed rate (for benchmarks of what comes around it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Download {
    pub bytes: u64,
    pub rate: u64,
}

impl Steam {
    /// Reads the Steam of the steamcmd tree at `root`; a line it cannot read is a panic
    /// (a test wrote it wrong).
    pub fn of(root: &Path) -> Steam {
        let path = root.join(CONF);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut steam = Steam {
            path,
            lines: text.lines().map(str::to_owned).collect(),
            build: DEFAULT_BUILD.to_owned(),
            patch: DEFAULT_PATCH.to_owned(),
            signatures_moved: false,
            accounts: Vec::new(),
            disk_free: None,
            trace_progress: None,
            download: None,
        };
        for line in &steam.lines {
            match words(line).as_slice() {
                [] => {}
                ["fail", kind, name, count]
                    if Fault::parse(kind, name).is_some() && count.parse::<u32>().is_ok() => {}
                ["build", build] => steam.build = (*build).to_owned(),
                ["patch", patch] => steam.patch = (*patch).to_owned(),
                ["signatures", "moved"] => steam.signatures_moved = true,
                ["disk-free", bytes] => steam.disk_free = bytes.parse().ok(),
                ["trace-progress", path] => steam.trace_progress = Some(PathBuf::from(path)),
                ["download", bytes, rate] => {
                    steam.download = match (bytes.parse(), rate.parse()) {
                        (Ok(bytes), Ok(rate)) if rate > 0 => Some(Download { bytes, rate }),
                        _ => panic!("{}: cannot read {line:?}", CONF),
                    }
                }
                ["account", name, password, options @ ..] => {
                    steam.accounts.push(account(name, password, options, line))
                }
                _ => panic!("{}: cannot read {line:?}", CONF),
            }
        }
        if let Ok(build) = std::env::var("STAND_IN_STEAMCMD_BUILDID") {
            steam.build = build;
        }
        if let Ok(patch) = std::env::var("STAND_IN_STEAMCMD_PATCH") {
            steam.patch = patch;
        }
        if std::env::var("STAND_IN_STEAMCMD_SIGNATURES").as_deref() == Ok("moved") {
            steam.signatures_moved = true;
        }
        steam
    }

    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Whether `fault` is due now; if so, one of its count is used up.
    pub fn take(&mut self, fault: Fault) -> bool {
        let (kind, name) = fault.words();
        for line in &mut self.lines {
            let words = words(line);
            let ["fail", k, n, count] = words.as_slice() else {
                continue;
            };
            if Fault::parse(k, n) != Some(fault) {
                continue;
            }
            let count: u32 = count.parse().unwrap_or(0);
            if count == 0 {
                continue;
            }
            *line = format!("fail {kind} {name} {}", count - 1);
            let partial = self.path.with_extension("conf.partial");
            let text = self.lines.join("\n") + "\n";
            if std::fs::write(&partial, text).is_ok() {
                let _ = std::fs::rename(&partial, &self.path);
            }
            return true;
        }
        false
    }
}

/// A line's words, its `#` comment left out.
fn words(line: &str) -> Vec<&str> {
    line.split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

fn account(name: &str, password: &str, options: &[&str], line: &str) -> Account {
    let mut guard = "none";
    let mut code = String::new();
    let mut approve_after_ms = None;
    let mut owns_game = true;
    for option in options {
        match option.split_once('=') {
            Some(("guard", g)) => guard = g,
            Some(("code", c)) => code = c.to_owned(),
            Some(("approve-after", "never")) => approve_after_ms = None,
            Some(("approve-after", ms)) => approve_after_ms = ms.parse().ok(),
            Some(("owns", owns)) => owns_game = owns != "no",
            _ => panic!("{CONF}: unknown option {option:?} in {line:?}"),
        }
    }
    let guard = match guard {
        "none" => Guard::None,
        "email" => Guard::Email { code },
        "twofactor" => Guard::TwoFactor { code },
        "mobile" => Guard::Mobile { approve_after_ms },
        other => panic!("{CONF}: unknown guard {other:?} in {line:?}"),
    };
    Account {
        name: name.to_owned(),
        password: password.to_owned(),
        guard,
        owns_game,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_faults_are_read_and_faults_are_used_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONF),
            "build 42\naccount alice pw guard=email code=ABCDE\naccount bob pw guard=mobile approve-after=10 owns=no\nfail update 0x602 2 # twice\n",
        )
        .unwrap();
        let mut steam = Steam::of(dir.path());
        assert_eq!(steam.build, "42");
        assert_eq!(
            steam.account("alice").unwrap().guard,
            Guard::Email {
                code: "ABCDE".into()
            }
        );
        let bob = steam.account("bob").unwrap();
        assert_eq!(
            bob.guard,
            Guard::Mobile {
                approve_after_ms: Some(10)
            }
        );
        assert!(!bob.owns_game);
        assert!(!steam.take(Fault::RateLimit));
        assert!(steam.take(Fault::State602));
        let mut again = Steam::of(dir.path());
        assert!(again.take(Fault::State602));
        assert!(!Steam::of(dir.path()).take(Fault::State602));
    }
}
