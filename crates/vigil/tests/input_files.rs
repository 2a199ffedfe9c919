//! Inputs that used to hang, eat memory or fail in silence: kernels and
//! modules that are not regular files or exceed guest RAM, `--append`
//! values that begin with `-`, guest exit values that do not fit a process
//! status, stdout that cannot be written, an event log FIFO without a
//! reader, and limits whose advice could not help.

mod common;
use common::vigil;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh temporary directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A FIFO at `path` (no reader, no writer).
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs `vigil` with `args`, killing it after 20 s: (exit status, stderr),
/// status `None` when it had to be killed (it hung).
fn vigil_within_deadline(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vigil");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for vigil") {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (status, err)
}

/// A multiboot kernel in the a.out-kludge layout, loaded at `load_addr`,
/// that writes `exit` to the debug-exit port (OUT 0xF4, AL) and halts.
fn exit_kernel(load_addr: u32, exit: u8) -> Vec<u8> {
    // mov al, exit; out 0xF4, al; hlt; jmp $-1
    common::aout_kernel(load_addr, 0, &[0xB0, exit, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD])
}

#[test]
fn a_fifo_or_a_device_is_refused_as_kernel_or_module() {
    let dir = temp_dir("fifo-kernel");
    let fifo = dir.join("kernel.fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["run", fifo],
        vec!["run", "--guest", "hello64", "--module", fifo],
        vec!["run", "/dev/null"],
        vec!["run", "--guest", "hello64", "--module", "/dev/zero"],
    ] {
        let (status, err) = vigil_within_deadline(&args);
        assert_eq!(status, Some(2), "{args:?} hung or failed otherwise: {err}");
        assert!(err.contains("is not a regular file"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_larger_than_guest_ram_is_refused_before_it_is_read() {
    let dir = temp_dir("big-kernel");
    let big = dir.join("big.elf");
    // Sparse: three MiB of holes, more than the 2 MiB of guest RAM.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(3 << 20)
        .unwrap();
    let big = big.to_str().unwrap();
    let (status, _, err) = vigil(&["run", "--memory", "2", big]);
    assert_eq!(status, 2, "{err}");
    assert!(
        err.contains("is larger than the 2 MiB of guest RAM; raise --memory"),
        "{err}"
    );
    let (status, _, err) = vigil(&[
        "run", "--memory", "2", "--guest", "hello32", "--module", big,
    ]);
    assert_eq!(status, 2, "{err}");
    assert!(err.contains("module"), "{err}");
    assert!(
        err.contains("is larger than the 2 MiB of guest RAM"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
#[test]
fn append_values_may_begin_with_a_dash() {
    let (status, out, err) = vigil(&["run", "--guest", "pc-probe", "--append", "-v=1 --x"]);
    assert!(!err.contains("unexpected argument"), "{err}");
    assert!(
        out.contains("cmdline 'pc-probe -v=1 --x'"),
        "status {status}: {out}{err}"
    );
}

#[test]
fn a_guest_exit_value_that_does_not_fit_the_status_is_warned_about() {
    let dir = temp_dir("exit-128");
    for (value, status) in [(128u8, 1), (127, 255)] {
        let kernel = dir.join(format!("exit{value}.bin"));
        std::fs::write(&kernel, exit_kernel(0x10_0000, value)).unwrap();
        let (got, _, err) = vigil(&["run", kernel.to_str().unwrap()]);
        // QEMU's status is kept: (v << 1) | 1, truncated to 8 bits.
        assert_eq!(got, status, "{err}");
        let warned = err.contains("does not fit");
        assert_eq!(warned, value >= 128, "exit value {value}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_that_cannot_be_written_to_stdout_is_reported() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--guest", "hello64"])
        .stdout(full)
        .output()
        .expect("run vigil");
    let err = String::from_utf8_lossy(&out.stderr);
    // The guest's own status stays; the loss is told.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the guest's serial output could not be written to stdout"),
        "{err}"
    );
}

#[test]
fn an_event_log_fifo_without_a_reader_is_refused_not_waited_for() {
    let dir = temp_dir("events-fifo");
    let fifo = dir.join("events.fifo");
    mkfifo(&fifo);
    let (status, err) = vigil_within_deadline(&[
        "run",
        "--guest",
        "hello64",
        "--events",
        fifo.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(2), "hung or failed otherwise: {err}");
    assert!(err.contains("no reader"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_memory_advice_where_no_memory_size_could_help() {
    let dir = temp_dir("high-kernel");
    // Loaded at 3.75 GiB: above the largest --memory (3072 MiB).
    let kernel = dir.join("high.bin");
    std::fs::write(&kernel, exit_kernel(0xF000_0000, 0)).unwrap();
    let (status, _, err) = vigil(&["run", kernel.to_str().unwrap()]);
    assert_eq!(status, 2, "{err}");
    assert!(!err.contains("raise --memory"), "{err}");
    assert!(err.contains("3072 MiB"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_append_limit_counts_only_what_append_can_change() {
    let max = vmm::loader::CMDLINE_MAX;
    // "hello64 " takes 8 bytes of the command line before --append.
    let append = "a".repeat(max - 7);
    let (status, _, err) = vigil(&["run", "--guest", "hello64", "--append", &append]);
    assert_eq!(status, 2, "{err}");
    assert!(
        err.contains(&format!(
            "--append is {} bytes; at most {} fit",
            max - 7,
            max - 8
        )),
        "{err}"
    );
}
