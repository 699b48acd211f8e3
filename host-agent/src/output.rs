//! Writes answers for people or, with `--json`, as protocol envelopes.

use crate::AgentError;
use left4me_protocol::{AgentMessage, Envelope};
use std::io::Write;

/// Something the agent reports, readable by people and serialisable for the app.
pub trait Report {
    /// The protocol message for `--json`.
    fn to_message(&self) -> AgentMessage;
    /// Text for people, ending with a newline.
    fn to_human(&self) -> String;
}

/// Where answers go, and in which form.
pub struct Output<'w> {
    json: bool,
    writer: &'w mut dyn Write,
}

impl<'w> Output<'w> {
    pub fn new(json: bool, writer: &'w mut dyn Write) -> Self {
        Self { json, writer }
    }

    /// Writes one report: a JSON line with `--json`, else its human text.
    pub fn message(&mut self, report: &dyn Report) -> Result<(), AgentError> {
        let text = if self.json {
            let mut line = Envelope::new(report.to_message()).to_line();
            line.push('\n');
            line
        } else {
            report.to_human()
        };
        self.writer
            .write_all(text.as_bytes())
            .and_then(|()| self.writer.flush())
            .map_err(AgentError::Output)
    }
}
