//! Every transcript in `tests/steamcmd/` through the agent's reading of steamcmd: each is
//! modelled on real output people posted (its header names the report) and says how it
//! must be read.

use l4d2_agent::steamcmd::{Failure, Guard, Run, Said};
use std::path::PathBuf;

/// The password every transcript's echoed login carries: it must never be shown.
const SECRET: &str = "hunter2";

struct Expected {
    outcome: String,
    progress: Option<usize>,
    code_given: bool,
    guard: Option<Guard>,
    waited_for_approval: bool,
    public_build: Option<String>,
    exit: Option<i32>,
}

fn header(text: &str, file: &str) -> (Expected, String) {
    let (head, body) = text
        .split_once("\n---\n")
        .unwrap_or_else(|| panic!("{file}: no '---' after the header"));
    let mut expected = Expected {
        outcome: String::new(),
        progress: None,
        code_given: false,
        guard: None,
        waited_for_approval: false,
        public_build: None,
        exit: Some(0),
    };
    let mut models = 0;
    for line in head.lines() {
        let (key, value) = line
            .strip_prefix("# ")
            .and_then(|l| l.split_once(": "))
            .unwrap_or_else(|| panic!("{file}: cannot read header line {line:?}"));
        match key {
            "models" => models += 1,
            "expect" => expected.outcome = value.to_owned(),
            "progress" => expected.progress = Some(value.parse().unwrap()),
            "code-given" => expected.code_given = value == "yes",
            "guard" => {
                expected.guard = Some(match value {
                    "email" => Guard::Email,
                    "twofactor" => Guard::TwoFactor,
                    other => panic!("{file}: unknown guard {other}"),
                })
            }
            "waited-for-approval" => expected.waited_for_approval = value == "yes",
            "public-build" => expected.public_build = Some(value.to_owned()),
            "exit" => expected.exit = Some(value.parse().unwrap()),
            other => panic!("{file}: unknown header {other}"),
        }
    }
    assert!(models > 0, "{file}: names no real report it models");
    (expected, body.to_owned())
}

/// Feeds a transcript as the terminal delivers it: whole lines, and an unfinished last one
/// as the start of a line.
fn read(body: &str) -> (Run, usize) {
    let mut run = Run::default();
    let mut progress = 0;
    let mut lines: Vec<&str> = body.split('\n').collect();
    let unfinished = lines.pop().filter(|l| !l.is_empty());
    for line in lines {
        if matches!(run.line(line), Said::Progress { .. }) {
            progress += 1;
        }
    }
    if let Some(start) = unfinished {
        run.partial(start);
    }
    (run, progress)
}

fn code_of(failure: &Failure) -> String {
    serde_json::to_value(failure.code())
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_transcript_is_read_as_its_header_says() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/steamcmd");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus shrank: {}", files.len());
    let mut wrong = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let (expected, body) = header(&std::fs::read_to_string(path).unwrap(), &file);
        let (run, progress) = read(&body);
        let failure = run.finish(expected.code_given, expected.exit);
        let outcome = match (&failure, run.succeeded) {
            (Some(failure), _) => code_of(failure),
            (None, true) => "success".to_owned(),
            (None, false) => "none".to_owned(),
        };
        // A transcript that shows no end of its own (app info alone) expects none.
        let outcome = if expected.outcome == "none" && !run.succeeded && run.failure.is_none() {
            "none".to_owned()
        } else {
            outcome
        };
        let mut check = |what: &str, ok: bool, got: String| {
            if !ok {
                wrong.push(format!("{file}: {what}: got {got}"));
            }
        };
        check(
            "outcome",
            outcome == expected.outcome,
            format!("{outcome}, expected {}", expected.outcome),
        );
        if let Some(n) = expected.progress {
            check(
                "progress lines",
                progress == n,
                format!("{progress}, expected {n}"),
            );
        }
        if let Some(guard) = expected.guard {
            let got = match &failure {
                Some(Failure::GuardCodeNeeded(g) | Failure::GuardCodeRejected(g)) => Some(*g),
                _ => None,
            };
            check("guard", got == Some(guard), format!("{got:?}"));
        }
        if expected.waited_for_approval {
            check(
                "approval",
                run.logged_on && !run.waiting_for_confirmation,
                format!(
                    "logged on {} waiting {}",
                    run.logged_on, run.waiting_for_confirmation
                ),
            );
        }
        if let Some(build) = &expected.public_build {
            check(
                "public build",
                run.public_build.as_deref() == Some(build),
                format!("{:?}", run.public_build),
            );
        }
        let shown = run.last_lines();
        check("secrets", !shown.contains(SECRET), shown.clone());
        if let Some(failure) = &failure {
            let message = failure.explain();
            check("message", !message.contains(SECRET), message);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
