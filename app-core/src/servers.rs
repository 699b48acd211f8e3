//! Game servers in the app's model: each belongs to one user, lives on one host and is
//! live-linked to one of its owner's blueprints. A server's own settings are only its
//! name, host and port.

use crate::accounts::Session;
use crate::error::{Error, Result};
use crate::store::Store;
pub use left4me_protocol::model::{NewServer, Server};
use left4me_protocol::{InstanceSpec, ServerName};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// What a job needs to act on a server on its host.
#[derive(Debug, Clone)]
pub(crate) struct ServerTarget {
    pub id: i64,
    pub owner: i64,
    pub name: ServerName,
    pub host_id: i64,
    pub port: u16,
}

/// A server's columns, with its host's and blueprint's names and the spec last applied.
const SERVER_COLUMNS: &str =
    "SELECT s.id, s.name, s.host_id, h.name, s.blueprint_id, b.name, s.port, s.applied_spec
     FROM servers s JOIN hosts h ON h.id = s.host_id JOIN blueprints b ON b.id = s.blueprint_id";

/// A row of `SERVER_COLUMNS`: the server (its pending changes not yet known) and the spec
/// its host last received.
fn server_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Server, Option<String>)> {
    Ok((
        Server {
            id: r.get(0)?,
            name: ServerName::new(r.get::<_, String>(1)?).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
            })?,
            host_id: r.get(2)?,
            host: r.get(3)?,
            blueprint_id: r.get(4)?,
            blueprint: r.get(5)?,
            port: r.get(6)?,
            pending_changes: false,
        },
        r.get::<_, Option<String>>(7)?,
    ))
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
            .map(|(mut server, applied)| {
                let spec = match rendered.entry(server.blueprint_id) {
                    Entry::Occupied(spec) => spec.into_mut(),
                    Entry::Vacant(slot) => slot.insert(Self::render_spec(
                        &conn,
                        me.id,
                        server.blueprint_id,
                        server.port,
                    )?),
                };
                spec.port = server.port;
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
        let (mut server, applied) = row.ok_or_else(|| not_found(id))?;
        let current = Self::render_spec(&conn, me.id, server.blueprint_id, server.port)?;
        server.pending_changes = applied.is_some_and(|applied| applied != current.to_yaml());
        Ok(server)
    }

    /// Creates a server in the model. The name and port must be free on the host; the
    /// blueprint must be the caller's. Nothing runs on the host until its first start.
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
            Self::render_spec(&tx, me.id, new.blueprint_id, new.port)?;
            check_free(&tx, new.host_id, &host, name.as_str(), new.port, None)?;
            tx.execute(
                "INSERT INTO servers (owner_id, host_id, blueprint_id, name, port, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    me.id,
                    new.host_id,
                    new.blueprint_id,
                    name.as_str(),
                    new.port,
                    self.now_ms()
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
            Self::render_spec(&conn, me.id, blueprint_id, server.port)?;
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
                "SELECT id, owner_id, name, host_id, port FROM servers
                 WHERE id = ?1 AND (?2 IS NULL OR owner_id = ?2)",
                params![id, owner],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, u16>(4)?,
                    ))
                },
            )
            .optional()?
            .map(|(id, owner, name, host_id, port)| {
                Ok(ServerTarget {
                    id,
                    owner,
                    name: ServerName::new(name)?,
                    host_id,
                    port,
                })
            })
            .transpose()
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
        Self::render_spec(&conn, target.owner, blueprint_id, target.port)
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

/// Refuses a name or port that another server on the host has. The other server may be
/// another user's: the message says what is taken, not by whom.
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
        "SELECT count(*) FROM servers WHERE host_id = ?1 AND port = ?2 AND id != ?3",
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
