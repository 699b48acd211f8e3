//! `overlay script <name>`: fills an overlay by running a shell script (read from stdin) on
//! the host, and `fetch <url> <file>`, the download helper such scripts use (hosts need no
//! curl or wget).
//!
//! The script runs with `/bin/sh` as the `left4me` account, in a fresh empty folder that
//! becomes the overlay's content only if the script exits 0 within its time limit and what
//! it made passes the same checks as an imported archive (no links out of the overlay, no
//! devices, within the size limit). Otherwise the overlay stays as it was. Its environment
//! is only this, nothing secret:
//!
//! | variable | value |
//! |---|---|
//! | `LEFT4ME_OVERLAY_DIR` | the folder to fill (also the working directory) |
//! | `LEFT4ME_OVERLAY_NAME` | the overlay's name |
//! | `LEFT4ME_GAME_DIR` | the base install, to read (for example to find a game file) |
//! | `LEFT4ME_AGENT` | this agent, for `"$LEFT4ME_AGENT" fetch URL FILE` |
//! | `PATH`, `HOME`, `LANG`, `TMPDIR` | `/usr/local/bin:/usr/bin:/bin`, a scratch folder, `C.UTF-8`, the same scratch folder |

use crate::error::{AgentError, io_context};
use crate::host::Host;
use crate::output::Output;
use left4me_protocol::agent::{DoneReport, OverlayFilled, ScriptLine};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_SCRIPT_BYTES: u64 = 256 * 1024;

/// `overlay script`: runs the script on stdin, streaming the lines it prints.
pub fn command(
    host: &Host<'_>,
    name: &str,
    timeout_secs: u64,
    max_bytes: u64,
    out: &mut Output<'_>,
) -> Result<(), AgentError> {
    let done = out.streamed(|write| {
        fill(
            host,
            name,
            std::io::stdin().lock(),
            Duration::from_secs(timeout_secs),
            max_bytes,
            &mut |line| write(line),
        )
    })?;
    out.message(&done)
}

pub fn fill(
    host: &Host<'_>,
    name: &str,
    script: impl Read,
    timeout: Duration,
    max_bytes: u64,
    emit: &mut dyn FnMut(&ScriptLine),
) -> Result<OverlayFilled, AgentError> {
    let name = crate::names::overlay_name(name)?;
    let mut text = String::new();
    script
        .take(MAX_SCRIPT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| AgentError::Invalid(format!("cannot read the script from stdin: {e}")))?;
    if text.trim().is_empty() {
        return Err(AgentError::Invalid("the script on stdin is empty".into()));
    }
    if text.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(AgentError::Invalid(format!(
            "the script is longer than {MAX_SCRIPT_BYTES} bytes"
        )));
    }
    let target = crate::fill::prepare_fill(host, &name)?;
    let owner = target.owner;
    let overlay = host.layout.overlay(&name);
    let overlays = host.layout.overlays();
    let scratch = overlays.join(format!(".{name}.scratch"));
    let script_file = overlays.join(format!(".{name}.script.sh"));
    let game = host.layout.installation();
    let bytes = crate::fill::replace_content(&overlay, &target, "filled", |staging| {
        let _ = std::fs::remove_dir_all(&scratch);
        crate::fsutil::create_dir(&scratch, 0o700).map_err(io_context("create", &scratch))?;
        crate::fsutil::write_atomic(&script_file, text.as_bytes(), 0o600)
            .map_err(io_context("write", &script_file))?;
        for path in [staging, scratch.as_path(), script_file.as_path()] {
            if let Some((uid, gid)) = owner {
                crate::fsutil::chown(path, uid, gid).map_err(io_context("chown", path))?;
            }
        }
        let result = run(
            &script_file,
            staging,
            &scratch,
            &game,
            &name,
            owner,
            timeout,
            emit,
        );
        let _ = std::fs::remove_dir_all(&scratch);
        let _ = std::fs::remove_file(&script_file);
        result?;
        let bytes = crate::import::check_tree(staging, max_bytes)
            .map_err(|e| AgentError::Invalid(format!("what the script made is refused: {e}")))?;
        Ok(bytes)
    })?;
    Ok(OverlayFilled {
        overlay: name.to_string(),
        pending: target.stage,
        bytes,
    })
}

#[allow(clippy::too_many_arguments)]
fn run(
    script: &Path,
    dir: &Path,
    scratch: &Path,
    game: &Path,
    name: &left4me_protocol::OverlayName,
    owner: Option<(u32, u32)>,
    timeout: Duration,
    emit: &mut dyn FnMut(&ScriptLine),
) -> Result<(), AgentError> {
    let agent =
        std::env::current_exe().map_err(|e| AgentError::failed("cannot find this agent", e))?;
    let mut command = Command::new("/bin/sh");
    command
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("HOME", scratch)
        .env("TMPDIR", scratch)
        .env("LEFT4ME_OVERLAY_DIR", dir)
        .env("LEFT4ME_OVERLAY_NAME", name.as_str())
        .env("LEFT4ME_GAME_DIR", game)
        .env("LEFT4ME_AGENT", &agent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so the time limit ends everything it started.
        .process_group(0);
    if crate::host::is_root()
        && let Some((uid, gid)) = owner
    {
        // As root (by hand): the script runs as left4me, never as root. (std drops
        // root's supplementary groups when it changes the user.)
        command.uid(uid).gid(gid);
    }
    let mut child = command
        .spawn()
        .map_err(|e| AgentError::failed("cannot start /bin/sh for the script", e))?;
    let (tx, rx) = mpsc::channel::<ScriptLine>();
    let readers: Vec<_> = [
        (
            "stdout",
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        (
            "stderr",
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ]
    .into_iter()
    .filter_map(|(stream, pipe)| pipe.map(|p| (stream, p)))
    .map(|(stream, pipe)| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_owned();
                if tx
                    .send(ScriptLine {
                        stream: stream.to_owned(),
                        line: text,
                    })
                    .is_err()
                {
                    return;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let deadline = Instant::now() + timeout;
    let pgid = child.id() as i32;
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            emit(&line);
        }
        if let Some(status) = child
            .try_wait()
            .map_err(|e| AgentError::failed("cannot wait for the script", e))?
        {
            break Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the script's own process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
            emit(&line);
        }
    };
    // Whatever the script left running in its group goes with it.
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    for reader in readers {
        let _ = reader.join();
    }
    while let Ok(line) = rx.try_recv() {
        emit(&line);
    }
    match status {
        None => Err(AgentError::failed(
            format!(
                "the script ran longer than its limit of {} s and was stopped; the overlay is unchanged",
                timeout.as_secs()
            ),
            "timed out",
        )),
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(AgentError::failed(
            format!(
                "the script failed ({}); the overlay is unchanged",
                match status.code() {
                    Some(code) => format!("exit code {code}"),
                    None => "killed by a signal".to_owned(),
                }
            ),
            "script failed",
        )),
    }
}

/// `fetch <url> <file>`: downloads to `<file>.part`, then renames it into place.
pub fn fetch(url: &str, file: &Path, retries: u32) -> Result<DoneReport, AgentError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(AgentError::Invalid(format!("not an HTTP URL: {url:?}")));
    }
    let part = file.with_file_name(format!(
        ".{}.part",
        file.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut pause = Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            std::thread::sleep(pause);
            pause *= 2;
        }
        let response = match ureq::get(url)
            .config()
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .build()
            .call()
        {
            Ok(response) => response,
            Err(ureq::Error::StatusCode(code)) if code != 429 && code < 500 => {
                return Err(AgentError::failed(
                    format!("cannot fetch {url}"),
                    format!("HTTP {code}"),
                ));
            }
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let written = std::fs::File::create(&part).and_then(|mut out| {
            let mut reader = response
                .into_body()
                .into_with_config()
                .limit(u64::MAX)
                .reader();
            std::io::copy(&mut reader, &mut out)?;
            out.flush()?;
            out.sync_all()
        });
        match written {
            Ok(()) => {
                std::fs::rename(&part, file).map_err(io_context("move into place", file))?;
                return Ok(crate::output::done("fetch", &url, true));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                last = e.to_string();
            }
        }
    }
    Err(AgentError::failed(
        format!("cannot fetch {url} (after {} attempts)", retries + 1),
        last,
    ))
}

impl crate::output::Report for ScriptLine {
    fn to_message(&self) -> left4me_protocol::AgentMessage {
        left4me_protocol::AgentMessage::ScriptLine(self.clone())
    }

    fn to_human(&self) -> String {
        format!("{}\n", self.line)
    }
}

impl crate::output::Report for OverlayFilled {
    fn to_message(&self) -> left4me_protocol::AgentMessage {
        left4me_protocol::AgentMessage::OverlayFilled(self.clone())
    }

    fn to_human(&self) -> String {
        format!(
            "overlay {}: {:.1} MiB{}\n",
            self.overlay,
            self.bytes as f64 / (1 << 20) as f64,
            if self.pending {
                ", staged: its servers switch at their next start or restart"
            } else {
                ", in place"
            }
        )
    }
}
