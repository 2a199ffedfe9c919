//! Every built-in guest runs on the soft accelerator and, where /dev/kvm is
//! usable, on KVM: serial output and exit status must be identical.

mod common;
use common::vigil;

/// The guests `vigil guests` lists that end by themselves and need no
/// configuration (the notify storms never end, tests/notify.rs runs them;
/// pc-kernel needs its module, tests/platform.rs runs it).
fn guest_names() -> Vec<String> {
    let (status, out, _) = vigil(&["guests"]);
    assert_eq!(status, 0);
    let names: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(names.len(), guests::all().len());
    names
        .into_iter()
        .filter(|n| guests::find(n).is_some_and(|g| !g.endless && !g.configured))
        .collect()
}

#[test]
fn guests_pass_on_soft() {
    let names = guest_names();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        let (status, out, err) = vigil(&["run", "--guest", &name]);
        assert_eq!(status, 1, "{name} on soft: status {status}\n{out}\n{err}");
        assert!(!out.contains("FAIL "), "{name} on soft:\n{out}");
    }
}

#[test]
fn hello_guests_print_their_mode() {
    let (status, out, _) = vigil(&["run", "--guest", "hello64"]);
    assert_eq!(status, 1);
    assert!(out.contains("64-bit long mode"), "{out}");
    let (status, out, _) = vigil(&["run", "--guest", "hello32"]);
    assert_eq!(status, 1);
    assert!(out.contains("32-bit protected mode"), "{out}");
}

/// Guests that must run to their end on any working KVM, with output identical to soft.
const MUST_MATCH_ON_KVM: &[&str] = &["hello32", "hello64", "sieve", "selftest"];

#[test]
fn soft_and_kvm_agree() {
    if !common::kvm_usable("soft_and_kvm_agree") {
        return;
    }
    // The conformance guests are compared check by check in tests/conformance.rs.
    // Hypervisor guests need VMX, which this host's KVM does not offer.
    for name in guest_names()
        .into_iter()
        .filter(|n| !n.starts_with("conformance-"))
        .filter(|n| guests::find(n).is_some_and(|g| !g.vmx))
    {
        let soft = vigil(&["run", "--accel", "soft", "--guest", &name]);
        let kvm = vigil(&["run", "--accel", "kvm", "--guest", &name]);
        let host_stopped = kvm.0 == 8 && kvm.2.contains("host accelerator internal error");
        if host_stopped && !MUST_MATCH_ON_KVM.contains(&name.as_str()) {
            // The host's KVM stopped on an instruction it cannot run (kvm_pvm
            // cannot emulate INT n or a 32-bit IRET): everything it printed
            // before that must agree with the soft CPU.
            assert!(
                soft.1.starts_with(&kvm.1),
                "{name}: outputs differ before KVM stopped\nsoft:\n{}\nkvm:\n{}",
                soft.1,
                kvm.1
            );
            println!(
                "NOTE {name}: KVM stopped early ({}); the {} lines before agree",
                kvm.2.lines().next().unwrap_or_default(),
                kvm.1.lines().count()
            );
            continue;
        }
        assert_eq!(
            (soft.0, &soft.1),
            (kvm.0, &kvm.1),
            "{name}: soft and kvm differ\nsoft stderr: {}\nkvm stderr: {}",
            soft.2,
            kvm.2
        );
    }
}

#[test]
fn stats_count_exits() {
    let (status, _, err) = vigil(&["run", "--guest", "hello64", "--stats"]);
    assert_eq!(status, 1);
    assert!(err.contains("stats: vm exit io-instruction"), "{err}");
    assert!(err.contains("stats: userspace exit io-out"), "{err}");
}
