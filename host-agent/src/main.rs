//! The `l4d2-agent` binary: parses the command line, runs it, and owns the exit policy
//! documented in `--help`.

use clap::Parser;
use l4d2_agent::{AgentError, cli::Cli, output::Output};
use std::io::ErrorKind;
use std::process::ExitCode;

fn main() -> ExitCode {
    l4d2_agent::timing::begin();
    let cli = Cli::parse();
    // Buffered: each record is flushed when written, except where a stream holds its
    // records to send several at once (a flooding log goes out in a few writes, not one a
    // line).
    let mut stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut out = Output::new(cli.json, &mut stdout);
    let ran = l4d2_agent::run(&cli, &mut out);
    l4d2_agent::timing::end();
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stops early (`| head`) is not a failure of the command.
        Err(AgentError::Output(e)) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            // Told on stderr and, with `--json`, as the last record on stdout.
            let _ = out.error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}
