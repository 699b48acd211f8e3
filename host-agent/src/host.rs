//! The host a command acts on: its layout, its mount syscalls and its accounts. Shared by
//! every command, so it imports nothing but leaves (`layout`, `accounts`, `dir`, `sys`).

use crate::accounts::{self, Account};
use crate::dir::Dir;
use crate::error::AgentError;
use crate::layout::Layout;
use crate::mountinfo::Mount;
use crate::sys::Mounter;
use std::path::Path;

/// What the server and overlay operations need from the host.
pub struct Host<'a> {
    pub layout: Layout,
    pub sys: &'a dyn Mounter,
    /// The accounts' names; looked up only by the operations that need them.
    pub owner_account: String,
    pub game_account: String,
}

impl Host<'static> {
    /// The real host: its layout under `root`, mounted through Linux's syscalls.
    pub fn new(root: &Path, owner_account: &str, game_account: &str) -> Self {
        Host {
            layout: Layout::new(root),
            sys: &crate::sys::Linux,
            owner_account: owner_account.to_owned(),
            game_account: game_account.to_owned(),
        }
    }
}

impl Host<'_> {
    pub fn owner(&self) -> Result<Account, AgentError> {
        accounts::lookup(&self.owner_account)
    }

    pub fn game(&self) -> Result<Account, AgentError> {
        accounts::lookup(&self.game_account)
    }

    /// The state root, reached through folders only root (or this process's account) can
    /// change.
    pub fn state(&self) -> Result<Dir, AgentError> {
        Dir::open_trusted(self.layout.root()).map_err(|e| {
            AgentError::failed(
                "the state folder is not safe to use",
                format!("{e}; run `l4d2-agent setup` as root to fix its owners"),
            )
        })
    }

    /// The mount table, as a command's failure when it cannot be read.
    pub fn mount_table(&self) -> Result<Vec<Mount>, AgentError> {
        self.sys
            .mount_table()
            .map_err(|e| AgentError::failed(e.to_string(), e.0))
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// This host's name, as notifications and reports call it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "this host".to_owned())
}
