//! The stand-in server's logic, which the i386 `srcds_linux` hands over to: see `stand_ins::srcds`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match stand_ins::srcds::Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("srcds_linux: {message}");
            return ExitCode::from(1);
        }
    };
    let root = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let code = stand_ins::srcds::run(options, &root);
    // Returning from main flushes stdio.
    stand_ins::srcds::flush_console();
    ExitCode::from(code.clamp(0, 255) as u8)
}
