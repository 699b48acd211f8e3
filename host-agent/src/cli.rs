//! The command line, for people and for the app.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes, also shown in `--help`.
pub const EXIT_HELP: &str = "\
Exit status:
  0  success
  1  the command failed (the reason is on stderr, or the last JSON record with --json)
  2  the command line is invalid";

#[derive(Debug, Parser)]
#[command(
    name = "l4d2-agent",
    version,
    about = "Installs Left 4 Dead 2, layers overlays and runs game servers on this host",
    after_help = EXIT_HELP
)]
pub struct Cli {
    /// Machine output: one JSON document, or JSON Lines for streams
    #[arg(long, global = true)]
    pub json: bool,

    /// The state tree every path derives from
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/var/lib/left4me"
    )]
    pub root: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the agent's version and build facts
    Version,
}
