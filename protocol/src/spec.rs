//! The instance spec: everything a host needs to know to run one game server, as the YAML
//! file that `l4d2-agent initialize <name> -f spec.yaml` reads.
//!
//! The app renders a spec from a server's blueprint on every action, so the spec holds
//! only what the blueprint decides plus the server's own port; the name is the agent's
//! argument. Secrets (the RCON password) are never part of a spec.
//!
//! ```yaml
//! port: 27015
//! ip: 0.0.0.0          # the address it binds (-ip); all of the host's when absent
//! client_port: 28015   # +clientport: each server on a host needs its own
//! tv_port: 29015       # +tv_port: SourceTV's, unless the -nohltv flag turns it off
//! overlays: [sourcemod, campaigns]   # first listed wins where files collide
//! launch:
//!   map: c1m1_hotel
//!   max_players: 8
//!   tickrate: 30
//!   flags: [-insecure]
//! cvars:
//!   hostname: Friday coop
//!   sv_gametypes: coop
//! ```

use crate::names::{InvalidName, MapName, OverlayName};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The version of the spec format written by this build.
pub const SPEC_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    #[serde(default = "spec_version")]
    pub version: u32,
    /// Game port: UDP for play and queries, TCP for RCON.
    pub port: u16,
    /// The address srcds binds (`-ip`): all of the host's addresses when absent. Without
    /// `-ip`, srcds binds RCON to the address the host's name resolves to (127.0.1.1 on
    /// Debian and Ubuntu), so the agent always passes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// The UDP port srcds uses as a client (`+clientport`, 27005 by default): two servers
    /// on one host must not share it. The agent picks a free one when a spec leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
    /// SourceTV's UDP port (`+tv_port`, 27020 by default), unless `-nohltv` turns SourceTV
    /// off. The agent picks a free one when a spec leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tv_port: Option<u16>,
    /// Overlay layers from top to bottom; the base install lies below the last one.
    #[serde(default)]
    pub overlays: Vec<OverlayName>,
    pub launch: LaunchParams,
    /// Console variables rendered into the server's `server.cfg`.
    #[serde(default)]
    pub cvars: BTreeMap<String, String>,
    /// Whether the host restarts the server when it stops answering while its process
    /// runs (it is reported either way).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_when_hung: bool,
    /// Whether the server goes first (the canary) when a game update rolls across its
    /// host: the emptiest of those that say so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollout_canary: bool,
    /// Resource limits for the server's unit; none: systemd's defaults.
    #[serde(default, skip_serializing_if = "crate::limits::Limits::is_unset")]
    pub limits: crate::limits::Limits,
}

fn spec_version() -> u32 {
    SPEC_VERSION
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchParams {
    pub map: MapName,
    pub max_players: u8,
    pub tickrate: u16,
    #[serde(default)]
    pub flags: Vec<LaunchFlag>,
}

/// Extra srcds flags an admin may add. A closed list: anything else could change ports,
/// paths or the process's privileges behind the agent's back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LaunchFlag {
    /// VAC off.
    #[serde(rename = "-insecure")]
    Insecure,
    /// SourceTV off.
    #[serde(rename = "-nohltv")]
    NoHltv,
}

impl LaunchFlag {
    pub const ALL: [LaunchFlag; 2] = [Self::Insecure, Self::NoHltv];

    /// The flag as it appears on the srcds command line.
    pub fn as_arg(self) -> &'static str {
        match self {
            Self::Insecure => "-insecure",
            Self::NoHltv => "-nohltv",
        }
    }
}

/// Cvars that may not be set through a spec, with the reason shown to the user.
const RESERVED_CVARS: &[(&str, &str)] = &[
    (
        "rcon_password",
        "the RCON password is a secret and is set through the server's RCON settings",
    ),
    ("hostport", "the port is the server's own setting"),
    ("ip", "the bind address is managed by the host"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("spec is not valid YAML for an instance spec: {0}")]
    Syntax(String),
    #[error("limits: {0}")]
    Limits(String),
    #[error("spec version {found} is newer than this build understands ({supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error(transparent)]
    Name(#[from] InvalidName),
    #[error("port {0} is outside 1024-65535")]
    Port(u16),
    #[error("port {0} is given twice: the game, client and SourceTV ports must differ")]
    SharedPort(u16),
    #[error("max_players {0} is outside 1-32")]
    MaxPlayers(u8),
    #[error("tickrate {0} is outside 10-128")]
    Tickrate(u16),
    #[error("overlay {0:?} is listed twice")]
    DuplicateOverlay(String),
    #[error("launch flag {} is listed twice", .0.as_arg())]
    DuplicateFlag(LaunchFlag),
    #[error(
        "cvar name {0:?} is invalid: use letters, digits and '_', starting with a letter or '_'"
    )]
    CvarName(String),
    #[error("cvar {name:?} cannot be set here: {reason}")]
    ReservedCvar { name: String, reason: &'static str },
    #[error("value of cvar {name:?} is invalid: {reason}")]
    CvarValue { name: String, reason: &'static str },
}

impl InstanceSpec {
    /// Parses and validates a spec file's text.
    pub fn from_yaml(text: &str) -> Result<Self, SpecError> {
        let spec: Self =
            serde_yaml::from_str(text).map_err(|e| SpecError::Syntax(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("instance spec serialises to YAML")
    }

    /// Whether SourceTV runs (it does unless `-nohltv` is given).
    pub fn source_tv(&self) -> bool {
        !self.launch.flags.contains(&LaunchFlag::NoHltv)
    }

    /// The ports the server binds: the game port, then the client and SourceTV ports the
    /// spec gives (SourceTV's only while it runs).
    pub fn ports(&self) -> Vec<u16> {
        let mut ports = vec![self.port];
        ports.extend(self.client_port);
        if self.source_tv() {
            ports.extend(self.tv_port);
        }
        ports
    }

    /// Checks what the types alone do not: ranges, duplicates and cvars.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.version > SPEC_VERSION {
            return Err(SpecError::UnsupportedVersion {
                found: self.version,
                supported: SPEC_VERSION,
            });
        }
        let mut seen = BTreeSet::new();
        for port in self.ports() {
            if port < 1024 {
                return Err(SpecError::Port(port));
            }
            if !seen.insert(port) {
                return Err(SpecError::SharedPort(port));
            }
        }
        if !(1..=32).contains(&self.launch.max_players) {
            return Err(SpecError::MaxPlayers(self.launch.max_players));
        }
        if !(10..=128).contains(&self.launch.tickrate) {
            return Err(SpecError::Tickrate(self.launch.tickrate));
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = self.overlays.iter().find(|o| !seen.insert(*o)) {
            return Err(SpecError::DuplicateOverlay(dup.to_string()));
        }
        let mut seen = BTreeSet::new();
        if let Some(dup) = self.launch.flags.iter().find(|f| !seen.insert(**f)) {
            return Err(SpecError::DuplicateFlag(*dup));
        }
        for (name, value) in &self.cvars {
            validate_cvar(name, value)?;
        }
        self.limits.check().map_err(SpecError::Limits)?;
        Ok(())
    }
}

/// Checks one cvar. Values end up inside double quotes in `server.cfg`, one per line, so
/// quotes, semicolons, line breaks and other control characters would let a value inject
/// commands.
pub fn validate_cvar(name: &str, value: &str) -> Result<(), SpecError> {
    let mut chars = name.chars();
    let name_ok = name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(SpecError::CvarName(name.to_owned()));
    }
    if let Some((_, reason)) = RESERVED_CVARS
        .iter()
        .find(|(reserved, _)| reserved.eq_ignore_ascii_case(name))
    {
        return Err(SpecError::ReservedCvar {
            name: name.to_owned(),
            reason,
        });
    }
    let value_error = |reason| SpecError::CvarValue {
        name: name.to_owned(),
        reason,
    };
    if value.len() > 255 {
        return Err(value_error("longer than 255 bytes"));
    }
    if value.contains('"') {
        return Err(value_error("double quotes are not allowed"));
    }
    if value.contains(';') {
        return Err(value_error("semicolons are not allowed"));
    }
    if value.chars().any(char::is_control) {
        return Err(value_error(
            "line breaks and control characters are not allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
port: 27015
overlays: [sourcemod, campaigns]
launch:
  map: c1m1_hotel
  max_players: 8
  tickrate: 30
  flags: [-insecure]
cvars:
  hostname: Friday coop
  sv_gametypes: coop
";

    #[test]
    fn example_spec_round_trips() {
        let spec = InstanceSpec::from_yaml(EXAMPLE).unwrap();
        assert_eq!(spec.version, SPEC_VERSION);
        assert_eq!(spec.overlays[0].as_str(), "sourcemod");
        assert_eq!(spec.launch.flags, [LaunchFlag::Insecure]);
        assert_eq!(InstanceSpec::from_yaml(&spec.to_yaml()).unwrap(), spec);
    }

    #[test]
    fn the_bind_address_and_the_other_ports_round_trip() {
        let text = EXAMPLE.replace(
            "port: 27015\n",
            "port: 27015\nip: 10.0.0.5\nclient_port: 27005\ntv_port: 27020\n",
        );
        let spec = InstanceSpec::from_yaml(&text).unwrap();
        assert_eq!(spec.ip, Some(std::net::Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(spec.ports(), [27015, 27005, 27020]);
        assert_eq!(InstanceSpec::from_yaml(&spec.to_yaml()).unwrap(), spec);
        // SourceTV off: its port is not bound, so it may be anything.
        let off = text.replace("[-insecure]", "[-nohltv]");
        assert_eq!(
            InstanceSpec::from_yaml(&off).unwrap().ports(),
            [27015, 27005]
        );
    }

    #[test]
    fn flags_are_written_as_they_appear_on_the_command_line() {
        for flag in LaunchFlag::ALL {
            assert_eq!(serde_yaml::to_string(&flag).unwrap().trim(), flag.as_arg());
        }
    }

    #[track_caller]
    fn check(replace: (&str, &str), expect: &str) {
        let text = EXAMPLE.replace(replace.0, replace.1);
        assert_ne!(text, EXAMPLE, "replacement {replace:?} matched nothing");
        let err = InstanceSpec::from_yaml(&text).unwrap_err().to_string();
        assert!(err.contains(expect), "expected {expect:?} in {err:?}");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        check(("port: 27015", "port: 80"), "port 80 is outside 1024-65535");
        check(
            ("port: 27015", "port: 27015\nclient_port: 27015"),
            "port 27015 is given twice",
        );
        check(
            ("port: 27015", "port: 27015\ntv_port: 1000"),
            "port 1000 is outside 1024-65535",
        );
        check(("port: 27015", "port: 27015\nip: 10.0.0.300"), "ip");
        check(("port: 27015", "port: 70000"), "port");
        check(
            ("max_players: 8", "max_players: 0"),
            "max_players 0 is outside 1-32",
        );
        check(
            ("tickrate: 30", "tickrate: 1000"),
            "tickrate 1000 is outside 10-128",
        );
        check(
            ("[sourcemod, campaigns]", "[sourcemod, sourcemod]"),
            "overlay \"sourcemod\" is listed twice",
        );
        check(
            ("[sourcemod, campaigns]", "[../../etc]"),
            "invalid overlay name \"../../etc\"",
        );
        check(("c1m1_hotel", "\"c1m1; quit\""), "invalid map name");
        check(
            ("[-insecure]", "[-insecure, -insecure]"),
            "launch flag -insecure is listed twice",
        );
        check(("[-insecure]", "[+rcon_password x]"), "unknown variant");
        check(
            ("sv_gametypes: coop", "rcon_password: hunter2"),
            "cvar \"rcon_password\" cannot be set here",
        );
        check(
            ("hostname: Friday coop", "hostname: \"a\\\"; quit\""),
            "double quotes are not allowed",
        );
        check(
            ("hostname: Friday coop", "hostname: \"a\\nquit\""),
            "line breaks",
        );
        check(
            ("hostname: Friday coop", "hostname: a; quit"),
            "semicolons are not allowed",
        );
        check(
            ("sv_gametypes: coop", "\"sv gametypes\": coop"),
            "cvar name \"sv gametypes\" is invalid",
        );
        check(
            ("port: 27015", "port: 27015\nsurprise: 1"),
            "unknown field `surprise`",
        );
        check(
            ("port: 27015", "version: 9\nport: 27015"),
            "spec version 9 is newer",
        );
    }
}
