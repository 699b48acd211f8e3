//! `l4d2-agent version`: what this binary is, so the app can tell whether a host's agent
//! matches its own.

use crate::output::Report;
use left4me_protocol::{AgentMessage, PROTOCOL_VERSION, agent::VersionReport};

/// What this agent can do, for the app to check before relying on it.
pub const FEATURES: &[&str] = &["initialize", "mounts", "overlays"];

pub fn report() -> VersionReport {
    VersionReport {
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        arch: std::env::consts::ARCH.to_owned(),
        static_binary: cfg!(target_feature = "crt-static"),
        features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
    }
}

impl Report for VersionReport {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Version(self.clone())
    }

    fn to_human(&self) -> String {
        let linking = if self.static_binary {
            "static"
        } else {
            "dynamic"
        };
        format!(
            "l4d2-agent {} ({}, {linking}, protocol {PROTOCOL_VERSION})\n",
            self.agent_version, self.arch
        )
    }
}
