//! The local model: one SQLite file in the app's data folder.
//!
//! Opening the file applies pending migrations, turns on WAL and foreign keys and checks
//! that both took effect: SQLite silently ignores pragmas it cannot apply.

mod natural;

use rusqlite::{Connection, OptionalExtension};
use rusqlite_migration::{M, Migrations};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The schema, oldest first. Never edit a released migration; append a new one.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("migrations/001_app_meta.sql")),
    M::up(include_str!("migrations/002_model.sql")),
    M::up(include_str!("migrations/003_setup_login.sql")),
    M::up(include_str!("migrations/004_overlay_hosts.sql")),
    M::up(include_str!("migrations/005_server_ports.sql")),
    M::up(include_str!("migrations/006_job_error_code.sql")),
    M::up(include_str!("migrations/007_host_public_build.sql")),
    M::up(include_str!("migrations/008_overlay_hosts_behind.sql")),
    M::up(include_str!("migrations/009_host_events.sql")),
    M::up(include_str!("migrations/010_notify_targets.sql")),
    M::up(include_str!(
        "migrations/011_blueprint_restart_when_hung.sql"
    )),
    M::up(include_str!("migrations/012_blueprint_limits.sql")),
    M::up(include_str!("migrations/013_server_cores.sql")),
    M::up(include_str!("migrations/014_blueprint_rollout_canary.sql")),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data folder {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot migrate the database {path}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: rusqlite_migration::Error,
    },
    #[error("the database {path} does not support {what}")]
    Pragma { path: PathBuf, what: &'static str },
    #[error("database query failed")]
    Query(#[from] rusqlite::Error),
}

/// Where the store reads the time: the system clock, or a clock a test moves by hand.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock standing at `ms` (UNIX milliseconds).
    pub fn manual(ms: i64) -> Self {
        Self::Manual(Arc::new(AtomicI64::new(ms)))
    }

    /// UNIX milliseconds now.
    pub fn now_ms(&self) -> i64 {
        match self {
            Self::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Self::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance(&self, by: std::time::Duration) {
        if let Self::Manual(ms) = self {
            ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }
}

/// The open local database. Shared between threads: each call takes the connection for
/// the few statements it needs, inside one transaction when it writes.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    clock: Clock,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_clock(path, Clock::System)
    }

    /// [`Store::open`] with the clock the store reads (tests move time by hand).
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        // Lists are ordered by name as people count: coop-2 before coop-10.
        conn.create_collation(natural::COLLATION, natural::cmp)
            .map_err(open_error)?;
        // WAL first: it is the first statement that reads the file, so a file that is not a
        // database fails here, before any migration could write to it.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Pragma {
                path: path.to_path_buf(),
                what: "write-ahead logging",
            });
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        let fk: bool = conn
            .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
            .map_err(open_error)?;
        if !fk {
            return Err(StoreError::Pragma {
                path: path.to_path_buf(),
                what: "foreign keys",
            });
        }
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            clock,
        })
    }

    /// The connection. A panic while it was held leaves SQLite consistent (the open
    /// transaction rolls back when dropped), so a poisoned lock is still usable.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of migrations applied to the file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    /// The schema version this build migrates to.
    pub fn latest_schema_version() -> u32 {
        MIGRATIONS.len() as u32
    }

    /// A random id made when the database was created; names this install on hosts.
    pub fn install_id(&self) -> Result<String, StoreError> {
        self.meta("install_id")?
            .ok_or(StoreError::Query(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Whether the app raises desktop notifications: on unless turned off.
    pub fn desktop_notifications(&self) -> Result<bool, StoreError> {
        Ok(self.meta(NOTIFICATIONS_KEY)?.as_deref() != Some("off"))
    }

    pub fn set_desktop_notifications(&self, on: bool) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO app_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [NOTIFICATIONS_KEY, if on { "on" } else { "off" }],
        )?;
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM app_meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }
}

const NOTIFICATIONS_KEY: &str = "desktop_notifications";

/// Creates `dir` and its parents; the last one readable by this user only, since the
/// database holds who administers which hosts.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        Migrations::from_slice(MIGRATIONS).validate().unwrap();
    }
}
