//! Debian's 6.1 cloud kernel with a busybox initramfs on the soft CPU:
//! boots to /init, every applet prints what it must, the kernel log has no
//! warning, and `poweroff` ends the run with status 0.
//!
//! The kernel and initramfs come from `guests/linux/fetch-and-build.sh`
//! (Debian packages in a cache outside the tree). Where they cannot be
//! fetched, the test prints a SKIP line with the reason and passes.

mod common;

use std::path::PathBuf;
use std::process::Command;

const MARKER: &str = "VIGIL-LINUX-MARKER: userspace reached";

/// Fetches and builds the kernel and initramfs: their paths, or why not.
fn kernel_and_initrd() -> Result<(PathBuf, PathBuf), String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../guests/linux/fetch-and-build.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let path = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|p| PathBuf::from(p.trim()))
            .ok_or_else(|| format!("fetch-and-build.sh printed no '{key}' line"))
    };
    Ok((path("kernel ")?, path("initrd ")?))
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
    let (kernel, initrd) = match kernel_and_initrd() {
        Ok(p) => p,
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
    let (status, out, err) = common::vigil(&[
        "run",
        "--virtual-time",
        "exact",
        "--timeout",
        "300s",
        "--initrd",
        initrd.to_str().unwrap(),
        "--append",
        "console=ttyS0 panic=-1",
        kernel.to_str().unwrap(),
    ]);
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
