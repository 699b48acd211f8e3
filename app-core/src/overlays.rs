//! Overlays in the app's model: global ones managed by admins and each user's own.
//!
//! On a host every overlay is a folder under `overlays/`, one namespace for all users. A
//! global overlay keeps its name there; a user's overlay is stored as `u<user id>-<name>`,
//! so two users may both call an overlay `maps`. Global names may not take that form.

use crate::accounts::Session;
use crate::error::{Error, Result};
use crate::store::Store;
use left4me_protocol::OverlayName;
use left4me_protocol::agent::OverlaySummary;
pub use left4me_protocol::model::{NewOverlay, Overlay, OverlayHost, OverlaySource};
use rusqlite::{OptionalExtension, params};

fn validate_source(source: &OverlaySource) -> Result<()> {
    let invalid = |message: &str| Err(Error::Invalid(message.into()));
    match source {
        OverlaySource::Workshop { items, collections }
            if items.is_empty() && collections.is_empty() =>
        {
            invalid("a workshop overlay needs at least one item or collection id")
        }
        OverlaySource::Script { script } if script.trim().is_empty() => {
            invalid("the overlay's script is empty")
        }
        OverlaySource::Script { script } if script.len() > 256 * 1024 => {
            invalid("the overlay's script is longer than 256 KiB")
        }
        _ => Ok(()),
    }
}

/// The folder name on hosts for an overlay called `name` owned by `owner` (None: global).
pub fn host_name(owner: Option<i64>, name: &str) -> Result<OverlayName> {
    let name = OverlayName::new(name)?;
    match owner {
        None => {
            if user_prefixed(name.as_str()) {
                return Err(Error::Invalid(format!(
                    "global overlay names cannot look like u<number>-…, which users' own \
                     overlays use on hosts: {:?}",
                    name.as_str()
                )));
            }
            Ok(name)
        }
        Some(owner) => {
            let full = format!("u{owner}-{name}");
            OverlayName::new(full.clone()).map_err(|_| {
                Error::Invalid(format!(
                    "overlay name {:?} is too long: at most {} characters",
                    name.as_str(),
                    32 - (full.len() - name.as_str().len())
                ))
            })
        }
    }
}

fn user_prefixed(name: &str) -> bool {
    name.strip_prefix('u')
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(digits, _)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

const OVERLAY_COLUMNS: &str = "o.id, o.owner_id, o.name, o.source, o.description, o.updated_ms";

impl Store {
    /// The global overlays and the caller's own, globals first, by name.
    pub fn overlays(&self, session: &Session) -> Result<Vec<Overlay>> {
        let me = self.actor(session)?;
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id FROM overlays WHERE owner_id IS NULL OR owner_id = ?1
                 ORDER BY owner_id IS NOT NULL, name COLLATE natural_order",
            )?;
            stmt.query_map([me.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        ids.into_iter()
            .map(|id| self.overlay(session, id))
            .collect()
    }

    /// One overlay the caller can see: global or their own.
    pub fn overlay(&self, session: &Session, id: i64) -> Result<Overlay> {
        let me = self.actor(session)?;
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!(
                    "SELECT {OVERLAY_COLUMNS} FROM overlays o
                     WHERE o.id = ?1 AND (o.owner_id IS NULL OR o.owner_id = ?2)"
                ),
                params![id, me.id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| not_found(id))?;
        let (id, owner, name, source, description, updated_ms) = row;
        let mut stmt = conn.prepare(
            "SELECT b.name FROM blueprint_overlays bo JOIN blueprints b ON b.id = bo.blueprint_id
             WHERE bo.overlay_id = ?1 AND b.owner_id = ?2 ORDER BY b.name COLLATE natural_order",
        )?;
        let used_by = stmt
            .query_map(params![id, me.id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let hosts = overlay_hosts(&conn, id)?;
        overlay_from_row(
            id,
            owner,
            name,
            &source,
            description,
            used_by,
            updated_ms,
            hosts,
        )
    }

    pub fn create_overlay(&self, session: &Session, new: NewOverlay) -> Result<Overlay> {
        let me = self.actor(session)?;
        if new.global {
            me.require_admin("create global overlays")?;
        }
        let owner = (!new.global).then_some(me.id);
        host_name(owner, &new.name)?;
        validate_source(&new.source)?;
        let now = self.now_ms();
        let inserted = self.conn().execute(
            "INSERT INTO overlays (owner_id, name, kind, source, description, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT DO NOTHING",
            params![
                owner,
                new.name,
                new.source.kind(),
                serde_json::to_string(&new.source).expect("overlay source serialises"),
                new.description,
                now
            ],
        )?;
        if inserted == 0 {
            let whose = if new.global {
                "a global"
            } else {
                "one of your"
            };
            return Err(Error::Conflict(format!(
                "{whose} overlays is already named {:?}",
                new.name
            )));
        }
        let id = self.conn().last_insert_rowid();
        self.overlay(session, id)
    }

    /// Changes what fills an overlay and its description; the name stays.
    pub fn update_overlay(
        &self,
        session: &Session,
        id: i64,
        source: OverlaySource,
        description: String,
    ) -> Result<Overlay> {
        let overlay = self.writable_overlay(session, id)?;
        validate_source(&source)?;
        self.conn().execute(
            "UPDATE overlays SET kind = ?2, source = ?3, description = ?4, updated_ms = ?5 WHERE id = ?1",
            params![
                overlay.id,
                source.kind(),
                serde_json::to_string(&source).expect("overlay source serialises"),
                description,
                self.now_ms()
            ],
        )?;
        self.overlay(session, id)
    }

    /// Deletes an overlay from the model; refused while any blueprint uses it.
    pub fn delete_overlay(&self, session: &Session, id: i64) -> Result<()> {
        let overlay = self.writable_overlay(session, id)?;
        let users: i64 = self.conn().query_row(
            "SELECT count(*) FROM blueprint_overlays WHERE overlay_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        if users > 0 {
            let names = if overlay.used_by.is_empty() {
                String::new()
            } else {
                format!(" ({})", overlay.used_by.join(", "))
            };
            return Err(Error::Conflict(format!(
                "overlay {:?} is used by {users} blueprint{}{names}: remove it from them first",
                overlay.name,
                if users == 1 { "" } else { "s" },
            )));
        }
        self.conn()
            .execute("DELETE FROM overlays WHERE id = ?1", [id])?;
        Ok(())
    }

    /// An overlay the caller may change: their own, or a global one if they are an admin.
    fn writable_overlay(&self, session: &Session, id: i64) -> Result<Overlay> {
        let me = self.actor(session)?;
        let overlay = self.overlay(session, id)?;
        if overlay.global {
            me.require_admin("change global overlays")?;
        }
        Ok(overlay)
    }

    /// Resolves names as a blueprint of `owner` lists them: the owner's own overlay of that
    /// name, else the global one. Anything else is not visible to the owner.
    pub(crate) fn resolve_overlays(
        conn: &rusqlite::Connection,
        owner: i64,
        names: &[String],
    ) -> Result<Vec<(i64, OverlayName)>> {
        names
            .iter()
            .map(|name| {
                let found: Option<(i64, Option<i64>)> = conn
                    .query_row(
                        "SELECT id, owner_id FROM overlays WHERE name = ?1
                         AND (owner_id = ?2 OR owner_id IS NULL)
                         ORDER BY owner_id IS NULL LIMIT 1",
                        params![name, owner],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let (id, owner) = found.ok_or_else(|| {
                    Error::Invalid(format!(
                        "there is no overlay named {name:?} among your overlays and the global ones"
                    ))
                })?;
                Ok((id, host_name(owner, name)?))
            })
            .collect()
    }
}

impl Store {
    /// The overlay stored on hosts as `host_name`, with what fills it.
    pub(crate) fn overlay_by_host_name(
        &self,
        host_name: &str,
    ) -> Result<Option<(i64, String, OverlaySource)>> {
        let (owner, name) = match host_name
            .strip_prefix('u')
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(id, name)| Some((id.parse::<i64>().ok()?, name)))
        {
            Some((owner, name)) => (Some(owner), name),
            None => (None, host_name),
        };
        let row: Option<(i64, String, String)> = self
            .conn()
            .query_row(
                "SELECT id, name, source FROM overlays WHERE name = ?1 AND owner_id IS ?2",
                params![name, owner],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(id, name, source)| {
            let source = serde_json::from_str(&source).map_err(|e| {
                Error::Invalid(format!("overlay {id} has an unreadable source: {e}"))
            })?;
            Ok((id, name, source))
        })
        .transpose()
    }

    /// On the app's first run, the example script overlays become global overlays (admins
    /// may edit or delete them; they are not seeded again).
    pub(crate) fn seed_example_overlays(&self) -> Result<()> {
        const EXAMPLES: &[(&str, &str, &str)] = &[
            (
                "sourcemod",
                "SourceMod and MetaMod:Source, the newest stable builds",
                include_str!("../../examples/script-overlays/sourcemod.sh"),
            ),
            (
                "competitive",
                "A competitive-style versus config (cfg/left4me.d/competitive.cfg)",
                include_str!("../../examples/script-overlays/competitive.sh"),
            ),
            (
                "admins",
                "SourceMod's admin list; put it above sourcemod",
                include_str!("../../examples/script-overlays/admins.sh"),
            ),
        ];
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let seeded: bool = tx.query_row(
            "SELECT count(*) FROM app_meta WHERE key = 'examples_seeded'",
            [],
            |r| r.get(0),
        )?;
        if seeded {
            return Ok(());
        }
        let now = self.now_ms();
        for (name, description, script) in EXAMPLES {
            let source = OverlaySource::Script {
                script: (*script).to_owned(),
            };
            tx.execute(
                "INSERT INTO overlays (owner_id, name, kind, source, description, created_ms, updated_ms)
                 VALUES (NULL, ?1, 'script', ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING",
                params![
                    name,
                    serde_json::to_string(&source).expect("overlay source serialises"),
                    description,
                    now
                ],
            )?;
        }
        tx.execute(
            "INSERT INTO app_meta (key, value) VALUES ('examples_seeded', ?1)",
            [now.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Any overlay by id, for a job that was authorised when it was queued.
    pub(crate) fn overlay_by_id(&self, id: i64) -> Result<Overlay> {
        let (owner, name, source, description, updated_ms): (Option<i64>, String, String, String, i64) = self
            .conn()
            .query_row(
                "SELECT owner_id, name, source, description, updated_ms FROM overlays WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?
            .ok_or_else(|| not_found(id))?;
        let hosts = overlay_hosts(&self.conn(), id)?;
        overlay_from_row(
            id,
            owner,
            name,
            &source,
            description,
            Vec::new(),
            updated_ms,
            hosts,
        )
    }

    /// Records that a host filled an overlay; `pending`: the new content waits for the next
    /// start of the host's servers that use it.
    pub(crate) fn record_fill(&self, overlay_id: i64, host_id: i64, pending: bool) -> Result<()> {
        self.conn().execute(
            "INSERT INTO overlay_hosts (overlay_id, host_id, filled_ms, pending) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (overlay_id, host_id) DO UPDATE SET filled_ms = ?3, pending = ?4",
            params![overlay_id, host_id, self.now_ms(), pending],
        )?;
        Ok(())
    }

    /// Takes the host's word for which overlays still wait to be applied, and which of its
    /// servers run an older version of each.
    pub(crate) fn sync_pending(&self, host_id: i64, listed: &[OverlaySummary]) -> Result<()> {
        for overlay in listed {
            if let Some((id, _, _)) = self.overlay_by_host_name(&overlay.name)? {
                let behind =
                    serde_json::to_string(&overlay.behind).expect("a list of names serialises");
                self.conn().execute(
                    "UPDATE overlay_hosts SET pending = ?3, behind = ?4
                     WHERE overlay_id = ?1 AND host_id = ?2",
                    params![id, host_id, overlay.pending, behind],
                )?;
            }
        }
        Ok(())
    }

    /// Records a folder uploaded into an overlay (its own, or a global one as an admin).
    pub(crate) fn set_upload_summary(
        &self,
        session: &Session,
        id: i64,
        files: u64,
        bytes: u64,
    ) -> Result<Overlay> {
        let overlay = self.writable_overlay(session, id)?;
        self.update_overlay(
            session,
            id,
            OverlaySource::Upload { files, bytes },
            overlay.description,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn overlay_from_row(
    id: i64,
    owner: Option<i64>,
    name: String,
    source: &str,
    description: String,
    used_by: Vec<String>,
    updated_ms: i64,
    hosts: Vec<OverlayHost>,
) -> Result<Overlay> {
    Ok(Overlay {
        id,
        host_name: host_name(owner, &name)?,
        name,
        global: owner.is_none(),
        source: serde_json::from_str(source)
            .map_err(|e| Error::Invalid(format!("overlay {id} has an unreadable source: {e}")))?,
        description,
        used_by,
        updated_ms,
        hosts,
    })
}

fn overlay_hosts(conn: &rusqlite::Connection, overlay_id: i64) -> Result<Vec<OverlayHost>> {
    let mut stmt = conn.prepare(
        "SELECT oh.host_id, h.name, oh.filled_ms, oh.pending, oh.behind FROM overlay_hosts oh
         JOIN hosts h ON h.id = oh.host_id WHERE oh.overlay_id = ?1 ORDER BY h.name COLLATE natural_order",
    )?;
    let hosts = stmt
        .query_map([overlay_id], |r| {
            Ok(OverlayHost {
                host_id: r.get(0)?,
                host: r.get(1)?,
                filled_ms: r.get(2)?,
                pending: r.get(3)?,
                behind: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(hosts)
}

fn not_found(id: i64) -> Error {
    Error::NotFound(format!("overlay {id} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(host_name(None, "sourcemod").unwrap().as_str(), "sourcemod");
        assert_eq!(host_name(Some(7), "maps").unwrap().as_str(), "u7-maps");
        assert_eq!(
            host_name(None, "u12-maps").unwrap_err().to_string(),
            "global overlay names cannot look like u<number>-…, which users' own overlays use on hosts: \"u12-maps\""
        );
        assert!(host_name(None, "ux-maps").is_ok());
        assert!(host_name(None, "u-maps").is_ok());
        assert_eq!(
            host_name(Some(123), &"a".repeat(30))
                .unwrap_err()
                .to_string(),
            format!(
                "overlay name \"{}\" is too long: at most 27 characters",
                "a".repeat(30)
            )
        );
        assert!(host_name(Some(1), "../x").is_err());
    }
}
