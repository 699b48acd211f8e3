//! `cargo xtask <task>`: the one entry point for left4me's project tasks.
//!
//! Every task first installs what it needs and is missing (Debian/Ubuntu packages when run
//! as root, cargo tools), so a fresh machine needs nothing but this command.

mod bench;
mod cmd;
mod desktop;
mod dist;
mod hosts;
mod secret_service;
mod setup;
mod tasks;
mod wasm;
mod workspace;

use std::process::ExitCode;

type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  run      install what is missing, build the UI and the app (release), open the window
  test     install what is missing, build everything and run every test, the window's too
  lint     cargo fmt --check and clippy -D warnings on every crate (the UI for wasm32)
  agent    build l4d2-agent as one static binary for x86_64 Linux hosts
  dist     build the app's packages (.deb, .rpm) with the agent inside; `--debug` for a
           package of the debug build
  ui       build the UI bundle into ui/dist
  setup    only install what the other tasks need
  hosts    test hosts: `hosts up [N]`, `hosts down`, `hosts ssh <i> [command…]`
  bench    print figures: `bench agent` (size, disk, status and start times, a backup
           of a 50 MB upper layer, each server's downtime in a rollout), `bench follow`
           (a log follower's memory and CPU through a 10-minute flood), `bench fanout`
           (status refresh of 50 servers on 5 hosts against an expert's OpenSSH
           ControlMaster fan-out, and where one host's time goes), `bench first`
           (from \"Add host\" to the first server's A2S answer with a 1 GiB install, by
           step), `bench fleet` (1,000 running servers on 20 hosts: refresh, dashboard
           and memory, beside 50 on 5), `bench ui`
           (the window's start-up, memory and 500-server dashboard beside a minimal Tauri +
           Yew app, its log view under a flood and its install progress bar against
           steamcmd's lines, the release .deb's size; `bench ui install` picks parts); all
           but `follow` and `fleet` without an argument

environment:
  CARGO_TARGET_DIR          where builds go (default: target/ in the workspace)
  LEFT4ME_WASM_TOOLCHAIN    rustup | debian: force how the UI is compiled to wasm32
  LEFT4ME_CACHE             where test host images are kept (default: ~/.cache/left4me)
  LEFT4ME_DEBIAN_MIRROR     the mirror debootstrap uses (default: http://deb.debian.org/debian)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => tasks::run(),
        Some("test") => tasks::test(&args[1..]),
        Some("lint") => tasks::lint(),
        Some("agent") => tasks::agent_and_stand_ins().map(|path| println!("{}", path.display())),
        Some("ui") => tasks::ui(),
        Some("dist") => dist::main(&args[1..]),
        Some("hosts") => hosts::main(&args[1..]),
        Some("bench") => bench::main(&args[1..]),
        Some("setup") => setup::ensure(setup::Needs::ALL),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task {other:?}\n\n{USAGE}").into()),
        None => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}
