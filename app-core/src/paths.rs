//! Where the app keeps its files on this computer.

use std::path::PathBuf;

/// Overrides the data folder; tests and side-by-side installs use it.
pub const DATA_DIR_ENV: &str = "LEFT4ME_DATA_DIR";

/// The file name of the local database inside the data folder.
pub const DATABASE_FILE: &str = "left4me.db";

#[derive(Debug, thiserror::Error)]
#[error("cannot tell where to keep the app's data: no home folder; set {DATA_DIR_ENV}")]
pub struct NoDataDir;

/// The app's data folder: `$LEFT4ME_DATA_DIR` if set, else the OS's per-user app-data
/// folder (`~/.local/share/left4me` on Linux, `%APPDATA%\left4me\data` on Windows,
/// `~/Library/Application Support/dev.left4me.left4me` on macOS).
pub fn data_dir() -> Result<PathBuf, NoDataDir> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("dev", "left4me", "left4me")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .ok_or(NoDataDir)
}

/// The app's own log files ([`crate::applog`]), inside [`data_dir`].
pub fn log_dir() -> Result<PathBuf, NoDataDir> {
    Ok(data_dir()?.join("logs"))
}

/// The local database file inside [`data_dir`].
pub fn database_path() -> Result<PathBuf, NoDataDir> {
    Ok(data_dir()?.join(DATABASE_FILE))
}
