//! Overlays on hosts: uploading a folder into one, filling one from its source (Workshop
//! items or a script), refreshing it everywhere, and making sure a starting server finds
//! every overlay it stacks.

use super::App;
use crate::accounts::Session;
use crate::agent;
use crate::error::{Error, Result};
use crate::hosts::Host;
use crate::jobs::{JobCtx, JobFailure, NewJob};
use crate::overlays::{Overlay, OverlayHost, OverlaySource};
use crate::remote::AgentCall;
use crate::ssh::Connection;
use left4me_protocol::{AgentMessage, InstanceSpec, Job, JobKind, OverlayName};
use std::sync::Arc;

impl App {
    /// Packs a folder from this computer and sends it into an overlay on a host, replacing
    /// what the overlay held there, as a job. Refused by the host while a running server
    /// uses the overlay.
    pub fn upload_overlay(
        self: &Arc<Self>,
        session: &Session,
        overlay_id: i64,
        host_id: i64,
        folder: &std::path::Path,
    ) -> Result<Job> {
        let me = self.store.actor(session)?;
        let overlay = self.store.overlay(session, overlay_id)?;
        let host = self.ready_host(host_id)?;
        let packed = crate::pack::pack_folder(folder)
            .map_err(|e| Error::Invalid(format!("cannot pack {}: {e}", folder.display())))?;
        self.store
            .set_upload_summary(session, overlay_id, packed.files, packed.bytes)?;
        self.host_job(
            fill_job(me.id, &overlay, &host),
            move |app, ctx, _, conn| async move {
                ctx.say(&format!(
                    "sending {} files ({} bytes) into {}",
                    packed.files, packed.bytes, overlay.host_name
                ));
                let messages = agent::run(
                    &conn,
                    &AgentCall::overlay_import(&overlay.host_name),
                    &packed.archive,
                    Some(&ctx),
                )
                .await?;
                app.record_fill(&ctx, &conn, overlay.id, host_id, &messages)
                    .await
            },
        )
    }

    /// Fills an overlay on a host from its source (the Workshop items it lists), as a job.
    pub fn fill_overlay(
        self: &Arc<Self>,
        session: &Session,
        overlay_id: i64,
        host_id: i64,
    ) -> Result<Job> {
        let me = self.store.actor(session)?;
        let overlay = self.store.overlay(session, overlay_id)?;
        if overlay.global {
            me.require_admin("fill global overlays")?;
        }
        if let Some(filled_by) = filled_elsewhere(&overlay.source) {
            return Err(Error::Invalid(format!(
                "overlay {:?} is filled by {filled_by}, not by the host",
                overlay.name,
            )));
        }
        let host = self.ready_host(host_id)?;
        self.host_job(
            fill_job(me.id, &overlay, &host),
            move |app, ctx, host, conn| async move {
                app.run_fill(&ctx, &conn, host.id, &overlay).await
            },
        )
    }

    async fn run_fill(
        &self,
        ctx: &JobCtx,
        conn: &Connection,
        host_id: i64,
        overlay: &Overlay,
    ) -> std::result::Result<(), JobFailure> {
        let messages = match &overlay.source {
            OverlaySource::Workshop { items, collections } => {
                ctx.say(&format!(
                    "filling {} from the Workshop: {} items, {} collections",
                    overlay.host_name,
                    items.len(),
                    collections.len()
                ));
                let call = AgentCall::overlay_workshop(
                    &overlay.host_name,
                    items,
                    collections,
                    self.config.workshop_api.as_deref(),
                );
                agent::run(conn, &call, b"", Some(ctx)).await?
            }
            OverlaySource::Script { script } => {
                ctx.say(&format!("filling {} by its script", overlay.host_name));
                let call = AgentCall::overlay_script(&overlay.host_name);
                agent::run(conn, &call, script.as_bytes(), Some(ctx)).await?
            }
            _ => {
                return Err(JobFailure::failed(format!(
                    "overlay {:?} has no source the host can fill it from",
                    overlay.name
                )));
            }
        };
        self.record_fill(ctx, conn, overlay.id, host_id, &messages)
            .await
    }

    /// Records a finished fill, and which servers run the version it replaced; says when
    /// they will see it.
    async fn record_fill(
        &self,
        ctx: &JobCtx,
        conn: &Connection,
        overlay_id: i64,
        host_id: i64,
        messages: &[AgentMessage],
    ) -> std::result::Result<(), JobFailure> {
        let pending = messages.iter().any(|m| match m {
            AgentMessage::OverlayFilled(f) => f.pending,
            AgentMessage::WorkshopDone(d) => d.pending,
            _ => false,
        });
        if pending {
            ctx.say(
                "a running server uses this overlay: the new content is staged, and each server \
                 that uses it switches at its next start or restart",
            );
        }
        self.store.record_fill(overlay_id, host_id, pending)?;
        self.sync_overlays(conn, host_id).await
    }

    /// Fills an overlay again on every host that has it (a refresh of its source), one job
    /// per host. Running servers keep what they have until their next start or restart.
    pub fn refresh_overlay(
        self: &Arc<Self>,
        session: &Session,
        overlay_id: i64,
    ) -> Result<Vec<Job>> {
        let overlay = self.store.overlay(session, overlay_id)?;
        if overlay.hosts.is_empty() {
            return Err(Error::Conflict(format!(
                "overlay {:?} is on no host yet: it is filled at the first start of a server that uses it",
                overlay.name
            )));
        }
        overlay
            .hosts
            .iter()
            .map(|h| self.fill_overlay(session, overlay_id, h.host_id))
            .collect()
    }

    /// The caller's servers that will switch to a newer version of an overlay at their next
    /// start or restart: their host said they run an older one.
    pub fn pending_restarts(
        &self,
        session: &Session,
        overlay_id: i64,
    ) -> Result<Vec<crate::servers::Server>> {
        let overlay = self.store.overlay(session, overlay_id)?;
        Ok(self
            .store
            .servers(session)?
            .into_iter()
            .filter(|server| behind(&overlay.hosts, server.host_id, server.name.as_str()))
            .collect())
    }

    /// Takes the host's word on which overlays have a staged version waiting.
    pub(super) async fn sync_overlays(
        &self,
        conn: &Connection,
        host_id: i64,
    ) -> std::result::Result<(), JobFailure> {
        let messages = agent::run(conn, &AgentCall::overlay_list(), b"", None).await?;
        let listed: Vec<_> = messages
            .into_iter()
            .filter_map(|m| match m {
                AgentMessage::Overlays(list) => Some(list.overlays),
                _ => None,
            })
            .flatten()
            .collect();
        self.store.sync_pending(host_id, &listed)?;
        Ok(())
    }

    /// Makes sure every overlay of `spec` exists on the host: empty ones are created, ones
    /// with content must have been filled.
    pub(super) async fn ensure_overlays(
        &self,
        ctx: &JobCtx,
        conn: &Connection,
        host: &Host,
        spec: &InstanceSpec,
    ) -> std::result::Result<(), JobFailure> {
        if spec.overlays.is_empty() {
            return Ok(());
        }
        // Read what the host has only once the start before this one is done filling.
        let lock = self.overlay_checks.get(host.id);
        let _turn = lock.lock().await;
        let messages = agent::run(conn, &AgentCall::overlay_list(), b"", None).await?;
        let present: Vec<String> = messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::Overlays(list) => {
                    Some(list.overlays.into_iter().map(|o| o.name).collect())
                }
                _ => None,
            })
            .unwrap_or_default();
        for name in absent(&spec.overlays, &present) {
            let known = self.store.overlay_by_host_name(name.as_str())?;
            match make_present(name, known, &host.name)? {
                Step::Create => {
                    ctx.say(&format!(
                        "creating the empty overlay {name} on {}",
                        host.name
                    ));
                    agent::run(conn, &AgentCall::overlay_create(name), b"", Some(ctx)).await?;
                }
                Step::Fill(id) => {
                    let overlay = self.store.overlay_by_id(id)?;
                    ctx.say(&format!("overlay {name} is not on {} yet", host.name));
                    self.run_fill(ctx, conn, host.id, &overlay).await?;
                }
            }
        }
        Ok(())
    }
}

/// A job that fills `overlay` on `host`, on the host's lane.
fn fill_job(owner: i64, overlay: &Overlay, host: &Host) -> NewJob {
    NewJob::on_host(
        JobKind::OverlayFill,
        owner,
        host.id,
        format!("overlay {} on {}", overlay.name, host.name),
    )
}

/// What fills an overlay when not the host: `None` for sources the host fills itself.
fn filled_elsewhere(source: &OverlaySource) -> Option<&'static str> {
    match source {
        OverlaySource::Workshop { .. } | OverlaySource::Script { .. } => None,
        OverlaySource::Upload { .. } => Some("uploading a folder"),
        OverlaySource::Empty => Some("hand"),
    }
}

/// Whether the server `name` on host `host_id` runs an older version of the overlay on
/// `hosts` than its next start would mount.
fn behind(hosts: &[OverlayHost], host_id: i64, name: &str) -> bool {
    hosts
        .iter()
        .any(|h| h.host_id == host_id && h.behind.iter().any(|b| b == name))
}

/// The overlays of a spec the host does not have, in the spec's order.
fn absent<'a>(wanted: &'a [OverlayName], present: &[String]) -> Vec<&'a OverlayName> {
    wanted
        .iter()
        .filter(|name| !present.iter().any(|p| p == name.as_str()))
        .collect()
}

/// How a start makes an absent overlay present.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// An empty overlay: created empty.
    Create,
    /// Filled from its source (Workshop or script) by the host, the overlay of this id.
    Fill(i64),
}

/// What a start does for the absent overlay `name`, given what the model knows of it
/// (`known`: its id, name and source); an overlay only the admin can fill stops the start.
fn make_present(
    name: &OverlayName,
    known: Option<(i64, String, OverlaySource)>,
    host: &str,
) -> std::result::Result<Step, JobFailure> {
    match known {
        Some((_, _, OverlaySource::Empty)) => Ok(Step::Create),
        Some((id, _, OverlaySource::Workshop { .. } | OverlaySource::Script { .. })) => {
            Ok(Step::Fill(id))
        }
        Some((_, overlay, _)) => Err(JobFailure::failed(format!(
            "overlay {overlay:?} has no content on host {host:?} yet: fill it there first"
        ))),
        None => Err(JobFailure::failed(format!(
            "overlay {name} is missing on host {host:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<OverlayName> {
        list.iter().map(|n| OverlayName::new(*n).unwrap()).collect()
    }

    #[test]
    fn a_start_looks_only_at_the_overlays_the_host_lacks() {
        let table: [(&[&str], &[&str], &[&str]); 4] = [
            (&["maps", "u2-admins"], &["maps", "u2-admins", "other"], &[]),
            (&["maps", "u2-admins"], &[], &["maps", "u2-admins"]),
            (
                &["u2-admins", "maps", "sm"],
                &["maps"],
                &["u2-admins", "sm"],
            ),
            (&[], &["maps"], &[]),
        ];
        for (wanted, present, expected) in table {
            let wanted = names(wanted);
            let present: Vec<String> = present.iter().map(|p| (*p).to_owned()).collect();
            let got: Vec<&str> = absent(&wanted, &present)
                .iter()
                .map(|n| n.as_str())
                .collect();
            assert_eq!(got, expected, "wanted {wanted:?}, present {present:?}");
        }
    }

    #[test]
    fn an_absent_overlay_is_created_filled_or_stops_the_start() {
        let name = OverlayName::new("u2-maps").unwrap();
        let workshop = OverlaySource::Workshop {
            items: vec![1],
            collections: vec![],
        };
        let script = OverlaySource::Script {
            script: "true".into(),
        };
        let upload = OverlaySource::Upload {
            files: 1,
            bytes: 10,
        };
        let known = |id: i64, source: OverlaySource| Some((id, "maps".to_owned(), source));
        let table = [
            (known(3, OverlaySource::Empty), Ok(Step::Create)),
            (known(4, workshop), Ok(Step::Fill(4))),
            (known(5, script), Ok(Step::Fill(5))),
            (
                known(6, upload),
                Err("overlay \"maps\" has no content on host \"alpha\" yet: fill it there first"),
            ),
            (None, Err("overlay u2-maps is missing on host \"alpha\"")),
        ];
        for (known, expected) in table {
            let got = make_present(&name, known, "alpha").map_err(|f| f.message);
            assert_eq!(got, expected.map_err(str::to_owned));
        }
    }

    #[test]
    fn a_server_waits_for_a_restart_where_its_host_says_it_is_behind() {
        let on = |host_id: i64, behind: &[&str]| OverlayHost {
            host_id,
            host: format!("h{host_id}"),
            filled_ms: 0,
            pending: false,
            behind: behind.iter().map(|b| (*b).to_owned()).collect(),
        };
        let hosts = [on(1, &["coop-1", "coop-2"]), on(2, &[])];
        let table = [
            (1, "coop-1", true),
            (1, "coop-2", true),
            (1, "coop-3", false),
            (2, "coop-1", false),
            (3, "coop-1", false),
        ];
        for (host, server, expected) in table {
            assert_eq!(behind(&hosts, host, server), expected, "{server} on {host}");
        }
    }

    #[test]
    fn only_workshop_and_script_overlays_are_filled_by_the_host() {
        let upload = OverlaySource::Upload { files: 0, bytes: 0 };
        assert_eq!(filled_elsewhere(&upload), Some("uploading a folder"));
        assert_eq!(filled_elsewhere(&OverlaySource::Empty), Some("hand"));
        let script = OverlaySource::Script {
            script: String::new(),
        };
        assert_eq!(filled_elsewhere(&script), None);
    }
}
