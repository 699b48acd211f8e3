//! `logs <name>`: a server's console from journald, for people or as JSON Lines with
//! timestamps; `--follow` streams until interrupted.

use crate::error::AgentError;
use crate::systemd::unit;
use left4me_protocol::ServerName;
use left4me_protocol::agent::LogLine;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The most lines one call returns; more is a job for journalctl itself.
pub const MAX_LINES: u32 = 100_000;

/// Streams the last `lines` lines (and with `follow`, new ones) to `each`.
pub fn logs(
    name: &ServerName,
    lines: u32,
    follow: bool,
    each: &mut dyn FnMut(LogLine) -> Result<(), AgentError>,
) -> Result<(), AgentError> {
    if lines > MAX_LINES {
        return Err(AgentError::Invalid(format!(
            "--lines {lines}: at most {MAX_LINES}"
        )));
    }
    let mut command = Command::new("journalctl");
    command
        .args([
            "--unit",
            &unit(name),
            "--output",
            "json",
            "--no-pager",
            "--quiet",
        ])
        .args(["--lines", &lines.to_string()]);
    if follow {
        command.arg("--follow");
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AgentError::failed("cannot run journalctl", e))?;
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| AgentError::failed("cannot read journalctl's output", e))?;
        if let Some(entry) = parse_entry(&line) {
            if let Err(err) = each(entry) {
                // The reader went away (a closed pipe, an ended SSH channel): stop journalctl.
                let _ = child.kill();
                let _ = child.wait();
                return Err(err);
            }
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

/// One `journalctl -o json` record: the time and the message (a string, or an array of
/// bytes when it is not valid UTF-8).
pub fn parse_entry(line: &str) -> Option<LogLine> {
    let record: serde_json::Value = serde_json::from_str(line).ok()?;
    let micros: u64 = record["__REALTIME_TIMESTAMP"].as_str()?.parse().ok()?;
    let message = match &record["MESSAGE"] {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(bytes) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => return None,
    };
    Some(LogLine {
        timestamp: rfc3339(micros),
        message,
    })
}

/// Microseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn rfc3339(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        micros % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(
            rfc3339(1_795_689_296_123_456),
            "2026-11-26T10:34:56.123456Z"
        );
    }

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
