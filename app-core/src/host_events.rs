//! What hosts recorded on their own while nobody watched ("while you were away"): the
//! events of each host's outbox (`l4d2-agent events`) once the app read them. Each is kept
//! once (by host and sequence number), the newest read is remembered per host so only what
//! is new is asked for, and a gap the host's retention left is counted, not hidden. Like
//! hosts, they are shared by every user of this install.

use crate::accounts::Session;
use crate::error::Result;
use crate::store::Store;
use left4me_protocol::agent::HostEvents;
use left4me_protocol::events::HostEvent;
use left4me_protocol::model::{HostEventRow, HostEventsReport};
use rusqlite::{OptionalExtension, params};

/// The most events `host_events` lists.
pub const LISTED: usize = 200;

/// How many events were lost between `seen` (the newest read before) and what the host
/// still keeps (`first_kept`), given the newest it has given (`last`).
pub fn missed(seen: u64, read: &HostEvents) -> u64 {
    if read.last <= seen {
        return 0;
    }
    let first = if read.first_kept == 0 {
        // It keeps none: everything after `seen` is gone.
        read.last + 1
    } else {
        read.first_kept
    };
    first.saturating_sub(seen + 1)
}

impl Store {
    /// The newest event read from the host.
    pub(crate) fn events_seen(&self, host_id: i64) -> Result<u64> {
        let seen: Option<i64> = self
            .conn()
            .query_row(
                "SELECT events_seen FROM hosts WHERE id = ?1",
                [host_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(seen.unwrap_or(0).max(0) as u64)
    }

    /// Keeps what a host's outbox answered; returns the events new to the app, newest
    /// first. An event already kept is not kept twice.
    pub(crate) fn record_host_events(
        &self,
        host_id: i64,
        read: &HostEvents,
    ) -> Result<Vec<HostEventRow>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let (seen, host): (i64, String) = tx.query_row(
            "SELECT events_seen, name FROM hosts WHERE id = ?1",
            [host_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let gap = missed(seen.max(0) as u64, read);
        let mut fresh = Vec::new();
        for event in &read.events {
            let text = serde_json::to_string(event).expect("events serialise");
            let added = tx.execute(
                "INSERT OR IGNORE INTO host_events (host_id, seq, event) VALUES (?1, ?2, ?3)",
                params![host_id, event.seq as i64, text],
            )?;
            if added == 1 {
                fresh.push(HostEventRow {
                    id: tx.last_insert_rowid(),
                    host_id,
                    host: host.clone(),
                    event: event.clone(),
                    dismissed: false,
                });
            }
        }
        // Everything up to the host's newest was either answered or dropped.
        let newest = read.events.iter().map(|e| e.seq).fold(read.last, u64::max);
        tx.execute(
            "UPDATE hosts SET events_seen = MAX(events_seen, ?2), events_missed = events_missed + ?3,
                events_retention_days = ?4 WHERE id = ?1",
            params![
                host_id,
                newest as i64,
                gap as i64,
                read.retention.days
            ],
        )?;
        tx.commit()?;
        fresh.reverse();
        Ok(fresh)
    }

    /// The events kept, newest first: those not dismissed, or the last [`LISTED`] with
    /// `all`.
    pub fn host_events(&self, session: &Session, all: bool) -> Result<HostEventsReport> {
        self.actor(session)?;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT e.id, e.host_id, h.name, e.event, e.dismissed FROM host_events e
             JOIN hosts h ON h.id = e.host_id {}
             ORDER BY e.id DESC LIMIT {LISTED}",
            if all { "" } else { "WHERE e.dismissed = 0" }
        ))?;
        let events = stmt
            .query_map([], |r| {
                let text: String = r.get(3)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    text,
                    r.get::<_, bool>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|(id, host_id, host, text, dismissed)| {
                Some(HostEventRow {
                    id,
                    host_id,
                    host,
                    event: serde_json::from_str::<HostEvent>(&text).ok()?,
                    dismissed,
                })
            })
            .collect();
        let (missed, retention_days): (i64, Option<u32>) = conn.query_row(
            "SELECT COALESCE(SUM(events_missed), 0), MIN(events_retention_days) FROM hosts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(HostEventsReport {
            events,
            missed: missed.max(0) as u64,
            retention_days,
        })
    }

    /// Marks every event up to `up_to` as seen; those read later stay.
    pub fn dismiss_host_events(&self, session: &Session, up_to: i64) -> Result<()> {
        self.actor(session)?;
        self.conn().execute(
            "UPDATE host_events SET dismissed = 1 WHERE id <= ?1",
            [up_to],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use left4me_protocol::agent::Retention;

    fn read(first_kept: u64, last: u64) -> HostEvents {
        HostEvents {
            events: Vec::new(),
            first_kept,
            last,
            retention: Retention {
                days: 30,
                events: 5000,
            },
        }
    }

    #[test]
    fn events_are_kept_once_read_from_where_the_app_left_off_and_dismissed_up_to_a_point() {
        use left4me_protocol::events::{EventKind, StopCause};
        use left4me_protocol::model::NewHost;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("left4me.db")).unwrap();
        let admin = store
            .create_first_admin("ann", "a long enough password")
            .unwrap();
        let host = store
            .add_host(
                &admin,
                NewHost {
                    name: "box-1".into(),
                    address: "10.0.0.5".into(),
                    port: 22,
                    admin_user: "root".into(),
                    bind_address: None,
                },
            )
            .unwrap();
        let event = |seq| HostEvent {
            seq,
            at: format!("2026-11-30T18:00:0{seq}.000000Z"),
            server: Some("coop-1".into()),
            what: EventKind::Crashed {
                cause: StopCause::Exited { status: 1 },
                last_lines: vec!["bye".into()],
            },
        };
        let answer = |events: Vec<HostEvent>, first_kept, last| HostEvents {
            events,
            first_kept,
            last,
            ..read(0, 0)
        };
        assert_eq!(store.events_seen(host.id).unwrap(), 0);
        let fresh = store
            .record_host_events(host.id, &answer(vec![event(1), event(2)], 1, 2))
            .unwrap();
        assert_eq!(
            fresh.iter().map(|r| r.event.seq).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(store.events_seen(host.id).unwrap(), 2);
        // The same answer again (two looks racing) adds nothing.
        let again = store
            .record_host_events(host.id, &answer(vec![event(2)], 1, 2))
            .unwrap();
        assert!(again.is_empty());
        let report = store.host_events(&admin, false).unwrap();
        assert_eq!(report.events.len(), 2);
        assert_eq!(report.retention_days, Some(30));
        assert_eq!(report.events[0].host, "box-1");
        // Dismissed up to the first: the second stays until it is dismissed too.
        store
            .dismiss_host_events(&admin, report.events[1].id)
            .unwrap();
        let left = store.host_events(&admin, false).unwrap();
        assert_eq!(
            left.events.iter().map(|r| r.event.seq).collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(store.host_events(&admin, true).unwrap().events.len(), 2);
        // A week later the host dropped 3..=5 before the app read them.
        store
            .record_host_events(host.id, &answer(vec![event(6)], 6, 6))
            .unwrap();
        assert_eq!(store.host_events(&admin, false).unwrap().missed, 3);
        assert_eq!(store.events_seen(host.id).unwrap(), 6);
    }

    #[test]
    fn gaps_left_by_the_hosts_retention_are_counted() {
        // (seen, first kept, last) → missed
        let cases = [
            ((0, 0, 0), 0),
            ((0, 1, 5), 0),
            ((3, 1, 5), 0),
            ((3, 4, 5), 0),
            ((3, 7, 9), 3),
            ((0, 101, 150), 100),
            // The host keeps none, and gave 8 after the 5 read.
            ((5, 0, 8), 3),
            ((9, 1, 9), 0),
        ];
        for ((seen, first, last), want) in cases {
            assert_eq!(
                missed(seen, &read(first, last)),
                want,
                "{seen} {first} {last}"
            );
        }
    }
}
