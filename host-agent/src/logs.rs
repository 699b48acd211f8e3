//! `logs <name>`: a server's console from journald, for people or as JSON Lines with
//! timestamps; `--follow` streams until interrupted.
//!
//! A follower reads two sources: the journal (history, and everything the unit logs) and,
//! while the server runs, its console's live feed ([`crate::live`]), which carries each line
//! as it is printed instead of up to 250 ms later. Console lines carry their run and number
//! in both, so each is shown once, from whichever source has it first.

use crate::error::AgentError;
use crate::live;
use crate::output::Output;
use crate::systemd::unit;
use left4me_protocol::ServerName;
use left4me_protocol::agent::LogLine;
use left4me_protocol::time::rfc3339;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most lines one call returns; more is a job for journalctl itself.
pub const MAX_LINES: u32 = 100_000;
/// How often a follower looks for a (re)started console's feed.
const RECONNECT_EVERY: Duration = Duration::from_millis(100);

type Each<'a> = &'a mut dyn FnMut(LogLine) -> Result<(), AgentError>;

/// `logs <name>`: prints the server's console lines.
pub fn command(
    name: &str,
    lines: u32,
    follow: bool,
    out: &mut Output<'_>,
) -> Result<(), AgentError> {
    let name = crate::names::server_name(name)?;
    let out = std::cell::RefCell::new(out);
    logs(
        &name,
        lines,
        follow,
        &mut |line| out.borrow_mut().message_held(&line),
        &mut || out.borrow_mut().flush(),
    )
}

/// While a log floods, the lines at hand go out together at most this often: a few hundred
/// writes a second instead of one a line, each a wakeup of sshd and of the reader. A line
/// after a quiet spell goes out at once.
const SEND_EVERY: Duration = Duration::from_millis(2);

/// Streams the last `lines` lines (and with `follow`, new ones) to `each`, and calls `send`
/// to pass on what `each` was given (which it may hold until then): once every line at hand
/// was given, at most every [`SEND_EVERY`].
pub fn logs(
    name: &ServerName,
    lines: u32,
    follow: bool,
    each: Each<'_>,
    send: &mut dyn FnMut() -> Result<(), AgentError>,
) -> Result<(), AgentError> {
    if lines > MAX_LINES {
        return Err(AgentError::Invalid(format!(
            "--lines {lines}: at most {MAX_LINES}"
        )));
    }
    if !follow {
        each_entry(name, &[&format!("--lines={lines}")], &mut |entry| {
            each(entry.line)
        })?;
        return send();
    }
    let mut shown = Shown::default();
    // The feed first, so that nothing printed from now on can fall between the sources.
    let feed = live::Subscription::connect(&live::socket_path(name.as_str()));
    // The last line of this run the journal has: what the feed replays up to it is old,
    // even where it lies before the history asked for.
    let journaled = match &feed {
        Some(feed) => journal(name, &[&format!("LEFT4ME_RUN={}", feed.run), "--lines=1"])?
            .pop()
            .and_then(|e| e.mark),
        None => None,
    };
    let history = journal(name, &[&format!("--lines={}", lines.max(1))])?;
    let cursor = history.last().and_then(|e| e.cursor.clone());
    let skip = history.len().saturating_sub(lines as usize);
    for (i, entry) in history.into_iter().enumerate() {
        if shown.first_time(&entry.mark) && i >= skip {
            each(entry.line)?;
        }
    }
    if let Some(mark) = &journaled {
        shown.note(mark);
    }
    send()?;
    let mut sent = Instant::now();

    let (tx, rx) = mpsc::channel();
    let mut follower = follow_journal(name, cursor.as_deref(), tx.clone())?;
    let path = live::socket_path(name.as_str());
    std::thread::spawn(move || follow_feed(path, feed, tx));
    let result = (|| {
        loop {
            let message = match rx.try_recv() {
                Ok(message) => message,
                Err(mpsc::TryRecvError::Empty) => {
                    // Every line at hand was given: send them, unless the last send was
                    // just now; then sleep a little and take what came meanwhile with them.
                    let since = sent.elapsed();
                    if since < SEND_EVERY {
                        std::thread::sleep(SEND_EVERY - since);
                        continue;
                    }
                    send()?;
                    sent = Instant::now();
                    match rx.recv() {
                        Ok(message) => message,
                        Err(mpsc::RecvError) => return Ok(()),
                    }
                }
                Err(mpsc::TryRecvError::Disconnected) => return send(),
            };
            match message {
                Message::Entry(entry) => {
                    if shown.first_time(&entry.mark) {
                        each(entry.line)?;
                    }
                }
                Message::JournalEnded(Err(e)) => return Err(e),
                Message::JournalEnded(Ok(())) => return send(),
            }
        }
    })();
    // The reader went away (a closed pipe, an ended SSH channel): stop journalctl.
    let _ = follower.kill();
    let _ = follower.wait();
    result
}

/// A console line's place: its run and its number in it.
type Mark = (String, u64);

/// The console lines shown so far: the highest number of each run.
#[derive(Default)]
struct Shown(HashMap<String, u64>);

impl Shown {
    fn note(&mut self, (run, seq): &Mark) {
        let highest = self.0.entry(run.clone()).or_insert(*seq);
        *highest = (*highest).max(*seq);
    }

    /// Whether a line is new (lines without a mark always are), noting it if so.
    fn first_time(&mut self, mark: &Option<Mark>) -> bool {
        let Some((run, seq)) = mark else {
            return true;
        };
        if self.0.get(run).is_some_and(|highest| highest >= seq) {
            return false;
        }
        self.0.insert(run.clone(), *seq);
        true
    }
}

enum Message {
    Entry(Entry),
    JournalEnded(Result<(), AgentError>),
}

struct Entry {
    line: LogLine,
    mark: Option<Mark>,
    cursor: Option<String>,
}

fn journalctl(name: &ServerName, args: &[&str]) -> Command {
    let mut command = Command::new("journalctl");
    command
        .args([
            "--unit",
            &unit(name),
            "--output",
            "json",
            // Only what a line needs (the cursor and the time always come): a flood costs
            // journalctl and this reader a fraction of the whole records.
            "--output-fields=MESSAGE,LEFT4ME_RUN,LEFT4ME_SEQ",
            "--no-pager",
            "--quiet",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The journal's entries for the unit that `args` select.
fn journal(name: &ServerName, args: &[&str]) -> Result<Vec<Entry>, AgentError> {
    let mut entries = Vec::new();
    each_entry(name, args, &mut |entry| {
        entries.push(entry);
        Ok(())
    })?;
    Ok(entries)
}

/// Streams the journal's entries for the unit that `args` select to `each`; if `each`
/// fails (the reader went away), journalctl is stopped and the failure returned.
fn each_entry(
    name: &ServerName,
    args: &[&str],
    each: &mut dyn FnMut(Entry) -> Result<(), AgentError>,
) -> Result<(), AgentError> {
    let mut child = journalctl(name, args)
        .spawn()
        .map_err(|e| AgentError::failed("cannot run journalctl", e))?;
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| AgentError::failed("cannot read journalctl's output", e))?;
        if let Some(entry) = parse_record(&line)
            && let Err(err) = each(entry)
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err);
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| AgentError::failed("cannot wait for journalctl", e))?;
    if !out.status.success() {
        return Err(AgentError::failed(
            "journalctl failed",
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

/// journalctl following the unit from `cursor` (or from the start, when the unit has
/// logged nothing yet), its entries sent to `tx`.
fn follow_journal(
    name: &ServerName,
    cursor: Option<&str>,
    tx: mpsc::Sender<Message>,
) -> Result<Child, AgentError> {
    let from = match cursor {
        Some(cursor) => format!("--after-cursor={cursor}"),
        None => "--lines=all".to_owned(),
    };
    let mut child = journalctl(name, &["--follow", &from])
        .spawn()
        .map_err(|e| AgentError::failed("cannot run journalctl", e))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(entry) = parse_record(&line)
                && tx.send(Message::Entry(entry)).is_err()
            {
                return;
            }
        }
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        let ended = if text.trim().is_empty() {
            Ok(())
        } else {
            Err(AgentError::failed(
                "journalctl failed",
                text.trim().to_owned(),
            ))
        };
        let _ = tx.send(Message::JournalEnded(ended));
    });
    Ok(child)
}

/// The console's feed, followed across restarts of the server: each run's lines, with their
/// marks, sent to `tx`.
fn follow_feed(
    path: std::path::PathBuf,
    mut feed: Option<live::Subscription>,
    tx: mpsc::Sender<Message>,
) {
    loop {
        if let Some(mut subscription) = feed.take() {
            while let Some(line) = subscription.next_line() {
                let entry = Entry {
                    line: LogLine {
                        timestamp: rfc3339(line.micros),
                        message: String::from_utf8_lossy(&line.text).into_owned(),
                    },
                    mark: Some((subscription.run.clone(), line.seq)),
                    cursor: None,
                };
                if tx.send(Message::Entry(entry)).is_err() {
                    return;
                }
            }
        }
        std::thread::sleep(RECONNECT_EVERY);
        feed = live::Subscription::connect(&path);
    }
}

/// One `journalctl -o json` record: the time and the message (a string, or an array of
/// bytes when it is not valid UTF-8), and the console's mark and the cursor when present.
fn parse_record(line: &str) -> Option<Entry> {
    use std::borrow::Cow;
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Bytes(Vec<u8>),
    }
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
        realtime: Cow<'a, str>,
        #[serde(rename = "MESSAGE")]
        message: Option<Text>,
        #[serde(rename = "LEFT4ME_RUN", borrow, default)]
        run: Option<Cow<'a, str>>,
        #[serde(rename = "LEFT4ME_SEQ", borrow, default)]
        seq: Option<Cow<'a, str>>,
        #[serde(rename = "__CURSOR", borrow, default)]
        cursor: Option<Cow<'a, str>>,
    }
    let record: Record<'_> = serde_json::from_str(line).ok()?;
    let micros: u64 = record.realtime.parse().ok()?;
    let message = match record.message? {
        Text::Text(text) => text,
        Text::Bytes(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
    };
    let mark = record
        .run
        .zip(record.seq.and_then(|s| s.parse::<u64>().ok()))
        .map(|(run, seq)| (run.into_owned(), seq));
    Some(Entry {
        line: LogLine {
            timestamp: rfc3339(micros),
            message,
        },
        mark,
        cursor: record.cursor.map(Cow::into_owned),
    })
}

/// The last `lines` console lines of one run of the server (`run` is the unit's
/// invocation id, which the console marks its lines with), oldest first: what a crash
/// report quotes.
pub fn last_lines_of_run(name: &ServerName, run: &str, lines: usize) -> Vec<String> {
    let mut found: Vec<String> = journal(name, &["--lines", "400"])
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| entry.mark.as_ref().is_some_and(|(r, _)| r == run))
        .map(|entry| {
            entry
                .line
                .message
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .take(300)
                .collect()
        })
        .collect();
    found.drain(..found.len().saturating_sub(lines));
    found
}

/// Asks journald to write out what it has received (root only; a no-op otherwise), so a
/// reader right after a process ended sees its last lines.
pub fn sync_journal() {
    let _ = Command::new("journalctl")
        .arg("--sync")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// One `journalctl -o json` record as a log line.
pub fn parse_entry(line: &str) -> Option<LogLine> {
    parse_record(line).map(|entry| entry.line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_records_are_read() {
        let entry = parse_entry(
            r#"{"__REALTIME_TIMESTAMP":"1795689296123456","MESSAGE":"Map c1m1_hotel loaded, tickrate 30","_PID":"42"}"#,
        )
        .unwrap();
        assert_eq!(entry.message, "Map c1m1_hotel loaded, tickrate 30");
        assert_eq!(entry.timestamp, "2026-11-26T10:34:56.123456Z");
        let bytes = parse_entry(r#"{"__REALTIME_TIMESTAMP":"0","MESSAGE":[104,105,255]}"#).unwrap();
        assert_eq!(bytes.message, "hi\u{fffd}");
        assert!(parse_entry("not json").is_none());
    }
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    #[test]
    fn each_console_line_is_shown_once_whichever_source_brings_it_first() {
        let mut shown = Shown::default();
        let mark = |run: &str, seq| Some((run.to_owned(), seq));
        // History from the journal, then the feed's replay overlapping it.
        assert!(shown.first_time(&mark("a", 0)));
        assert!(shown.first_time(&mark("a", 1)));
        assert!(!shown.first_time(&mark("a", 1)));
        assert!(shown.first_time(&mark("a", 2)));
        // The journal catching up on what the feed brought.
        assert!(!shown.first_time(&mark("a", 2)));
        // Entries that are not console lines (systemd's own), and a new run.
        assert!(shown.first_time(&None));
        assert!(shown.first_time(&None));
        assert!(shown.first_time(&mark("b", 0)));
        assert!(!shown.first_time(&mark("a", 2)));
        shown.note(&("c".to_owned(), 5));
        assert!(!shown.first_time(&mark("c", 5)));
        assert!(shown.first_time(&mark("c", 6)));
    }

    #[test]
    fn marks_and_cursors_are_read_from_journal_records() {
        let entry = parse_record(
            r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"0","MESSAGE":"x","LEFT4ME_RUN":"ab12","LEFT4ME_SEQ":"41"}"#,
        )
        .unwrap();
        assert_eq!(entry.mark, Some(("ab12".to_owned(), 41)));
        assert_eq!(entry.cursor.as_deref(), Some("s=1;i=2"));
        let plain = parse_record(r#"{"__REALTIME_TIMESTAMP":"0","MESSAGE":"Started."}"#).unwrap();
        assert_eq!(plain.mark, None);
    }
}
