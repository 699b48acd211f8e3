//! The app's own log: what it did and what went wrong, to read or attach to a bug report.
//! Lines go to stderr and to `left4me.log` in the log folder ([`crate::paths::log_dir`]),
//! which is rotated by size: at [`MAX_BYTES`] it becomes `left4me.1.log` (the older ones
//! move up, and the oldest beyond [`KEEP`] goes), so the folder never holds more than a few
//! megabytes. Secrets never reach it: nothing logs a password, a key or an RCON password,
//! and job errors are the same words the window shows.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The current file's name.
pub const FILE: &str = "left4me.log";
/// The size at which the file is rotated.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// How many rotated files are kept beside the current one.
pub const KEEP: u32 = 3;

/// A log in `dir`, rotated at `max_bytes`.
pub struct AppLog {
    dir: PathBuf,
    max_bytes: u64,
    file: Mutex<Option<(File, u64)>>,
}

impl AppLog {
    pub fn new(dir: &Path, max_bytes: u64) -> AppLog {
        AppLog {
            dir: dir.to_path_buf(),
            max_bytes,
            file: Mutex::new(None),
        }
    }

    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Appends one line; a log that cannot be written must not stop the app, so failures
    /// only reach stderr.
    pub fn write(&self, line: &str) {
        let mut slot = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = self.append(&mut slot, line) {
            eprintln!("left4me: cannot write {}: {e}", self.path().display());
            *slot = None;
        }
    }

    fn append(&self, slot: &mut Option<(File, u64)>, line: &str) -> std::io::Result<()> {
        if slot.is_none() {
            crate::store::create_private_dir(&self.dir)?;
            let file = File::options()
                .create(true)
                .append(true)
                .open(self.path())?;
            let len = file.metadata()?.len();
            *slot = Some((file, len));
        }
        let (file, len) = slot.as_mut().expect("opened above");
        if *len > 0 && *len + line.len() as u64 + 1 > self.max_bytes {
            self.rotate()?;
            *file = File::options()
                .create(true)
                .append(true)
                .open(self.path())?;
            *len = 0;
        }
        file.write_all(format!("{line}\n").as_bytes())?;
        *len += line.len() as u64 + 1;
        Ok(())
    }

    /// `left4me.log` → `left4me.1.log` → … → `left4me.{KEEP}.log`, the last one dropped.
    fn rotate(&self) -> std::io::Result<()> {
        let numbered = |n: u32| self.dir.join(format!("left4me.{n}.log"));
        match std::fs::remove_file(numbered(KEEP)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..KEEP).rev() {
            match std::fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(self.path(), numbered(1))
    }
}

impl log::Log for AppLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let ours = ["left4me", "app_core"]
            .iter()
            .any(|crate_name| metadata.target().starts_with(crate_name));
        ours && metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let message = record.args().to_string();
        eprintln!("left4me: {message}");
        self.write(&format!(
            "{} {:<5} {message}",
            left4me_protocol::time::rfc3339(micros),
            record.level()
        ));
    }

    fn flush(&self) {}
}

/// Sends the `log` macros of the app and app-core to `dir`'s log and stderr, for the rest of
/// the process.
pub fn install(dir: &Path) {
    let log = Box::leak(Box::new(AppLog::new(dir, MAX_BYTES)));
    if log::set_logger(log).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<(String, u64)> {
        let mut found: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn the_log_rotates_by_size_and_keeps_a_few() {
        let dir = tempfile::tempdir().unwrap();
        let log = AppLog::new(&dir.path().join("logs"), 100);
        // 10 lines of 40 bytes: a file holds two, so there are five generations and the
        // oldest two are gone.
        for i in 0..10 {
            log.write(&format!("{i:039}"));
        }
        let found = files(&dir.path().join("logs"));
        assert_eq!(
            found,
            [
                ("left4me.1.log".to_owned(), 80),
                ("left4me.2.log".to_owned(), 80),
                ("left4me.3.log".to_owned(), 80),
                ("left4me.log".to_owned(), 80),
            ]
        );
        let newest = std::fs::read_to_string(dir.path().join("logs/left4me.log")).unwrap();
        assert_eq!(newest, format!("{:039}\n{:039}\n", 8, 9));
        let oldest = std::fs::read_to_string(dir.path().join("logs/left4me.3.log")).unwrap();
        assert_eq!(oldest, format!("{:039}\n{:039}\n", 2, 3));
    }

    #[test]
    fn a_log_reopened_goes_on_where_it_was() {
        let dir = tempfile::tempdir().unwrap();
        AppLog::new(dir.path(), 100).write("first run");
        AppLog::new(dir.path(), 100).write("second run");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE)).unwrap(),
            "first run\nsecond run\n"
        );
    }

    #[test]
    fn a_log_that_cannot_be_written_does_not_stop_the_app() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be.
        let blocked = dir.path().join("logs");
        std::fs::write(&blocked, "").unwrap();
        AppLog::new(&blocked, 100).write("lost, and said so on stderr");
    }
}
