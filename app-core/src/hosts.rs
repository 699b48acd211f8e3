//! Hosts in the app's model. Hosts are shared by every user of this install (servers of
//! several users may run on one host); only admins add, set up and remove them.

use crate::accounts::Session;
use crate::error::{Error, Result};
use crate::store::Store;
pub use left4me_protocol::agent::HostFacts;
pub use left4me_protocol::model::{Host, HostKeyOffer, HostState, NewHost};

/// How a set-up logged in, as the app remembers it; the secrets stay in the OS keyring.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub(crate) enum RememberedLogin {
    /// The account's password (kept as the host's sudo password).
    Password,
    /// A key file on this computer; its passphrase, if any, is in the keyring.
    KeyFile { path: std::path::PathBuf },
    /// The ssh-agent the app runs with.
    Agent,
}
use rusqlite::{OptionalExtension, params};

fn validate_new_host(new: &NewHost) -> Result<()> {
    let name_ok = !new.name.trim().is_empty()
        && new.name.chars().count() <= 64
        && !new.name.chars().any(char::is_control);
    if !name_ok {
        return Err(Error::Invalid(format!(
            "invalid host name {:?}: use 1-64 printable characters",
            new.name
        )));
    }
    // A DNS name, an IPv4 or an IPv6 address; nothing that ssh could read as an option.
    let address_ok = !new.address.is_empty()
        && new.address.len() <= 253
        && !new.address.starts_with('-')
        && new
            .address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if !address_ok {
        return Err(Error::Invalid(format!(
            "invalid host address {:?}: use a host name or an IP address",
            new.address
        )));
    }
    if new.port == 0 {
        return Err(Error::Invalid("the SSH port must be 1-65535".into()));
    }
    let user_ok = (1..=32).contains(&new.admin_user.len())
        && !new.admin_user.starts_with('-')
        && new
            .admin_user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !user_ok {
        return Err(Error::Invalid(format!(
            "invalid account name {:?}: use letters, digits, '.', '_' or '-'",
            new.admin_user
        )));
    }
    Ok(())
}

const HOST_COLUMNS: &str =
    "id, name, address, port, admin_user, host_key, state, facts, bind_address, public_build";

fn host_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Host, Option<String>)> {
    let state: String = r.get(6)?;
    Ok((
        Host {
            id: r.get(0)?,
            name: r.get(1)?,
            address: r.get(2)?,
            port: r.get(3)?,
            admin_user: r.get(4)?,
            host_key: r.get(5)?,
            state: if state == "ready" {
                HostState::Ready
            } else {
                HostState::New
            },
            facts: None,
            // Stored only after it was parsed; one that no longer parses binds everywhere.
            bind_address: bind_address(r.get(8)?),
            public_build: r.get(9)?,
        },
        r.get(7)?,
    ))
}

/// A host's `bind_address` column: an IPv4 address, written only by `add_host` from a
/// validated one; anything else reads as "all addresses".
pub(crate) fn bind_address(column: Option<String>) -> Option<std::net::Ipv4Addr> {
    column.and_then(|a| a.parse().ok())
}

fn with_facts((mut host, facts): (Host, Option<String>)) -> Host {
    // Facts are a cache of what the host said; unreadable ones are read again next time.
    host.facts = facts.and_then(|f| serde_json::from_str(&f).ok());
    host
}

impl Store {
    /// Every host, by name. All users see hosts: they create servers on them.
    pub fn hosts(&self, session: &Session) -> Result<Vec<Host>> {
        self.actor(session)?;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {HOST_COLUMNS} FROM hosts ORDER BY name COLLATE natural_order"
        ))?;
        let hosts = stmt
            .query_map([], host_from_row)?
            .map(|row| row.map(with_facts))
            .collect::<rusqlite::Result<_>>()?;
        Ok(hosts)
    }

    pub fn host(&self, session: &Session, id: i64) -> Result<Host> {
        self.actor(session)?;
        self.host_by_id(id)
    }

    pub(crate) fn host_by_id(&self, id: i64) -> Result<Host> {
        self.conn()
            .query_row(
                &format!("SELECT {HOST_COLUMNS} FROM hosts WHERE id = ?1"),
                [id],
                host_from_row,
            )
            .optional()?
            .map(with_facts)
            .ok_or_else(|| Error::NotFound(format!("host {id} does not exist")))
    }

    /// Adds a host to the model (admins only). Nothing is contacted yet.
    pub fn add_host(&self, session: &Session, new: NewHost) -> Result<Host> {
        self.actor(session)?.require_admin("add hosts")?;
        validate_new_host(&new)?;
        let conn = self.conn();
        let clash: Option<String> = conn
            .query_row(
                "SELECT name FROM hosts WHERE name = ?1 OR (address = ?2 AND port = ?3)",
                params![new.name, new.address, new.port],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = clash {
            return Err(Error::Conflict(
                if existing.eq_ignore_ascii_case(&new.name) {
                    format!("a host named {existing:?} exists already")
                } else {
                    format!(
                        "{}:{} is already added as host {existing:?}",
                        new.address, new.port
                    )
                },
            ));
        }
        conn.execute(
            "INSERT INTO hosts (name, address, port, admin_user, created_ms, bind_address)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                new.name,
                new.address,
                new.port,
                new.admin_user,
                self.now_ms(),
                new.bind_address.map(|a| a.to_string())
            ],
        )?;
        let id = conn.last_insert_rowid();
        drop(conn);
        self.host_by_id(id)
    }

    /// Records the host key the user confirmed (admins only).
    pub fn confirm_host_key(&self, session: &Session, id: i64, key: &str) -> Result<Host> {
        self.actor(session)?.require_admin("confirm host keys")?;
        self.set_host_column(id, "host_key", Some(key))
    }

    pub(crate) fn set_host_ready(&self, id: i64) -> Result<Host> {
        self.set_host_column(id, "state", Some("ready"))
    }

    pub(crate) fn set_host_facts(&self, id: i64, facts: &HostFacts) -> Result<Host> {
        let json = serde_json::to_string(facts).expect("host facts serialise");
        self.set_host_column(id, "facts", Some(json.as_str()))
    }

    /// Keeps the public build an update check found.
    pub(crate) fn set_public_build(&self, id: i64, build: &str) -> Result<Host> {
        self.set_host_column(id, "public_build", Some(build))
    }

    fn set_host_column(&self, id: i64, column: &str, value: Option<&str>) -> Result<Host> {
        let changed = self.conn().execute(
            &format!("UPDATE hosts SET {column} = ?2 WHERE id = ?1"),
            params![id, value],
        )?;
        if changed == 0 {
            return Err(Error::NotFound(format!("host {id} does not exist")));
        }
        self.host_by_id(id)
    }

    /// Remembers how the host's set-up logged in (no secrets: method and key path).
    pub(crate) fn set_host_setup_login(&self, id: i64, login: &RememberedLogin) -> Result<()> {
        let json = serde_json::to_string(login).expect("a set-up login serialises");
        self.set_host_column(id, "setup_login", Some(json.as_str()))?;
        Ok(())
    }

    pub(crate) fn host_setup_login(&self, id: i64) -> Result<Option<RememberedLogin>> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT setup_login FROM hosts WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Removes a host from the model (admins only); refused while servers are on it.
    pub fn remove_host(&self, session: &Session, id: i64) -> Result<()> {
        self.actor(session)?.require_admin("remove hosts")?;
        let host = self.host_by_id(id)?;
        let servers: i64 = self.conn().query_row(
            "SELECT count(*) FROM servers WHERE host_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        if servers > 0 {
            return Err(Error::Conflict(format!(
                "host {:?} still has {servers} server{}: delete {} first",
                host.name,
                if servers == 1 { "" } else { "s" },
                if servers == 1 { "it" } else { "them" },
            )));
        }
        self.conn()
            .execute("DELETE FROM hosts WHERE id = ?1", [id])?;
        Ok(())
    }
}
