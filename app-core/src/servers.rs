//! Game servers in the app's model: each belongs to one user, lives on one host and is
//! live-linked to one of its owner's blueprints. A server's own settings are only its
//! name, host and ports: the game port the user picks, and a client and a SourceTV port the
//! app hands out, so that no two servers on a host share any.

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
            s.applied_spec, s.client_port, s.tv_port, h.bind_address
     FROM servers s JOIN hosts h ON h.id = s.host_id JOIN blueprints b ON b.id = s.blueprint_id";

/// Where the server's spec puts it on its host.
fn placement(server: &Server, bind_address: Option<std::net::Ipv4Addr>) -> Placement {
    Placement {
        ip: bind_address,
        port: server.port,
        client_port: server.client_port,
        tv_port: server.tv_port,
    }
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

    /// A caller's server with what a job needs; checks ownership.
    pub(crate) fn server_target(&self, session: &Session, id: i64) -> Result<ServerTarget> {
        let me = self.actor(session)?;
        self.server_target_where(id, Some(me.id))?
            .ok_or_else(|| not_found(id))
    }

    /// A server as a running job reads it (ownership was checked when it was queued).
    pub(crate) fn server_target_by_id(&self, id: i64) -> Result<Option<ServerTarget>> {
        self.server_target_where(id, None)
    }

    fn server_target_where(&self, id: i64, owner: Option<i64>) -> Result<Option<ServerTarget>> {
        self.conn()
            .query_row(
                "SELECT s.id, s.owner_id, s.name, s.host_id, s.port, s.client_port, s.tv_port,
                        h.bind_address
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
