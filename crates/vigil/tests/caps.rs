//! `vigil caps`: the capability report through the `vigil` binary.

mod common;

use common::vigil;
use serde_json::Value;

/// Runs `vigil caps` with extra arguments and parses its JSON.
fn caps_json(extra: &[&str]) -> Value {
    let mut args = vec!["caps", "--json"];
    args.extend_from_slice(extra);
    let (status, out, err) = vigil(&args);
    assert_eq!(status, 0, "stderr: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The accelerator entry named `name`.
fn accel<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["accelerators"]
        .as_array()
        .expect("accelerators is an array")
        .iter()
        .find(|a| a["name"] == name)
}

/// The capability entry named `name` of an accelerator entry.
fn cap<'a>(entry: &'a Value, name: &str) -> &'a Value {
    entry["capabilities"]
        .as_array()
        .expect("capabilities is an array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no capability {name} in {entry}"))
}

#[test]
fn default_reports_soft_then_kvm() {
    let report = caps_json(&[]);
    let names: Vec<_> = report["accelerators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["soft", "kvm"]);
}

#[test]
fn soft_offers_notify() {
    let report = caps_json(&["--accel", "soft"]);
    let soft = accel(&report, "soft").expect("a soft entry");
    assert_eq!(soft["available"], true);
    assert_eq!(soft["cpu"]["vendor"], "Vigil soft CPU");
    assert_eq!(soft["cpu"]["crystal_hz"], 25_000_000);
    let notify = cap(soft, "notify_vmexit");
    assert_eq!(notify["present"], true);
    assert_eq!(notify["kvm_cap"], 219);
    assert!(notify["action"].as_str().unwrap().contains("ENABLED|USER"));
    assert_eq!(cap(soft, "triple_fault_event")["present"], true);
    assert_eq!(cap(soft, "bus_lock_exit")["present"], true);
    assert_eq!(cap(soft, "nested_state")["present"], false);
    assert!(accel(&report, "kvm").is_none());
}

#[test]
fn kvm_entry_matches_the_query() {
    let report = caps_json(&["--accel", "kvm"]);
    let entry = accel(&report, "kvm").expect("a kvm entry");
    if let Err(why) = kvm::probe() {
        println!("SKIP kvm_entry_matches_the_query: {why}");
        // Unusable KVM is reported, with its reason, not an error.
        if entry["available"] == false {
            assert!(entry["reason"].as_str().is_some_and(|r| !r.is_empty()));
        }
        return;
    }
    let accel = kvm::KvmAccelerator::open().expect("probe succeeded");
    let caps = kvm::caps::query(&accel);
    assert_eq!(entry["available"], true);
    assert_eq!(entry["api_version"], caps.api_version);
    let notify = cap(entry, "notify_vmexit");
    assert_eq!(notify["present"], caps.has_notify_vmexit());
    assert_eq!(notify["value"], caps.notify_vmexit);
    let triple = cap(entry, "triple_fault_event");
    assert_eq!(triple["present"], caps.has_triple_fault_event());
    assert_eq!(triple["value"], caps.triple_fault_event);
    assert_eq!(cap(entry, "bus_lock_exit")["value"], caps.bus_lock_exit);
    assert_eq!(cap(entry, "nested_state")["value"], caps.nested_state);
    assert!(entry["cpu"]["vendor"].as_str().is_some());
}

#[test]
fn text_has_one_line_per_item() {
    let (status, out, err) = vigil(&["caps", "--accel", "soft"]);
    assert_eq!(status, 0, "stderr: {err}");
    let lines: Vec<_> = out.lines().collect();
    // available, cpu, four capabilities.
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("soft ")), "{out}");
    assert!(lines
        .iter()
        .any(|l| l.contains("notify_vmexit") && l.contains("yes")));
}

#[test]
fn bad_accelerator_is_a_usage_error() {
    let (status, _, err) = vigil(&["caps", "--accel", "xen"]);
    assert_eq!(status, 2, "{err}");
}
