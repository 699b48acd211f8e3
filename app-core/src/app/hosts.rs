//! A host once it is set up: its key at first contact, its facts, the game's install and
//! update check, the Steam account installs use, and its removal.

use super::{App, connect_failure, remote_error};
use crate::accounts::Session;
use crate::agent;
use crate::error::{Error, Result};
use crate::hosts::{Host, HostKeyOffer, HostState};
use crate::jobs::NewJob;
use crate::remote::AgentCall;
use crate::secrets::SecretKey;
use crate::ssh;
use left4me_protocol::{AgentMessage, Job, JobKind};
use std::sync::Arc;
use zeroize::Zeroizing;

impl App {
    /// First contact: reads the host's key for the admin to confirm. Nothing is sent.
    pub async fn fetch_host_key(&self, session: &Session, host_id: i64) -> Result<HostKeyOffer> {
        self.store.actor(session)?.require_admin("contact hosts")?;
        let host = self.store.host_by_id(host_id)?;
        let key = ssh::fetch_host_key(&host.address, host.port)
            .await
            .map_err(remote_error)?;
        Ok(HostKeyOffer {
            fingerprint: ssh::fingerprint(&key),
            key: key.to_openssh().expect("a host key encodes as OpenSSH"),
        })
    }

    /// Removes a host (admins only; refused while servers are on it), with its kept
    /// secrets and its connection. The host itself is left as it is.
    pub async fn remove_host(&self, session: &Session, host_id: i64) -> Result<()> {
        self.store.remove_host(session, host_id)?;
        self.connections.forget(host_id).await;
        self.secrets
            .delete(&SecretKey::SudoPassword { host: host_id })?;
        self.secrets
            .delete(&SecretKey::KeyPassphrase { host: host_id })?;
        Ok(())
    }

    /// Reads a host's facts again.
    pub async fn refresh_host(&self, session: &Session, host_id: i64) -> Result<Host> {
        self.store.actor(session)?;
        let host = self.store.host_by_id(host_id)?;
        self.read_facts(&host)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        self.store.host_by_id(host_id)
    }

    /// Installs or updates the base game on a host, as a job. `guard_code` is the Steam
    /// Guard code Steam asked for when an install with the Steam account last failed with
    /// `steam_guard_code_needed` (it reaches the agent on stdin, never a command line).
    pub fn install_game(
        self: &Arc<Self>,
        session: &Session,
        host_id: i64,
        validate: bool,
        guard_code: Option<&str>,
    ) -> Result<Job> {
        let me = self
            .store
            .actor(session)?
            .require_admin("install the game")?;
        let host = self.ready_host(host_id)?;
        let guard_code = guard_code_of(guard_code)?;
        if guard_code.is_some() && self.secrets.get(&SecretKey::SteamLogin)?.is_none() {
            return Err(Error::Invalid(
                "a Steam Guard code is for an install with a Steam account; none is set".into(),
            ));
        }
        self.host_job(
            NewJob::on_host(
                JobKind::Install,
                me.id,
                host_id,
                format!("host {}", host.name),
            ),
            move |app, ctx, host, conn| async move {
                let login = app.secrets.get(&SecretKey::SteamLogin)?;
                ctx.say(match login {
                    Some(_) => "installing with the Steam account from the credential store",
                    None => "installing anonymously",
                });
                let call = AgentCall::install(
                    validate,
                    app.config.steamcmd_url.as_deref(),
                    login.is_some(),
                );
                let mut stdin = Zeroizing::new(login.map(|l| l.to_vec()).unwrap_or_default());
                if let Some(code) = &guard_code {
                    ctx.say("with the Steam Guard code given");
                    stdin.extend_from_slice(code.as_bytes());
                    stdin.push(b'\n');
                }
                agent::run(&conn, &call, &stdin, Some(&ctx)).await?;
                app.read_facts(&host).await?;
                Ok(())
            },
        )
    }

    /// Asks a host whether Steam has a newer public build of the game than the installed
    /// one (steamcmd's app info, without installing) and keeps the answer for the host card.
    pub async fn check_game_update(&self, session: &Session, host_id: i64) -> Result<Host> {
        self.store
            .actor(session)?
            .require_admin("check for game updates")?;
        let host = self.ready_host(host_id)?;
        let conn = self
            .connections
            .get(&host)
            .await
            .map_err(|e| Error::Remote(connect_failure(e).message))?;
        let call = AgentCall::install_check(self.config.steamcmd_url.as_deref());
        let messages = agent::run(&conn, &call, b"", None)
            .await
            .map_err(|e| Error::Remote(e.to_string()))?;
        let check = messages
            .into_iter()
            .find_map(|m| match m {
                AgentMessage::UpdateCheck(c) => Some(c),
                _ => None,
            })
            .ok_or_else(|| Error::Remote("the agent did not report the public build".into()))?;
        self.store.set_public_build(host_id, &check.public_build)?;
        self.read_facts(&host)
            .await
            .map_err(|f| Error::Remote(f.message))?;
        self.store.host_by_id(host_id)
    }

    /// Keeps the Steam account installs use (admins only) in the credential store; `None`
    /// forgets it, and installs go back to anonymous.
    pub fn set_steam_login(&self, session: &Session, login: Option<(&str, &str)>) -> Result<()> {
        self.store
            .actor(session)?
            .require_admin("set the Steam account")?;
        match login {
            None => Ok(self.secrets.delete(&SecretKey::SteamLogin)?),
            Some((user, password)) => {
                let text = steam_login_text(user, password)?;
                Ok(self.secrets.set(&SecretKey::SteamLogin, text.as_bytes())?)
            }
        }
    }

    /// Whether installs use a Steam account (its name), or go anonymous (`None`).
    pub fn steam_account(&self, session: &Session) -> Result<Option<String>> {
        self.store
            .actor(session)?
            .require_admin("see the Steam account")?;
        Ok(self
            .secrets
            .get_text(&SecretKey::SteamLogin)?
            .map(|text| text.lines().next().unwrap_or_default().to_owned()))
    }

    /// Forgets the Steam account: the credential store's copy at once, and the login
    /// steamcmd cached on every set-up host, as one job per host (returned).
    pub fn forget_steam_account(self: &Arc<Self>, session: &Session) -> Result<Vec<Job>> {
        let me = self
            .store
            .actor(session)?
            .require_admin("forget the Steam account")?;
        self.secrets.delete(&SecretKey::SteamLogin)?;
        let mut jobs = Vec::new();
        for host in self.store.hosts(session)? {
            if host.state != HostState::Ready {
                continue;
            }
            jobs.push(self.host_job(
                NewJob::on_host(
                    JobKind::ForgetSteamLogin,
                    me.id,
                    host.id,
                    format!("host {}", host.name),
                ),
                |_, ctx, _, conn| async move {
                    agent::run(&conn, &AgentCall::forget_steam_login(), &[], Some(&ctx)).await?;
                    Ok(())
                },
            )?);
        }
        Ok(jobs)
    }
}

/// A Steam Guard code as the agent takes it (upper case), or none when left empty.
fn guard_code_of(code: Option<&str>) -> Result<Option<Zeroizing<String>>> {
    match code.map(str::trim) {
        None | Some("") => Ok(None),
        Some(code) if code.len() <= 16 && code.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Ok(Some(Zeroizing::new(code.to_ascii_uppercase())))
        }
        Some(_) => Err(Error::Invalid(
            "a Steam Guard code is a few letters and digits, as Steam sent it".into(),
        )),
    }
}

/// A Steam login as the credential store keeps it and the agent reads it: the name's line,
/// then the password's.
fn steam_login_text(user: &str, password: &str) -> Result<Zeroizing<String>> {
    let one_line = |s: &str| !s.is_empty() && !s.contains(['\n', '\r', '\0']);
    if !one_line(user) || !one_line(password) {
        return Err(Error::Invalid(
            "the Steam account name and password must each be one non-empty line".into(),
        ));
    }
    Ok(Zeroizing::new(format!("{user}\n{password}\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_codes_are_a_few_letters_and_digits() {
        let taken = [
            (None, None),
            (Some(""), None),
            (Some("  "), None),
            (Some("f4k3c"), Some("F4K3C")),
            (Some(" 2BQ7X \n"), Some("2BQ7X")),
        ];
        for (given, expected) in taken {
            let code = guard_code_of(given).unwrap();
            assert_eq!(code.as_ref().map(|c| c.as_str()), expected, "{given:?}");
        }
        for refused in ["abc-12", "12345678901234567", "AB C"] {
            let got = guard_code_of(Some(refused));
            assert!(matches!(got, Err(Error::Invalid(_))), "{refused:?}");
        }
    }

    #[test]
    fn a_steam_login_is_two_lines_or_refused() {
        assert_eq!(
            steam_login_text("ann", "p4ss word").unwrap().as_str(),
            "ann\np4ss word\n"
        );
        for (user, password) in [
            ("", "pw"),
            ("ann", ""),
            ("ann\nx", "pw"),
            ("ann", "p\rw"),
            ("ann", "p\0w"),
        ] {
            assert!(
                matches!(steam_login_text(user, password), Err(Error::Invalid(_))),
                "{user:?} {password:?}"
            );
        }
    }
}
