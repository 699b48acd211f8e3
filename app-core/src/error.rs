//! What can go wrong in app-core, sorted by what the caller can do about it.

use crate::StoreError;
use left4me_protocol::{ErrorCode, IpcError};

/// A failed app-core operation. The message is written for the person at the window; the
/// variant tells the UI how to treat it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input was rejected; nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// The thing does not exist, or belongs to someone else (the two look the same).
    #[error("{0}")]
    NotFound(String),
    /// The request is valid but the current state forbids it (a name or port taken, a
    /// blueprint still in use). Nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// The logged-in user may not do this (not an admin).
    #[error("{0}")]
    Forbidden(String),
    /// The login failed or the session is no longer valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// Too many failed logins; `retry_after_s` says when to try again.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    /// A host could not be reached, or its agent refused or failed.
    #[error("{0}")]
    Remote(String),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Self::Store(StoreError::Query(err))
    }
}

impl From<left4me_protocol::InvalidName> for Error {
    fn from(err: left4me_protocol::InvalidName) -> Self {
        Self::Invalid(err.to_string())
    }
}

impl From<left4me_protocol::SpecError> for Error {
    fn from(err: left4me_protocol::SpecError) -> Self {
        Self::Invalid(err.to_string())
    }
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::InvalidInput,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Remote(_) => ErrorCode::Remote,
            Self::Secrets(_) => ErrorCode::Internal,
            Self::Store(_) => ErrorCode::Storage,
        }
    }
}

impl From<Error> for IpcError {
    fn from(err: Error) -> Self {
        IpcError::new(err.code(), chain(&err))
    }
}

/// An error and its causes on one line, as users read them.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
