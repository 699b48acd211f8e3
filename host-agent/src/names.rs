//! Server and overlay names as they come in on the command line, checked before anything is
//! touched; after this they are the protocol's validated names, never paths.

use crate::error::AgentError;
use left4me_protocol::{OverlayName, ServerName};

pub fn server_name(name: &str) -> Result<ServerName, AgentError> {
    ServerName::new(name).map_err(|e| AgentError::Invalid(e.to_string()))
}

pub fn overlay_name(name: &str) -> Result<OverlayName, AgentError> {
    OverlayName::new(name).map_err(|e| AgentError::Invalid(e.to_string()))
}
