use app_core::{Store, StoreError};

#[test]
fn open_creates_a_migrated_wal_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/left4me.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        Store::latest_schema_version()
    );
    assert!(path.is_file());
    // WAL mode is a property of the file: a second, independent connection sees it.
    let other = rusqlite::Connection::open(&path).unwrap();
    let mode: String = other
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "data folder must be private");
    }
}

#[test]
fn desktop_notifications_are_on_until_turned_off_and_stay_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("left4me.db");
    let store = Store::open(&path).unwrap();
    assert!(store.desktop_notifications().unwrap());
    store.set_desktop_notifications(false).unwrap();
    assert!(!Store::open(&path).unwrap().desktop_notifications().unwrap());
    store.set_desktop_notifications(true).unwrap();
    assert!(Store::open(&path).unwrap().desktop_notifications().unwrap());
}

#[test]
fn reopening_keeps_the_install_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("left4me.db");
    let first = Store::open(&path).unwrap().install_id().unwrap();
    assert_eq!(first.len(), 32);
    let second = Store::open(&path).unwrap().install_id().unwrap();
    assert_eq!(first, second);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("left4me.db");
    let content = b"these are someone's notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("cannot open the database {}", path.display())
    );
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

#[test]
fn a_database_from_a_newer_app_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("left4me.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Migrate { .. }), "{err:?}");
}
