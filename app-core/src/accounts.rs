//! Users of this install: the first admin, login with rate limits, and account management.
//!
//! Passwords are stored as argon2id hashes. Failed logins are counted in the database per
//! username and overall, so restarting the app does not reset the limits. Every other
//! module takes a [`Session`], which only a successful login makes, and re-reads the
//! account on each call: an account disabled or demoted by an admin loses its rights at
//! once, not at its next login.

use crate::error::{Error, Result};
use crate::store::Store;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
pub use left4me_protocol::model::User;
use rusqlite::{OptionalExtension, params};
use std::sync::OnceLock;

/// Failed logins allowed per username within [`USER_WINDOW_MS`].
pub const USER_LIMIT: i64 = 5;
pub const USER_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failed logins allowed over all usernames within [`OVERALL_WINDOW_MS`]; stops guessing
/// spread over many names.
pub const OVERALL_LIMIT: i64 = 30;
pub const OVERALL_WINDOW_MS: i64 = 5 * 60 * 1000;

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 256;

/// Proof of a successful login. Only [`Store::login`] and [`Store::create_first_admin`]
/// make one; its fields cannot be forged from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    user_id: i64,
    username: String,
}

impl Session {
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    pub fn username(&self) -> &str {
        &self.username
    }
}

/// The current state of a session's account, read at the start of every call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Actor {
    pub id: i64,
    pub is_admin: bool,
}

impl Actor {
    pub fn require_admin(self, action: &str) -> Result<Self> {
        if self.is_admin {
            Ok(self)
        } else {
            Err(Error::Forbidden(format!("only an admin can {action}")))
        }
    }
}

fn validate_username(username: &str) -> Result<()> {
    let ok = (1..=32).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid username {username:?}: use 1-32 letters, digits, '.', '_' or '-'"
        )))
    }
}

fn validate_password(password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password is too long: use at most {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2id with default parameters hashes any password")
        .to_string()
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash checked when the username does not exist, so that a wrong name takes as long as
/// a wrong password and the timing does not tell which names exist.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("left4me decoy password"))
}

const WRONG_CREDENTIALS: &str = "wrong username or password";

impl Store {
    /// True until the first account exists: the app then asks for the first admin.
    pub fn needs_first_admin(&self) -> Result<bool> {
        let count: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        Ok(count == 0)
    }

    /// Creates the first account, an admin, and logs it in. Refused once any account exists.
    pub fn create_first_admin(&self, username: &str, password: &str) -> Result<Session> {
        validate_username(username)?;
        validate_password(password)?;
        let hash = hash_password(password);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let count: i64 = tx.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        if count > 0 {
            return Err(Error::Conflict(
                "the first admin exists already: log in, or ask an admin for an account".into(),
            ));
        }
        tx.execute(
            "INSERT INTO users (username, password_hash, is_admin, created_ms) VALUES (?1, ?2, 1, ?3)",
            params![username, hash, self.now_ms()],
        )?;
        let user_id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Session {
            user_id,
            username: username.to_owned(),
        })
    }

    /// Checks a username and password. Refused without checking while the username, or
    /// the app as a whole, has too many recent failures.
    pub fn login(&self, username: &str, password: &str) -> Result<Session> {
        let now = self.now_ms();
        self.check_login_limits(username, now)?;
        let row: Option<(i64, String, String, bool)> = self
            .conn()
            .query_row(
                "SELECT id, username, password_hash, disabled FROM users WHERE username = ?1",
                [username],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        // The hash is checked outside the database lock: it takes tens of milliseconds.
        let verified = match &row {
            Some((_, _, hash, _)) => verify_password(password, hash),
            None => {
                verify_password(password, decoy_hash());
                false
            }
        };
        match row {
            Some((user_id, username, _, disabled)) if verified => {
                if disabled {
                    return Err(Error::Unauthenticated(format!(
                        "the account {username:?} is disabled; ask an admin"
                    )));
                }
                Ok(Session { user_id, username })
            }
            _ => {
                self.record_login_failure(username, now)?;
                Err(Error::Unauthenticated(WRONG_CREDENTIALS.into()))
            }
        }
    }

    fn check_login_limits(&self, username: &str, now: i64) -> Result<()> {
        let conn = self.conn();
        let window = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<(i64, Option<i64>)> {
            Ok(conn.query_row(sql, args, |r| Ok((r.get(0)?, r.get(1)?)))?)
        };
        // The oldest failure inside the window decides when a slot frees again.
        let (count, oldest) = window(
            "SELECT count(*), min(at_ms) FROM login_failures WHERE username = ?1 AND at_ms > ?2",
            &[&username, &(now - USER_WINDOW_MS)],
        )?;
        if count >= USER_LIMIT {
            let retry_after_s = retry_after(oldest, USER_WINDOW_MS, now);
            return Err(Error::RateLimited {
                message: format!(
                    "too many failed logins for {username:?}: try again in {}",
                    human_wait(retry_after_s)
                ),
                retry_after_s,
            });
        }
        let (count, oldest) = window(
            "SELECT count(*), min(at_ms) FROM login_failures WHERE at_ms > ?1",
            &[&(now - OVERALL_WINDOW_MS)],
        )?;
        if count >= OVERALL_LIMIT {
            let retry_after_s = retry_after(oldest, OVERALL_WINDOW_MS, now);
            return Err(Error::RateLimited {
                message: format!(
                    "too many failed logins on this app: logins are paused for {}",
                    human_wait(retry_after_s)
                ),
                retry_after_s,
            });
        }
        Ok(())
    }

    fn record_login_failure(&self, username: &str, now: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO login_failures (username, at_ms) VALUES (?1, ?2)",
            params![username, now],
        )?;
        conn.execute(
            "DELETE FROM login_failures WHERE at_ms <= ?1",
            [now - USER_WINDOW_MS.max(OVERALL_WINDOW_MS)],
        )?;
        Ok(())
    }

    /// The session's account as it is now; fails if it was disabled since the login.
    pub(crate) fn actor(&self, session: &Session) -> Result<Actor> {
        let row: Option<(bool, bool)> = self
            .conn()
            .query_row(
                "SELECT is_admin, disabled FROM users WHERE id = ?1",
                [session.user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((is_admin, false)) => Ok(Actor {
                id: session.user_id,
                is_admin,
            }),
            _ => Err(Error::Unauthenticated(
                "your account was disabled; log in again".into(),
            )),
        }
    }

    /// The logged-in user's own account.
    pub fn me(&self, session: &Session) -> Result<User> {
        self.actor(session)?;
        self.user(session.user_id)
    }

    fn user(&self, id: i64) -> Result<User> {
        self.conn()
            .query_row(
                "SELECT id, username, is_admin, disabled, created_ms FROM users WHERE id = ?1",
                [id],
                user_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("no user with id {id}")))
    }

    /// All accounts (admins only).
    pub fn users(&self, session: &Session) -> Result<Vec<User>> {
        self.actor(session)?.require_admin("list accounts")?;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, username, is_admin, disabled, created_ms FROM users ORDER BY username COLLATE natural_order",
        )?;
        let users = stmt
            .query_map([], user_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(users)
    }

    /// Creates an account (admins only).
    pub fn create_user(
        &self,
        session: &Session,
        username: &str,
        password: &str,
        is_admin: bool,
    ) -> Result<User> {
        self.actor(session)?.require_admin("create accounts")?;
        validate_username(username)?;
        validate_password(password)?;
        let hash = hash_password(password);
        let inserted = self.conn().execute(
            "INSERT INTO users (username, password_hash, is_admin, created_ms)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (username) DO NOTHING",
            params![username, hash, is_admin, self.now_ms()],
        )?;
        if inserted == 0 {
            return Err(Error::Conflict(format!(
                "an account named {username:?} exists already"
            )));
        }
        let id = self.conn().last_insert_rowid();
        self.user(id)
    }

    /// Disables or re-enables an account (admins only). An admin cannot disable their own
    /// account, so the app always keeps someone who can manage it.
    pub fn set_user_disabled(
        &self,
        session: &Session,
        user_id: i64,
        disabled: bool,
    ) -> Result<User> {
        self.actor(session)?.require_admin("disable accounts")?;
        if disabled && user_id == session.user_id {
            return Err(Error::Conflict(
                "you cannot disable your own account".into(),
            ));
        }
        self.update_user(
            user_id,
            "UPDATE users SET disabled = ?2 WHERE id = ?1",
            disabled,
        )
    }

    /// Grants or removes the admin role (admins only); the last active admin keeps it.
    pub fn set_user_admin(&self, session: &Session, user_id: i64, is_admin: bool) -> Result<User> {
        self.actor(session)?.require_admin("change roles")?;
        if !is_admin {
            let other_admins: i64 = self.conn().query_row(
                "SELECT count(*) FROM users WHERE is_admin = 1 AND disabled = 0 AND id != ?1",
                [user_id],
                |r| r.get(0),
            )?;
            if other_admins == 0 {
                return Err(Error::Conflict(
                    "this is the last admin: make another account admin first".into(),
                ));
            }
        }
        self.update_user(
            user_id,
            "UPDATE users SET is_admin = ?2 WHERE id = ?1",
            is_admin,
        )
    }

    /// Sets a new password for an account (admins only).
    pub fn reset_password(&self, session: &Session, user_id: i64, password: &str) -> Result<User> {
        self.actor(session)?.require_admin("reset passwords")?;
        validate_password(password)?;
        let hash = hash_password(password);
        self.update_user(
            user_id,
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            hash,
        )
    }

    /// Changes the logged-in user's own password, given the current one.
    pub fn change_password(&self, session: &Session, current: &str, new: &str) -> Result<()> {
        self.actor(session)?;
        validate_password(new)?;
        let hash: String = self.conn().query_row(
            "SELECT password_hash FROM users WHERE id = ?1",
            [session.user_id],
            |r| r.get(0),
        )?;
        if !verify_password(current, &hash) {
            return Err(Error::Invalid("the current password is wrong".into()));
        }
        let hash = hash_password(new);
        self.update_user(
            session.user_id,
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            hash,
        )?;
        Ok(())
    }

    fn update_user(&self, user_id: i64, sql: &str, value: impl rusqlite::ToSql) -> Result<User> {
        let changed = self.conn().execute(sql, params![user_id, value])?;
        if changed == 0 {
            return Err(Error::NotFound(format!("no user with id {user_id}")));
        }
        self.user(user_id)
    }
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        is_admin: r.get(2)?,
        disabled: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

fn retry_after(oldest: Option<i64>, window_ms: i64, now: i64) -> u64 {
    let free_at = oldest.unwrap_or(now) + window_ms;
    ((free_at - now).max(0) as u64).div_ceil(1000).max(1)
}

fn human_wait(seconds: u64) -> String {
    match seconds {
        0..=90 => format!("{seconds} s"),
        _ => format!("{} min", seconds.div_ceil(60)),
    }
}
