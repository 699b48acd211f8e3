//! Game servers in the app's model: each belongs to one user, lives on one host and is
//! live-linked to one of its owner's blueprints. A server's own settings are only its
//! name, host and ports (the game port the user picks, and a client and a SourceTV port the
//! app hands out, so that no two servers on a host share any) and the host's cores it is
//! pinned to, if any.

use crate::accounts::Session;
use crate::blueprints::Placement;
use crate::error::{Error, Result};
use crate::store::Store;
pub use left4me_protocol::model::{NewServer, Server};
use left4me_protocol::{InstanceSpec, ServerName};
use rusqlite::{OptionalExtension, params};
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

/// What a job needs to act on a server on its host.
#[derive(Debug, Clone)]
pub(crate) struct ServerTarget {
    pub id: i64,
    pub owner: i64,
    pub name: ServerName,
    pub host_id: i64,
    pub place: Placement,
}

/// A server's columns, with its host's and blueprint's names and the spec last applied.
const SERVER_COLUMNS: &str =
    "SELECT s.id, s.name, s.host_id, h.name, s.blueprint_id, b.name, s.port,
            s.applied_spec, s.client_port, s.tv_port, h.bind_address, s.cores
     FROM servers s JOIN hosts h ON h.id = s.host_id JOIN blueprints b ON b.id = s.blueprint_id";

/// Where the server's spec puts it on its host.
fn placement(server: &Server, bind_address: Option<std::net::Ipv4Addr>) -> Placement {
    Placement {
        ip: bind_address,
        port: server.port,
        client_port: server.client_port,
        tv_port: server.tv_port,
        cores: server.cores.clone(),
    }
}

/// A `cores` column: a JSON array of core numbers.
fn cores_column(r: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Vec<u32>> {
    let text: String = r.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
    })
}

/// A row of `SERVER_COLUMNS`: the server (its pending changes not yet known), the spec its
/// host last received, and where it sits on the host.
fn server_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Server, Option<String>, Placement)> {
    let server = Server {
        id: r.get(0)?,
        name: ServerName::new(r.get::<_, String>(1)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?,
        host_id: r.get(2)?,
        host: r.get(3)?,
        blueprint_id: r.get(4)?,
        blueprint: r.get(5)?,
        port: r.get(6)?,
        client_port: r.get(8)?,
        tv_port: r.get(9)?,
        cores: cores_column(r, 11)?,
        pending_changes: false,
    };
    let bind_address = crate::hosts::bind_address(r.get(10)?);
    let place = placement(&server, bind_address);
    Ok((server, r.get::<_, Option<String>>(7)?, place))
}

impl Store {
    /// The caller's servers, by host and name. One query for the rows; each blueprint is
    /// rendered once for the pending-changes check, however many servers share it.
    pub fn servers(&self, session: &Session) -> Result<Vec<Server>> {
        let me = self.actor(session)?;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "{SERVER_COLUMNS} WHERE s.owner_id = ?1 ORDER BY h.name COLLATE natural_order, s.name COLLATE natural_order"
        ))?;
        let rows = stmt
            .query_map([me.id], server_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut rendered: HashMap<i64, InstanceSpec> = HashMap::new();
        rows.into_iter()
            .map(|(mut server, applied, place)| {
                let spec = match rendered.entry(server.blueprint_id) {
                    Entry::Occupied(spec) => spec.into_mut(),
                    Entry::Vacant(slot) => slot.insert(Self::render_spec(
                        &conn,
                        me.id,
                        server.blueprint_id,
                        &place,
                    )?),
                };
                place.apply_to(spec);
                server.pending_changes = applied.is_some_and(|applied| applied != spec.to_yaml());
                Ok(server)
            })
            .collect()
    }

    /// One of the caller's servers; another user's looks exactly like a missing one.
    pub fn server(&self, session: &Session, id: i64) -> Result<Server> {
        let me = self.actor(session)?;
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("{SERVER_COLUMNS} WHERE s.id = ?1 AND s.owner_id = ?2"),
                params![id, me.id],
                server_row,
            )
            .optional()?;
        let (mut server, applied, place) = row.ok_or_else(|| not_found(id))?;
        let current = Self::render_spec(&conn, me.id, server.blueprint_id, &place)?;
        server.pending_changes = applied.is_some_and(|applied| applied != current.to_yaml());
        Ok(server)
    }

    /// Creates a server in the model. The name and game port must be free on the host; the
    /// blueprint must be the caller's. The client and SourceTV ports are the first free ones
    /// on the host from 1000 and 2000 above the game port. Nothing runs on the host until
    /// its first start.
    pub fn create_server(&self, session: &Session, new: NewServer) -> Result<Server> {
        let me = self.actor(session)?;
        let name = ServerName::new(new.name)?;
        let id = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let host: String = tx
                .query_row("SELECT name FROM hosts WHERE id = ?1", [new.host_id], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or_else(|| Error::NotFound(format!("host {} does not exist", new.host_id)))?;
            // Validates the port and that the blueprint is the caller's and renders.
            Self::render_spec(&tx, me.id, new.blueprint_id, &Placement::port(new.port))?;
            check_free(&tx, new.host_id, &host, name.as_str(), new.port, None)?;
            let mut taken = ports_on_host(&tx, new.host_id)?;
            taken.insert(new.port);
            let (client_port, tv_port) = (
                free_port(new.port.saturating_add(CLIENT_PORT_OFFSET), &mut taken)?,
                free_port(new.port.saturating_add(TV_PORT_OFFSET), &mut taken)?,
            );
            tx.execute(
                "INSERT INTO servers (owner_id, host_id, blueprint_id, name, port, created_ms,
                                      client_port, tv_port)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    me.id,
                    new.host_id,
                    new.blueprint_id,
                    name.as_str(),
                    new.port,
                    self.now_ms(),
                    client_port,
                    tv_port
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            id
        };
        self.server(session, id)
    }

    /// Links a server to another of the caller's blueprints; applied on its next start or
    /// restart.
    pub fn reassign_server(&self, session: &Session, id: i64, blueprint_id: i64) -> Result<Server> {
        let me = self.actor(session)?;
        let server = self.server(session, id)?;
        {
            let conn = self.conn();
            Self::render_spec(&conn, me.id, blueprint_id, &Placement::port(server.port))?;
            conn.execute(
                "UPDATE servers SET blueprint_id = ?2 WHERE id = ?1 AND owner_id = ?3",
                params![id, blueprint_id, me.id],
            )?;
        }
        self.server(session, id)
    }

    /// Pins one of the caller's servers to physical cores of its host, or unpins it (no
    /// cores); its next start or restart applies it. The host must say it can pin (cgroup v2
    /// with the cpuset controller) and have each core.
    pub fn pin_server(&self, session: &Session, id: i64, cores: Vec<u32>) -> Result<Server> {
        let me = self.actor(session)?;
        let server = self.server(session, id)?;
        if !cores.is_empty() {
            let host = self.host_by_id(server.host_id)?;
            let facts = host.facts.as_ref().filter(|f| !f.cores.is_empty());
            let Some(facts) = facts else {
                return Err(Error::Invalid(format!(
                    "host {} has not told its cores yet: refresh its facts (an older agent does not tell them)",
                    host.name
                )));
            };
            if let Some(why) = &facts.pinning_refused {
                return Err(Error::Invalid(format!(
                    "host {} cannot pin servers to cores: {why}",
                    host.name
                )));
            }
            let limits = left4me_protocol::limits::Limits {
                cores: cores.clone(),
                ..Default::default()
            };
            limits.check().map_err(Error::Invalid)?;
            if let Some(core) = cores.iter().find(|c| **c as usize >= facts.cores.len()) {
                return Err(Error::Invalid(format!(
                    "core {core} does not exist: host {} has cores 0-{}",
                    host.name,
                    facts.cores.len() - 1
                )));
            }
        }
        let mut cores = cores;
        cores.sort_unstable();
        self.conn().execute(
            "UPDATE servers SET cores = ?2 WHERE id = ?1 AND owner_id = ?3",
            params![id, serde_json::to_string(&cores).expect("numbers"), me.id],
        )?;
        self.server(session, id)
    }

    /// A caller's server with what a job needs; checks ownership.
    pub(crate) fn server_target(&self, session: &Session, id: i64) -> Result<ServerTarget> {
        let me = self.actor(session)?;
        self.server_target_where(id, Some(me.id))?
            .ok_or_else(|| not_found(id))
    }

    /// Every server on a host, whoever owns it (for a host-wide action of an admin's).
    pub(crate) fn server_ids_on_host(&self, host_id: i64) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM servers WHERE host_id = ?1 ORDER BY id")?;
        let ids = stmt
            .query_map([host_id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    }

    /// A server as a running job reads it (ownership was checked when it was queued).
    pub(crate) fn server_target_by_id(&self, id: i64) -> Result<Option<ServerTarget>> {
        self.server_target_where(id, None)
    }

    fn server_target_where(&self, id: i64, owner: Option<i64>) -> Result<Option<ServerTarget>> {
        self.conn()
            .query_row(
                "SELECT s.id, s.owner_id, s.name, s.host_id, s.port, s.client_port, s.tv_port,
                        h.bind_address, s.cores
                 FROM servers s JOIN hosts h ON h.id = s.host_id
                 WHERE s.id = ?1 AND (?2 IS NULL OR s.owner_id = ?2)",
                params![id, owner],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        Placement {
                            ip: crate::hosts::bind_address(r.get(7)?),
                            port: r.get(4)?,
                            client_port: r.get(5)?,
                            tv_port: r.get(6)?,
                            cores: cores_column(r, 8)?,
                        },
                    ))
                },
            )
            .optional()?
            .map(|(id, owner, name, host_id, place)| {
                Ok(ServerTarget {
                    id,
                    owner,
                    name: ServerName::new(name)?,
                    host_id,
                    place,
                })
            })
            .transpose()
    }

    /// The spec one of the caller's servers gets at its next start or restart.
    pub fn server_spec(&self, session: &Session, id: i64) -> Result<InstanceSpec> {
        let target = self.server_target(session, id)?;
        self.current_spec(&target)
    }

    /// The spec a server runs now, rendered from its current blueprint.
    pub(crate) fn current_spec(&self, target: &ServerTarget) -> Result<InstanceSpec> {
        let conn = self.conn();
        let blueprint_id: i64 = conn
            .query_row(
                "SELECT blueprint_id FROM servers WHERE id = ?1",
                [target.id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| not_found(target.id))?;
        Self::render_spec(&conn, target.owner, blueprint_id, &target.place)
    }

    /// Records the spec the host was given.
    /// The spec the server's host last received from this app, if any.
    pub(crate) fn applied_spec(&self, server_id: i64) -> Result<Option<InstanceSpec>> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT applied_spec FROM servers WHERE id = ?1",
                [server_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(text.and_then(|t| InstanceSpec::from_yaml(&t).ok()))
    }

    pub(crate) fn set_applied_spec(&self, server_id: i64, spec: &InstanceSpec) -> Result<()> {
        self.conn().execute(
            "UPDATE servers SET applied_spec = ?2 WHERE id = ?1",
            params![server_id, spec.to_yaml()],
        )?;
        Ok(())
    }

    /// Forgets a server once its host deleted it.
    pub(crate) fn remove_server_row(&self, server_id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM servers WHERE id = ?1", [server_id])?;
        Ok(())
    }
}

/// Where the app hands out a server's client and SourceTV ports from: this far above its
/// game port, so that game ports picked one after another (27015, 27016, …) never land on
/// them, as they would on srcds's defaults (27005 and 27020).
pub const CLIENT_PORT_OFFSET: u16 = 1000;
pub const TV_PORT_OFFSET: u16 = 2000;

/// Every port the servers on a host use: game, client and SourceTV.
fn ports_on_host(conn: &rusqlite::Connection, host_id: i64) -> Result<BTreeSet<u16>> {
    let mut stmt =
        conn.prepare("SELECT port, client_port, tv_port FROM servers WHERE host_id = ?1")?;
    let rows = stmt.query_map([host_id], |r| {
        Ok([
            Some(r.get::<_, u16>(0)?),
            r.get::<_, Option<u16>>(1)?,
            r.get::<_, Option<u16>>(2)?,
        ])
    })?;
    let mut ports = BTreeSet::new();
    for row in rows {
        ports.extend(row?.into_iter().flatten());
    }
    Ok(ports)
}

/// The first port from `from` up not in `taken`, which it joins.
fn free_port(from: u16, taken: &mut BTreeSet<u16>) -> Result<u16> {
    let port = (from..=u16::MAX)
        .find(|p| !taken.contains(p))
        .ok_or_else(|| Error::Conflict("no free port is left on this host".into()))?;
    taken.insert(port);
    Ok(port)
}

/// Refuses a name or port that another server on the host has (as its game, client or
/// SourceTV port). The other server may be another user's: the message says what is taken,
/// not by whom.
fn check_free(
    conn: &rusqlite::Connection,
    host_id: i64,
    host: &str,
    name: &str,
    port: u16,
    except: Option<i64>,
) -> Result<()> {
    let except = except.unwrap_or(-1);
    let taken = |sql: &str, value: &dyn rusqlite::ToSql| -> Result<bool> {
        Ok(conn.query_row(sql, params![host_id, value, except], |r| r.get::<_, i64>(0))? > 0)
    };
    if taken(
        "SELECT count(*) FROM servers WHERE host_id = ?1 AND name = ?2 AND id != ?3",
        &name,
    )? {
        return Err(Error::Conflict(format!(
            "host {host:?} already has a server named {name:?}"
        )));
    }
    if taken(
        "SELECT count(*) FROM servers WHERE host_id = ?1 AND ?2 IN (port, client_port, tv_port)
         AND id != ?3",
        &port,
    )? {
        return Err(Error::Conflict(format!(
            "port {port} is already used by another server on host {host:?}"
        )));
    }
    Ok(())
}

fn not_found(id: i64) -> Error {
    Error::NotFound(format!("server {id} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::NewHost;
    use left4me_protocol::agent::HostFacts;
    use left4me_protocol::model::BlueprintDraft;
    use left4me_protocol::{LaunchParams, MapName};

    fn world(facts: HostFacts) -> (tempfile::TempDir, Store, Session, Server, Server) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("left4me.db")).unwrap();
        let admin = store.create_first_admin("admin", "admin password").unwrap();
        let host = store
            .add_host(
                &admin,
                NewHost {
                    name: "h1".into(),
                    address: "10.0.0.1".into(),
                    port: 22,
                    admin_user: "root".into(),
                    bind_address: None,
                },
            )
            .unwrap();
        store.set_host_facts(host.id, &facts).unwrap();
        let blueprint = store
            .create_blueprint(
                &admin,
                BlueprintDraft {
                    name: "coop".into(),
                    overlays: vec![],
                    launch: LaunchParams {
                        map: MapName::new("c1m1_hotel").unwrap(),
                        max_players: 8,
                        tickrate: 30,
                        flags: vec![],
                    },
                    cvars: Default::default(),
                    restart_when_hung: false,
                    rollout_canary: false,
                    limits: Default::default(),
                },
            )
            .unwrap();
        let new = |name: &str, port| NewServer {
            name: name.into(),
            host_id: host.id,
            blueprint_id: blueprint.id,
            port,
        };
        let one = store.create_server(&admin, new("one", 27015)).unwrap();
        let two = store.create_server(&admin, new("two", 27016)).unwrap();
        (dir, store, admin, one, two)
    }

    fn four_cores() -> HostFacts {
        HostFacts {
            cpus: 8,
            cores: (0..4).map(|c| vec![c, c + 4]).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_server_is_pinned_to_its_own_cores_and_its_next_start_applies_them() {
        let (_dir, store, admin, one, two) = world(four_cores());
        store
            .set_applied_spec(one.id, &store.server_spec(&admin, one.id).unwrap())
            .unwrap();
        let pinned = store.pin_server(&admin, one.id, vec![3, 1]).unwrap();
        assert_eq!(pinned.cores, vec![1, 3]);
        assert!(pinned.pending_changes, "a restart applies it");
        assert_eq!(
            store.server_spec(&admin, one.id).unwrap().limits.cores,
            vec![1, 3]
        );
        // Its blueprint and the other server of it are untouched.
        assert!(
            store
                .server_spec(&admin, two.id)
                .unwrap()
                .limits
                .cores
                .is_empty()
        );
        let unpinned = store.pin_server(&admin, one.id, vec![]).unwrap();
        assert!(unpinned.cores.is_empty());
        assert!(!unpinned.pending_changes);
    }

    #[test]
    fn pinning_is_refused_where_the_host_cannot_and_changes_nothing() {
        let (_dir, store, admin, one, _) = world(HostFacts {
            pinning_refused: Some(
                "pinning to cores needs cgroup v2, and this host's systemd runs cgroup v1".into(),
            ),
            ..four_cores()
        });
        let err = store.pin_server(&admin, one.id, vec![0]).unwrap_err();
        assert!(
            err.to_string()
                .contains("host h1 cannot pin servers to cores: pinning to cores needs cgroup v2"),
            "{err}"
        );
        assert!(store.server(&admin, one.id).unwrap().cores.is_empty());
        // Unpinning is always allowed: it is how a server leaves cores behind.
        store.pin_server(&admin, one.id, vec![]).unwrap();

        let (_dir, store, admin, one, _) = world(four_cores());
        store.pin_server(&admin, one.id, vec![2]).unwrap();
        for (cores, says) in [
            (vec![4], "core 4 does not exist: host h1 has cores 0-3"),
            (vec![1, 1], "core 1 is listed twice"),
        ] {
            let err = store.pin_server(&admin, one.id, cores).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
            assert_eq!(store.server(&admin, one.id).unwrap().cores, vec![2]);
        }

        let (_dir, store, admin, one, _) = world(HostFacts::default());
        let err = store.pin_server(&admin, one.id, vec![0]).unwrap_err();
        assert!(err.to_string().contains("has not told its cores"), "{err}");

        // A blueprint has no cores of its own: its servers share it across hosts.
        let mut draft = store.blueprints(&admin).unwrap()[0].clone();
        let err = store
            .update_blueprint(
                &admin,
                draft.id,
                BlueprintDraft {
                    name: std::mem::take(&mut draft.name),
                    overlays: vec![],
                    launch: draft.launch.clone(),
                    cvars: draft.cvars.clone(),
                    restart_when_hung: false,
                    rollout_canary: false,
                    limits: left4me_protocol::limits::Limits {
                        cores: vec![0],
                        ..Default::default()
                    },
                },
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("each server picks its host's cores"),
            "{err}"
        );
    }
}
