//! Linux's own KVM as L1 on the soft CPU (docs/notify.md, "Linux's KVM as
//! L1"): Debian's kvm and kvm-intel modules load in the Linux guest with
//! ept, unrestricted_guest and vpid on; kvm-client runs L2 payloads under
//! them; a stall injected while L2 runs ends in notify exits that KVM's own
//! handle_notify turns into KVM_EXIT_NOTIFY; and a context-invalid one
//! makes the client stop that VM while L1 carries on.
//!
//! The files come from `guests/linux/fetch-and-build.sh`; where they
//! cannot be fetched the tests print a SKIP line with the reason and pass.

mod common;

/// Boots the KVM initramfs on soft with `extra` options and checks what
/// every run must show; returns stdout and stderr.
fn boot(test: &str, extra: &[&str]) -> Option<(String, String)> {
    let files = match common::linux_files() {
        Ok(f) => f,
        Err(why) => {
            println!("SKIP {test}: {why}");
            return None;
        }
    };
    let dir = std::env::temp_dir().join(format!("vigil-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    let mut args = vec![
        "run",
        "--virtual-time",
        "exact",
        "--timeout",
        "400s",
        "--stats",
        "--events",
        events.to_str().unwrap(),
        "--initrd",
        files.initrd_kvm.to_str().unwrap(),
        "--append",
        "console=ttyS0 panic=-1",
    ];
    args.extend_from_slice(extra);
    args.push(files.kernel.to_str().unwrap());
    let (status, out, err) = common::vigil(&args);
    // The serial console ends its lines with CR LF.
    let out = out.replace("\r\n", "\n");
    let log = std::fs::read_to_string(&events).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let context = format!("status {status}\nstdout:\n{out}\nstderr:\n{err}");
    for want in [
        "cpu-vmx: yes",
        "insmod irqbypass: ok",
        "insmod kvm: ok",
        "insmod kvm-intel: ok",
        "dev-kvm: present",
        "kvm_intel.ept=Y",
        "kvm_intel.unrestricted_guest=Y",
        "kvm_intel.vpid=Y",
        // KVM takes up what L0 offers beyond its minimum: the
        // VMX-preemption timer (L2's LAPIC timer, immediate exits), EPT
        // accessed/dirty flags and PML (dirty logging).
        "kvm_intel.preemption_timer=Y",
        "kvm_intel.eptad=Y",
        "kvm_intel.pml=Y",
        "kvm-client: KVM_CAP_X86_NOTIFY_VMEXIT = 0x1",
        "kvm-client: notify VM exits enabled (ENABLED|USER, window 0)",
        "kvm-client: loop-hlt: KVM_EXIT_IO port=0x10 out size=1 value=0x4c",
        "kvm-client: loop-hlt: ok",
        "kvm-client: ac-storm: ok",
        "kvm-client: done, 0 failures",
        "kvm-client-status: 0",
        "warnings-begin\nwarnings-end",
    ] {
        assert!(out.contains(want), "missing '{want}': {context}");
    }
    assert_eq!(status, 0, "poweroff ends the run: {context}");
    Some((out, log))
}

#[test]
fn kvm_in_l1_turns_a_stall_in_l2_into_kvm_exit_notify() {
    let Some((out, log)) = boot(
        "kvm_in_l1_turns_a_stall_in_l2_into_kvm_exit_notify",
        &["--inject-stall", "20ms,level=l2"],
    ) else {
        return;
    };
    // 20 ms at the 25 MHz crystal is 500,000 crystal cycles: three whole
    // windows of KVM's (threshold 128,000, window 0) and then the rest.
    let notify = out
        .matches("kvm-client: io-hlt: KVM_EXIT_NOTIFY flags=0\n")
        .count();
    assert_eq!(notify, 3, "{out}");
    assert!(
        out.contains(
            "kvm-client: io-hlt: stats exits=6 io_exits=1 halt_exits=1 notify_window_exits=3"
        ),
        "KVM's own counter: {out}"
    );
    // The payload completed after the stall.
    assert!(out.contains("kvm-client: io-hlt: KVM_EXIT_IO port=0x10 out size=1 value=0x42"));
    let reflected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"event\":\"notify-exit\""))
        .collect();
    assert_eq!(reflected.len(), 3, "{log}");
    for l in reflected {
        assert!(l.contains("\"level\":\"L2\""), "{l}");
        assert!(l.contains("went to L1"), "{l}");
        assert!(l.contains("\"qualification\":0"), "{l}");
    }
}

#[test]
fn context_invalid_in_l2_reaches_kvm_which_stops_that_vm() {
    let Some((out, log)) = boot(
        "context_invalid_in_l2_reaches_kvm_which_stops_that_vm",
        &[
            "--inject-stall",
            "20ms,level=l2",
            "--inject-notify-invalid=l2",
        ],
    ) else {
        return;
    };
    assert!(
        out.contains("kvm-client: io-hlt: KVM_EXIT_NOTIFY flags=0x1 (context invalid)\nkvm-client: io-hlt: context invalid, VM stopped"),
        "{out}"
    );
    assert!(out.contains("notify_window_exits=1"), "{out}");
    // The stall went with the context: no more notify exits, and L1 ran
    // the other payloads, the last a fresh io-hlt.
    assert_eq!(out.matches("KVM_EXIT_NOTIFY").count(), 1, "{out}");
    assert!(
        out.contains("kvm-client: io-hlt: KVM_EXIT_IO port=0x10 out size=1 value=0x42"),
        "{out}"
    );
    let invalid = log
        .lines()
        .find(|l| l.contains("\"event\":\"notify-exit\""))
        .unwrap_or_else(|| panic!("no notify exit in:\n{log}"));
    assert!(invalid.contains("\"qualification\":1"), "{invalid}");
    assert!(invalid.contains("\"level\":\"L2\""), "{invalid}");
    assert!(invalid.contains("went to L1"), "{invalid}");
}
