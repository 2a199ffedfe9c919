//! The conformance suite: every `conformance-*` guest passes on the soft CPU,
//! and its output matches real silicon (the kvm accelerator) line for line,
//! except for the checks listed with a reason in
//! `guests/conformance-differences.txt`. A listed difference that no longer
//! occurs fails too, so the list stays true.

use std::collections::{BTreeMap, BTreeSet};
mod common;

const DIFFERENCES: &str = include_str!("../../../guests/conformance-differences.txt");

fn conformance_guests() -> Vec<String> {
    let (_, out, _) = common::vigil(&["guests"]);
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("conformance-"))
        .map(str::to_string)
        .collect()
}

/// Check name → line, for every PASS/FAIL line.
fn checks(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
        .filter_map(|l| {
            let name = l[5..].split(':').next()?.trim().to_string();
            Some((name, l.to_string()))
        })
        .collect()
}

/// (guest, check) pairs listed for `oracle`.
/// The oracle names that apply to this host's KVM: `kvm` everywhere, and
/// `kvm-intel` or `kvm-amd` for what depends on the host's vendor.
fn kvm_oracles() -> Vec<&'static str> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if cpuinfo.contains("GenuineIntel") {
        vec!["kvm", "kvm-intel"]
    } else if cpuinfo.contains("AuthenticAMD") {
        vec!["kvm", "kvm-amd"]
    } else {
        vec!["kvm"]
    }
}

fn listed(oracles: &[&str]) -> BTreeSet<(String, String)> {
    DIFFERENCES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, '|').map(str::trim).collect();
            (f.len() == 4 && oracles.contains(&f[2]) && !f[3].is_empty())
                .then(|| (f[0].to_string(), f[1].to_string()))
        })
        .collect()
}

#[test]
fn differences_file_is_well_formed() {
    for l in DIFFERENCES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = l.splitn(4, '|').map(str::trim).collect();
        assert_eq!(f.len(), 4, "bad line: {l}");
        assert!(f[0].starts_with("conformance-"), "{l}");
        assert!(
            ["kvm", "kvm-intel", "kvm-amd", "qemu"].contains(&f[2]),
            "{l}"
        );
        assert!(f[3].len() > 10, "a reason is required: {l}");
    }
}

#[test]
fn suite_has_at_least_200_checks_and_passes_on_soft_without_notify_exits() {
    let mut total = 0;
    for g in conformance_guests() {
        // Notify on with window 0 (the default): no check may come near it.
        let (status, out, err) = common::vigil(&["run", "--guest", &g, "--stats"]);
        let c = checks(&out);
        assert!(c.len() >= 20, "{g}: only {} checks", c.len());
        assert_eq!(status, 1, "{g} failed on soft:\n{out}");
        assert!(
            err.contains("stats: notify vm exits 0 (notify enabled)"),
            "{g}: notify exits on a benign guest:\n{err}"
        );
        total += c.len();
    }
    assert!(total >= 200, "the suite has {total} checks");
}

#[test]
fn suite_passes_on_soft_without_ac_db_interception() {
    // The conformance results do not depend on whether L0 intercepts and
    // reflects #AC and #DB (the guests exercise both heavily).
    for g in conformance_guests() {
        let (status, out, _) = common::vigil(&["run", "--guest", &g, "--no-intercept-ac-db"]);
        assert_eq!(status, 1, "{g} failed without interception:\n{out}");
        let (_, intercepted, _) = common::vigil(&["run", "--guest", &g]);
        assert_eq!(
            out, intercepted,
            "{g}: output depends on #AC/#DB interception"
        );
    }
}

#[test]
fn soft_matches_kvm_except_listed_differences() {
    if !common::kvm_usable("soft_matches_kvm_except_listed_differences") {
        return;
    }
    let known = listed(&kvm_oracles());
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for g in conformance_guests() {
        let soft = checks(&common::vigil(&["run", "--accel", "soft", "--guest", &g]).1);
        let kvm = checks(&common::vigil(&["run", "--accel", "kvm", "--guest", &g]).1);
        let names: BTreeSet<&String> = soft.keys().chain(kvm.keys()).collect();
        for name in names {
            if soft.get(name) == kvm.get(name) {
                continue;
            }
            let key = (g.clone(), name.clone());
            if known.contains(&key) {
                seen.insert(key);
            } else {
                problems.push(format!(
                    "{g} {name}:\n  soft: {}\n  kvm:  {}",
                    soft.get(name).map_or("(missing)", String::as_str),
                    kvm.get(name).map_or("(missing)", String::as_str)
                ));
            }
        }
    }
    for stale in known.difference(&seen) {
        problems.push(format!(
            "{} {}: listed as differing from kvm, but the outputs agree: remove it from the list",
            stale.0, stale.1
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
