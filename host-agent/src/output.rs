//! Writes answers for people or, with `--json`, as protocol envelopes.

use crate::AgentError;
use left4me_protocol::agent::{
    DoneReport, HostEvents, InstallNotice, InstallProgress, Installed, LogLine, NotifyTargets,
    NotifyTested, OverlayList, RconAnswer, ServerList, ServerStatus, UpdateCheck,
};
use left4me_protocol::schedule::{RunOutcome, ScheduleList, SchedulePreview, ScheduleRan};
use left4me_protocol::units::human_bytes;
use left4me_protocol::{AgentMessage, Envelope};
use std::io::IsTerminal;
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
    /// Whether people watch a terminal: then progress is one redrawn bar.
    terminal: bool,
    writer: &'w mut dyn Write,
    /// The last progress shown to people: (pass, state, whole percent).
    last_progress: Option<(u32, String, u32)>,
    /// Whether a redrawn bar is on the terminal's last line.
    bar_open: bool,
}

impl<'w> Output<'w> {
    pub fn new(json: bool, writer: &'w mut dyn Write) -> Self {
        Self {
            json,
            terminal: !json && std::io::stdout().is_terminal(),
            writer,
            last_progress: None,
            bar_open: false,
        }
    }

    /// Shows one progress step: a JSON line, a redrawn bar on a terminal, or a plain line
    /// when the state or the tenth of the way changes.
    pub fn progress(&mut self, p: &InstallProgress) -> Result<(), AgentError> {
        if self.json {
            let message = AgentMessage::InstallProgress(p.clone());
            return self.write(&(Envelope::new(message).to_line() + "\n"));
        }
        let text = progress_text(p);
        if self.terminal {
            self.bar_open = true;
            return self.write(&format!("\r\x1b[2K{text}"));
        }
        let step = (p.pass, p.state.clone(), p.percent as u32 / 10);
        if self.last_progress.as_ref() == Some(&step) {
            return Ok(());
        }
        self.last_progress = Some(step);
        self.write(&format!("{text}\n"))
    }

    /// Ends a redrawn progress bar with a line break.
    pub fn finish_progress(&mut self) -> Result<(), AgentError> {
        if std::mem::take(&mut self.bar_open) {
            self.write("\n")?;
        }
        Ok(())
    }

    /// Tells a step of the install on a line of its own, below the bar.
    pub fn notice(&mut self, notice: &InstallNotice) -> Result<(), AgentError> {
        self.finish_progress()?;
        if self.json {
            let message = AgentMessage::InstallNotice(notice.clone());
            return self.write(&(Envelope::new(message).to_line() + "\n"));
        }
        self.write(&format!("{}\n", notice.message))
    }

    /// Tells a failure: its chain on stderr and, with `--json`, an error record on stdout.
    pub fn error(&mut self, err: &AgentError) -> Result<(), AgentError> {
        let message = crate::error::chain(err);
        eprintln!("l4d2-agent: {message}");
        if !self.json {
            return Ok(());
        }
        let record = Envelope::new(AgentMessage::Error(left4me_protocol::AgentError {
            code: err.code(),
            message,
        }));
        self.write(&(record.to_line() + "\n"))
    }

    fn write(&mut self, text: &str) -> Result<(), AgentError> {
        self.hold(text)?;
        self.flush()
    }

    fn hold(&mut self, text: &str) -> Result<(), AgentError> {
        self.writer
            .write_all(text.as_bytes())
            .map_err(AgentError::Output)
    }

    /// Sends on what was written and held.
    pub fn flush(&mut self) -> Result<(), AgentError> {
        self.writer.flush().map_err(AgentError::Output)
    }

    /// Writes one report: a JSON line with `--json`, else its human text.
    pub fn message(&mut self, report: &dyn Report) -> Result<(), AgentError> {
        self.message_held(report)?;
        self.flush()
    }

    /// Writes one report without sending it on yet: a stream sends what it holds with
    /// [`Output::flush`].
    pub fn message_held(&mut self, report: &dyn Report) -> Result<(), AgentError> {
        let text = if self.json {
            let mut line = Envelope::new(report.to_message()).to_line();
            line.push('\n');
            line
        } else {
            report.to_human()
        };
        self.hold(&text)
    }

    /// Runs `work`, which writes the records it streams through the writer it is given. A
    /// record that cannot be written does not stop the work; the first such failure is the
    /// result once the work itself succeeded.
    pub fn streamed<T>(
        &mut self,
        work: impl FnOnce(&mut dyn FnMut(&dyn Report)) -> Result<T, AgentError>,
    ) -> Result<T, AgentError> {
        let mut failed = None;
        let done = work(&mut |record| {
            if let Err(e) = self.message(record) {
                failed.get_or_insert(e);
            }
        })?;
        failed.map_or(Ok(done), Err)
    }
}

/// What a command that changes one thing answers: whether it changed it.
pub fn done(action: &str, target: &dyn std::fmt::Display, changed: bool) -> DoneReport {
    DoneReport {
        action: action.to_owned(),
        target: target.to_string(),
        changed,
    }
}

impl Report for DoneReport {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Done(self.clone())
    }

    fn to_human(&self) -> String {
        let outcome = if self.changed {
            "done"
        } else {
            "nothing to change"
        };
        format!("{} {}: {outcome}\n", self.action, self.target)
    }
}

impl Report for ServerList {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Servers(self.clone())
    }

    fn to_human(&self) -> String {
        if self.servers.is_empty() {
            return "no servers on this host\n".to_owned();
        }
        let rows: Vec<Vec<String>> = self
            .servers
            .iter()
            .map(|s| {
                let (map, players) = match &s.live {
                    Some(live) => (
                        live.map.clone(),
                        format!("{}/{}", live.players, live.max_players),
                    ),
                    None => (s.map.clone(), "-".to_owned()),
                };
                vec![
                    s.name.clone(),
                    s.port.to_string(),
                    s.active_state.clone(),
                    map,
                    players,
                    if s.mounted { "yes" } else { "no" }.to_owned(),
                    s.overlays.join(", "),
                ]
            })
            .collect();
        table(
            &[
                "NAME", "PORT", "STATE", "MAP", "PLAYERS", "MOUNTED", "OVERLAYS",
            ],
            &rows,
        )
    }
}

impl Report for OverlayList {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Overlays(self.clone())
    }

    fn to_human(&self) -> String {
        if self.overlays.is_empty() {
            return "no overlays on this host\n".to_owned();
        }
        let rows: Vec<Vec<String>> = self
            .overlays
            .iter()
            .map(|o| vec![o.name.clone(), o.files.to_string(), human_bytes(o.bytes)])
            .collect();
        table(&["NAME", "FILES", "SIZE"], &rows)
    }
}

impl Report for ServerStatus {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Status(self.clone())
    }

    fn to_human(&self) -> String {
        let mut text = format!("{}: {} ({})", self.name, self.active_state, self.sub_state);
        if let Some(since) = &self.since {
            text.push_str(&format!(" since {since}"));
        }
        if let Some(pid) = self.main_pid {
            text.push_str(&format!(", pid {pid}"));
        }
        if self.restarts > 0 {
            text.push_str(&format!(", restarted {} times", self.restarts));
        }
        if self.active_state == "failed" {
            text.push_str(&format!(", last run ended with {}", self.result));
            if self.restarts > 0 {
                text.push_str(
                    "; systemd gave up restarting it (crash loop): fix it and start it again",
                );
            }
        }
        text.push('\n');
        text.push_str(&format!(
            "  port {}, game tree {}, base install {}\n",
            self.port,
            if self.mounted {
                "mounted"
            } else {
                "not mounted"
            },
            self.installed_build
                .as_deref()
                .map_or("not installed".to_owned(), |b| format!("build {b}"))
        ));
        match &self.live {
            Some(live) => text.push_str(&format!(
                "  live: {:?} on {}, {}/{} players\n",
                live.name, live.map, live.players, live.max_players
            )),
            None if self.active_state == "active" => {
                text.push_str("  live: no answer to A2S_INFO yet\n")
            }
            None => {}
        }
        if self.restart_applies {
            text.push_str("  its spec changed since it started: a restart applies it\n");
        }
        if let Some(usage) = &self.usage {
            let bytes = |b: Option<u64>| b.map_or("?".to_owned(), human_bytes);
            text.push_str(&format!(
                "  memory: {} of its own ({} with page cache), {} out-of-memory kills\n",
                bytes(usage.memory_anon),
                bytes(usage.memory_current),
                usage.oom_kills.map_or("?".to_owned(), |n| n.to_string())
            ));
            text.push_str(&format!(
                "  cpu: {:.1} s used, held back {:.1} s by its quota ({} periods); {} tasks\n",
                usage.cpu_usec.unwrap_or(0) as f64 / 1e6,
                usage.throttled_usec.unwrap_or(0) as f64 / 1e6,
                usage.throttled_periods.unwrap_or(0),
                usage.tasks.map_or("?".to_owned(), |n| n.to_string())
            ));
            if let (Some(fps), Some(tickrate)) = (usage.fps(), usage.tickrate) {
                text.push_str(&format!("  game: {fps:.2} fps at tickrate {tickrate}\n"));
            }
            if !usage.in_force.is_empty() {
                text.push_str(&format!("  limits: {}\n", usage.in_force.join(" ")));
            }
        }
        text
    }
}

/// `[pass 2/2 linux] downloading  [#########...........]  45.2%  4.0 GiB of 8.3 GiB`
pub fn progress_text(p: &InstallProgress) -> String {
    const WIDTH: usize = 20;
    let filled = ((p.percent / 100.0) * WIDTH as f64)
        .round()
        .clamp(0.0, WIDTH as f64) as usize;
    format!(
        "[pass {}/{} {}] {:<17} [{}{}] {:5.1}%  {} of {}",
        p.pass,
        p.passes,
        p.platform,
        p.state,
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        p.percent,
        human_bytes(p.bytes_done),
        human_bytes(p.bytes_total)
    )
}

impl Report for Installed {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Installed(self.clone())
    }

    fn to_human(&self) -> String {
        let mut text = match (&self.previous_build, self.changed) {
            (Some(before), true) if self.pending => format!(
                "built {} beside build {before}, which servers run: each switches at its next start\n",
                self.build
            ),
            (None, _) => format!("installed build {}\n", self.build),
            (Some(before), true) => format!(
                "updated build {before} to {}: servers pick it up at their next restart\n",
                self.build
            ),
            (Some(_), false) => format!("build {} is up to date\n", self.build),
        };
        if !self.steam_client {
            text.push_str(
                "warning: steamcmd's linux32/steamclient.so was not found: servers will run without Steam (no VAC, no master-server listing)\n",
            );
        }
        text
    }
}

impl Report for UpdateCheck {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::UpdateCheck(self.clone())
    }

    fn to_human(&self) -> String {
        match (&self.installed_build, self.update_available) {
            (None, _) => format!(
                "the game is not installed; Steam's public build is {}\n",
                self.public_build
            ),
            (Some(installed), true) => format!(
                "build {installed} is installed; Steam's public build is {}: an update is available\n",
                self.public_build
            ),
            (Some(installed), false) => {
                format!("build {installed} is the public build: up to date\n")
            }
        }
    }
}

impl Report for RconAnswer {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::RconAnswer(self.clone())
    }

    fn to_human(&self) -> String {
        if self.answer.is_empty() || self.answer.ends_with('\n') {
            self.answer.clone()
        } else {
            format!("{}\n", self.answer)
        }
    }
}

impl Report for LogLine {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::LogLine(self.clone())
    }

    fn to_human(&self) -> String {
        format!("{} {}\n", self.timestamp, self.message)
    }
}

/// Left-aligned columns separated by two spaces; no trailing spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

impl Report for HostEvents {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Events(self.clone())
    }

    fn to_human(&self) -> String {
        if self.events.is_empty() {
            return format!(
                "no events (kept {} days, at most {})\n",
                self.retention.days, self.retention.events
            );
        }
        let mut text = String::new();
        for event in &self.events {
            // `2026-11-30T18:00:00.123456Z` to the second, in UTC.
            let at = event.at.get(..19).unwrap_or(&event.at).replace('T', " ");
            text.push_str(&format!(
                "{:>5}  {at}  {}: {}\n",
                event.seq,
                event.title(),
                event.detail()
            ));
            if let left4me_protocol::events::EventKind::Crashed { last_lines, .. } = &event.what {
                for line in last_lines {
                    text.push_str(&format!("         | {line}\n"));
                }
            }
        }
        text
    }
}

impl Report for NotifyTargets {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::NotifyTargets(self.clone())
    }

    fn to_human(&self) -> String {
        if self.targets.is_empty() {
            return "no notification targets\n".to_owned();
        }
        self.targets
            .iter()
            .map(|t| format!("{}: {} at {}\n", t.name, t.kind.label(), t.endpoint))
            .collect()
    }
}

impl Report for NotifyTested {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::NotifyTested(self.clone())
    }

    fn to_human(&self) -> String {
        let outcome = if self.delivered {
            "delivered"
        } else {
            "NOT delivered"
        };
        format!("{}: {outcome} ({})\n", self.target, self.detail)
    }
}

impl Report for ScheduleList {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Schedules(self.clone())
    }

    fn to_human(&self) -> String {
        if self.schedules.is_empty() {
            return "no schedules\n".to_owned();
        }
        let rows: Vec<Vec<String>> = self
            .schedules
            .iter()
            .map(|info| {
                let s = &info.schedule;
                vec![
                    s.name.to_string(),
                    s.on_calendar(),
                    s.describe(),
                    info.next_runs
                        .first()
                        .map_or("never".to_owned(), |t| minute_of(t)),
                    info.last_run.as_ref().map_or("-".to_owned(), |r| {
                        format!("{}: {}", outcome_word(r.outcome), r.detail)
                    }),
                ]
            })
            .collect();
        table(&["NAME", "WHEN", "WHAT", "NEXT (UTC)", "LAST RUN"], &rows)
    }
}

impl Report for left4me_protocol::rollout::Builds {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Builds(self.clone())
    }

    fn to_human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .builds
            .iter()
            .map(|b| {
                vec![
                    b.build.clone().unwrap_or_else(|| "-".into()),
                    b.version.clone().unwrap_or_else(|| "-".into()),
                    if b.current { "yes" } else { "" }.to_owned(),
                    if b.servers.is_empty() {
                        "-".to_owned()
                    } else {
                        b.servers
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                ]
            })
            .collect();
        let mut text = table(&["BUILD", "VERSION", "NEW STARTS", "RUNNING ON IT"], &rows);
        if let Some(r) = &self.rollout {
            text.push_str(&format!(
                "\nrollout of {}: {} ({}), canary {}, drain {} min, check {} s\n",
                r.what(),
                r.state.describe(),
                r.progress(),
                r.canary,
                r.drain_minutes,
                r.check_seconds
            ));
            if let Some(reason) = &r.reason {
                text.push_str(&format!("{reason}\n"));
            }
            let rows: Vec<Vec<String>> = r
                .servers
                .iter()
                .map(|s| {
                    vec![
                        s.name.to_string(),
                        r.describe_step(s.step).to_owned(),
                        s.downtime_ms
                            .map_or("-".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
                        s.detail.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            text.push_str(&table(&["SERVER", "STEP", "DOWN", "DETAIL"], &rows));
        }
        text
    }
}

/// `2026-12-07T03:00:00.000000Z` as `2026-12-07 03:00:00`.
fn minute_of(rfc3339: &str) -> String {
    rfc3339.get(..19).unwrap_or(rfc3339).replace('T', " ")
}

fn outcome_word(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Done => "done",
        RunOutcome::Skipped => "skipped",
        RunOutcome::Failed => "FAILED",
    }
}

impl Report for SchedulePreview {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::SchedulePreview(self.clone())
    }

    fn to_human(&self) -> String {
        let mut text = format!("{}\n", self.normalized);
        for run in &self.next_runs {
            text.push_str(&format!("  {} UTC\n", minute_of(run)));
        }
        if let Some(warning) = &self.warning {
            text.push_str(&format!("warning: {warning}\n"));
        }
        text
    }
}

impl Report for ScheduleRan {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::ScheduleRan(self.clone())
    }

    fn to_human(&self) -> String {
        let whom = self
            .server
            .as_deref()
            .map_or(String::new(), |s| format!(" ({s})"));
        format!(
            "{}{whom}, due {}: {}: {}\n",
            self.schedule,
            minute_of(&self.slot),
            outcome_word(self.outcome),
            self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["NAME", "PORT"],
            &[
                vec!["coop-1".into(), "27015".into()],
                vec!["versus-long-name".into(), "27016".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME              PORT\ncoop-1            27015\nversus-long-name  27016\n"
        );
    }
}
