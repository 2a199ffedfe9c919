//! The GDB remote stub (`vigil run --gdb tcp::1234`, QEMU's spelling;
//! `--gdb-wait` stops before the first instruction, as QEMU's `-S`).
//!
//! A debugger thread speaks GDB's remote protocol through `gdbstub`
//! ([`remote`]); while the vCPU is stopped, the run loop answers its
//! requests against the accelerator's debug access ([`port`],
//! `accel::debug::GuestDebug`). GDB's Ctrl-C, and its attaching, make the
//! vCPU leave the guest at the next instruction boundary
//! (`VcpuControl::request_exit`); steps, breakpoints and watchpoints end
//! `run()` with `VcpuExit::Debug`. Beyond QEMU, `monitor` shows the VMCS
//! by field name, the notify state, the exit counts and the running level
//! ([`monitor_cmd`]).
//!
//! GDB takes one target description per session and must be given the
//! one that matches the ELF file it debugs ([`GdbArch`]): i386 for a
//! 32-bit guest, x86-64 for a 64-bit one, whatever mode the vCPU is in
//! when GDB attaches (a 64-bit multiboot guest starts in 32-bit code).
//! `vigil run` asks for the built-in guest's width; otherwise the stub
//! picks by the vCPU's mode at attach.

pub mod arch;
mod monitor_cmd;
mod port;
mod remote;

pub use arch::GdbArch;
pub use port::DebugPort;

use accel::VcpuControl;
use std::fmt;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::mpsc::channel;
use std::sync::Arc;

/// Where the stub listens, and whether the vCPU waits for GDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdbOptions {
    /// The TCP address to listen on.
    pub listen: SocketAddr,
    /// Stop before the first instruction until GDB attaches (QEMU's `-S`).
    pub wait: bool,
    /// The target description GDB gets; `None` picks it from the vCPU's
    /// mode when GDB attaches (x86-64 in long mode, i386 otherwise).
    pub arch: Option<GdbArch>,
}

/// The stub could not start.
#[derive(Debug)]
pub enum GdbError {
    /// The `--gdb` argument is not `tcp::PORT` or `tcp:HOST:PORT`.
    Spec(String),
    /// The address cannot be listened on.
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Accepting GDB's connection failed.
    Accept(std::io::Error),
    /// The debugger thread could not be started.
    Thread(std::io::Error),
}

impl fmt::Display for GdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GdbError::Spec(s) => write!(
                f,
                "--gdb '{s}': expected tcp::PORT or tcp:HOST:PORT (as QEMU's -gdb), e.g. tcp::1234"
            ),
            GdbError::Listen { addr, source } => write!(
                f,
                "--gdb: cannot listen on {addr}: {source}; pick another port"
            ),
            GdbError::Accept(e) => write!(f, "--gdb: accepting GDB's connection failed: {e}"),
            GdbError::Thread(e) => write!(f, "--gdb: cannot start the debugger thread: {e}"),
        }
    }
}

impl std::error::Error for GdbError {}

/// Parses QEMU's `-gdb` spelling: `tcp::PORT` (localhost) or `tcp:HOST:PORT`.
pub fn parse_listen(spec: &str) -> Result<SocketAddr, GdbError> {
    let bad = || GdbError::Spec(spec.to_string());
    let rest = spec.strip_prefix("tcp:").ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    (host, port)
        .to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)
}

/// Starts the stub for the vCPU behind `control`: listens, and with
/// `wait` blocks until GDB connects. The run loop serves the returned port.
pub fn start(options: &GdbOptions, control: Arc<dyn VcpuControl>) -> Result<DebugPort, GdbError> {
    let listener = TcpListener::bind(options.listen).map_err(|source| GdbError::Listen {
        addr: options.listen,
        source,
    })?;
    let (event_tx, event_rx) = channel();
    let (request_tx, request_rx) = channel();
    let (answer_tx, answer_rx) = channel();
    let (session_tx, session_over) = channel::<()>();
    let flags = Arc::new(port::Flags::default());
    let remote = remote::Remote {
        requests: request_tx,
        answers: answer_rx,
        events: event_rx,
        flags: flags.clone(),
        control,
        physical: false,
        arch: options.arch,
    };
    let early = if options.wait {
        Some(listener.accept().map_err(GdbError::Accept)?.0)
    } else {
        None
    };
    std::thread::Builder::new()
        .name("vigil-gdb".into())
        .spawn(move || {
            // Dropped when the session is over: the run's end waits for it.
            let _session = session_tx;
            let conn = match early {
                Some(c) => c,
                None => match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => return,
                },
            };
            remote::session(remote, conn);
        })
        .map_err(GdbError::Thread)?;
    if options.wait {
        // The session thread stops the vCPU first; make sure the run loop
        // sees the request before its first entry.
        while !flags.interrupt.load(std::sync::atomic::Ordering::Acquire) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    Ok(DebugPort::new(
        event_tx,
        request_rx,
        answer_tx,
        flags,
        session_over,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_spellings_parse() {
        assert_eq!(
            parse_listen("tcp::1234").unwrap(),
            "127.0.0.1:1234".parse().unwrap()
        );
        assert_eq!(
            parse_listen("tcp:0.0.0.0:9").unwrap(),
            "0.0.0.0:9".parse().unwrap()
        );
        for bad in ["1234", "tcp::", "udp::1", "tcp::99999"] {
            assert!(matches!(parse_listen(bad), Err(GdbError::Spec(_))), "{bad}");
        }
    }
}
