use app_core::accounts::{OVERALL_LIMIT, USER_LIMIT, USER_WINDOW_MS};
use app_core::{Clock, Error, Store};
use std::time::Duration;

pub fn open() -> (tempfile::TempDir, Store, Clock) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(1_800_000_000_000);
    let store = Store::open_with_clock(&dir.path().join("left4me.db"), clock.clone()).unwrap();
    (dir, store, clock)
}

#[test]
fn the_first_run_creates_one_admin_and_then_refuses() {
    let (_dir, store, _) = open();
    assert!(store.needs_first_admin().unwrap());
    let session = store.create_first_admin("alice", "correct horse").unwrap();
    assert!(!store.needs_first_admin().unwrap());
    let me = store.me(&session).unwrap();
    assert!(me.is_admin);
    assert_eq!(me.username, "alice");
    let err = store
        .create_first_admin("mallory", "correct horse")
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(store.users(&session).unwrap().len(), 1);
}

#[test]
fn passwords_are_stored_as_argon2id_hashes() {
    let (dir, store, _) = open();
    store.create_first_admin("alice", "correct horse").unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("left4me.db")).unwrap();
    let hash: String = conn
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains("correct horse"));
}

#[test]
fn bad_account_input_is_refused_with_what_was_wrong() {
    let (_dir, store, _) = open();
    let err = store
        .create_first_admin("al ice", "correct horse")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid username "al ice": use 1-32 letters, digits, '.', '_' or '-'"#
    );
    let err = store.create_first_admin("alice", "short").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the password is too short: use at least 8 characters"
    );
    assert!(store.needs_first_admin().unwrap(), "nothing was created");
}

#[test]
fn login_checks_the_password_and_the_name_case_insensitively() {
    let (_dir, store, _) = open();
    store.create_first_admin("Alice", "correct horse").unwrap();
    let session = store.login("alice", "correct horse").unwrap();
    assert_eq!(session.username(), "Alice");
    let err = store.login("alice", "wrong horse").unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)));
    assert_eq!(err.to_string(), "wrong username or password");
    // An unknown name gets the same answer: it does not tell which names exist.
    let err = store.login("bob", "correct horse").unwrap_err();
    assert_eq!(err.to_string(), "wrong username or password");
}

#[test]
fn failed_logins_are_limited_per_username_until_the_window_passes() {
    let (_dir, store, clock) = open();
    store.create_first_admin("alice", "correct horse").unwrap();
    for _ in 0..USER_LIMIT {
        store.login("alice", "guess").unwrap_err();
        clock.advance(Duration::from_secs(10));
    }
    // Even the right password is refused now, without being checked.
    let err = store.login("alice", "correct horse").unwrap_err();
    let Error::RateLimited { retry_after_s, .. } = &err else {
        panic!("{err:?}")
    };
    // The first failure was 50 s ago; its slot frees 15 min after it.
    assert_eq!(*retry_after_s, (USER_WINDOW_MS / 1000 - 50) as u64);
    assert_eq!(
        err.to_string(),
        "too many failed logins for \"alice\": try again in 15 min"
    );
    // Other names are not affected.
    store.login("bob", "guess").unwrap_err();
    assert!(matches!(
        store.login("bob", "guess").unwrap_err(),
        Error::Unauthenticated(_)
    ));
    clock.advance(Duration::from_secs(*retry_after_s));
    store.login("alice", "correct horse").unwrap();
}

#[test]
fn failed_logins_are_limited_overall_across_names() {
    let (_dir, store, clock) = open();
    store.create_first_admin("alice", "correct horse").unwrap();
    for i in 0..OVERALL_LIMIT {
        store.login(&format!("user{i}"), "guess").unwrap_err();
    }
    let err = store.login("alice", "correct horse").unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "too many failed logins on this app: logins are paused for 5 min"
    );
    clock.advance(Duration::from_secs(5 * 60));
    store.login("alice", "correct horse").unwrap();
}

#[test]
fn the_limits_survive_a_restart() {
    let (dir, store, clock) = open();
    store.create_first_admin("alice", "correct horse").unwrap();
    for _ in 0..USER_LIMIT {
        store.login("alice", "guess").unwrap_err();
    }
    drop(store);
    let store = Store::open_with_clock(&dir.path().join("left4me.db"), clock).unwrap();
    assert!(matches!(
        store.login("alice", "correct horse").unwrap_err(),
        Error::RateLimited { .. }
    ));
}

#[test]
fn admins_manage_accounts_and_others_cannot() {
    let (_dir, store, _) = open();
    let admin = store.create_first_admin("alice", "correct horse").unwrap();
    let bob = store
        .create_user(&admin, "bob", "bobs password", false)
        .unwrap();
    assert!(!bob.is_admin);
    let err = store
        .create_user(&admin, "BOB", "bobs password", false)
        .unwrap_err();
    assert_eq!(err.to_string(), r#"an account named "BOB" exists already"#);

    let bob_session = store.login("bob", "bobs password").unwrap();
    for err in [
        store.users(&bob_session).unwrap_err(),
        store
            .create_user(&bob_session, "carol", "carols password", true)
            .unwrap_err(),
        store
            .set_user_admin(&bob_session, bob.id, true)
            .unwrap_err(),
        store
            .reset_password(&bob_session, admin.user_id(), "hijacked!!")
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    }

    store
        .reset_password(&admin, bob.id, "new bob password")
        .unwrap();
    store.login("bob", "new bob password").unwrap();

    // Disabling takes effect on the live session at once.
    store.set_user_disabled(&admin, bob.id, true).unwrap();
    let err = store.me(&bob_session).unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)), "{err:?}");
    assert_eq!(
        store
            .login("bob", "new bob password")
            .unwrap_err()
            .to_string(),
        r#"the account "bob" is disabled; ask an admin"#
    );
    store.set_user_disabled(&admin, bob.id, false).unwrap();

    // Promotion too; and the last admin cannot be demoted or disable themselves.
    let err = store
        .set_user_admin(&admin, admin.user_id(), false)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "this is the last admin: make another account admin first"
    );
    let err = store
        .set_user_disabled(&admin, admin.user_id(), true)
        .unwrap_err();
    assert_eq!(err.to_string(), "you cannot disable your own account");
    store.set_user_admin(&admin, bob.id, true).unwrap();
    assert_eq!(store.users(&bob_session).unwrap().len(), 2);
    store
        .set_user_admin(&bob_session, admin.user_id(), false)
        .unwrap();
    assert!(matches!(
        store.users(&admin).unwrap_err(),
        Error::Forbidden(_)
    ));
}

#[test]
fn users_change_their_own_password_given_the_current_one() {
    let (_dir, store, _) = open();
    let admin = store.create_first_admin("alice", "correct horse").unwrap();
    let err = store
        .change_password(&admin, "wrong", "battery staple")
        .unwrap_err();
    assert_eq!(err.to_string(), "the current password is wrong");
    store
        .change_password(&admin, "correct horse", "battery staple")
        .unwrap();
    store.login("alice", "battery staple").unwrap();
}
