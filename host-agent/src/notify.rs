//! Notifications sent from the host, so they go out while the admin's laptop is closed.
//!
//! The targets (Discord webhooks, signed JSON webhooks, ntfy topics, Gotify servers) are the
//! owner's 0600 file `automation/notify.json`, given on stdin by `notify set`: their URLs
//! and tokens are secrets and never appear on a command line or in a log.
//!
//! An event worth telling ([`enqueue`]) becomes a file in `automation/outgoing/`. systemd's
//! `left4me-notify.path` starts `left4me-notify.service` whenever that folder is not empty,
//! and the service ([`run`]) sends each message to each target, retrying with backoff (and
//! waiting as long as a Discord 429's `retry_after` says), until the folder is empty again.
//! A message that cannot be delivered is dropped after [`BACKOFF`]'s steps and recorded as
//! an event. At most [`QUEUE_LIMIT`] messages wait; the oldest give way.
//!
//! A crash loop is one message, not fifty: the first crash of a server is sent at once;
//! crashes in the [`COALESCE`] window after it are counted into one summary at the end of
//! the window, or into the message that systemd gave up on the server.

use crate::AgentError;
use crate::error::io_context;
use crate::events::{Outbox, now_micros};
use crate::fsutil::{read_no_follow, write_atomic};
use crate::lock::{Lock, LockError};
use left4me_protocol::agent::{
    NotifyKind, NotifyTarget, NotifyTargetSummary, NotifyTargets, NotifyTested,
};
use left4me_protocol::events::{EventKind, HostEvent};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The waits between tries of one message to one target; after the last, it is dropped.
pub const BACKOFF: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(45),
    Duration::from_secs(120),
    Duration::from_secs(300),
    Duration::from_secs(600),
    Duration::from_secs(900),
];
/// The longest a 429 may make us wait before the next try.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Crashes of one server within this long of the last message about it are summed up.
pub const COALESCE: Duration = Duration::from_secs(600);
/// At most this many messages wait to be sent.
pub const QUEUE_LIMIT: usize = 100;
const TARGETS: &str = "notify.json";
const STATE: &str = "notify-state.json";
const RUN_LOCK: &str = ".notify.lock";

/// The targets file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Config {
    pub targets: Vec<NotifyTarget>,
}

fn invalid(message: String) -> AgentError {
    AgentError::Invalid(message)
}

/// Checks targets before anything is saved (the rules are the protocol's, which the app
/// applies too).
pub fn validate(config: &Config) -> Result<(), AgentError> {
    left4me_protocol::notify::validate_targets(&config.targets).map_err(invalid)
}

pub fn summaries(config: &Config) -> NotifyTargets {
    NotifyTargets {
        targets: config
            .targets
            .iter()
            .map(|t| NotifyTargetSummary {
                name: t.name.clone(),
                kind: t.kind,
                endpoint: left4me_protocol::notify::endpoint_of(&t.url),
            })
            .collect(),
    }
}

/// The most of a file of ours this reads: targets, state and messages are small.
const MAX_FILE: u64 = 1 << 20;

/// The saved targets (none when there is no file).
pub fn load(automation: &Path) -> Result<Config, AgentError> {
    let path = automation.join(TARGETS);
    match read_no_follow(&path, MAX_FILE).map_err(io_context("read", &path))? {
        None => Ok(Config::default()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| AgentError::failed(format!("{} is damaged", path.display()), e)),
    }
}

/// `notify set`: checks the targets read from `input` and saves them (0600), replacing the
/// old ones; a refused list changes nothing.
pub fn set(automation: &Path, input: impl std::io::Read) -> Result<NotifyTargets, AgentError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    input
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| AgentError::failed("cannot read the targets from stdin", e))?;
    let config: Config = serde_json::from_slice(&bytes).map_err(|e| {
        // serde's message may quote the input; say where, not what.
        invalid(format!(
            "the notification targets on stdin are not valid JSON of the expected shape (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    validate(&config)?;
    let path = automation.join(TARGETS);
    let text = serde_json::to_vec_pretty(&config).map_err(|e| AgentError::failed("", e))?;
    write_atomic(&path, &text, 0o600).map_err(io_context("write", &path))?;
    Ok(summaries(&config))
}

// ---- messages -------------------------------------------------------------------------

/// What a notification says, whatever the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub title: String,
    pub text: String,
    /// Console lines to quote.
    #[serde(default)]
    pub lines: Vec<String>,
    /// The event it tells of (none for a test or a summary).
    #[serde(default)]
    pub event: Option<HostEvent>,
    pub host: String,
    /// Whether it reports trouble (red) or not.
    pub alert: bool,
}

impl Message {
    pub fn of_event(event: &HostEvent, host: &str) -> Message {
        let lines = match &event.what {
            EventKind::Crashed { last_lines, .. } => last_lines.clone(),
            _ => Vec::new(),
        };
        Message {
            title: format!("{} on {host}", event.title()),
            text: event.detail(),
            lines,
            event: Some(event.clone()),
            host: host.to_owned(),
            alert: event.is_alert(),
        }
    }

    pub fn test(host: &str) -> Message {
        Message {
            title: format!("Test from left4me on {host}"),
            text: "This target works: notifications from this host will arrive here.".to_owned(),
            lines: Vec::new(),
            event: None,
            host: host.to_owned(),
            alert: false,
        }
    }

    /// The console lines as a block, backticks replaced so they cannot end it.
    fn quoted_lines(&self, budget: usize) -> String {
        let mut kept: Vec<String> = Vec::new();
        let mut size = 0;
        for line in self.lines.iter().rev() {
            let line: String = line.replace('`', "ˋ").chars().take(200).collect();
            size += line.len() + 1;
            if size > budget {
                break;
            }
            kept.push(line);
        }
        kept.reverse();
        kept.join("\n")
    }
}

/// One HTTP request to a target.
#[derive(Debug)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The request that delivers `message` to `target`, at `now_secs` (the webhook signs it).
pub fn request(target: &NotifyTarget, message: &Message, now_secs: u64) -> Request {
    let json = |value: serde_json::Value| value.to_string().into_bytes();
    let content_json = ("Content-Type".to_owned(), "application/json".to_owned());
    match target.kind {
        NotifyKind::Discord => {
            let mut description = message.text.clone();
            let lines = message.quoted_lines(3000);
            if !lines.is_empty() {
                description.push_str(&format!("\n```\n{lines}\n```"));
            }
            let mut embed = serde_json::json!({
                "title": message.title.chars().take(256).collect::<String>(),
                "description": description,
                "color": if message.alert { 0xd9_3025 } else { 0x2f_9e44 },
                "footer": {"text": format!("left4me · {}", message.host)},
            });
            if let Some(event) = &message.event {
                embed["timestamp"] = event.at.clone().into();
            }
            Request {
                url: target.url.clone(),
                headers: vec![content_json],
                body: json(serde_json::json!({
                    "username": "left4me",
                    "embeds": [embed],
                    // Console lines come from the game: they must not ping anyone.
                    "allowed_mentions": {"parse": []},
                })),
            }
        }
        NotifyKind::Webhook => {
            let body = json(serde_json::json!({
                "host": message.host,
                "title": message.title,
                "text": message.text,
                "lines": message.lines,
                "event": message.event,
                "test": message.event.is_none() && !message.alert,
            }));
            let secret = target.secret.as_deref().unwrap_or("");
            let signature = sign(secret, now_secs, &body);
            Request {
                url: target.url.clone(),
                headers: vec![
                    content_json,
                    ("X-Left4me-Timestamp".to_owned(), now_secs.to_string()),
                    (
                        "X-Left4me-Signature".to_owned(),
                        format!("sha256={signature}"),
                    ),
                ],
                body,
            }
        }
        NotifyKind::Ntfy => {
            // Published as JSON to the server's root, so titles may hold any character.
            let (base, topic) = target
                .url
                .trim_end_matches('/')
                .rsplit_once('/')
                .unwrap_or((&target.url, ""));
            let mut text = message.text.clone();
            let lines = message.quoted_lines(1500);
            if !lines.is_empty() {
                text.push_str(&format!("\n\n{lines}"));
            }
            let mut headers = vec![content_json];
            if let Some(token) = &target.secret {
                headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
            }
            Request {
                url: format!("{base}/"),
                headers,
                body: json(serde_json::json!({
                    "topic": topic,
                    "title": message.title,
                    "message": text,
                    "priority": if message.alert { 4 } else { 3 },
                    "tags": [if message.alert { "warning" } else { "white_check_mark" }],
                })),
            }
        }
        NotifyKind::Gotify => {
            let mut text = message.text.clone();
            let lines = message.quoted_lines(1500);
            if !lines.is_empty() {
                text.push_str(&format!("\n\n{lines}"));
            }
            Request {
                url: format!("{}/message", target.url.trim_end_matches('/')),
                headers: vec![
                    content_json,
                    (
                        "X-Gotify-Key".to_owned(),
                        target.secret.clone().unwrap_or_default(),
                    ),
                ],
                body: json(serde_json::json!({
                    "title": message.title,
                    "message": text,
                    "priority": if message.alert { 8 } else { 4 },
                })),
            }
        }
    }
}

/// HMAC-SHA256 of `<timestamp>.<body>` with the shared secret, in hex: what a receiver
/// recomputes to trust the body (and the timestamp, against replays).
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    context
        .sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How a target took one try.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Delivered(u16),
    /// Too many requests: try again after this long.
    RetryAfter(Duration),
    /// Worth another try later (no answer, a 5xx).
    Transient(String),
    /// Trying again will not help (a 4xx: a wrong URL or token).
    Permanent(String),
}

/// What an HTTP answer means for the message.
pub fn outcome(status: u16, retry_after_header: Option<&str>, body: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered(status),
        429 => {
            // Discord puts seconds (a float) in the body; others send the header.
            let from_body = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["retry_after"].as_f64());
            let from_header = retry_after_header.and_then(|h| h.trim().parse::<f64>().ok());
            let secs = from_body.or(from_header).unwrap_or(5.0);
            let wait = Duration::from_secs_f64(secs.clamp(0.1, MAX_RETRY_AFTER.as_secs_f64()));
            Outcome::RetryAfter(wait)
        }
        408 | 500..=599 => Outcome::Transient(format!("HTTP {status}")),
        _ => Outcome::Permanent(format!("HTTP {status}: {}", first_words(body))),
    }
}

fn first_words(body: &str) -> String {
    let text: String = body.chars().filter(|c| !c.is_control()).take(160).collect();
    if text.is_empty() {
        "no explanation".to_owned()
    } else {
        text
    }
}

/// Sends one request.
pub fn send(request: &Request) -> Outcome {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(15)))
        .http_status_as_error(false)
        .user_agent(concat!("left4me/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut post = agent.post(&request.url);
    for (name, value) in &request.headers {
        post = post.header(name, value);
    }
    match post.send(&request.body[..]) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            outcome(status, retry_after.as_deref(), &body)
        }
        // The error names the host at most; never the URL's path, which holds tokens.
        Err(e) => Outcome::Transient(match e {
            ureq::Error::Timeout(_) => "no answer in time".to_owned(),
            ureq::Error::Io(e) => format!("cannot connect: {e}"),
            ureq::Error::HostNotFound => "the host name does not resolve".to_owned(),
            ureq::Error::ConnectionFailed => "cannot connect".to_owned(),
            other => format!("cannot send: {}", redact_error(&other.to_string())),
        }),
    }
}

/// An error message with anything URL-like cut to its origin.
fn redact_error(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains("://") {
                left4me_protocol::notify::redact(word)
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `notify test [NAME]`: sends a test message to each target (or the one named) now, from
/// this host, and says how each answered. A 429 is waited out once if it asks for ≤ 10 s.
pub fn test(
    automation: &Path,
    only: Option<&str>,
    host: &str,
    each: &mut dyn FnMut(&NotifyTested),
) -> Result<(), AgentError> {
    let config = load(automation)?;
    let targets: Vec<&NotifyTarget> = config
        .targets
        .iter()
        .filter(|t| only.is_none_or(|name| t.name == name))
        .collect();
    if let Some(name) = only
        && targets.is_empty()
    {
        return Err(AgentError::NotFound {
            what: "notification target",
            name: name.to_owned(),
        });
    }
    if targets.is_empty() {
        return Err(invalid(
            "no notification targets on this host: add one with `notify set`".to_owned(),
        ));
    }
    let message = Message::test(host);
    let mut failed: Vec<(String, String)> = Vec::new();
    for target in targets {
        let mut result = send(&request(target, &message, now_micros() / 1_000_000));
        if let Outcome::RetryAfter(wait) = result
            && wait <= Duration::from_secs(10)
        {
            std::thread::sleep(wait);
            result = send(&request(target, &message, now_micros() / 1_000_000));
        }
        let (delivered, detail) = match result {
            Outcome::Delivered(status) => (true, format!("HTTP {status}")),
            Outcome::RetryAfter(wait) => (
                false,
                format!("rate limited: try again in {} s", wait.as_secs().max(1)),
            ),
            Outcome::Transient(why) | Outcome::Permanent(why) => (false, why),
        };
        if !delivered {
            failed.push((target.name.clone(), detail.clone()));
        }
        each(&NotifyTested {
            target: target.name.clone(),
            delivered,
            detail,
        });
    }
    if failed.is_empty() {
        return Ok(());
    }
    let (names, details): (Vec<String>, Vec<String>) = failed.into_iter().unzip();
    Err(AgentError::failed(
        format!("the test notification did not reach {}", names.join(", ")),
        details.join("; "),
    ))
}

// ---- the queue ------------------------------------------------------------------------

/// One message waiting in `outgoing/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// The message, or `None` for a crash summary, written when it comes due.
    message: Option<Message>,
    /// For a summary: the server whose crashes it sums up.
    #[serde(default)]
    summary_of: Option<String>,
    /// When it may first be sent (microseconds since the epoch).
    not_before: u64,
    /// Targets still to reach, with their tries so far and when to try next.
    pending: Vec<Pending>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    target: String,
    tries: u32,
    next: u64,
}

/// Per server: when the last message about its crashes went out, and how many crashes
/// since were held back.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    servers: std::collections::BTreeMap<String, ServerState>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ServerState {
    last_sent: u64,
    held: u32,
}

fn load_state(automation: &Path) -> State {
    read_no_follow(&automation.join(STATE), MAX_FILE)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn save_state(automation: &Path, state: &State) -> Result<(), AgentError> {
    let path = automation.join(STATE);
    let text = serde_json::to_vec(state).map_err(|e| AgentError::failed("", e))?;
    write_atomic(&path, &text, 0o600).map_err(io_context("write", &path))
}

fn outgoing(automation: &Path) -> Result<PathBuf, AgentError> {
    let dir = automation.join("outgoing");
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_context("create", &dir)(e)),
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    Ok(dir)
}

fn entry_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".json").then(|| (name, e.path()))
        })
        .collect();
    files.sort();
    files
}

fn write_entry(path: &Path, entry: &Entry) -> Result<(), AgentError> {
    let text = serde_json::to_vec(entry).map_err(|e| AgentError::failed("", e))?;
    write_atomic(path, &text, 0o600).map_err(io_context("write", path))
}

fn read_entry(path: &Path) -> Option<Entry> {
    serde_json::from_slice(&read_no_follow(path, MAX_FILE).ok()??).ok()
}

/// Records `what` in the outbox and queues what it is worth telling: what the hooks and the
/// watch do with what they find.
pub fn tell(
    automation: &Path,
    server: Option<&str>,
    what: EventKind,
    host: &str,
) -> Result<HostEvent, AgentError> {
    let event = Outbox::new(automation).record(server, what, now_micros())?;
    enqueue(automation, &event, host)?;
    Ok(event)
}

/// Queues what `event` is worth telling every target, coalescing a crash loop; does
/// nothing when the host has no targets or the event is not worth a message.
pub fn enqueue(automation: &Path, event: &HostEvent, host: &str) -> Result<(), AgentError> {
    let config = load(automation)?;
    if config.targets.is_empty() {
        return Ok(());
    }
    let dir = outgoing(automation)?;
    let _lock = Lock::wait_for_dir(&dir).map_err(io_context("lock", &dir))?;
    let now = now_micros();
    let mut state = load_state(automation);
    let pending = |at| -> Vec<Pending> {
        config
            .targets
            .iter()
            .map(|t| Pending {
                target: t.name.clone(),
                tries: 0,
                next: at,
            })
            .collect()
    };
    let window = COALESCE.as_micros() as u64;
    let message = Message::of_event(event, host);
    match (&event.what, event.server.as_deref()) {
        (EventKind::Crashed { .. }, Some(server)) => {
            let seen = state.servers.entry(server.to_owned()).or_default();
            if now < seen.last_sent.saturating_add(window) {
                seen.held += 1;
                let summary = dir.join(format!("summary-{server}.json"));
                if !summary.exists() {
                    let due = seen.last_sent.saturating_add(window);
                    write_entry(
                        &summary,
                        &Entry {
                            message: None,
                            summary_of: Some(server.to_owned()),
                            not_before: due,
                            pending: pending(due),
                        },
                    )?;
                }
                return save_state(automation, &state);
            }
            seen.last_sent = now;
            seen.held = 0;
        }
        (EventKind::GaveUp { .. }, Some(server)) => {
            // The give-up message carries the crashes held back; no summary follows.
            let _ = std::fs::remove_file(dir.join(format!("summary-{server}.json")));
            if let Some(seen) = state.servers.get_mut(server) {
                seen.held = 0;
                seen.last_sent = now;
            }
        }
        (EventKind::Crashed { .. } | EventKind::GaveUp { .. }, None)
        | (EventKind::Hung { .. } | EventKind::UpdateAvailable { .. }, _)
        | (
            EventKind::Schedule {
                outcome: left4me_protocol::schedule::RunOutcome::Failed,
                ..
            },
            _,
        ) => {}
        _ => return Ok(()),
    }
    save_state(automation, &state)?;
    let name = format!("{:016}-{}.json", event.seq, now);
    write_entry(
        &dir.join(name),
        &Entry {
            message: Some(message),
            summary_of: None,
            not_before: now,
            pending: pending(now),
        },
    )?;
    // A bounded queue: the oldest messages give way.
    let files = entry_files(&dir);
    for (_, path) in files.iter().take(files.len().saturating_sub(QUEUE_LIMIT)) {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// `notify run`: what left4me-notify.service runs. Sends what `outgoing/` holds as it
/// comes due, until the folder is empty. One runs at a time; a second exits at once.
pub fn run(automation: &Path, host: &str) -> Result<(), AgentError> {
    let run_lock = automation.join(RUN_LOCK);
    let _running = match Lock::try_acquire(&run_lock) {
        Ok(lock) => lock,
        Err(LockError::Busy) => return Ok(()),
        Err(LockError::Io(e)) => return Err(io_context("lock", &run_lock)(e)),
    };
    let dir = outgoing(automation)?;
    let outbox = Outbox::new(automation);
    loop {
        let files = entry_files(&dir);
        if files.is_empty() {
            return Ok(());
        }
        let config = load(automation)?;
        let now = now_micros();
        let mut earliest = u64::MAX;
        for (_, path) in files {
            let Some(mut entry) = read_entry(&path) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            if entry.not_before > now {
                earliest = earliest.min(entry.not_before);
                continue;
            }
            let message = match entry.message.clone() {
                Some(message) => message,
                None => match summary(automation, &dir, &entry, host)? {
                    Some(message) => {
                        entry.message = Some(message.clone());
                        message
                    }
                    None => {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                },
            };
            let mut still = Vec::new();
            for mut pending in std::mem::take(&mut entry.pending) {
                let Some(target) = config.targets.iter().find(|t| t.name == pending.target) else {
                    continue;
                };
                if pending.next > now {
                    earliest = earliest.min(pending.next);
                    still.push(pending);
                    continue;
                }
                let dropped = |why: String| {
                    let _ = outbox.record(
                        None,
                        EventKind::NotificationFailed {
                            target: target.name.clone(),
                            reason: format!("\"{}\" was not delivered: {why}", message.title),
                        },
                        now_micros(),
                    );
                };
                match send(&request(target, &message, now / 1_000_000)) {
                    Outcome::Delivered(_) => {}
                    Outcome::RetryAfter(wait) => {
                        pending.next = now_micros() + wait.as_micros() as u64;
                        earliest = earliest.min(pending.next);
                        still.push(pending);
                    }
                    Outcome::Transient(why) => match BACKOFF.get(pending.tries as usize) {
                        Some(wait) => {
                            pending.tries += 1;
                            pending.next = now_micros() + wait.as_micros() as u64;
                            earliest = earliest.min(pending.next);
                            still.push(pending);
                        }
                        None => dropped(format!("{why}, after {} tries", pending.tries + 1)),
                    },
                    Outcome::Permanent(why) => dropped(why),
                }
            }
            let _lock = Lock::wait_for_dir(&dir).map_err(io_context("lock", &dir))?;
            // A summary may have been withdrawn meanwhile (systemd gave up on the server).
            if !path.exists() {
                continue;
            }
            if still.is_empty() {
                std::fs::remove_file(&path).map_err(io_context("remove", &path))?;
            } else {
                entry.pending = still;
                write_entry(&path, &entry)?;
            }
        }
        if earliest == u64::MAX {
            // Nothing waits for a later try: look again at once (and leave when empty).
            continue;
        }
        let wait = Duration::from_micros(earliest.saturating_sub(now_micros()))
            .clamp(Duration::from_millis(50), Duration::from_secs(30));
        std::thread::sleep(wait);
    }
}

/// The summary of the crashes held back for a server, or `None` when there were none.
fn summary(
    automation: &Path,
    dir: &Path,
    entry: &Entry,
    host: &str,
) -> Result<Option<Message>, AgentError> {
    let Some(server) = &entry.summary_of else {
        return Ok(None);
    };
    let _lock = Lock::wait_for_dir(dir).map_err(io_context("lock", dir))?;
    let mut state = load_state(automation);
    let Some(seen) = state.servers.get_mut(server) else {
        return Ok(None);
    };
    let held = std::mem::take(&mut seen.held);
    seen.last_sent = now_micros();
    save_state(automation, &state)?;
    if held == 0 {
        return Ok(None);
    }
    let minutes = COALESCE.as_secs() / 60;
    Ok(Some(Message {
        title: format!("{server} crashed again on {host}"),
        text: format!(
            "It crashed {held} more time{} in the {minutes} minutes after the last message; systemd started it again each time.",
            if held == 1 { "" } else { "s" }
        ),
        lines: Vec::new(),
        event: None,
        host: host.to_owned(),
        alert: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use left4me_protocol::events::StopCause;

    fn target(kind: NotifyKind, url: &str, secret: Option<&str>) -> NotifyTarget {
        NotifyTarget {
            name: "t".into(),
            kind,
            url: url.into(),
            secret: secret.map(Into::into),
        }
    }

    #[test]
    fn a_refused_list_leaves_the_saved_one_and_lists_show_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"targets":[{"name":"ops","kind":"discord","url":"https://discord.com/api/webhooks/1/s3cret"}]}"#;
        let listed = set(dir.path(), good.as_bytes()).unwrap();
        assert_eq!(listed.targets[0].endpoint, "https://discord.com");
        assert!(!format!("{listed:?}").contains("s3cret"));
        let bad = r#"{"targets":[{"name":"Ops!","kind":"discord","url":"https://x/y"}]}"#;
        assert!(set(dir.path(), bad.as_bytes()).is_err());
        let err = set(dir.path(), &b"{\"targets\": [s3cret"[..])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert_eq!(load(dir.path()).unwrap().targets[0].name, "ops");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(TARGETS))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{:?}", load(dir.path()).unwrap()).contains("s3cret"));
    }

    #[test]
    fn answers_decide_between_done_wait_retry_and_give_up() {
        let discord_429 =
            r#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#;
        assert_eq!(
            outcome(429, Some("2"), discord_429),
            Outcome::RetryAfter(Duration::from_millis(1500))
        );
        assert_eq!(
            outcome(429, Some("7"), ""),
            Outcome::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            outcome(429, None, r#"{"retry_after": 100000}"#),
            Outcome::RetryAfter(MAX_RETRY_AFTER)
        );
        assert_eq!(outcome(204, None, ""), Outcome::Delivered(204));
        assert_eq!(
            outcome(503, None, ""),
            Outcome::Transient("HTTP 503".into())
        );
        assert_eq!(
            outcome(404, None, r#"{"message": "Unknown Webhook"}"#),
            Outcome::Permanent(r#"HTTP 404: {"message": "Unknown Webhook"}"#.into())
        );
    }

    #[test]
    fn requests_are_shaped_for_each_target() {
        let event = HostEvent {
            seq: 3,
            at: "2026-11-30T18:00:00.000000Z".into(),
            server: Some("coop-1".into()),
            what: EventKind::Crashed {
                cause: StopCause::Signal {
                    signal: "SIGSEGV".into(),
                },
                last_lines: vec!["@everyone ```".into(), "Segmentation fault".into()],
            },
        };
        let message = Message::of_event(&event, "box-1");
        let discord = request(
            &target(
                NotifyKind::Discord,
                "https://discord.com/api/webhooks/1/t",
                None,
            ),
            &message,
            0,
        );
        let body: serde_json::Value = serde_json::from_slice(&discord.body).unwrap();
        assert_eq!(body["embeds"][0]["title"], "coop-1 crashed on box-1");
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
        let description = body["embeds"][0]["description"].as_str().unwrap();
        assert!(description.starts_with("The game was killed by SIGSEGV"));
        assert_eq!(description.matches("```").count(), 2, "{description}");
        let ntfy = request(
            &target(NotifyKind::Ntfy, "https://ntfy.sh/l4d2", Some("tk")),
            &message,
            0,
        );
        assert_eq!(ntfy.url, "https://ntfy.sh/");
        let body: serde_json::Value = serde_json::from_slice(&ntfy.body).unwrap();
        assert_eq!(body["topic"], "l4d2");
        assert!(
            ntfy.headers
                .contains(&("Authorization".into(), "Bearer tk".into()))
        );
        let hook = request(
            &target(NotifyKind::Webhook, "https://x/h", Some("key")),
            &message,
            1_700_000_000,
        );
        let signature = hook
            .headers
            .iter()
            .find(|(name, _)| name == "X-Left4me-Signature")
            .unwrap();
        assert_eq!(
            signature.1,
            format!("sha256={}", sign("key", 1_700_000_000, &hook.body))
        );
        // RFC 4231's second test case: HMAC-SHA256 of "what do ya want for nothing?".
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        let tag = ring::hmac::sign(&key, b"what do ya want for nothing?");
        assert!(
            tag.as_ref()
                .starts_with(&[0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e])
        );
    }

    #[test]
    fn a_crash_loop_is_one_message_then_one_summary_or_the_give_up() {
        let dir = tempfile::tempdir().unwrap();
        set(
            dir.path(),
            &br#"{"targets":[{"name":"ops","kind":"discord","url":"https://discord.com/api/webhooks/1/t"}]}"#[..],
        )
        .unwrap();
        let crash = |seq| HostEvent {
            seq,
            at: "2026-11-30T18:00:00.000000Z".into(),
            server: Some("coop-1".into()),
            what: EventKind::Crashed {
                cause: StopCause::Exited { status: 1 },
                last_lines: vec![],
            },
        };
        for seq in 1..=4 {
            enqueue(dir.path(), &crash(seq), "h").unwrap();
        }
        let queued = || {
            entry_files(&dir.path().join("outgoing"))
                .into_iter()
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        };
        let files = queued();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0].starts_with("0000000000000001-"));
        assert_eq!(files[1], "summary-coop-1.json");
        assert_eq!(load_state(dir.path()).servers["coop-1"].held, 3);
        let gave_up = HostEvent {
            what: EventKind::GaveUp { crashes: 5 },
            ..crash(5)
        };
        enqueue(dir.path(), &gave_up, "h").unwrap();
        let files = queued();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[1].starts_with("0000000000000005-"), "{files:?}");
        // Events not worth a message queue nothing.
        let failed = HostEvent {
            what: EventKind::NotificationFailed {
                target: "ops".into(),
                reason: "x".into(),
            },
            ..crash(6)
        };
        enqueue(dir.path(), &failed, "h").unwrap();
        assert_eq!(queued().len(), 2);
    }
}
