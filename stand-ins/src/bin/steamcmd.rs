//! The stand-in `steamcmd`: see `stand_ins::steamcmd`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = stand_ins::steamcmd::run(&args);
    // Returning from main flushes stdio.
    stand_ins::stdio::flush();
    ExitCode::from(code.clamp(0, 255) as u8)
}
