//! What the user types, checked as they type: each form's fields as text, the hint to show
//! under a field, and the value to send once nothing is wrong. The backend checks again;
//! these only say early what it would refuse, with the same rules (`left4me_protocol`'s).

use left4me_protocol::limits::Limits;
use left4me_protocol::model::{
    Blueprint, BlueprintDraft, NewHost, NewServer, Overlay, OverlaySource,
};
use left4me_protocol::names::{MapName, OverlayName, ServerName};
use left4me_protocol::spec::{LaunchFlag, LaunchParams, validate_cvar};
use std::collections::{BTreeMap, BTreeSet};

/// A port typed into a field: `range` is what the field accepts.
pub fn parse_port(text: &str, range: std::ops::RangeInclusive<u16>) -> Result<u16, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("enter a port".into());
    }
    match text.parse::<u16>() {
        Ok(port) if range.contains(&port) => Ok(port),
        _ => Err(format!(
            "use a port from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// A number typed into a field, within `range`.
fn parse_in<T>(text: &str, range: std::ops::RangeInclusive<T>, what: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match text.trim().parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{what} must be a number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// Hides the hint of a field nobody has typed into yet.
fn typed(text: &str, check: Result<(), String>) -> Option<String> {
    if text.is_empty() { None } else { check.err() }
}

/// The shortest password the backend accepts.
pub const MIN_PASSWORD: usize = 8;

/// Changing one's own password: the current one, and the new one typed twice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PasswordForm {
    pub current: String,
    pub new: String,
    pub again: String,
}

/// What to say under each field of a [`PasswordForm`], once something was typed there.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PasswordHints {
    pub new: Option<String>,
    pub again: Option<String>,
}

impl PasswordForm {
    pub fn hints(&self) -> PasswordHints {
        PasswordHints {
            new: (!self.new.is_empty() && self.new.chars().count() < MIN_PASSWORD)
                .then(|| format!("use at least {MIN_PASSWORD} characters")),
            again: (!self.again.is_empty() && self.again != self.new)
                .then(|| "the two passwords differ".to_owned()),
        }
    }

    /// The current and the new password, once the form can be sent.
    pub fn value(&self) -> Result<(String, String), String> {
        if self.current.is_empty() {
            return Err("type your current password".into());
        }
        if self.new.chars().count() < MIN_PASSWORD {
            return Err(format!("use at least {MIN_PASSWORD} characters"));
        }
        if self.again != self.new {
            return Err("the two passwords differ".into());
        }
        Ok((self.current.clone(), self.new.clone()))
    }
}

/// Adding a host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostForm {
    pub name: String,
    pub address: String,
    pub port: String,
    pub admin_user: String,
    /// The address its servers bind; blank for all of the host's.
    pub bind_address: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostHints {
    pub name: Option<String>,
    pub address: Option<String>,
    pub port: Option<String>,
    pub admin_user: Option<String>,
    pub bind_address: Option<String>,
}

/// A bind address typed into a field: blank for all addresses, else an IPv4 address.
pub fn parse_bind_address(text: &str) -> Result<Option<std::net::Ipv4Addr>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| "enter an IPv4 address such as 192.0.2.10, or leave it blank".into())
}

impl HostForm {
    pub fn new() -> Self {
        Self {
            port: "22".into(),
            ..Self::default()
        }
    }

    pub fn hints(&self) -> HostHints {
        let no_spaces = |text: &str, what: &str| {
            if text.trim() != text || text.contains(char::is_whitespace) {
                Err(format!("{what} cannot contain spaces"))
            } else {
                Ok(())
            }
        };
        HostHints {
            name: typed(&self.name, {
                if self.name.trim().is_empty() {
                    Err("enter a name".into())
                } else {
                    Ok(())
                }
            }),
            address: typed(&self.address, no_spaces(&self.address, "an address")),
            port: typed(&self.port, parse_port(&self.port, 1..=65535).map(drop)),
            admin_user: typed(&self.admin_user, no_spaces(&self.admin_user, "a user name")),
            bind_address: typed(
                &self.bind_address,
                parse_bind_address(&self.bind_address).map(drop),
            ),
        }
    }

    /// The host to add, or what is still wrong.
    pub fn value(&self) -> Result<NewHost, String> {
        let hints = self.hints();
        if let Some(hint) = [
            hints.name,
            hints.address,
            hints.port,
            hints.admin_user,
            hints.bind_address,
        ]
        .into_iter()
        .flatten()
        .next()
        {
            return Err(hint);
        }
        if self.name.is_empty() || self.address.is_empty() || self.admin_user.is_empty() {
            return Err("fill in every field".into());
        }
        Ok(NewHost {
            name: self.name.trim().to_owned(),
            address: self.address.clone(),
            port: parse_port(&self.port, 1..=65535)?,
            admin_user: self.admin_user.clone(),
            bind_address: parse_bind_address(&self.bind_address)?,
        })
    }
}

/// Creating a server.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerForm {
    pub name: String,
    pub host_id: Option<i64>,
    pub blueprint_id: Option<i64>,
    pub port: String,
}

impl ServerForm {
    pub fn name_hint(&self) -> Option<String> {
        typed(
            &self.name,
            ServerName::new(self.name.clone())
                .map(drop)
                .map_err(|e| e.reason.to_owned()),
        )
    }

    pub fn port_hint(&self) -> Option<String> {
        typed(&self.port, parse_port(&self.port, 1024..=65535).map(drop))
    }

    pub fn value(&self) -> Result<NewServer, String> {
        let name = ServerName::new(self.name.clone()).map_err(|e| e.to_string())?;
        let host_id = self.host_id.ok_or("choose a host")?;
        let blueprint_id = self.blueprint_id.ok_or("choose a blueprint")?;
        Ok(NewServer {
            name: name.to_string(),
            host_id,
            blueprint_id,
            port: parse_port(&self.port, 1024..=65535)?,
        })
    }
}

/// One row of a blueprint's cvar table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CvarRow {
    pub name: String,
    pub value: String,
}

/// Editing a blueprint.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueprintForm {
    pub name: String,
    /// Overlay names, top first.
    pub overlays: Vec<String>,
    pub map: String,
    pub max_players: String,
    pub tickrate: String,
    pub flags: BTreeSet<LaunchFlag>,
    pub cvars: Vec<CvarRow>,
    pub restart_when_hung: bool,
    pub rollout_canary: bool,
    /// Resource limits as typed: empty is "no limit"; memory in MiB.
    pub cpu_weight: String,
    pub memory_high_mib: String,
    pub memory_max_mib: String,
    pub tasks_max: String,
    pub cpu_quota_percent: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlueprintHints {
    pub name: Option<String>,
    pub map: Option<String>,
    pub max_players: Option<String>,
    pub tickrate: Option<String>,
    /// One per cvar row.
    pub cvars: Vec<Option<String>>,
    pub limits: Option<String>,
}

impl BlueprintHints {
    pub fn is_clean(&self) -> bool {
        self.name.is_none()
            && self.map.is_none()
            && self.max_players.is_none()
            && self.tickrate.is_none()
            && self.cvars.iter().all(Option::is_none)
            && self.limits.is_none()
    }
}

impl Default for BlueprintForm {
    /// A new blueprint, as `BlueprintDraft::coop` starts one.
    fn default() -> Self {
        Self::from_draft(&BlueprintDraft::coop(""))
    }
}

impl BlueprintForm {
    pub fn from_blueprint(blueprint: &Blueprint) -> Self {
        Self::from_draft(&BlueprintDraft {
            name: blueprint.name.clone(),
            overlays: blueprint.overlays.clone(),
            launch: blueprint.launch.clone(),
            cvars: blueprint.cvars.clone(),
            restart_when_hung: blueprint.restart_when_hung,
            rollout_canary: blueprint.rollout_canary,
            limits: blueprint.limits.clone(),
        })
    }

    fn from_draft(draft: &BlueprintDraft) -> Self {
        Self {
            name: draft.name.clone(),
            overlays: draft.overlays.clone(),
            map: draft.launch.map.to_string(),
            max_players: draft.launch.max_players.to_string(),
            tickrate: draft.launch.tickrate.to_string(),
            flags: draft.launch.flags.iter().copied().collect(),
            cvars: draft
                .cvars
                .iter()
                .map(|(name, value)| CvarRow {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            restart_when_hung: draft.restart_when_hung,
            rollout_canary: draft.rollout_canary,
            cpu_weight: text_of(draft.limits.cpu_weight),
            memory_high_mib: text_of(draft.limits.memory_high.map(|b| b >> 20)),
            memory_max_mib: text_of(draft.limits.memory_max.map(|b| b >> 20)),
            tasks_max: text_of(draft.limits.tasks_max),
            cpu_quota_percent: text_of(draft.limits.cpu_quota_percent),
        }
    }

    /// The limits as typed, checked as the host checks them (what the host has aside).
    pub fn limits(&self) -> Result<Limits, String> {
        let number = |text: &str, what: &str| -> Result<Option<u64>, String> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{what} is a whole number, or empty for no limit"))
        };
        let small = |v: Option<u64>, what: &str| -> Result<Option<u32>, String> {
            v.map(|v| u32::try_from(v).map_err(|_| format!("{what} is too large")))
                .transpose()
        };
        let limits = Limits {
            cpu_weight: small(number(&self.cpu_weight, "CPU weight")?, "CPU weight")?,
            memory_high: number(&self.memory_high_mib, "Memory high")?.map(|m| m << 20),
            memory_max: number(&self.memory_max_mib, "Memory max")?.map(|m| m << 20),
            tasks_max: small(number(&self.tasks_max, "Tasks")?, "Tasks")?,
            cpu_quota_percent: small(number(&self.cpu_quota_percent, "CPU quota")?, "CPU quota")?,
            cpu_quota_period_ms: None,
            cores: Vec::new(),
        };
        limits.check()?;
        Ok(limits)
    }

    pub fn hints(&self) -> BlueprintHints {
        let name = if self.name.trim().is_empty() {
            Err("enter a name".to_owned())
        } else if self.name.chars().count() > 64 {
            Err("use at most 64 characters".to_owned())
        } else {
            Ok(())
        };
        let mut seen = BTreeSet::new();
        let cvars = self
            .cvars
            .iter()
            .map(|row| {
                if row.name.is_empty() {
                    return (!row.value.is_empty()).then(|| "name the cvar".to_owned());
                }
                if !seen.insert(row.name.to_ascii_lowercase()) {
                    return Some(format!("{} is set twice", row.name));
                }
                validate_cvar(&row.name, &row.value)
                    .err()
                    .map(|e| e.to_string())
            })
            .collect();
        BlueprintHints {
            // The name is required, so its hint shows once the user has typed anything at
            // all in the form.
            name: if self == &Self::default() {
                None
            } else {
                name.err()
            },
            map: MapName::new(self.map.clone())
                .err()
                .map(|e| e.reason.to_owned()),
            max_players: parse_in(&self.max_players, 1..=32u8, "max players").err(),
            tickrate: parse_in(&self.tickrate, 10..=128u16, "tickrate").err(),
            cvars,
            limits: self.limits().err(),
        }
    }

    /// The draft to save, or the first thing still wrong.
    pub fn draft(&self) -> Result<BlueprintDraft, String> {
        let hints = self.hints();
        let first = [hints.name, hints.map, hints.max_players, hints.tickrate]
            .into_iter()
            .chain(hints.cvars)
            .chain([hints.limits])
            .flatten()
            .next();
        if let Some(hint) = first {
            return Err(hint);
        }
        if self.name.trim().is_empty() {
            return Err("enter a name".into());
        }
        let cvars: BTreeMap<String, String> = self
            .cvars
            .iter()
            .filter(|row| !row.name.is_empty())
            .map(|row| (row.name.clone(), row.value.clone()))
            .collect();
        Ok(BlueprintDraft {
            name: self.name.trim().to_owned(),
            overlays: self.overlays.clone(),
            launch: LaunchParams {
                map: MapName::new(self.map.clone()).map_err(|e| e.to_string())?,
                max_players: parse_in(&self.max_players, 1..=32, "max players")?,
                tickrate: parse_in(&self.tickrate, 10..=128, "tickrate")?,
                flags: self.flags.iter().copied().collect(),
            },
            cvars,
            restart_when_hung: self.restart_when_hung,
            rollout_canary: self.rollout_canary,
            limits: self.limits()?,
        })
    }

    /// Moves the overlay at `index` one place up (towards the top, which wins).
    pub fn raise(&mut self, index: usize) {
        if index > 0 && index < self.overlays.len() {
            self.overlays.swap(index - 1, index);
        }
    }

    pub fn lower(&mut self, index: usize) {
        if index + 1 < self.overlays.len() {
            self.overlays.swap(index, index + 1);
        }
    }

    /// Adds an overlay at the bottom; one already listed stays where it is.
    pub fn add_overlay(&mut self, name: &str) {
        if !name.is_empty() && !self.overlays.iter().any(|o| o == name) {
            self.overlays.push(name.to_owned());
        }
    }
}

/// Creating an overlay: what it is called and what fills it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverlayForm {
    pub name: String,
    pub kind: OverlayKind,
    /// Workshop item and collection ids or URLs, separated by spaces, commas or lines.
    pub workshop_items: String,
    pub workshop_collections: String,
    pub script: String,
    pub description: String,
    pub global: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverlayKind {
    #[default]
    Workshop,
    Script,
    Upload,
}

impl OverlayForm {
    pub fn name_hint(&self) -> Option<String> {
        typed(
            &self.name,
            OverlayName::new(self.name.clone())
                .map(drop)
                .map_err(|e| e.reason.to_owned()),
        )
    }

    pub fn items_hint(&self) -> Option<String> {
        parse_workshop_ids(&self.workshop_items).err()
    }

    pub fn collections_hint(&self) -> Option<String> {
        parse_workshop_ids(&self.workshop_collections).err()
    }

    /// The overlay's source; an upload starts empty and counts its files once uploaded.
    pub fn source(&self) -> Result<OverlaySource, String> {
        OverlayName::new(self.name.clone()).map_err(|e| e.to_string())?;
        match self.kind {
            OverlayKind::Workshop => {
                let items = parse_workshop_ids(&self.workshop_items)?;
                let collections = parse_workshop_ids(&self.workshop_collections)?;
                if items.is_empty() && collections.is_empty() {
                    return Err("list at least one Workshop item or collection".into());
                }
                Ok(OverlaySource::Workshop { items, collections })
            }
            OverlayKind::Script if self.script.trim().is_empty() => {
                Err("write the script that fills the overlay".into())
            }
            OverlayKind::Script => Ok(OverlaySource::Script {
                script: self.script.clone(),
            }),
            OverlayKind::Upload => Ok(OverlaySource::Empty),
        }
    }
}

impl OverlayForm {
    /// The form filled with an overlay as it is, to edit what fills it.
    pub fn from_overlay(overlay: &Overlay) -> Self {
        let ids = |ids: &[u64]| {
            ids.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut form = OverlayForm {
            name: overlay.name.clone(),
            description: overlay.description.clone(),
            global: overlay.global,
            ..OverlayForm::default()
        };
        match &overlay.source {
            OverlaySource::Workshop { items, collections } => {
                form.kind = OverlayKind::Workshop;
                form.workshop_items = ids(items);
                form.workshop_collections = ids(collections);
            }
            OverlaySource::Script { script } => {
                form.kind = OverlayKind::Script;
                form.script = script.clone();
            }
            OverlaySource::Empty | OverlaySource::Upload { .. } => form.kind = OverlayKind::Upload,
        }
        form
    }

    /// What an edit sends as the source: the typed one, or for an uploaded folder the one it
    /// had (only its next upload changes it).
    pub fn edited_source(&self, before: &OverlaySource) -> Result<OverlaySource, String> {
        match self.kind {
            OverlayKind::Upload => Ok(before.clone()),
            OverlayKind::Workshop | OverlayKind::Script => self.source(),
        }
    }
}

/// Workshop ids as people paste them: bare ids or Workshop page URLs (`…?id=123`),
/// separated by spaces, commas or line breaks.
pub fn parse_workshop_ids(text: &str) -> Result<Vec<u64>, String> {
    let mut ids = Vec::new();
    for word in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
    {
        let digits = match word.split_once("id=") {
            Some((_, rest)) => rest.split('&').next().unwrap_or_default(),
            None => word,
        };
        match digits.parse::<u64>() {
            Ok(id) if id > 0 => {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            _ => return Err(format!("{word:?} is not a Workshop id or link")),
        }
    }
    Ok(ids)
}

/// A number as a form shows it: empty for none.
fn text_of(value: Option<impl ToString>) -> String {
    value.map_or(String::new(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_password_is_long_enough_and_typed_twice_alike() {
        let mut form = PasswordForm::default();
        assert_eq!(form.hints(), PasswordHints::default());
        assert_eq!(form.value(), Err("type your current password".into()));
        form.current = "old password".into();
        form.new = "short".into();
        form.again = "shorts".into();
        assert_eq!(
            form.hints(),
            PasswordHints {
                new: Some("use at least 8 characters".into()),
                again: Some("the two passwords differ".into()),
            }
        );
        assert_eq!(form.value(), Err("use at least 8 characters".into()));
        form.new = "new password".into();
        assert_eq!(form.value(), Err("the two passwords differ".into()));
        form.again = "new password".into();
        assert_eq!(form.hints(), PasswordHints::default());
        assert_eq!(
            form.value(),
            Ok(("old password".into(), "new password".into()))
        );
    }

    fn overlay(source: OverlaySource) -> Overlay {
        Overlay {
            id: 1,
            name: "maps".into(),
            global: false,
            host_name: OverlayName::new("maps".to_owned()).unwrap(),
            source,
            description: "custom maps".into(),
            used_by: Vec::new(),
            updated_ms: 0,
            hosts: Vec::new(),
        }
    }

    #[test]
    fn an_overlay_edit_starts_from_its_source_and_keeps_an_upload() {
        let workshop = OverlaySource::Workshop {
            items: vec![1, 2],
            collections: vec![3],
        };
        let mut form = OverlayForm::from_overlay(&overlay(workshop.clone()));
        assert_eq!(form.workshop_items, "1\n2");
        assert_eq!(form.description, "custom maps");
        assert_eq!(form.edited_source(&workshop), Ok(workshop.clone()));
        form.workshop_items.push_str("\n4");
        assert_eq!(
            form.edited_source(&workshop),
            Ok(OverlaySource::Workshop {
                items: vec![1, 2, 4],
                collections: vec![3],
            })
        );

        let script = OverlaySource::Script {
            script: "true\n".into(),
        };
        let mut form = OverlayForm::from_overlay(&overlay(script.clone()));
        form.script = " ".into();
        assert_eq!(
            form.edited_source(&script),
            Err("write the script that fills the overlay".into())
        );

        let upload = OverlaySource::Upload {
            files: 3,
            bytes: 1024,
        };
        let form = OverlayForm::from_overlay(&overlay(upload.clone()));
        assert_eq!(form.edited_source(&upload), Ok(upload));
    }

    #[test]
    fn ports_say_what_range_they_take() {
        assert_eq!(parse_port("27015", 1024..=65535), Ok(27015));
        assert_eq!(parse_port(" 22 ", 1..=65535), Ok(22));
        assert_eq!(
            parse_port("80", 1024..=65535),
            Err("use a port from 1024 to 65535".into())
        );
        assert_eq!(
            parse_port("70000", 1..=65535),
            Err("use a port from 1 to 65535".into())
        );
        assert_eq!(parse_port("", 1..=65535), Err("enter a port".into()));
    }

    #[test]
    fn host_form_hints_only_what_was_typed() {
        let mut form = HostForm::new();
        assert_eq!(form.hints(), HostHints::default());
        assert_eq!(form.value(), Err("fill in every field".into()));
        form.address = "10.0.0.1 ".into();
        form.port = "0".into();
        let hints = form.hints();
        assert_eq!(
            hints.address.as_deref(),
            Some("an address cannot contain spaces")
        );
        assert_eq!(hints.port.as_deref(), Some("use a port from 1 to 65535"));
        form.name = "box one".into();
        form.address = "10.0.0.1".into();
        form.port = "2222".into();
        form.admin_user = "sysop".into();
        assert_eq!(
            form.value(),
            Ok(NewHost {
                name: "box one".into(),
                address: "10.0.0.1".into(),
                port: 2222,
                admin_user: "sysop".into(),
                bind_address: None,
            })
        );
        form.bind_address = "10.0.0.300".into();
        assert!(form.hints().bind_address.is_some());
        form.bind_address = " 10.0.0.5 ".into();
        assert_eq!(
            form.value().unwrap().bind_address,
            Some(std::net::Ipv4Addr::new(10, 0, 0, 5))
        );
    }

    #[test]
    fn server_form_takes_names_hosts_can_use() {
        let mut form = ServerForm {
            name: "Coop_1".into(),
            port: "27015".into(),
            ..ServerForm::default()
        };
        assert_eq!(
            form.name_hint().as_deref(),
            Some("use lower-case letters, digits and '-', starting with a letter or digit")
        );
        form.name = "coop-1".into();
        assert_eq!(form.name_hint(), None);
        assert_eq!(form.value(), Err("choose a host".into()));
        form.host_id = Some(3);
        form.blueprint_id = Some(4);
        form.port = "1000".into();
        assert_eq!(
            form.port_hint().as_deref(),
            Some("use a port from 1024 to 65535")
        );
        form.port = "27016".into();
        assert_eq!(form.value().unwrap().port, 27016);
    }

    #[test]
    fn cvar_rows_are_checked_one_by_one() {
        let mut form = BlueprintForm {
            name: "Versus".into(),
            ..BlueprintForm::default()
        };
        form.cvars = vec![
            CvarRow {
                name: "sv_gametypes".into(),
                value: "versus".into(),
            },
            CvarRow {
                name: "rcon_password".into(),
                value: "x".into(),
            },
            CvarRow {
                name: "hostname".into(),
                value: "a\"; quit".into(),
            },
            CvarRow {
                name: "SV_GAMETYPES".into(),
                value: "coop".into(),
            },
            CvarRow {
                name: String::new(),
                value: String::new(),
            },
            CvarRow {
                name: String::new(),
                value: "1".into(),
            },
            CvarRow {
                name: "9lives".into(),
                value: "1".into(),
            },
        ];
        let hints = form.hints().cvars;
        assert_eq!(hints[0], None);
        assert!(
            hints[1]
                .as_deref()
                .unwrap()
                .contains("cannot be set here: the RCON password is a secret")
        );
        assert_eq!(
            hints[2].as_deref(),
            Some("value of cvar \"hostname\" is invalid: double quotes are not allowed")
        );
        assert_eq!(hints[3].as_deref(), Some("SV_GAMETYPES is set twice"));
        assert_eq!(hints[4], None, "an empty row is ignored");
        assert_eq!(hints[5].as_deref(), Some("name the cvar"));
        assert!(
            hints[6]
                .as_deref()
                .unwrap()
                .starts_with("cvar name \"9lives\"")
        );
        assert_eq!(form.draft(), Err(hints[1].clone().unwrap()));

        form.cvars.retain(|row| {
            row.name == "sv_gametypes" || row.name.is_empty() && row.value.is_empty()
        });
        let draft = form.draft().unwrap();
        assert_eq!(
            draft.cvars,
            BTreeMap::from([("sv_gametypes".to_owned(), "versus".to_owned())])
        );
    }

    #[test]
    fn launch_parameters_are_checked_as_typed() {
        let mut form = BlueprintForm::default();
        assert!(form.hints().is_clean(), "a new form shows no hints");
        form.name = "Coop".into();
        form.map = "c1m1 hotel".into();
        form.max_players = "33".into();
        form.tickrate = "abc".into();
        let hints = form.hints();
        assert_eq!(
            hints.map.as_deref(),
            Some("use letters, digits, '_' and '-'")
        );
        assert_eq!(
            hints.max_players.as_deref(),
            Some("max players must be a number from 1 to 32")
        );
        assert_eq!(
            hints.tickrate.as_deref(),
            Some("tickrate must be a number from 10 to 128")
        );
        form.map = "c2m1_highway".into();
        form.max_players = "4".into();
        form.tickrate = "60".into();
        form.flags.insert(LaunchFlag::NoHltv);
        let draft = form.draft().unwrap();
        assert_eq!(draft.launch.map.as_str(), "c2m1_highway");
        assert_eq!((draft.launch.max_players, draft.launch.tickrate), (4, 60));
        assert_eq!(draft.launch.flags, vec![LaunchFlag::NoHltv]);
        form.name = "   ".into();
        assert_eq!(form.draft(), Err("enter a name".into()));
    }

    #[test]
    fn overlays_reorder_within_bounds() {
        let mut form = BlueprintForm::default();
        for name in ["a", "b", "c", "b", ""] {
            form.add_overlay(name);
        }
        assert_eq!(form.overlays, ["a", "b", "c"]);
        form.raise(2);
        assert_eq!(form.overlays, ["a", "c", "b"]);
        form.raise(0);
        form.lower(2);
        assert_eq!(form.overlays, ["a", "c", "b"]);
        form.lower(0);
        assert_eq!(form.overlays, ["c", "a", "b"]);
    }

    #[test]
    fn workshop_ids_come_as_ids_or_links() {
        assert_eq!(
            parse_workshop_ids(
                "123, 456\nhttps://steamcommunity.com/sharedfiles/filedetails/?id=789&searchtext= 123"
            ),
            Ok(vec![123, 456, 789])
        );
        assert_eq!(parse_workshop_ids("  "), Ok(vec![]));
        assert_eq!(
            parse_workshop_ids("12a"),
            Err("\"12a\" is not a Workshop id or link".into())
        );
        let form = OverlayForm {
            name: "maps".into(),
            ..OverlayForm::default()
        };
        assert_eq!(
            form.source(),
            Err("list at least one Workshop item or collection".into())
        );
        let form = OverlayForm {
            name: "maps".into(),
            workshop_collections: "555".into(),
            ..OverlayForm::default()
        };
        assert_eq!(
            form.source(),
            Ok(OverlaySource::Workshop {
                items: vec![],
                collections: vec![555]
            })
        );
    }
}
