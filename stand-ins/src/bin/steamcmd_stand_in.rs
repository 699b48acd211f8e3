//! The stand-in steamcmd's logic (`linux32/steamcmd_stand_in`, started by the i386
//! `linux32/steamcmd`): see `stand_ins::steamcmd`. `steamcmd_stand_in --write-tree DIR` lays
//! out a fresh steamcmd folder as Valve's tarball unpacks, for tests to use or to pack.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir] = args.as_slice()
        && flag == "--write-tree"
    {
        return match stand_ins::steamcmd::write_tree(std::path::Path::new(dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("steamcmd_stand_in: cannot write a steamcmd tree in {dir}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let code = stand_ins::steamcmd::run(&args);
    // Returning from main flushes stdio.
    stand_ins::stdio::flush();
    ExitCode::from(code.clamp(0, 255) as u8)
}
