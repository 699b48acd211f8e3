//! Notification targets: kept once by the app, given to every host, tested from a host.

use super::App;
use crate::accounts::Session;
use crate::agent;
use crate::error::{Error, Result};
use crate::remote::AgentCall;
use crate::secrets::SecretKey;
use crate::ssh::Connection;
use left4me_protocol::AgentMessage;
use left4me_protocol::agent::{NotifyTarget, NotifyTested};
use left4me_protocol::model::NotifyTargetInfo;
use left4me_protocol::notify::{MAX_TARGETS, endpoint_of, validate_target};
use zeroize::Zeroizing;

/// A target's secret part, as the credential store keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    url: String,
    secret: Option<String>,
}

impl App {
    /// Adds a target after checking it, keeping its URL and secret in the credential store
    /// only; a refused target, or one the store cannot keep, changes nothing. The hosts get
    /// the new list at the app's next look at each.
    pub fn add_notification_target(
        &self,
        session: &Session,
        target: NotifyTarget,
    ) -> Result<Vec<NotifyTargetInfo>> {
        self.store
            .actor(session)?
            .require_admin("add notification targets")?;
        validate_target(&target).map_err(Error::Invalid)?;
        if self.store.targets()?.len() >= MAX_TARGETS {
            return Err(Error::Invalid(format!(
                "at most {MAX_TARGETS} notification targets"
            )));
        }
        let id = self
            .store
            .insert_target(&target.name, target.kind, &endpoint_of(&target.url))?;
        let kept = Zeroizing::new(
            serde_json::to_vec(&Kept {
                url: target.url.clone(),
                secret: target.secret.clone(),
            })
            .expect("plain strings serialise"),
        );
        if let Err(e) = self.secrets.set(&SecretKey::NotifyTarget { id }, &kept) {
            let _ = self.store.delete_target(id);
            return Err(e.into());
        }
        self.store.targets()
    }

    pub fn remove_notification_target(
        &self,
        session: &Session,
        id: i64,
    ) -> Result<Vec<NotifyTargetInfo>> {
        self.store
            .actor(session)?
            .require_admin("remove notification targets")?;
        self.store.delete_target(id)?;
        self.secrets.delete(&SecretKey::NotifyTarget { id })?;
        self.store.targets()
    }

    /// Gives the host the current list when it has an older one.
    pub(super) async fn push_notify_targets(&self, host_id: i64, conn: &Connection) -> Result<()> {
        let (current, pushed) = self.store.notify_revisions(host_id)?;
        if current == pushed {
            return Ok(());
        }
        let mut targets = Vec::new();
        for info in self.store.targets()? {
            let kept = self
                .secrets
                .get(&SecretKey::NotifyTarget { id: info.id })?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "the credential store lost notification target {}; add it again",
                        info.name
                    ))
                })?;
            let kept: Kept = serde_json::from_slice(&kept).map_err(|_| {
                Error::Invalid(format!("notification target {} is damaged", info.name))
            })?;
            targets.push(NotifyTarget {
                name: info.name,
                kind: info.kind,
                url: kept.url,
                secret: kept.secret,
            });
        }
        let input = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({ "targets": targets }))
                .expect("plain strings serialise"),
        );
        agent::run(conn, &AgentCall::notify_set(), &input, None)
            .await
            .map_err(|e| Error::Remote(crate::error::chain(&e)))?;
        self.store.set_notify_pushed(host_id, current)
    }

    /// Gives the host the current targets and has it send each a test message; answers how
    /// each took it, from the host.
    pub async fn test_notifications(
        &self,
        session: &Session,
        host_id: i64,
    ) -> Result<Vec<NotifyTested>> {
        self.store
            .actor(session)?
            .require_admin("test notifications")?;
        let host = self.store.host_by_id(host_id)?;
        let conn = self
            .connection(&host, None)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        self.push_notify_targets(host_id, &conn).await?;
        let mut answers = Vec::new();
        for target in self.store.targets()? {
            let call = AgentCall::notify_test(&target.name);
            let answer = match agent::run(&conn, &call, b"", None).await {
                Ok(messages) => messages
                    .into_iter()
                    .find_map(|m| match m {
                        AgentMessage::NotifyTested(t) => Some(t),
                        _ => None,
                    })
                    .unwrap_or(NotifyTested {
                        target: target.name.clone(),
                        delivered: false,
                        detail: "the host gave no answer".into(),
                    }),
                Err(e) => NotifyTested {
                    target: target.name.clone(),
                    delivered: false,
                    detail: crate::error::chain(&e),
                },
            };
            answers.push(answer);
        }
        if answers.is_empty() {
            return Err(Error::Invalid(
                "no notification targets: add one first".into(),
            ));
        }
        Ok(answers)
    }
}
