//! `l4d2-agent`: the only program that changes a left4me host. The app runs it over SSH
//! with `--json`; admins run it by hand. `main.rs` only parses arguments and maps errors to
//! exit codes; every command lives here.

pub mod a2s;
pub mod cli;
pub mod layout;
pub mod mountinfo;
pub mod mounts;
pub mod output;
pub mod rcon;
pub mod sys;
pub mod version;

use cli::{Cli, Command};
use output::Output;

/// Runs one parsed command line, writing its answer to `out`.
pub fn run(cli: &Cli, out: &mut Output<'_>) -> Result<(), AgentError> {
    match &cli.command {
        Command::Version => out.message(&version::report()),
    }
}

/// A failed command: what the admin or the app is told.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
}

impl AgentError {
    /// The protocol's error code for this failure.
    pub fn code(&self) -> left4me_protocol::AgentErrorCode {
        match self {
            Self::Output(_) => left4me_protocol::AgentErrorCode::Failed,
        }
    }
}
