//! Blueprints: what a server runs (overlays, launch parameters, cvars), private to the
//! user who made it.
//!
//! Servers are live-linked to one blueprint and have no settings of their own beyond name,
//! host and port. An edit changes nothing on the hosts at once: each server's next start
//! or restart renders its spec from the blueprint again.

use crate::accounts::Session;
use crate::error::{Error, Result};
use crate::store::Store;
pub use left4me_protocol::model::{Blueprint, BlueprintDraft, LinkedServer};
use left4me_protocol::{InstanceSpec, SPEC_VERSION};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// The port used to validate a blueprint on its own; each server brings its real one.
const PLACEHOLDER_PORT: u16 = 27015;

fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "invalid blueprint name {name:?}: use 1-64 printable characters"
        )));
    }
    Ok(())
}

impl Store {
    /// The caller's blueprints by name.
    pub fn blueprints(&self, session: &Session) -> Result<Vec<Blueprint>> {
        let me = self.actor(session)?;
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id FROM blueprints WHERE owner_id = ?1 ORDER BY name COLLATE natural_order",
            )?;
            stmt.query_map([me.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        ids.into_iter()
            .map(|id| self.blueprint(session, id))
            .collect()
    }

    /// One of the caller's blueprints. Another user's looks exactly like a missing one.
    pub fn blueprint(&self, session: &Session, id: i64) -> Result<Blueprint> {
        let me = self.actor(session)?;
        let conn = self.conn();
        let (name, launch, cvars, updated_ms, restart_when_hung, rollout_canary, limits): (
            String,
            String,
            String,
            i64,
            bool,
            bool,
            String,
        ) = conn
            .query_row(
                "SELECT name, launch, cvars, updated_ms, restart_when_hung, rollout_canary, limits
                 FROM blueprints WHERE id = ?1 AND owner_id = ?2",
                params![id, me.id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| not_found(id))?;
        let overlays = overlay_names(&conn, id)?;
        let mut stmt = conn.prepare(
            "SELECT s.id, s.name, h.name FROM servers s JOIN hosts h ON h.id = s.host_id
             WHERE s.blueprint_id = ?1 ORDER BY h.name COLLATE natural_order, s.name COLLATE natural_order",
        )?;
        let servers = stmt
            .query_map([id], |r| {
                Ok(LinkedServer {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    host: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let corrupt = |e: serde_json::Error| {
            Error::Invalid(format!("blueprint {id} has unreadable settings: {e}"))
        };
        Ok(Blueprint {
            id,
            name,
            overlays,
            launch: serde_json::from_str(&launch).map_err(corrupt)?,
            cvars: serde_json::from_str(&cvars).map_err(corrupt)?,
            restart_when_hung,
            rollout_canary,
            limits: serde_json::from_str(&limits).map_err(corrupt)?,
            servers,
            updated_ms,
        })
    }

    pub fn create_blueprint(&self, session: &Session, draft: BlueprintDraft) -> Result<Blueprint> {
        let me = self.actor(session)?;
        validate_name(&draft.name)?;
        let id = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let overlays = Self::resolve_overlays(&tx, me.id, &draft.overlays)?;
            check_spec(&draft, &overlays)?;
            let now = self.now_ms();
            let inserted = tx.execute(
                "INSERT INTO blueprints (owner_id, name, launch, cvars, created_ms, updated_ms,
                    restart_when_hung, limits, rollout_canary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                params![
                    me.id,
                    draft.name,
                    to_json(&draft.launch),
                    to_json(&draft.cvars),
                    now,
                    draft.restart_when_hung,
                    to_json(&draft.limits),
                    draft.rollout_canary
                ],
            )?;
            if inserted == 0 {
                return Err(name_taken(&draft.name));
            }
            let id = tx.last_insert_rowid();
            write_overlays(&tx, id, &overlays)?;
            tx.commit()?;
            id
        };
        self.blueprint(session, id)
    }

    /// Replaces a blueprint's settings. Its servers pick them up on their next start or
    /// restart.
    pub fn update_blueprint(
        &self,
        session: &Session,
        id: i64,
        draft: BlueprintDraft,
    ) -> Result<Blueprint> {
        let me = self.actor(session)?;
        validate_name(&draft.name)?;
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let owned: bool = tx.query_row(
                "SELECT count(*) FROM blueprints WHERE id = ?1 AND owner_id = ?2",
                params![id, me.id],
                |r| r.get(0),
            )?;
            if !owned {
                return Err(not_found(id));
            }
            let overlays = Self::resolve_overlays(&tx, me.id, &draft.overlays)?;
            check_spec(&draft, &overlays)?;
            let clash: bool = tx.query_row(
                "SELECT count(*) FROM blueprints WHERE owner_id = ?1 AND name = ?2 AND id != ?3",
                params![me.id, draft.name, id],
                |r| r.get(0),
            )?;
            if clash {
                return Err(name_taken(&draft.name));
            }
            tx.execute(
                "UPDATE blueprints SET name = ?2, launch = ?3, cvars = ?4, updated_ms = ?5,
                    restart_when_hung = ?6, limits = ?7, rollout_canary = ?8 WHERE id = ?1",
                params![
                    id,
                    draft.name,
                    to_json(&draft.launch),
                    to_json(&draft.cvars),
                    self.now_ms(),
                    draft.restart_when_hung,
                    to_json(&draft.limits),
                    draft.rollout_canary
                ],
            )?;
            tx.execute(
                "DELETE FROM blueprint_overlays WHERE blueprint_id = ?1",
                [id],
            )?;
            write_overlays(&tx, id, &overlays)?;
            tx.commit()?;
        }
        self.blueprint(session, id)
    }

    /// Deletes a blueprint; refused while servers are linked to it.
    pub fn delete_blueprint(&self, session: &Session, id: i64) -> Result<()> {
        let blueprint = self.blueprint(session, id)?;
        if !blueprint.servers.is_empty() {
            let names: Vec<String> = blueprint
                .servers
                .iter()
                .map(|s| format!("{} on {}", s.name, s.host))
                .collect();
            return Err(Error::Conflict(format!(
                "blueprint {:?} is used by {} server{} ({}): move or delete {} first",
                blueprint.name,
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                if names.len() == 1 { "it" } else { "them" },
            )));
        }
        self.conn()
            .execute("DELETE FROM blueprints WHERE id = ?1", [id])?;
        Ok(())
    }

    /// The spec a server of blueprint `blueprint_id` (owned by `owner`) runs where `place`
    /// puts it on its host.
    pub(crate) fn render_spec(
        conn: &rusqlite::Connection,
        owner: i64,
        blueprint_id: i64,
        place: &Placement,
    ) -> Result<InstanceSpec> {
        let (launch, cvars, restart_when_hung, rollout_canary, limits): (
            String,
            String,
            bool,
            bool,
            String,
        ) = conn
            .query_row(
                "SELECT launch, cvars, restart_when_hung, rollout_canary, limits FROM blueprints
                 WHERE id = ?1 AND owner_id = ?2",
                params![blueprint_id, owner],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?
            .ok_or_else(|| not_found(blueprint_id))?;
        let names = overlay_names(conn, blueprint_id)?;
        let overlays = Self::resolve_overlays(conn, owner, &names)?;
        let corrupt = |e: serde_json::Error| {
            Error::Invalid(format!(
                "blueprint {blueprint_id} has unreadable settings: {e}"
            ))
        };
        let mut spec = InstanceSpec {
            version: SPEC_VERSION,
            port: place.port,
            ip: None,
            client_port: None,
            tv_port: None,
            overlays: overlays
                .into_iter()
                .map(|(_, host_name)| host_name)
                .collect(),
            launch: serde_json::from_str(&launch).map_err(corrupt)?,
            cvars: serde_json::from_str(&cvars).map_err(corrupt)?,
            restart_when_hung,
            rollout_canary,
            limits: serde_json::from_str(&limits).map_err(corrupt)?,
        };
        place.apply_to(&mut spec);
        spec.validate()?;
        Ok(spec)
    }
}

/// Where a server sits on its host: the address it binds, its ports (the client and
/// SourceTV ports None for servers whose host picks them) and the cores it is pinned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    pub ip: Option<std::net::Ipv4Addr>,
    pub port: u16,
    pub client_port: Option<u16>,
    pub tv_port: Option<u16>,
    pub cores: Vec<u32>,
}

impl Placement {
    /// Only a game port: how a blueprint's spec is checked before any server has it.
    pub(crate) fn port(port: u16) -> Placement {
        Placement {
            ip: None,
            port,
            client_port: None,
            tv_port: None,
            cores: Vec::new(),
        }
    }

    /// Puts the server's place into a spec rendered for it.
    pub(crate) fn apply_to(&self, spec: &mut InstanceSpec) {
        spec.port = self.port;
        spec.ip = self.ip;
        spec.client_port = self.client_port;
        spec.tv_port = self.tv_port;
        spec.limits.cores.clone_from(&self.cores);
    }
}

fn check_spec(
    draft: &BlueprintDraft,
    overlays: &[(i64, left4me_protocol::OverlayName)],
) -> Result<()> {
    for (i, name) in draft.overlays.iter().enumerate() {
        if draft.overlays[..i].contains(name) {
            return Err(Error::Invalid(format!("overlay {name:?} is listed twice")));
        }
    }
    if !draft.limits.cores.is_empty() {
        return Err(Error::Invalid(
            "a blueprint cannot pin to cores: each server picks its host's cores on its own page"
                .to_owned(),
        ));
    }
    InstanceSpec {
        version: SPEC_VERSION,
        port: PLACEHOLDER_PORT,
        ip: None,
        client_port: None,
        tv_port: None,
        overlays: overlays.iter().map(|(_, name)| name.clone()).collect(),
        launch: draft.launch.clone(),
        cvars: draft.cvars.clone(),
        restart_when_hung: draft.restart_when_hung,
        rollout_canary: draft.rollout_canary,
        limits: draft.limits.clone(),
    }
    .validate()
    .map_err(Into::into)
}

/// A blueprint's overlay names, top first.
fn overlay_names(conn: &rusqlite::Connection, blueprint_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT o.name FROM blueprint_overlays bo JOIN overlays o ON o.id = bo.overlay_id
         WHERE bo.blueprint_id = ?1 ORDER BY bo.position",
    )?;
    let names = stmt
        .query_map([blueprint_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

fn write_overlays(
    tx: &rusqlite::Transaction<'_>,
    blueprint_id: i64,
    overlays: &[(i64, left4me_protocol::OverlayName)],
) -> Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO blueprint_overlays (blueprint_id, position, overlay_id) VALUES (?1, ?2, ?3)",
    )?;
    for (position, (overlay_id, _)) in overlays.iter().enumerate() {
        stmt.execute(params![blueprint_id, position as i64, overlay_id])?;
    }
    Ok(())
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("blueprint settings serialise")
}

fn not_found(id: i64) -> Error {
    Error::NotFound(format!("blueprint {id} does not exist"))
}

fn name_taken(name: &str) -> Error {
    Error::Conflict(format!("you already have a blueprint named {name:?}"))
}
