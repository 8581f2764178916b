//! Signals to the processes the test bed starts (the controller, the control
//! plane, Prometheus), sent directly rather than by spawning `kill`, so a
//! failure is an error value and not an exit status to interpret.

use std::io;

/// The signals the tests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Ask to stop cleanly.
    Term,
    /// Freeze: the process keeps its sockets but answers nothing.
    Stop,
    /// Thaw a stopped process.
    Cont,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// Sends `signal` to the process `pid`.
pub fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal.number()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_stops_on_term_and_a_missing_process_is_an_error() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        send(child.id(), Signal::Stop).unwrap();
        send(child.id(), Signal::Cont).unwrap();
        send(child.id(), Signal::Term).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(
            send(child.id(), Signal::Term).is_err(),
            "reaped: no such process"
        );
    }
}
