//! Output the way the real programs' C stdio writes it: a line at a time on a terminal, but
//! on a pipe (journald's stdout, an agent reading its child) only once 4 KiB have gathered,
//! and whatever is still buffered is lost when the process dies from a signal or a crash.
//! srcds and steamcmd both write this way.

use std::io::Write;
use std::sync::Mutex;

struct Buffer {
    pending: Vec<u8>,
    /// Whether stdout is a terminal, where stdio writes every line at once.
    terminal: bool,
}

/// stdio's buffer size for a pipe (the pipe's `st_blksize`).
const STDIO_BUFFER: usize = 4096;

static STDOUT: Mutex<Option<Buffer>> = Mutex::new(None);

/// Prints one line: at once on a terminal, else in whole 4 KiB blocks.
pub fn print_line(line: &str) {
    print(&format!("{line}\n"));
}

/// Prints text that may not end a line (a prompt, the start of `Logging in…`): on a
/// terminal stdio writes it when the program next reads stdin or flushes, which the programs
/// standing in here do at once; on a pipe it waits for a whole block like the rest.
pub fn print(text: &str) {
    let mut stdout = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    let buffer = stdout.get_or_insert_with(|| Buffer {
        pending: Vec::new(),
        // SAFETY: isatty on our stdout.
        terminal: unsafe { libc::isatty(1) } == 1,
    });
    buffer.pending.extend_from_slice(text.as_bytes());
    let due = if buffer.terminal {
        buffer.pending.len()
    } else {
        buffer.pending.len() / STDIO_BUFFER * STDIO_BUFFER
    };
    if due > 0 {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&buffer.pending[..due]);
        let _ = out.flush();
        buffer.pending.drain(..due);
    }
}

/// Writes out what is still buffered, as `exit()` does.
pub fn flush() {
    let mut stdout = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(buffer) = stdout.as_mut() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&buffer.pending);
        let _ = out.flush();
        buffer.pending.clear();
    }
}
