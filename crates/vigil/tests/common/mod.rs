//! Shared by the integration tests: run the `vigil` binary.

use std::process::Command;

/// Runs `vigil` with `args`: (exit status, stdout, stderr).
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
