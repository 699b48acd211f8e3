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

/// Runs `command` with its stdout and stderr on a new terminal (stdin is empty), calling
/// `each` with every line as it is printed (without its line break); returns its exit status.
/// If `each` fails, the program is killed and the failure returned.
pub fn run_lines(
    command: &mut Command,
    each: &mut dyn FnMut(&str) -> Result<(), AgentError>,
) -> Result<ExitStatus, AgentError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let cannot = |e: std::io::Error| AgentError::failed(format!("cannot run {program}"), e);
    let (master, slave) = open().map_err(cannot)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().map_err(cannot)?))
        .stderr(Stdio::from(slave))
        .spawn()
        .map_err(cannot)?;
    // The command keeps its copies of the program's side until it is dropped or reused: set
    // them to nothing, so that the terminal ends when the program does.
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut terminal = std::fs::File::from(master);
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
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
                Ok(None) => continue,
                Err(e) => break Err(AgentError::failed(format!("cannot wait for {program}"), e)),
            }
        }
        match terminal.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                let mut failed = None;
                for &byte in &buf[..n] {
                    if byte != b'\n' {
                        line.push(byte);
                        continue;
                    }
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if let Err(e) = each(&String::from_utf8_lossy(&line)) {
                        failed = Some(e);
                        break;
                    }
                    line.clear();
                }
                if let Some(e) = failed {
                    break Err(e);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: every process holding the program's side has gone.
            Err(_) => break Ok(()),
        }
    };
    if let Err(e) = result {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    if !line.is_empty() {
        each(&String::from_utf8_lossy(&line))?;
    }
    let status = child
        .wait()
        .map_err(|e| AgentError::failed(format!("cannot wait for {program}"), e))?;
    Ok(status)
}
