//! Shared by the integration tests: run the `vigil` binary.

use std::process::Command;

/// Runs `vigil` with `args`: (exit status, stdout, stderr).
#[allow(dead_code)] // The Linux test runs vigil with its own stdin.
pub fn vigil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The responsiveness figure of a `--stats` run (the longest host time the
/// vCPU went without returning to L0), in milliseconds, if printed.
#[allow(dead_code)] // Not every test binary reads it.
pub fn longest_without_l0_ms(stderr: &str) -> Option<f64> {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("stats: responsiveness: longest host time without returning to L0 ")
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Whether KVM can run a VM here; when it cannot, prints `test`'s SKIP
/// line with the reason, as every test that needs KVM must.
#[allow(dead_code)] // Not every test binary needs KVM.
pub fn kvm_usable(test: &str) -> bool {
    match kvm::probe() {
        Ok(()) => true,
        Err(why) => {
            println!("SKIP {test}: KVM unusable here: {why}");
            false
        }
    }
}

/// A multiboot kernel in the a.out-kludge layout: the 32-byte header, then
/// `code`, loaded at `load_addr` with bss up to `bss_end` (0: none) and
/// entered at `code`'s first byte.
#[allow(dead_code)] // Not every test binary boots its own kernel.
pub fn aout_kernel(load_addr: u32, bss_end: u32, code: &[u8]) -> Vec<u8> {
    const MAGIC: u32 = 0x1BAD_B002;
    const FLAGS: u32 = 1 << 16; // the address fields are valid
    let mut k = Vec::new();
    for word in [
        MAGIC,
        FLAGS,
        MAGIC.wrapping_add(FLAGS).wrapping_neg(),
        load_addr,      // header_addr: the header is the first byte loaded
        load_addr,      // load_addr
        0,              // load_end_addr: the whole file
        bss_end,        // bss_end_addr
        load_addr + 32, // entry: right after the header
    ] {
        k.extend_from_slice(&word.to_le_bytes());
    }
    k.extend_from_slice(code);
    k
}

/// The Linux guest files `guests/linux/fetch-and-build.sh` builds.
#[allow(dead_code)] // Only the Linux tests use it.
pub struct LinuxFiles {
    /// Debian's cloud kernel.
    pub kernel: std::path::PathBuf,
    /// The boot test's busybox initramfs.
    pub initrd: std::path::PathBuf,
    /// The initramfs with the KVM modules and kvm-client.
    pub initrd_kvm: std::path::PathBuf,
}

/// Fetches (into a cache outside the tree) and builds the Linux guest
/// files: their paths, or why not (for a SKIP line).
#[allow(dead_code)] // Only the Linux tests use it.
pub fn linux_files() -> Result<LinuxFiles, String> {
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
            .map(|p| std::path::PathBuf::from(p.trim()))
            .ok_or_else(|| format!("fetch-and-build.sh printed no '{key}' line"))
    };
    Ok(LinuxFiles {
        kernel: path("kernel ")?,
        initrd: path("initrd ")?,
        initrd_kvm: path("initrd-kvm ")?,
    })
}
