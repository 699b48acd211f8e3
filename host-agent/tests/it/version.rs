use std::process::{Command, Output};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l4d2-agent"))
        .args(args)
        .output()
        .expect("run l4d2-agent")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn dash_dash_version_prints_name_and_version() {
    let out = agent(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        format!("l4d2-agent {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn version_json_is_one_protocol_envelope() {
    let out = agent(&["version", "--json"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["v"], left4me_protocol::PROTOCOL_VERSION);
    assert_eq!(doc["type"], "version");
    assert_eq!(doc["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["arch"], std::env::consts::ARCH);
}

#[test]
fn version_for_people_is_one_line() {
    let out = agent(&["version"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("l4d2-agent {} (", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.ends_with(", protocol 1)\n"), "{text}");
}

#[test]
fn unknown_commands_exit_2_with_usage() {
    let out = agent(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
}

#[test]
fn help_texts_match_their_snapshots() {
    // UPDATE_EXPECT=1 cargo test rewrites the snapshots after a deliberate change.
    let help = |args: &[&str]| stdout(&agent(args));
    expect_test::expect_file!["snapshots/help.txt"].assert_eq(&help(&["--help"]));
    expect_test::expect_file!["snapshots/help-initialize.txt"]
        .assert_eq(&help(&["initialize", "--help"]));
    expect_test::expect_file!["snapshots/help-overlay.txt"]
        .assert_eq(&help(&["overlay", "--help"]));
}
