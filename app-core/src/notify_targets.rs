//! Where the hosts send notifications, as the app keeps the list: its names, kinds and
//! endpoints here, each target's URL and secret in the credential store. Every host gets the
//! whole list (`notify set`, on stdin) when it is behind: the list has a revision, and each
//! host remembers the one it has.

use crate::accounts::Session;
use crate::error::{Error, Result};
use crate::store::Store;
use left4me_protocol::agent::NotifyKind;
use left4me_protocol::model::NotifyTargetInfo;
use rusqlite::{OptionalExtension, params};

const REVISION: &str = "notify_revision";

fn kind_text(kind: NotifyKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn kind_of(text: &str) -> Option<NotifyKind> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

impl Store {
    /// Every target, by name.
    pub fn notification_targets(&self, session: &Session) -> Result<Vec<NotifyTargetInfo>> {
        self.actor(session)?
            .require_admin("see notification targets")?;
        self.targets()
    }

    pub(crate) fn targets(&self) -> Result<Vec<NotifyTargetInfo>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT id, name, kind, endpoint FROM notify_targets ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, name, kind, endpoint)| {
                Some(NotifyTargetInfo {
                    id,
                    name,
                    kind: kind_of(&kind)?,
                    endpoint,
                })
            })
            .collect())
    }

    /// Adds a target's row (its secret is the caller's to keep) and moves the revision on.
    pub(crate) fn insert_target(
        &self,
        name: &str,
        kind: NotifyKind,
        endpoint: &str,
    ) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let taken: Option<i64> = tx
            .query_row(
                "SELECT id FROM notify_targets WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(Error::Conflict(format!(
                "a notification target named {name:?} exists already"
            )));
        }
        tx.execute(
            "INSERT INTO notify_targets (name, kind, endpoint) VALUES (?1, ?2, ?3)",
            params![name, kind_text(kind), endpoint],
        )?;
        let id = tx.last_insert_rowid();
        bump(&tx)?;
        tx.commit()?;
        Ok(id)
    }

    pub(crate) fn delete_target(&self, id: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if tx.execute("DELETE FROM notify_targets WHERE id = ?1", [id])? == 0 {
            return Err(Error::NotFound(format!(
                "notification target {id} does not exist"
            )));
        }
        bump(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// The list's revision, and the one the host has.
    pub(crate) fn notify_revisions(&self, host_id: i64) -> Result<(i64, i64)> {
        let conn = self.conn();
        let current = current_revision(&conn)?;
        let pushed: i64 = conn.query_row(
            "SELECT notify_pushed FROM hosts WHERE id = ?1",
            [host_id],
            |r| r.get(0),
        )?;
        Ok((current, pushed))
    }

    pub(crate) fn set_notify_pushed(&self, host_id: i64, revision: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE hosts SET notify_pushed = ?2 WHERE id = ?1",
            params![host_id, revision],
        )?;
        Ok(())
    }
}

fn current_revision(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT value FROM app_meta WHERE key = ?1",
            [REVISION],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn bump(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let next = current_revision(conn)? + 1;
    conn.execute(
        "INSERT INTO app_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![REVISION, next.to_string()],
    )?;
    Ok(())
}
