//! Pseudo-terminals for the programs the agent runs. srcds and steamcmd write their output
//! with C stdio, which holds it back 4 KiB at a time on a pipe; on a terminal it writes
//! every line as it is printed.

use crate::error::AgentError;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, ExitStatus, Stdio};

/// A terminal pair: the controlling side for this process, the other for the program. The
/// program's side echoes nothing (`quit` typed by a stop stays out of the log) and adds no
/// carriage returns.
pub fn open() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors; no name, settings or size are asked for.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openpty just returned these descriptors.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: reads and writes the terminal settings of a descriptor we own.
    unsafe {
        libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        let mut settings: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut settings) == 0 {
            settings.c_lflag &= !(libc::ECHO | libc::ECHONL);
            settings.c_oflag &= !libc::ONLCR;
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &settings);
        }
    }
    Ok((master, slave))
}

/// What a program run by [`run`] printed, as it comes.
pub enum Printed<'a> {
    /// A whole line, without its line break.
    Line(&'a str),
    /// The start of a line that has no line break yet (a prompt waiting for input), whole
    /// each time more of it arrives.
    Partial(&'a str),
    /// Nothing new for this long (reported about every 100 ms while it lasts).
    Quiet(std::time::Duration),
}

/// Runs `command` in a process group of its own with its stdout and stderr on a new
/// terminal (stdin is empty), calling `each` with what it prints as it prints it; returns
/// its exit status. If `each` fails, the whole group is killed and the failure returned.
pub fn run(
    command: &mut Command,
    each: &mut dyn FnMut(Printed<'_>) -> Result<(), AgentError>,
) -> Result<ExitStatus, AgentError> {
    use std::os::unix::process::CommandExt;
    let program = command.get_program().to_string_lossy().into_owned();
    let cannot = |e: std::io::Error| AgentError::failed(format!("cannot run {program}"), e);
    let (master, slave) = open().map_err(cannot)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().map_err(cannot)?))
        .stderr(Stdio::from(slave))
        .process_group(0)
        .spawn()
        .map_err(cannot)?;
    // The command keeps its copies of the program's side until it is dropped or reused: set
    // them to nothing, so that the terminal ends when the program does.
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut terminal = std::fs::File::from(master);
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let mut last_output = std::time::Instant::now();
    let result = loop {
        let mut poll = libc::pollfd {
            fd: terminal.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one valid descriptor.
        let ready = unsafe { libc::poll(&mut poll, 1, 100) };
        if ready == 0 {
            // Nothing for a while: done if the program has gone (a process it left behind
            // may still hold the terminal).
            match child.try_wait() {
                Ok(Some(_)) => break Ok(()),
                Ok(None) => match each(Printed::Quiet(last_output.elapsed())) {
                    Ok(()) => continue,
                    Err(e) => break Err(e),
                },
                Err(e) => break Err(AgentError::failed(format!("cannot wait for {program}"), e)),
            }
        }
        match terminal.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                last_output = std::time::Instant::now();
                if let Err(e) = take_lines(&buf[..n], &mut line, each) {
                    break Err(e);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: every process holding the program's side has gone.
            Err(_) => break Ok(()),
        }
    };
    if let Err(e) = result {
        // SAFETY: signals the process group the program leads (it was started in its own).
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = child.wait();
        return Err(e);
    }
    if !line.is_empty() {
        each(Printed::Line(&String::from_utf8_lossy(&line)))?;
    }
    child
        .wait()
        .map_err(|e| AgentError::failed(format!("cannot wait for {program}"), e))
}

/// Splits what arrived into whole lines, keeping the start of an unfinished one in `line`
/// (and showing it as [`Printed::Partial`]).
fn take_lines(
    bytes: &[u8],
    line: &mut Vec<u8>,
    each: &mut dyn FnMut(Printed<'_>) -> Result<(), AgentError>,
) -> Result<(), AgentError> {
    for &byte in bytes {
        if byte != b'\n' {
            line.push(byte);
            continue;
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        each(Printed::Line(&String::from_utf8_lossy(line)))?;
        line.clear();
    }
    if !line.is_empty() {
        each(Printed::Partial(&String::from_utf8_lossy(line)))?;
    }
    Ok(())
}
