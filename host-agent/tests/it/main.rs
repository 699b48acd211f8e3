//! Integration tests of the `l4d2-agent` binary as people and the app call it.

/// Server and overlay commands: exit codes, messages, JSON, files on disk.
mod commands;
/// Real overlayfs and idmapped mounts, and the mount-cycle regression.
mod mounts;
/// The shipped static binary, in an empty root.
mod static_binary;
/// `--version`, `version`, `version --json`, and the exit policy.
mod version;
