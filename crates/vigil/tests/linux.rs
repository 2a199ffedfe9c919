//! Debian's 6.1 cloud kernel with a busybox initramfs on the soft CPU:
//! boots to /init, every applet prints what it must, the kernel log has no
//! warning, a line written to Vigil's stdin reaches the guest's console, and
//! `poweroff` ends the run with status 0.
//!
//! The kernel and initramfs come from `guests/linux/fetch-and-build.sh`
//! (Debian packages in a cache outside the tree). Where they cannot be
//! fetched, the test prints a SKIP line with the reason and passes.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

const MARKER: &str = "VIGIL-LINUX-MARKER: userspace reached";

/// Runs vigil with `args`, writes `input` to its stdin once a line of its
/// stdout contains `prompt` (then closes stdin), and returns its status,
/// stdout and stderr.
fn vigil_with_input(args: &[&str], prompt: &str, input: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vigil");
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = Vec::new();
    while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        let text = String::from_utf8_lossy(&line).into_owned();
        if text.contains(prompt) {
            if let Some(mut s) = stdin.take() {
                let _ = s.write_all(input.as_bytes());
            }
        }
        out.push_str(&text);
        line.clear();
    }
    drop(stdin);
    let status = child.wait().expect("wait for vigil");
    (
        status.code().unwrap_or(-1),
        out,
        err_reader.join().unwrap_or_default(),
    )
}

/// The current UTC year, from the host clock.
fn host_year() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Days to civil year (Howard Hinnant's algorithm, year part only).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    yoe + era * 400 + i64::from(mp >= 10)
}

#[test]
fn debian_kernel_reaches_userspace_on_soft() {
    let (kernel, initrd) = match common::linux_files() {
        Ok(f) => (f.kernel, f.initrd),
        Err(why) => {
            println!("SKIP debian_kernel_reaches_userspace_on_soft: {why}");
            return;
        }
    };
    // Exact virtual time: the boot is the same instruction stream whatever
    // the host's load. Paced time on a host whose cores are all busy lets
    // the guest see its TSC run ahead of the PIT's ticks (lost while its
    // interrupts are off for longer), and Linux then warns that the TSC is
    // unstable (docs/linux.md).
    let (status, out, err) = vigil_with_input(
        &[
            "run",
            "--virtual-time",
            "exact",
            "--timeout",
            "300s",
            "--initrd",
            initrd.to_str().unwrap(),
            "--append",
            "console=ttyS0 panic=-1 vigil_input=1",
            kernel.to_str().unwrap(),
        ],
        "input-ready",
        "typed on stdin\n",
    );
    let context = format!("status {status}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains(MARKER), "no marker: {context}");
    let after: Vec<&str> = out
        .split(MARKER)
        .nth(1)
        .unwrap_or("")
        .lines()
        .map(str::trim_end)
        .collect();
    for want in [
        "awk: 0.333333",
        "sha256: 6b27eba5652b46d31ef75f17784c2709ac019809c47ca538e91c0ab54a80892f  -",
        "gzip: vigil round trip",
        "input: typed on stdin",
        &format!("date: {}", host_year()),
    ] {
        assert!(after.contains(&want), "missing '{want}': {context}");
    }
    let begin = after.iter().position(|l| *l == "warnings-begin");
    let end = after.iter().position(|l| *l == "warnings-end");
    let (Some(begin), Some(end)) = (begin, end) else {
        panic!("no warning list: {context}");
    };
    assert_eq!(end, begin + 1, "kernel warnings: {context}");
    assert!(!out.contains("unknown instruction"), "{context}");
    assert_eq!(
        status, 0,
        "poweroff must end the run with status 0: {context}"
    );
}
