//! The two accounts of a host: the owner of installs and overlays (`left4me`, also the
//! app's login) and the unprivileged account that runs the game. Read from /etc/passwd
//! directly: a static binary has no NSS.

use crate::error::AgentError;
use std::path::Path;

pub const OWNER: &str = "left4me";
pub const GAME: &str = "left4me-game";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Looks `name` up in a passwd file.
pub fn lookup_in(passwd: &str, name: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && fields[0] == name).then(|| {
            Some(Account {
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
            })
        })?
    })
}

pub fn lookup(name: &str) -> Result<Account, AgentError> {
    let path = Path::new("/etc/passwd");
    let passwd = std::fs::read_to_string(path).map_err(crate::error::io_context("read", path))?;
    lookup_in(&passwd, name).ok_or_else(|| {
        AgentError::failed(
            format!("account {name:?} does not exist"),
            "run `l4d2-agent setup` on this host first",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_accounts_by_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nleft4me:x:998:997::/var/lib/left4me:/bin/bash\nleft4me-game:x:997:996::/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(
            lookup_in(passwd, "left4me"),
            Some(Account { uid: 998, gid: 997 })
        );
        assert_eq!(
            lookup_in(passwd, "left4me-game"),
            Some(Account { uid: 997, gid: 996 })
        );
        assert_eq!(lookup_in(passwd, "left4"), None);
    }
}
