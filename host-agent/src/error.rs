//! What a failed command tells the admin or the app, and the exit code it maps to.

use left4me_protocol::AgentErrorCode;

/// Exit codes, documented in `--help`.
pub mod exit {
    pub const FAILED: u8 = 1;
    pub const INVALID: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const BUSY: u8 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
    /// The input was rejected before anything changed.
    #[error("{0}")]
    Invalid(String),
    #[error("{what} {name:?} does not exist")]
    NotFound { what: &'static str, name: String },
    #[error("{what} {name:?} is busy: another l4d2-agent is working on it")]
    Busy { what: &'static str, name: String },
    /// Something is in use and cannot be changed now; the message says by what.
    #[error("{0}")]
    InUse(String),
    /// A failure reported by the agent that ran as root for us, passed on as it was worded.
    #[error("{0}")]
    Relayed(String),
    /// steamcmd failed, for a reason it told (or by its silence).
    #[error("{message}")]
    Steam {
        failure: crate::steamcmd::Failure,
        /// The explanation with what this host adds (free space, steamcmd's last lines).
        message: String,
    },
    /// The command started and failed.
    #[error("{context}")]
    Failed {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AgentError {
    pub fn failed(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Failed {
            context: context.into(),
            source: source.into(),
        }
    }

    /// The protocol's error code for this failure.
    pub fn code(&self) -> AgentErrorCode {
        match self {
            Self::Invalid(_) => AgentErrorCode::InvalidInput,
            Self::NotFound { .. } => AgentErrorCode::NotFound,
            Self::Busy { .. } | Self::InUse(_) => AgentErrorCode::Busy,
            Self::Steam { failure, .. } => failure.code(),
            Self::Output(_) | Self::Relayed(_) | Self::Failed { .. } => AgentErrorCode::Failed,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid(_) => exit::INVALID,
            Self::NotFound { .. } => exit::NOT_FOUND,
            Self::Busy { .. } | Self::InUse(_) => exit::BUSY,
            Self::Output(_) | Self::Relayed(_) | Self::Failed { .. } | Self::Steam { .. } => {
                exit::FAILED
            }
        }
    }
}

/// Turns an I/O error on `path` into a failure that names the path.
pub fn io_context(
    action: &str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> AgentError + use<> {
    let context = format!("cannot {action} {}", path.display());
    move |e| AgentError::failed(context, e)
}

/// An error and its causes on one line, as people read them.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
