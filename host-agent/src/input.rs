//! Secrets a command reads from stdin (a Steam login, an RCON password): they never appear
//! on a command line, and are read bounded, in one way.

use crate::error::AgentError;
use std::io::{BufRead, Read};

/// The most a secret on stdin may take.
const MAX_SECRET_BYTES: u64 = 4096;

/// How much of stdin is the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// All of it.
    Whole,
    /// The first line, its newline included (absent when stdin ended first); the rest stays
    /// for the next reader of stdin.
    FirstLine,
}

/// Reads a secret from stdin, at most `MAX_SECRET_BYTES` of it.
pub fn read_secret(part: Secret) -> Result<String, AgentError> {
    let mut text = String::new();
    let mut stdin = std::io::stdin().lock().take(MAX_SECRET_BYTES);
    match part {
        Secret::Whole => stdin.read_to_string(&mut text),
        Secret::FirstLine => stdin.read_line(&mut text),
    }
    .map_err(|e| AgentError::Invalid(format!("cannot read stdin: {e}")))?;
    Ok(text)
}
