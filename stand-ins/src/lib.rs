//! Stand-ins for the two programs left4me drives but cannot have on these machines: the
//! L4D2 dedicated server (`srcds_run`) and Valve's `steamcmd`. They take the real command
//! lines, speak the real wire formats (A2S, RCON) and print real-format output, quirks
//! included, so every layer above them is tested as it will run against the real ones.

pub mod srcds;
pub mod stdio;
pub mod steam;
pub mod steamcmd;

/// Random bits from the kernel, for challenges and ids.
pub fn random_u32() -> u32 {
    use std::io::Read;
    let mut bytes = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    u32::from_le_bytes(bytes)
}

/// Dies the way the real programs crash: by SIGSEGV (no core file), losing whatever stdio
/// still buffers.
pub fn crash() -> ! {
    // SAFETY: no core file; then the default action of SIGSEGV (the Rust runtime's own
    // handler would otherwise take a raised one and carry on).
    unsafe {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
    std::process::abort()
}
