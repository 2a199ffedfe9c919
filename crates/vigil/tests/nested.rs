//! Nested VMX end to end: the `l1hv` guest (a VMX hypervisor as L1) and its
//! L2 payloads on the soft accelerator, in each of its modes, and a property
//! test feeding random VMWRITEs to its fuzz mode.

mod common;

use common::{longest_without_l0_ms, vigil};
use proptest::prelude::*;
use std::io::Write;

/// Runs l1hv with `extra` options; (status, stdout, stderr).
fn l1hv(extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["run", "--guest", "l1hv", "--timeout", "30s"];
    args.extend_from_slice(extra);
    vigil(&args)
}

/// The `PASS name: detail` line of check `name`.
fn pass_line<'a>(out: &'a str, name: &str) -> &'a str {
    let prefix = format!("PASS {name}:");
    out.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in:\n{out}"))
}

fn assert_all_passed(status: i32, out: &str, err: &str) {
    assert_eq!(status, 1, "l1hv must exit(0):\n{out}\n{err}");
    assert!(!out.contains("FAIL "), "{out}");
    assert!(out.contains("summary: 299 passed, 0 failed"), "{out}");
}

#[test]
fn every_payload_passes_with_l0_intercepting_ac() {
    let (status, out, err) = l1hv(&["--stats"]);
    assert_all_passed(status, &out, &err);
    // L2's line to COM1 went through L0 to the serial port.
    assert!(out.contains("l2: hello through L0's serial port"), "{out}");
    // L1 regained the CPU from the #AC storm by its timer, the #AC in flight.
    assert!(
        pass_line(&out, "ac-storm-timer").contains("IDT-vectoring 0x80000b11"),
        "{out}"
    );
    assert!(err.contains("stats: nested vm exits to L1 "), "{err}");
    // L0 set L1's EPT dirty flags and logged the pages until the log was
    // full (exit 62).
    assert!(
        pass_line(&out, "ept-pml-full").contains("reason 62"),
        "{out}"
    );
}

#[test]
fn l1_that_enables_notify_sees_exit_75_with_the_stalled_ac() {
    let (status, out, err) = l1hv(&[
        "--no-intercept-ac-db",
        "--append",
        "expect=notify",
        "--stats",
    ]);
    assert_all_passed(status, &out, &err);
    let line = pass_line(&out, "ac-storm-notify");
    assert!(line.contains("reason 75"), "{line}");
    assert!(line.contains("IDT-vectoring 0x80000b11"), "{line}");
    // The storm L1 did not watch with notify was L0's: notify exits at L2.
    assert!(
        err.contains("warning: notify window exceeded in the guest (L2)"),
        "{err}"
    );
}

#[test]
fn context_invalid_in_l2_is_a_triple_fault_exit_for_l1_which_carries_on() {
    let dir = std::env::temp_dir().join(format!("vigil-nested-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    let (status, out, err) = l1hv(&[
        "--no-intercept-ac-db",
        "--inject-notify-invalid",
        "--append",
        "expect=invalid",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_all_passed(status, &out, &err);
    assert!(
        pass_line(&out, "ac-storm-timer").contains("reason 2"),
        "{out}"
    );
    // L1 went on: the next storm ended in its own notify exit.
    assert!(
        pass_line(&out, "ac-storm-notify").contains("reason 75"),
        "{out}"
    );
    let log = std::fs::read_to_string(&events).unwrap();
    let invalid = log
        .lines()
        .find(|l| l.contains("\"qualification\":1"))
        .unwrap_or_else(|| panic!("no context-invalid exit in:\n{log}"));
    assert!(invalid.contains("\"level\":\"L2\""), "{invalid}");
    assert!(log.contains("a TRIPLE_FAULT VM exit for L1"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_nested_vmx_l1hv_finds_no_vmx() {
    let (status, out, err) = l1hv(&["--no-nested"]);
    assert_eq!(status, 3, "{out}\n{err}");
    assert!(out.contains("FAIL vmx-cpuid"), "{out}");
    assert!(err.contains("needs VMX"), "{err}");
}

/// One fuzz run: `lines` as the module; (status, stdout, stderr).
fn fuzz(lines: &[(u32, u64)]) -> (i32, String, String) {
    let mut file = tempfile_in_target();
    for (field, value) in lines {
        writeln!(file.1, "{field:x} {value:x}").unwrap();
    }
    drop(file.1);
    let path = file.0.to_str().unwrap().to_string();
    let r = vigil(&[
        "run",
        "--guest",
        "l1hv",
        "--timeout",
        "5s",
        "--stats",
        "--append",
        "mode=fuzz",
        "--module",
        &path,
    ]);
    let _ = std::fs::remove_file(&file.0);
    r
}

fn tempfile_in_target() -> (std::path::PathBuf, std::fs::File) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "vigil-fuzz-{}-{}.txt",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

/// The verdict line of a fuzz run (the one `fuzz:` line that is not a
/// VMWRITE failure).
fn verdicts(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("fuzz: ") && !l.starts_with("fuzz: vmwrite"))
        .collect()
}

#[test]
fn fuzz_mode_reports_the_documented_verdicts() {
    // No writes: the benign L2 runs to its VMCALL.
    let (status, out, _) = fuzz(&[]);
    assert_eq!(status, 1, "{out}");
    assert_eq!(verdicts(&out), ["fuzz: exit reason 18"]);
    // A must-be-1 primary control cleared: VMfailValid 7.
    let (_, out, _) = fuzz(&[(0x4002, 0)]);
    assert_eq!(verdicts(&out), ["fuzz: vmfail-valid 7"]);
    // GUEST_RFLAGS = 0: VM-entry failure, invalid guest state.
    let (_, out, _) = fuzz(&[(0x6820, 0)]);
    assert_eq!(
        verdicts(&out),
        ["fuzz: entry-failure reason 0x80000021 qualification 0x0"]
    );
    // A read-only field: the VMWRITE fails with 13, the launch goes on.
    let (_, out, _) = fuzz(&[(0x4402, 5)]);
    assert!(out.contains("fuzz: vmwrite 4402 -> vmfail 13"), "{out}");
    assert_eq!(verdicts(&out), ["fuzz: exit reason 18"]);
}

/// VMCS encoding of the host RIP (SDM Vol. 3C Appendix B.4.3).
const HOST_RIP: u32 = 0x6C16;

/// Every field the soft CPU implements, and encodings it does not — but
/// not HOST_RIP: L1 sent back to a random address runs random code, which
/// may loop for ever on its own, and says nothing about L0.
fn field() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => proptest::sample::select(softcpu::VMCS_FIELDS),
        1 => any::<u32>(),
        1 => 0u32..0x7000,
    ]
    .prop_filter("HOST_RIP", |&f| f != HOST_RIP)
}

/// Values with the edges VM-entry checks care about.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0u64),
        Just(u64::MAX),
        any::<u32>().prop_map(u64::from),
        (0u32..64).prop_map(|b| 1u64 << b),
    ]
}

/// A VM-execution, exit or entry control field with a value the soft
/// CPU's TRUE capability MSR allows (its must-be-1 bits, any of its
/// may-be-1 bits): writes that reach the controls L1 is offered — the
/// monitor trap flag, PAUSE-loop exiting, HLT exiting off, TSC offsetting,
/// notify, the preemption timer, the TPR shadow, PML — instead of failing
/// on a reserved bit; some (bus-lock detection) are the soft CPU's but not
/// L1's.
fn control() -> impl Strategy<Value = (u32, u64)> {
    // (field encoding, capability MSR): pin-based / IA32_VMX_TRUE_PINBASED_CTLS,
    // primary / TRUE_PROCBASED, secondary / PROCBASED_CTLS2, exit /
    // TRUE_EXIT, entry / TRUE_ENTRY (SDM Vol. 3C Appendices A.3–A.5, B.1.3).
    const PAIRS: [(u32, u32); 5] = [
        (0x4000, 0x48D),
        (0x4002, 0x48E),
        (0x401E, 0x48B),
        (0x400C, 0x48F),
        (0x4012, 0x490),
    ];
    (proptest::sample::select(&PAIRS[..]), any::<u32>()).prop_map(|((field, cap), bits)| {
        let c = softcpu::capability_msr(cap).unwrap_or(0);
        let (must, may) = (c as u32, (c >> 32) as u32);
        (field, u64::from(must | (bits & may)))
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random VMWRITEs over a valid VMCS, then VMLAUNCH: a VMfail, a
    /// VM-entry failure or an exit L1 receives — never a panic, an L0
    /// failure (status 10), or L0 losing the CPU. Nonsense L1 writes into
    /// its own host state comes back to L1 as the processor would return
    /// it: L1 may then fault and say so (status 3), shut down (4) or halt
    /// (6); an L2 sent into memory that does not exist ends the VM with an
    /// internal error (8), as the same access by L1 would; and a guest left
    /// running code that never ends is stopped by the timeout (12) — with
    /// L0 back in control at every host tick all along.
    #[test]
    fn random_vmwrites_then_vmlaunch_never_break_l0(
        writes in proptest::collection::vec(
            prop_oneof![3 => (field(), value()), 1 => control()],
            1..8,
        )
    ) {
        let (status, out, err) = fuzz(&writes);
        prop_assert!(!err.contains("panicked"), "{}", err);
        prop_assert!(
            matches!(status, 1 | 3 | 4 | 6 | 8 | 12),
            "status {}\n{}\n{}", status, out, err
        );
        let held = longest_without_l0_ms(&err);
        prop_assert!(held.is_some_and(|ms| ms < 1000.0), "L0 lost the CPU: {:?}\n{}", held, err);
        if status == 1 {
            prop_assert_eq!(verdicts(&out).len(), 1, "{}", out);
        }
        if status == 8 {
            prop_assert!(err.contains("internal error: guest accessed unmapped"), "{}", err);
        }
    }
}
