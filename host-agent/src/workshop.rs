//! `overlay workshop <name> --item ID… --collection ID…`: fills an overlay with Steam Workshop
//! items, on the host (it has the bandwidth).
//!
//! Collections are resolved with `GetCollectionDetails`, items read with
//! `GetPublishedFileDetails`; each item's `file_url` is downloaded into
//! `left4dead2/addons/<vpk>` of a fresh staging folder, a few at a time, with retries and
//! backoff for transient failures, its size checked, and the folder swapped in only at the
//! end (a half-downloaded VPK never appears in the overlay). An item whose `time_updated` did
//! not change since the last run is reused, not downloaded; one no longer listed is gone. An
//! item that cannot be fetched (removed, private, no `file_url`, not an L4D2 item, too big)
//! is reported with the reason and does not fail the others; if an earlier run fetched it,
//! that copy is kept. What was fetched is remembered in `.left4me-workshop.json` in the
//! overlay.

use crate::error::{AgentError, io_context};
use crate::host::Host;
use crate::output::Output;
use left4me_protocol::agent::{
    WorkshopDone, WorkshopFailure, WorkshopItem, WorkshopOutcome, WorkshopProgress,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// The Steam Web API; tests point `--api-url` at a local fake.
pub const DEFAULT_API: &str = "https://api.steampowered.com";
/// Left 4 Dead 2's app id: Workshop items for it name it as their consumer.
const L4D2: u64 = 550;
const STATE_FILE: &str = ".left4me-workshop.json";
/// The API takes at most this many ids per call.
const BATCH: usize = 100;

pub struct Request {
    pub items: Vec<u64>,
    pub collections: Vec<u64>,
    pub api: String,
    /// Downloads at once.
    pub parallel: usize,
    /// The overlay's size limit.
    pub max_bytes: u64,
    /// Attempts after the first for a transient failure, and the first pause between them
    /// (doubled each time).
    pub retries: u32,
    pub backoff: Duration,
}

/// What the agent reports while it works.
pub enum Event {
    Progress(WorkshopProgress),
    Item(WorkshopItem),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    items: BTreeMap<u64, Kept>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    file: String,
    time_updated: u64,
    size: u64,
}

/// The parts of an item's details this module uses.
#[derive(Debug, Clone)]
struct Details {
    result: i64,
    title: String,
    filename: String,
    file_url: String,
    file_size: u64,
    time_updated: u64,
    app: u64,
}

// `overlay workshop`'s command line (its help is the subcommand's, in `cli`).
#[derive(Debug, clap::Args)]
pub struct Args {
    pub name: String,
    /// A Workshop item id (repeat for more)
    #[arg(long = "item", value_name = "ID")]
    pub items: Vec<u64>,
    /// A Workshop collection id: its items are added (repeat for more)
    #[arg(long = "collection", value_name = "ID")]
    pub collections: Vec<u64>,
    /// The Steam Web API's address
    #[arg(long, value_name = "URL", default_value = DEFAULT_API)]
    pub api_url: String,
    /// Downloads at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub parallel: usize,
    /// Refuse items that would take the overlay over this many bytes
    #[arg(long, value_name = "BYTES", default_value_t = crate::import::DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,
    /// Tries after the first for a transient failure (network, HTTP 5xx or 429)
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// The first pause before a retry, doubled each time
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub backoff_ms: u64,
}

/// `overlay workshop`: fills the overlay, streaming progress and each item's outcome.
pub fn command(host: &Host<'_>, args: &Args, out: &mut Output<'_>) -> Result<(), AgentError> {
    let request = Request {
        items: args.items.clone(),
        collections: args.collections.clone(),
        api: args.api_url.clone(),
        parallel: args.parallel,
        max_bytes: args.max_bytes,
        retries: args.retries,
        backoff: Duration::from_millis(args.backoff_ms),
    };
    let done = out.streamed(|write| {
        fill(host, &args.name, &request, &mut |event| match event {
            Event::Progress(p) => write(p),
            Event::Item(item) => write(item),
        })
    })?;
    out.message(&done)
}

pub fn fill(
    host: &Host<'_>,
    name: &str,
    request: &Request,
    emit: &mut dyn FnMut(&Event),
) -> Result<WorkshopDone, AgentError> {
    let name = crate::names::overlay_name(name)?;
    if request.items.is_empty() && request.collections.is_empty() {
        return Err(AgentError::Invalid(
            "give at least one --item or --collection".into(),
        ));
    }
    let target = crate::fill::prepare_fill(host, &name)?;
    let api = Api {
        base: request.api.trim_end_matches('/').to_owned(),
        retries: request.retries,
        backoff: request.backoff,
    };
    let mut failed = Vec::new();
    let mut ids = request.items.clone();
    ids.extend(api.collection_children(&request.collections, &mut failed)?);
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(*id));
    let details = api.details(&ids)?;

    let current = host.layout.overlay(&name);
    let previous = read_state(&current);
    let done = crate::fill::replace_content(&current, &target, "filled", |staging| {
        let addons = staging.join("left4dead2/addons");
        std::fs::create_dir_all(&addons).map_err(io_context("create", &addons))?;
        let mut plan = Plan::new(request.max_bytes, ids.len() as u32);
        let mut downloads = Vec::new();
        for id in &ids {
            let kept = previous
                .items
                .get(id)
                .filter(|k| current.join("left4dead2/addons").join(&k.file).is_file());
            let Some(d) = details.get(id) else {
                plan.fail(
                    *id,
                    String::new(),
                    "the Workshop did not answer for it".into(),
                    kept,
                    &current,
                    &addons,
                    emit,
                );
                continue;
            };
            if let Err(reason) = check(d) {
                plan.fail(*id, d.title.clone(), reason, kept, &current, &addons, emit);
                continue;
            }
            let file = plan.file_name(*id, &d.filename);
            if let Some(k) =
                kept.filter(|k| k.time_updated == d.time_updated && k.size == d.file_size)
            {
                match plan.keep(*id, d, k, &current, &addons) {
                    Ok(item) => emit(&Event::Item(item)),
                    Err(e) => return Err(e),
                }
                continue;
            }
            if !plan.reserve(d.file_size) {
                let reason = format!(
                    "{} bytes would take the overlay over its limit of {} bytes",
                    d.file_size, request.max_bytes
                );
                plan.fail(*id, d.title.clone(), reason, kept, &current, &addons, emit);
                continue;
            }
            downloads.push(Download {
                id: *id,
                title: d.title.clone(),
                url: d.file_url.clone(),
                size: d.file_size,
                time_updated: d.time_updated,
                file,
            });
        }
        let results = download_all(&api, &addons, downloads, request.parallel.max(1), emit);
        for (download, result) in results {
            match result {
                Ok(()) => plan.downloaded(&download, emit),
                Err(reason) => {
                    let kept = previous
                        .items
                        .get(&download.id)
                        .filter(|k| current.join("left4dead2/addons").join(&k.file).is_file());
                    plan.unreserve(download.size);
                    plan.fail(
                        download.id,
                        download.title.clone(),
                        reason,
                        kept,
                        &current,
                        &addons,
                        emit,
                    );
                }
            }
        }
        let state = serde_json::to_vec_pretty(&State {
            items: plan.state.clone(),
        })
        .expect("the workshop state serialises");
        crate::fsutil::write_atomic(&staging.join(STATE_FILE), &state, 0o644)
            .map_err(io_context("write", &staging.join(STATE_FILE)))?;
        Ok(plan)
    })?;
    failed.extend(done.failed);
    let removed = previous
        .items
        .keys()
        .filter(|id| !seen.contains(id))
        .count() as u32;
    Ok(WorkshopDone {
        overlay: name.to_string(),
        downloaded: done.downloaded,
        unchanged: done.unchanged,
        removed,
        failed,
        bytes: done.bytes,
        pending: target.stage,
    })
}

/// Why an item cannot be fetched, if it cannot.
fn check(d: &Details) -> Result<(), String> {
    match d.result {
        1 => {}
        9 => return Err("removed, private or never existed (result 9)".into()),
        other => return Err(format!("the Workshop refused it (result {other})")),
    }
    if d.app != L4D2 {
        return Err(format!("not a Left 4 Dead 2 item (app {})", d.app));
    }
    if d.file_url.is_empty() {
        return Err("it has no direct download (empty file_url)".into());
    }
    if !(d.file_url.starts_with("http://") || d.file_url.starts_with("https://")) {
        return Err(format!("its file_url is not an HTTP URL: {:?}", d.file_url));
    }
    Ok(())
}

/// A VPK name from the item's `filename`: its last part, reduced to safe characters,
/// ending in `.vpk`; the item's id when nothing usable is left.
pub fn sanitize_file_name(id: u64, filename: &str) -> String {
    let last = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut clean: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    clean = clean.trim_start_matches(['.', '-']).to_owned();
    clean.truncate(96);
    if !clean.to_ascii_lowercase().ends_with(".vpk") {
        clean = clean.trim_end_matches('.').to_owned();
        clean.push_str(".vpk");
    }
    if clean == ".vpk" || clean.len() <= 4 {
        clean = format!("{id}.vpk");
    }
    clean
}

struct Download {
    id: u64,
    title: String,
    url: String,
    size: u64,
    time_updated: u64,
    file: String,
}

/// The new content as it is being decided.
struct Plan {
    max_bytes: u64,
    reserved: u64,
    total: u32,
    items_done: u32,
    names: BTreeSet<String>,
    state: BTreeMap<u64, Kept>,
    downloaded: u32,
    unchanged: u32,
    failed: Vec<WorkshopFailure>,
    bytes: u64,
}

impl Plan {
    fn new(max_bytes: u64, total: u32) -> Self {
        Self {
            max_bytes,
            reserved: 0,
            total,
            items_done: 0,
            names: BTreeSet::new(),
            state: BTreeMap::new(),
            downloaded: 0,
            unchanged: 0,
            failed: Vec::new(),
            bytes: 0,
        }
    }

    /// A file name no other item of this overlay has.
    fn file_name(&mut self, id: u64, filename: &str) -> String {
        let mut name = sanitize_file_name(id, filename);
        if self.names.contains(&name.to_ascii_lowercase()) {
            name = format!("{id}-{name}");
        }
        self.names.insert(name.to_ascii_lowercase());
        name
    }

    fn reserve(&mut self, bytes: u64) -> bool {
        if self.reserved + bytes > self.max_bytes {
            return false;
        }
        self.reserved += bytes;
        true
    }

    fn unreserve(&mut self, bytes: u64) {
        self.reserved -= bytes;
    }

    fn item(
        &mut self,
        id: u64,
        title: String,
        file: Option<String>,
        bytes: u64,
        outcome: WorkshopOutcome,
        reason: Option<String>,
    ) -> WorkshopItem {
        self.items_done += 1;
        WorkshopItem {
            id,
            title,
            file,
            bytes,
            outcome,
            reason,
            items_done: self.items_done,
            items_total: self.total,
        }
    }

    /// Reuses the copy an earlier run fetched.
    fn keep(
        &mut self,
        id: u64,
        d: &Details,
        kept: &Kept,
        current: &Path,
        addons: &Path,
    ) -> Result<WorkshopItem, AgentError> {
        self.reserved += kept.size;
        self.carry(kept, current, addons)?;
        self.state.insert(id, kept.clone());
        self.unchanged += 1;
        self.bytes += kept.size;
        Ok(self.item(
            id,
            d.title.clone(),
            Some(kept.file.clone()),
            kept.size,
            WorkshopOutcome::Unchanged,
            None,
        ))
    }

    fn carry(&mut self, kept: &Kept, current: &Path, addons: &Path) -> Result<(), AgentError> {
        let from = current.join("left4dead2/addons").join(&kept.file);
        let to = addons.join(&kept.file);
        self.names.insert(kept.file.to_ascii_lowercase());
        // Same file system: a hard link costs nothing; a copy where links are refused.
        std::fs::hard_link(&from, &to)
            .or_else(|_| std::fs::copy(&from, &to).map(drop))
            .map_err(io_context("keep", &from))
    }

    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        id: u64,
        title: String,
        reason: String,
        kept: Option<&Kept>,
        current: &Path,
        addons: &Path,
        emit: &mut dyn FnMut(&Event),
    ) {
        let mut reason = reason;
        let mut file = None;
        if let Some(kept) = kept
            && self.reserve(kept.size)
            && self.carry(kept, current, addons).is_ok()
        {
            reason.push_str("; the copy from the last download is kept");
            self.state.insert(id, kept.clone());
            self.bytes += kept.size;
            file = Some(kept.file.clone());
        }
        self.failed.push(WorkshopFailure {
            id,
            reason: reason.clone(),
        });
        let item = self.item(
            id,
            title,
            file,
            kept.map_or(0, |k| k.size),
            WorkshopOutcome::Failed,
            Some(reason),
        );
        emit(&Event::Item(item));
    }

    fn downloaded(&mut self, d: &Download, emit: &mut dyn FnMut(&Event)) {
        self.state.insert(
            d.id,
            Kept {
                file: d.file.clone(),
                time_updated: d.time_updated,
                size: d.size,
            },
        );
        self.downloaded += 1;
        self.bytes += d.size;
        let item = self.item(
            d.id,
            d.title.clone(),
            Some(d.file.clone()),
            d.size,
            WorkshopOutcome::Downloaded,
            None,
        );
        emit(&Event::Item(item));
    }
}

fn read_state(overlay: &Path) -> State {
    std::fs::read(overlay.join(STATE_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Downloads with `parallel` workers; events go through the calling thread, which owns the
/// output. Returns each download with its outcome, in the order given.
fn download_all(
    api: &Api,
    addons: &Path,
    downloads: Vec<Download>,
    parallel: usize,
    emit: &mut dyn FnMut(&Event),
) -> Vec<(Download, Result<(), String>)> {
    let (work_tx, work_rx) = mpsc::channel::<(usize, Download)>();
    let work_rx = std::sync::Mutex::new(work_rx);
    let (event_tx, event_rx) = mpsc::channel::<Message>();
    enum Message {
        Progress(WorkshopProgress),
        Done(usize, Download, Result<(), String>),
    }
    let count = downloads.len();
    for (i, d) in downloads.into_iter().enumerate() {
        work_tx.send((i, d)).expect("the queue is open");
    }
    drop(work_tx);
    let mut results: Vec<Option<(Download, Result<(), String>)>> =
        (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(count) {
            let event_tx = event_tx.clone();
            let work_rx = &work_rx;
            scope.spawn(move || {
                loop {
                    let next = work_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((i, d)) = next else { return };
                    let result = api.fetch(&d, addons, &mut |done| {
                        let _ = event_tx.send(Message::Progress(WorkshopProgress {
                            id: d.id,
                            bytes_done: done,
                            bytes_total: d.size,
                        }));
                    });
                    let _ = event_tx.send(Message::Done(i, d, result));
                }
            });
        }
        drop(event_tx);
        for message in event_rx {
            match message {
                Message::Progress(p) => emit(&Event::Progress(p)),
                Message::Done(i, d, result) => results[i] = Some((d, result)),
            }
        }
    });
    results.into_iter().flatten().collect()
}

struct Api {
    base: String,
    retries: u32,
    backoff: Duration,
}

/// A failure worth another try (the network, the server's own trouble), or not.
enum Failure {
    Transient(String),
    Permanent(String),
}

impl Api {
    /// Runs `attempt` again after transient failures, waiting longer each time.
    fn with_retries<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, String> {
        let mut pause = self.backoff;
        for tries_left in (0..=self.retries).rev() {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Transient(reason)) if tries_left > 0 => {
                    let _ = reason;
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                Err(Failure::Transient(reason)) => {
                    return Err(format!("{reason} (after {} attempts)", self.retries + 1));
                }
                Err(Failure::Permanent(reason)) => return Err(reason),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn post(
        &self,
        method: &str,
        form: &[(String, String)],
    ) -> Result<serde_json::Value, AgentError> {
        let url = format!("{}/ISteamRemoteStorage/{method}/v1/", self.base);
        self.with_retries(|| {
            let response = ureq::post(&url)
                .config()
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .send_form(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(classify)?;
            let text = response
                .into_body()
                .read_to_string()
                .map_err(|e| Failure::Transient(e.to_string()))?;
            serde_json::from_str(&text).map_err(|e| Failure::Permanent(format!("not JSON: {e}")))
        })
        .map_err(|reason| {
            AgentError::failed(
                format!("the Steam Web API ({method} at {}) failed", self.base),
                reason,
            )
        })
    }

    /// The items of `collections` (nested collections are followed, a few levels deep).
    fn collection_children(
        &self,
        collections: &[u64],
        failed: &mut Vec<WorkshopFailure>,
    ) -> Result<Vec<u64>, AgentError> {
        let mut items = Vec::new();
        let mut level: Vec<u64> = collections.to_vec();
        let mut visited = BTreeSet::new();
        for _depth in 0..4 {
            level.retain(|id| visited.insert(*id));
            if level.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for chunk in level.chunks(BATCH) {
                let mut form = vec![("collectioncount".to_owned(), chunk.len().to_string())];
                for (i, id) in chunk.iter().enumerate() {
                    form.push((format!("publishedfileids[{i}]"), id.to_string()));
                }
                let answer = self.post("GetCollectionDetails", &form)?;
                let details = answer["response"]["collectiondetails"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for id in chunk {
                    let entry = details
                        .iter()
                        .find(|d| number(&d["publishedfileid"]) == Some(*id));
                    match entry {
                        Some(d) if number(&d["result"]) == Some(1) => {
                            for child in d["children"].as_array().into_iter().flatten() {
                                let Some(child_id) = number(&child["publishedfileid"]) else {
                                    continue;
                                };
                                // filetype 2 is a collection inside the collection.
                                if number(&child["filetype"]) == Some(2) {
                                    next.push(child_id);
                                } else {
                                    items.push(child_id);
                                }
                            }
                        }
                        Some(d) => failed.push(WorkshopFailure {
                            id: *id,
                            reason: format!(
                                "collection: the Workshop refused it (result {})",
                                number(&d["result"]).unwrap_or(0)
                            ),
                        }),
                        None => failed.push(WorkshopFailure {
                            id: *id,
                            reason: "collection: the Workshop did not answer for it".into(),
                        }),
                    }
                }
            }
            level = next;
        }
        Ok(items)
    }

    fn details(&self, ids: &[u64]) -> Result<BTreeMap<u64, Details>, AgentError> {
        let mut all = BTreeMap::new();
        for chunk in ids.chunks(BATCH) {
            let mut form = vec![("itemcount".to_owned(), chunk.len().to_string())];
            for (i, id) in chunk.iter().enumerate() {
                form.push((format!("publishedfileids[{i}]"), id.to_string()));
            }
            let answer = self.post("GetPublishedFileDetails", &form)?;
            for d in answer["response"]["publishedfiledetails"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let Some(id) = number(&d["publishedfileid"]) else {
                    continue;
                };
                let text = |key: &str| d[key].as_str().unwrap_or_default().to_owned();
                all.insert(
                    id,
                    Details {
                        result: d["result"].as_i64().unwrap_or(0),
                        title: text("title"),
                        filename: text("filename"),
                        file_url: text("file_url"),
                        file_size: number(&d["file_size"]).unwrap_or(0),
                        time_updated: number(&d["time_updated"]).unwrap_or(0),
                        app: number(&d["consumer_app_id"]).unwrap_or(0),
                    },
                );
            }
        }
        Ok(all)
    }

    /// Downloads one item to `<file>.part`, checks its size, renames it into place.
    fn fetch(
        &self,
        d: &Download,
        addons: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), String> {
        let target = addons.join(&d.file);
        let part: PathBuf = addons.join(format!(".{}.part", d.file));
        let result = self.with_retries(|| {
            let response = ureq::get(&d.url)
                .config()
                .timeout_connect(Some(Duration::from_secs(15)))
                .timeout_recv_response(Some(Duration::from_secs(30)))
                .build()
                .call()
                .map_err(classify)?;
            let mut reader = response
                .into_body()
                .into_with_config()
                .limit(d.size + 1)
                .reader();
            let mut file = std::fs::File::create(&part)
                .map_err(|e| Failure::Permanent(format!("cannot write {}: {e}", part.display())))?;
            let mut buffer = vec![0; 256 * 1024];
            let (mut done, mut reported) = (0u64, 0u64);
            loop {
                let n = reader
                    .read(&mut buffer)
                    .map_err(|e| Failure::Transient(format!("the download broke off: {e}")))?;
                if n == 0 {
                    break;
                }
                file.write_all(&buffer[..n]).map_err(|e| {
                    Failure::Permanent(format!("cannot write {}: {e}", part.display()))
                })?;
                done += n as u64;
                if done - reported >= (4 << 20) || done == d.size {
                    progress(done);
                    reported = done;
                }
            }
            if done != d.size {
                return Err(Failure::Transient(format!(
                    "size mismatch: the Workshop says {} bytes, the download had {done}",
                    d.size
                )));
            }
            file.sync_all()
                .map_err(|e| Failure::Permanent(e.to_string()))?;
            Ok(())
        });
        match result {
            Ok(()) => std::fs::rename(&part, &target)
                .map_err(|e| format!("cannot move the download into place: {e}")),
            Err(reason) => {
                let _ = std::fs::remove_file(&part);
                Err(reason)
            }
        }
    }
}

fn classify(err: ureq::Error) -> Failure {
    match err {
        ureq::Error::StatusCode(code) if code == 429 || code >= 500 => {
            Failure::Transient(format!("HTTP {code}"))
        }
        ureq::Error::StatusCode(code) => Failure::Permanent(format!("HTTP {code}")),
        other => Failure::Transient(other.to_string()),
    }
}

/// The Web API writes ids and sizes as strings and other numbers as numbers; take both.
fn number(value: &serde_json::Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

impl crate::output::Report for WorkshopProgress {
    fn to_message(&self) -> left4me_protocol::AgentMessage {
        left4me_protocol::AgentMessage::WorkshopProgress(self.clone())
    }

    /// People see each item when it is done; bytes are for the app's progress bar.
    fn to_human(&self) -> String {
        String::new()
    }
}

impl crate::output::Report for WorkshopItem {
    fn to_message(&self) -> left4me_protocol::AgentMessage {
        left4me_protocol::AgentMessage::WorkshopItem(self.clone())
    }

    fn to_human(&self) -> String {
        let what = match self.outcome {
            WorkshopOutcome::Downloaded => "downloaded",
            WorkshopOutcome::Unchanged => "unchanged ",
            WorkshopOutcome::Failed => "FAILED    ",
        };
        let mut line = format!(
            "[{}/{}] {what} {} {}",
            self.items_done, self.items_total, self.id, self.title
        );
        if let Some(file) = &self.file {
            line.push_str(&format!(
                " ({file}, {:.1} MiB)",
                self.bytes as f64 / (1 << 20) as f64
            ));
        }
        if let Some(reason) = &self.reason {
            line.push_str(&format!(": {reason}"));
        }
        line.push('\n');
        line
    }
}

impl crate::output::Report for WorkshopDone {
    fn to_message(&self) -> left4me_protocol::AgentMessage {
        left4me_protocol::AgentMessage::WorkshopDone(self.clone())
    }

    fn to_human(&self) -> String {
        format!(
            "overlay {}: {} downloaded, {} unchanged, {} removed, {} failed; {:.1} MiB{}\n",
            self.overlay,
            self.downloaded,
            self.unchanged,
            self.removed,
            self.failed.len(),
            self.bytes as f64 / (1 << 20) as f64,
            if self.pending {
                "; staged for the next start of its servers"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_the_workshop_are_made_safe() {
        assert_eq!(
            sanitize_file_name(1, "myl4d2addons/Dark Carnival Remix.vpk"),
            "Dark_Carnival_Remix.vpk"
        );
        assert_eq!(sanitize_file_name(2, "../../etc/passwd"), "passwd.vpk");
        assert_eq!(sanitize_file_name(3, "..\\..\\boot.ini"), "boot.ini.vpk");
        assert_eq!(sanitize_file_name(4, ""), "4.vpk");
        assert_eq!(sanitize_file_name(5, "dir/..."), "5.vpk");
        assert_eq!(sanitize_file_name(6, "x/.hidden.vpk"), "hidden.vpk");
        assert_eq!(sanitize_file_name(7, "a/MAP.VPK"), "MAP.VPK");
        assert_eq!(sanitize_file_name(8, "ümlaut$map.vpk"), "_mlaut_map.vpk");
        assert!(sanitize_file_name(9, &"x".repeat(500)).len() <= 100);
    }

    #[test]
    fn ids_and_sizes_are_read_as_strings_or_numbers() {
        assert_eq!(number(&serde_json::json!("123")), Some(123));
        assert_eq!(number(&serde_json::json!(123)), Some(123));
        assert_eq!(number(&serde_json::json!("x")), None);
        assert_eq!(number(&serde_json::json!(null)), None);
    }
}
