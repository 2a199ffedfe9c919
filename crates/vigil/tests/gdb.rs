//! Real GDB against the stub (`vigil run --gdb tcp::PORT --gdb-wait`), in
//! batch mode: breakpoints at guest symbols, registers (control registers
//! and EFER included), memory, single-step, a watchpoint, `monitor`
//! commands inside l1hv's L2, detach — and the VM then finishes as without
//! GDB; the same in a 32-bit guest, under i386's target description;
//! Ctrl-C; time stopped left out of `--timeout`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long vigil and GDB may take each before they are killed.
const LIMIT: Duration = Duration::from_secs(60);

/// The guest's ELF file with symbols: beside its multiboot image, the
/// 64-bit one of a long-mode guest, or the image itself.
fn symbols(guest: &str) -> PathBuf {
    let g = guests::find(guest).expect("a built-in guest");
    let ext = if g.long_mode { "elf64" } else { "elf" };
    PathBuf::from(guests::IMAGE_DIR).join(format!("{guest}.{ext}"))
}

fn gdb_available(test: &str) -> bool {
    match Command::new("gdb").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            println!("SKIP {test}: `gdb --version` failed ({})", o.status);
            false
        }
        Err(e) => {
            println!("SKIP {test}: gdb cannot be run ({e}); install Debian's package gdb");
            false
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process with its output read by threads (so that a full pipe
/// never blocks it), killed if the test lets go of it early.
struct Running {
    child: Child,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<String>> {
    let mut pipe = pipe?;
    Some(std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    }))
}

impl Running {
    fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a child process");
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        Running { child, out, err }
    }

    /// Waits at most `limit` (then kills it); returns its status (`None`
    /// when killed), stdout and stderr.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String, String) {
        let start = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s.code(),
                Ok(None) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        let text =
            |h: Option<JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        (status, text(self.out.take()), text(self.err.take()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `guest` under `--gdb-wait` and GDB in batch mode with `commands`;
/// returns (vigil's status, vigil's output, GDB's transcript).
fn under_gdb(guest: &str, commands: &[&str]) -> (Option<i32>, String, String) {
    under_gdb_with(guest, &["--timeout", "60s"], commands)
}

/// As [`under_gdb`], with `args` for `vigil run`.
fn under_gdb_with(guest: &str, args: &[&str], commands: &[&str]) -> (Option<i32>, String, String) {
    let port = free_port();
    let vigil = Running::start(
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["run", "--guest", guest])
            .args(args)
            .args(["--gdb", &format!("tcp::{port}"), "--gdb-wait"]),
    );
    let mut gdb = Command::new("gdb");
    gdb.args(["-nx", "-batch"]);
    let setup = [
        "set pagination off".to_string(),
        "set confirm off".to_string(),
        // vigil listens once its guest is loaded; GDB retries until then.
        "set tcp auto-retry on".to_string(),
        "set tcp connect-timeout 30".to_string(),
        format!("file {}", symbols(guest).display()),
        format!("target remote 127.0.0.1:{port}"),
    ];
    for c in setup
        .iter()
        .map(String::as_str)
        .chain(commands.iter().copied())
    {
        gdb.args(["-ex", c]);
    }
    let (gdb_status, gdb_out, gdb_err) = Running::start(&mut gdb).finish(LIMIT);
    let transcript = format!("{gdb_out}{gdb_err}");
    assert!(
        gdb_status.is_some(),
        "GDB did not finish in {LIMIT:?}:\n{transcript}"
    );
    let (status, out, err) = vigil.finish(LIMIT);
    (status, format!("{out}\n{err}"), transcript)
}

#[test]
fn gdb_breaks_steps_watches_and_detaches_in_hello64() {
    if !gdb_available("gdb_breaks_steps_watches_and_detaches_in_hello64") {
        return;
    }
    let (status, out, gdb) = under_gdb(
        "hello64",
        &[
            "break main",
            "continue",
            "info registers rip cs",
            "p/x $cr0",
            "p/x $efer",
            "x/2i $pc",
            "stepi",
            "p/x $pc",
            "watch *(char *)&buf",
            "continue",
            "x/1xb &buf",
            "delete",
            "monitor level",
            "monitor exits",
            "detach",
        ],
    );
    println!("{gdb}");
    assert!(gdb.contains("Breakpoint 1, "), "{gdb}");
    assert!(gdb.contains("main ()") || gdb.contains("main("), "{gdb}");
    // Long mode with paging: CR0.PG and PE, EFER.LMA and LME.
    let cr0 = gdb.lines().find(|l| l.starts_with("$1 = 0x")).expect("cr0");
    let cr0 = u64::from_str_radix(cr0.trim_start_matches("$1 = 0x"), 16).unwrap();
    assert_eq!(cr0 & 0x8000_0001, 0x8000_0001, "{gdb}");
    let efer = gdb
        .lines()
        .find(|l| l.starts_with("$2 = 0x"))
        .expect("efer");
    let efer = u64::from_str_radix(efer.trim_start_matches("$2 = 0x"), 16).unwrap();
    assert_eq!(efer & 0x500, 0x500, "{gdb}");
    assert!(
        gdb.contains("Hardware watchpoint 2: *(char *)&buf"),
        "{gdb}"
    );
    assert!(gdb.contains("New value = -91 '\\245'"), "{gdb}");
    // The watched byte read back from memory.
    assert!(gdb.contains(":\t0xa5\n"), "{gdb}");
    assert!(gdb.contains("L1"), "monitor level: {gdb}");
    assert!(
        gdb.contains("io-instruction") || gdb.contains("monitor-trap-flag"),
        "{gdb}"
    );
    assert!(gdb.contains("(process 1) detached]"), "{gdb}");
    // Detached, the guest runs to its end as without GDB.
    assert_eq!(status, Some(1), "{out}\n{gdb}");
    assert!(out.contains("hello from 64-bit long mode"), "{out}");
    assert!(out.contains("checksum: 0x"), "{out}");
}

#[test]
fn gdb_sees_the_vmcs_inside_l1hvs_l2() {
    if !gdb_available("gdb_sees_the_vmcs_inside_l1hvs_l2") {
        return;
    }
    let (status, out, gdb) = under_gdb(
        "l1hv",
        &[
            "break l2_benign",
            "continue",
            // L2's code read through L2's page tables and L1's EPT, then
            // from the ELF file: the same bytes.
            "x/8xb $pc",
            "set trust-readonly-sections on",
            "x/8xb $pc",
            "set trust-readonly-sections off",
            "monitor level",
            "monitor vmcs",
            "monitor vmcs 12",
            "monitor notify",
            "stepi",
            "p/x $pc",
            "delete",
            "detach",
        ],
    );
    println!("{gdb}");
    assert!(gdb.contains("Breakpoint 1, "), "{gdb}");
    assert!(gdb.contains("L2\n"), "monitor level: {gdb}");
    let code: Vec<&str> = gdb.lines().filter(|l| l.contains("<l2_benign>:")).collect();
    assert_eq!(code.len(), 2, "{gdb}");
    assert_eq!(code[0], code[1], "L2's code as the guest sees it: {gdb}");
    assert!(gdb.contains("vmcs02 (L2 running):"), "{gdb}");
    assert!(gdb.contains("vmcs12 (L2 running):"), "{gdb}");
    assert!(gdb.contains("guest_rip"), "{gdb}");
    assert!(gdb.contains("notify VM exiting: "), "{gdb}");
    assert!(gdb.contains("(process 1) detached]"), "{gdb}");
    assert_eq!(status, Some(1), "l1hv passes as without GDB:\n{out}\n{gdb}");
}

#[test]
fn gdb_debugs_a_32_bit_guest_as_i386() {
    if !gdb_available("gdb_debugs_a_32_bit_guest_as_i386") {
        return;
    }
    let (status, out, gdb) = under_gdb(
        "hello32",
        &[
            "show architecture",
            "break main",
            "continue",
            "info registers eip eax",
            "p/x $cr0",
            "p/x $efer",
            "x/2i $pc",
            "stepi",
            "p/x $pc",
            "watch *(char *)&buf",
            "continue",
            "x/1xb &buf",
            "delete",
            "break printf",
            "continue",
            "bt",
            "finish",
            "p/x $eax",
            "delete",
            "detach",
        ],
    );
    println!("{gdb}");
    // GDB took the i386 description: 32-bit registers and code.
    assert!(gdb.contains("(currently \"i386\")"), "{gdb}");
    assert!(gdb.contains("Breakpoint 1, "), "{gdb}");
    let eip = gdb.lines().find(|l| l.starts_with("eip ")).expect("eip");
    assert!(eip.contains("<main+"), "{gdb}");
    assert!(!gdb.contains("rip"), "{gdb}");
    // Protected mode without paging: CR0.PE, not PG; EFER.LMA clear.
    assert!(gdb.contains("$1 = 0x11\n"), "cr0: {gdb}");
    assert!(gdb.contains("$2 = 0x0\n"), "efer: {gdb}");
    assert!(
        gdb.contains("%e") && !gdb.contains("%r"),
        "32-bit code: {gdb}"
    );
    assert!(gdb.contains("New value = -91 '\\245'"), "{gdb}");
    assert!(gdb.contains(":\t0xa5\n"), "{gdb}");
    // The i386 frame: printf's caller, and its return value in EAX once
    // `finish` is back in main: the 33 characters of the greeting.
    assert!(gdb.contains(" in printf ()\n#1  0x"), "{gdb}");
    let caller = gdb
        .lines()
        .find_map(|l| l.strip_prefix("#1  "))
        .expect("printf's caller");
    assert!(caller.ends_with(" in main ()"), "{gdb}");
    assert!(
        gdb.lines().any(|l| l == caller),
        "finish stops at the return address: {gdb}"
    );
    assert!(gdb.contains("= 0x21\n"), "printf's return: {gdb}");
    assert!(gdb.contains("(process 1) detached]"), "{gdb}");
    assert_eq!(status, Some(1), "{out}\n{gdb}");
    assert!(out.contains("hello from 32-bit protected mode"), "{out}");
    assert!(out.contains("checksum: 0x68a508b2"), "{out}");
}

#[test]
fn time_stopped_in_gdb_does_not_count_toward_the_timeout() {
    if !gdb_available("time_stopped_in_gdb_does_not_count_toward_the_timeout") {
        return;
    }
    // Stopped at main for twice the timeout; the guest runs well within it.
    let (status, out, gdb) = under_gdb_with(
        "hello64",
        &["--timeout", "1s"],
        &[
            "break main",
            "continue",
            "shell sleep 2",
            "p/x $pc",
            "delete",
            "detach",
        ],
    );
    println!("{gdb}");
    assert!(gdb.contains("Breakpoint 1, "), "{gdb}");
    assert!(gdb.contains("(process 1) detached]"), "{gdb}");
    assert_eq!(status, Some(1), "the guest finishes:\n{out}\n{gdb}");
    assert!(out.contains("checksum: 0x68a508b2"), "{out}");
}

/// A minimal client of GDB's remote protocol, for what batch GDB cannot do
/// (press Ctrl-C).
struct Rsp {
    conn: std::net::TcpStream,
}

impl Rsp {
    /// Connects to the stub at `port`, retrying while vigil loads its guest.
    fn connect(port: u16) -> Rsp {
        let start = Instant::now();
        loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(conn) => {
                    conn.set_read_timeout(Some(LIMIT)).unwrap();
                    return Rsp { conn };
                }
                Err(e) if start.elapsed() > LIMIT => panic!("no stub on port {port}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn byte(&mut self) -> u8 {
        let mut b = [0u8];
        self.conn.read_exact(&mut b).expect("a byte from the stub");
        b[0]
    }

    fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.conn.write_all(bytes).expect("write to the stub");
    }

    /// Sends a packet and waits for the stub's acknowledgement.
    fn send(&mut self, data: &str) {
        let sum = data.bytes().fold(0u8, |s, b| s.wrapping_add(b));
        self.write(format!("${data}#{sum:02x}").as_bytes());
        assert_eq!(self.byte(), b'+', "the stub acknowledges {data}");
    }

    /// The stub's next packet (acknowledged).
    fn recv(&mut self) -> String {
        while self.byte() != b'$' {}
        let mut data = Vec::new();
        loop {
            match self.byte() {
                b'#' => break,
                b => data.push(b),
            }
        }
        let _checksum = [self.byte(), self.byte()];
        self.write(b"+");
        String::from_utf8(expand_runs(&data)).expect("a text packet")
    }

    /// Sends a packet and returns the reply.
    fn ask(&mut self, data: &str) -> String {
        self.send(data);
        self.recv()
    }
}

/// Undoes the protocol's run-length encoding: `X*N` is X followed by
/// N - 29 more of it.
fn expand_runs(data: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut it = data.iter();
    while let Some(&b) = it.next() {
        if b == b'*' {
            let last = *out.last().expect("a run repeats a byte");
            let n = it.next().expect("a run length") - 29;
            out.extend(std::iter::repeat_n(last, n.into()));
        } else {
            out.push(b);
        }
    }
    out
}

#[test]
fn ctrl_c_stops_the_vm_and_continue_resumes_it() {
    let port = free_port();
    let vigil = Running::start(
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["run", "--guest", "sieve", "--timeout", "60s"])
            .args(["--gdb", &format!("tcp::{port}"), "--gdb-wait"]),
    );
    let mut gdb = Rsp::connect(port);
    let attached = gdb.ask("?");
    assert!(
        attached.starts_with('T') || attached.starts_with('S'),
        "{attached}"
    );
    // Continue, let the sieve run, then Ctrl-C: the interrupt byte.
    gdb.send("c");
    std::thread::sleep(Duration::from_millis(100));
    gdb.write(&[0x03]);
    let stop = gdb.recv();
    assert!(
        stop.starts_with("T02") || stop.starts_with("S02"),
        "a SIGINT stop reply: {stop}"
    );
    // The registers of the stopped vCPU: RIP (bytes 128..136) in the guest's code.
    let regs = gdb.ask("g");
    let rip = u64::from_str_radix(&regs[256..272], 16).map(u64::swap_bytes);
    assert!(rip.is_ok_and(|r| r >= 0x10_0000), "{regs}");
    // Continued, the guest runs to its end: exit(0).
    gdb.send("c");
    let end = gdb.recv();
    assert_eq!(end, "W00", "the guest's exit");
    let (status, out, err) = vigil.finish(LIMIT);
    assert_eq!(status, Some(1), "{out}\n{err}");
    assert!(out.contains("summary: 4 passed, 0 failed"), "{out}");
}
