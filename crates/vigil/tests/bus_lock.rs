//! Bus locks: the split-lock guest's locked operations across a cache line
//! reach the VMM as bus-lock exits, exactly counted, and can be rate-limited.

mod common;

use common::vigil;
use std::time::{Duration, Instant};

#[test]
fn every_split_lock_is_one_bus_lock_exit() {
    let (status, out, err) = vigil(&["run", "--guest", "split-lock", "--stats"]);
    assert_eq!(status, 1, "{out}\n{err}");
    // 1000 LOCK INC and 1000 XCHG across the line; the aligned ones assert none.
    assert!(err.contains("stats: bus-lock exits 2000"), "{err}");
}

#[test]
fn the_rate_limit_holds_the_vcpu_back() {
    let t = Instant::now();
    let (status, _, err) = vigil(&[
        "run",
        "--guest",
        "split-lock",
        "--bus-lock-ratelimit",
        "1000",
    ]);
    assert_eq!(status, 1, "{err}");
    // 2000 bus locks at 1000 per second: at least one full second of waiting.
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn kvm_without_bus_lock_exits_refuses_the_rate_limit_in_one_line() {
    if !common::kvm_usable("kvm_without_bus_lock_exits_refuses_the_rate_limit_in_one_line") {
        return;
    }
    let accel = kvm::KvmAccelerator::open().unwrap();
    if accel::Accelerator::supports_bus_lock_exit(&accel) {
        println!("this host's KVM reports bus locks; nothing to refuse");
        return;
    }
    let (status, _, err) = vigil(&[
        "run",
        "--accel",
        "kvm",
        "--guest",
        "split-lock",
        "--bus-lock-ratelimit",
        "10",
    ]);
    assert_eq!(status, 10, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--bus-lock-ratelimit"), "{err}");
}
