//! The `l4d2-agent` binary: parses the command line, runs it, and owns the exit policy
//! documented in `--help`.

use clap::Parser;
use l4d2_agent::{AgentError, cli::Cli, output::Output};
use left4me_protocol::{AgentMessage, Envelope};
use std::io::{ErrorKind, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    l4d2_agent::timing::begin();
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let mut out = Output::new(cli.json, &mut lock);
    let ran = l4d2_agent::run(&cli, &mut out);
    l4d2_agent::timing::end();
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stops early (`| head`) is not a failure of the command.
        Err(AgentError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            report_error(&cli, &mut lock, &err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Prints the error chain on stderr and, with `--json`, as the last record on stdout.
fn report_error(cli: &Cli, stdout: &mut impl Write, err: &AgentError) {
    let message = l4d2_agent::error::chain(err);
    eprintln!("l4d2-agent: {message}");
    if cli.json {
        let record = Envelope::new(AgentMessage::Error(left4me_protocol::AgentError {
            code: err.code(),
            message,
        }));
        let _ = writeln!(stdout, "{}", record.to_line());
    }
}
