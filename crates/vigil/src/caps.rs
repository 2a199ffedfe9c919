//! `vigil caps`: what each accelerator offers for containing CPU-stall
//! attacks on this host, and what Vigil will do with it.
//!
//! The report is built as data ([`AccelReport`]) and then printed either as
//! aligned text ([`render_text`]) or as one JSON object ([`to_json`]).

use std::io::Write;

use accel::Accelerator;
use kvm::caps::{
    KvmCaps, CAP_BUS_LOCK_EXIT, CAP_NESTED_STATE, CAP_NOTIFY_VMEXIT, CAP_TRIPLE_FAULT_EVENT,
};
use serde_json::{json, Value};

use crate::cli::{AccelKind, CapsArgs};

/// One capability as one accelerator answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    /// Short name: `notify_vmexit`, `triple_fault_event`, `bus_lock_exit`,
    /// `nested_state`.
    pub name: &'static str,
    /// The KVM capability number this corresponds to.
    pub kvm_cap: u32,
    /// Whether Vigil can use it on this accelerator.
    pub present: bool,
    /// The raw answer (`KVM_CHECK_EXTENSION` on kvm; the equivalent on soft).
    pub value: u32,
    /// What Vigil will do with it (or without it) on this host.
    pub action: String,
}

/// The CPU an accelerator runs guests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// Vendor string (`GenuineIntel`, `AuthenticAMD`, `Vigil soft CPU`).
    pub vendor: String,
    /// Display family.
    pub family: u32,
    /// Display model.
    pub model: u32,
    /// Stepping.
    pub stepping: u32,
    /// Free-form detail: the host's model name, or the soft CPU's clocks.
    pub detail: String,
    /// Extra JSON fields (the soft CPU's crystal and TSC figures).
    pub extra: Vec<(&'static str, Value)>,
}

/// Everything `vigil caps` says about one accelerator.
#[derive(Debug, Clone, PartialEq)]
pub struct AccelReport {
    /// `soft` or `kvm`.
    pub name: &'static str,
    /// Err: why the accelerator cannot be used here (one line).
    pub available: Result<(), String>,
    /// `KVM_GET_API_VERSION` (kvm only, when available).
    pub api_version: Option<i32>,
    /// The CPU, or why it could not be read.
    pub cpu: Result<CpuInfo, String>,
    /// The capabilities, in a fixed order; empty when unavailable.
    pub capabilities: Vec<Capability>,
}

/// `vigil caps`: prints the report; 0 when it was produced.
pub fn run(args: &CapsArgs) -> u8 {
    let kinds: Vec<AccelKind> = match args.accel {
        Some(k) => vec![k],
        None => vec![AccelKind::Soft, AccelKind::Kvm],
    };
    let reports: Vec<AccelReport> = kinds
        .into_iter()
        .map(|k| match k {
            AccelKind::Soft => soft_report(),
            AccelKind::Kvm => kvm_report(),
        })
        .collect();
    let text = if args.json {
        format!("{}\n", to_json(&reports))
    } else {
        render_text(&reports)
    };
    // A closed pipe (`vigil caps | head`) just ends the report.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    0
}

/// The soft accelerator's report.
pub fn soft_report() -> AccelReport {
    let accel = hv::soft::SoftAccelerator::default();
    let described = accel.cpu();
    let model = accel.timing();
    let notify = accel.supports_notify_vmexit();
    let window_ms = f64::from(model.notify_threshold) * 1e3 / f64::from(model.crystal_hz);
    let tsc_hz = model.tsc_hz();
    let (family, cpu_model, stepping) = decode_signature(described.signature);
    let cpu = CpuInfo {
        vendor: described.name,
        family,
        model: cpu_model,
        stepping,
        detail: format!(
            "crystal {} MHz, TSC {} MHz (crystal x {}/{}), notify threshold {} crystal cycles",
            model.crystal_hz / 1_000_000,
            tsc_hz / 1_000_000,
            model.tsc_ratio_numerator,
            model.tsc_ratio_denominator,
            model.notify_threshold
        ),
        extra: vec![
            ("crystal_hz", json!(model.crystal_hz)),
            ("tsc_hz", json!(tsc_hz)),
            ("tsc_ratio_numerator", json!(model.tsc_ratio_numerator)),
            ("tsc_ratio_denominator", json!(model.tsc_ratio_denominator)),
            ("notify_threshold", json!(model.notify_threshold)),
            ("delivery_cycles", json!(model.delivery_cycles)),
        ],
    };
    let notify_action = if notify {
        format!(
            "enabled with ENABLED|USER at VM creation (softcpu capability MSR 0x48B bit 31); \
             window 0 + threshold = {window_ms:.2} ms of virtual time; each exit logged, \
             then the guest resumed (run) or stopped (internal-error)"
        )
    } else {
        "notify VM exits unavailable: --notify-vmexit run warns and runs without them, \
         require refuses to start; only the watchdog ends a stalled vCPU"
            .into()
    };
    AccelReport {
        name: "soft",
        available: Ok(()),
        api_version: None,
        cpu: Ok(cpu),
        capabilities: vec![
            Capability {
                name: "notify_vmexit",
                kvm_cap: CAP_NOTIFY_VMEXIT,
                present: notify,
                value: if notify {
                    kvm::caps::NOTIFY_FLAGS_VIGIL_USES
                } else {
                    0
                },
                action: notify_action,
            },
            Capability {
                name: "triple_fault_event",
                kvm_cap: CAP_TRIPLE_FAULT_EVENT,
                present: true,
                value: 1,
                action: "--notify-invalid shutdown injects a triple fault \
                         (Vcpu::inject_triple_fault): the VM shuts down, status 4"
                    .into(),
            },
            Capability {
                name: "bus_lock_exit",
                kvm_cap: CAP_BUS_LOCK_EXIT,
                // As the soft accelerator answers it (the soft CPU's
                // secondary controls allow bus-lock detection).
                present: accel::Accelerator::supports_bus_lock_exit(
                    &hv::soft::SoftAccelerator::default(),
                ),
                value: 2,
                action: "enabled at VM creation (bus-lock detection, exit 74 after each split \
                         lock): bus locks are counted (--stats), and --bus-lock-ratelimit N \
                         holds the vCPU to N per second"
                    .into(),
            },
            Capability {
                name: "nested_state",
                kvm_cap: CAP_NESTED_STATE,
                present: false,
                value: 0,
                action: "nested VMX itself runs: VMX is offered to the guest (--no-nested \
                         withholds it; docs/nested.md), but there is no nested state to save \
                         or restore: the soft accelerator has no migration"
                    .into(),
            },
        ],
    }
}

/// The kvm accelerator's report; an unusable `/dev/kvm` is reported, not an
/// error.
pub fn kvm_report() -> AccelReport {
    let cpu = host_cpu();
    match kvm::KvmAccelerator::open() {
        Err(e) => AccelReport {
            name: "kvm",
            available: Err(e.to_string()),
            api_version: None,
            cpu,
            capabilities: Vec::new(),
        },
        Ok(accel) => {
            let caps = kvm::caps::query(&accel);
            AccelReport {
                name: "kvm",
                available: Ok(()),
                api_version: Some(caps.api_version),
                cpu,
                capabilities: kvm_capabilities(&caps),
            }
        }
    }
}

/// The kvm capabilities and what Vigil does with them, from a query's
/// answers.
pub fn kvm_capabilities(caps: &KvmCaps) -> Vec<Capability> {
    let notify = caps.has_notify_vmexit();
    let triple = caps.has_triple_fault_event();
    let bus_lock = caps.has_bus_lock_exit();
    let nested = caps.has_nested_state();
    vec![
        Capability {
            name: "notify_vmexit",
            kvm_cap: CAP_NOTIFY_VMEXIT,
            present: notify,
            value: caps.notify_vmexit,
            action: if notify {
                "enabled with ENABLED|USER at VM creation; policy as on soft \
                 (--notify-vmexit, --notify-window, --notify-invalid)"
                    .into()
            } else {
                "notify VM exits unavailable: --notify-vmexit run warns and runs without them, \
                 require refuses to start (status 10); CPU-stall attacks are not contained on \
                 this host beyond KVM's own #AC/#DB interception"
                    .into()
            },
        },
        Capability {
            name: "triple_fault_event",
            kvm_cap: CAP_TRIPLE_FAULT_EVENT,
            present: triple,
            value: caps.triple_fault_event,
            action: if triple {
                "--notify-invalid shutdown injects a triple fault (KVM_SET_VCPU_EVENTS): \
                 the VM shuts down, status 4"
                    .into()
            } else {
                "--notify-invalid shutdown cannot inject a triple fault here: a \
                 context-invalid notify exit stops the VM instead, as --notify-invalid stop \
                 does (status 16)"
                    .into()
            },
        },
        Capability {
            name: "bus_lock_exit",
            kvm_cap: CAP_BUS_LOCK_EXIT,
            present: bus_lock,
            value: caps.bus_lock_exit,
            action: if bus_lock {
                "enabled at VM creation (KVM_BUS_LOCK_DETECTION_EXIT): bus locks are counted \
                 (--stats), and --bus-lock-ratelimit N holds the vCPU to N per second"
                    .into()
            } else {
                "not available: bus locks are not detected, and --bus-lock-ratelimit is refused"
                    .into()
            },
        },
        Capability {
            name: "nested_state",
            kvm_cap: CAP_NESTED_STATE,
            present: nested,
            value: caps.nested_state,
            action: if nested {
                format!(
                    "up to {} bytes; reported only (nested VMX on kvm is not used)",
                    caps.nested_state
                )
            } else {
                "reported only (nested VMX on kvm is not used)".into()
            },
        },
    ]
}

/// Family, model and stepping from a CPUID.1:EAX signature, with the
/// extended fields folded in as the SDM prescribes.
pub fn decode_signature(eax: u32) -> (u32, u32, u32) {
    let stepping = eax & 0xF;
    let base_model = (eax >> 4) & 0xF;
    let base_family = (eax >> 8) & 0xF;
    let family = if base_family == 0xF {
        base_family + ((eax >> 20) & 0xFF)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xF {
        (((eax >> 16) & 0xF) << 4) | base_model
    } else {
        base_model
    };
    (family, model, stepping)
}

/// The host CPU, from the first processor in `/proc/cpuinfo`.
pub fn host_cpu() -> Result<CpuInfo, String> {
    let text = std::fs::read_to_string("/proc/cpuinfo")
        .map_err(|e| format!("cannot read /proc/cpuinfo: {e}"))?;
    parse_cpuinfo(&text)
}

/// Parses the first processor's entry of a `/proc/cpuinfo` text.
pub fn parse_cpuinfo(text: &str) -> Result<CpuInfo, String> {
    let mut vendor = None;
    let mut family = None;
    let mut model = None;
    let mut stepping = None;
    let mut name = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            // The end of the first processor's entry.
            if vendor.is_some() {
                break;
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "vendor_id" => vendor = Some(value.to_string()),
            "cpu family" => family = value.parse::<u32>().ok(),
            "model" => model = value.parse::<u32>().ok(),
            "stepping" => stepping = value.parse::<u32>().ok(),
            "model name" => name = Some(value.to_string()),
            _ => {}
        }
    }
    match (vendor, family, model, stepping) {
        (Some(vendor), Some(family), Some(model), Some(stepping)) => Ok(CpuInfo {
            vendor,
            family,
            model,
            stepping,
            detail: name.unwrap_or_default(),
            extra: Vec::new(),
        }),
        _ => Err("/proc/cpuinfo lacks vendor_id, cpu family, model or stepping".into()),
    }
}

/// The report as one JSON object: `{"accelerators": [...]}`.
pub fn to_json(reports: &[AccelReport]) -> Value {
    let accels: Vec<Value> = reports
        .iter()
        .map(|r| {
            let mut obj = serde_json::Map::new();
            obj.insert("name".into(), json!(r.name));
            obj.insert("available".into(), json!(r.available.is_ok()));
            if let Err(why) = &r.available {
                obj.insert("reason".into(), json!(why));
            }
            obj.insert("api_version".into(), json!(r.api_version));
            let cpu = match &r.cpu {
                Ok(c) => {
                    let mut cpu = serde_json::Map::new();
                    cpu.insert("vendor".into(), json!(c.vendor));
                    cpu.insert("family".into(), json!(c.family));
                    cpu.insert("model".into(), json!(c.model));
                    cpu.insert("stepping".into(), json!(c.stepping));
                    cpu.insert("detail".into(), json!(c.detail));
                    for (k, v) in &c.extra {
                        cpu.insert((*k).into(), v.clone());
                    }
                    Value::Object(cpu)
                }
                Err(why) => json!({ "error": why }),
            };
            obj.insert("cpu".into(), cpu);
            let caps: Vec<Value> = r
                .capabilities
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "kvm_cap": c.kvm_cap,
                        "present": c.present,
                        "value": c.value,
                        "action": c.action,
                    })
                })
                .collect();
            obj.insert("capabilities".into(), Value::Array(caps));
            Value::Object(obj)
        })
        .collect();
    json!({ "accelerators": accels })
}

/// The report as aligned text: one line per item, `ACCEL  ITEM  VALUE  ACTION`.
pub fn render_text(reports: &[AccelReport]) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for r in reports {
        let name = r.name.to_string();
        match &r.available {
            Ok(()) => rows.push([
                name.clone(),
                "available".into(),
                "yes".into(),
                String::new(),
            ]),
            Err(why) => rows.push([name.clone(), "available".into(), "no".into(), why.clone()]),
        }
        if let Some(v) = r.api_version {
            rows.push([
                name.clone(),
                "api_version".into(),
                v.to_string(),
                String::new(),
            ]);
        }
        let (cpu, detail) = match &r.cpu {
            Ok(c) => (
                format!(
                    "{} family {} model {} stepping {}",
                    c.vendor, c.family, c.model, c.stepping
                ),
                c.detail.clone(),
            ),
            Err(why) => ("unknown".into(), why.clone()),
        };
        rows.push([name.clone(), "cpu".into(), cpu, detail]);
        for c in &r.capabilities {
            let value = format!(
                "{} (cap {} = {})",
                if c.present { "yes" } else { "no" },
                c.kvm_cap,
                c.value
            );
            rows.push([name.clone(), c.name.into(), value, c.action.clone()]);
        }
    }
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut text = String::new();
    for [a, b, c, d] in &rows {
        let line = format!("{a:<w0$}  {b:<w1$}  {c:<w2$}  {d}");
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_decodes_extended_fields() {
        // The soft CPU: family 6, model 0x8F, stepping 8.
        assert_eq!(decode_signature(0x0008_06F8), (6, 0x8F, 8));
        // AMD family 19h (0xF + 0xA), model 0x11, stepping 1.
        assert_eq!(decode_signature(0x00A1_0F11), (25, 0x11, 1));
    }

    #[test]
    fn cpuinfo_first_processor_is_read() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
                    model\t\t: 143\nmodel name\t: Xeon\nstepping\t: 8\n\n\
                    processor\t: 1\nvendor_id\t: Other\n";
        let cpu = parse_cpuinfo(text).unwrap();
        assert_eq!(
            (cpu.vendor.as_str(), cpu.family, cpu.model, cpu.stepping),
            ("GenuineIntel", 6, 143, 8)
        );
        assert_eq!(cpu.detail, "Xeon");
        assert!(parse_cpuinfo("processor : 0\n").is_err());
    }

    #[test]
    fn soft_offers_notify_triple_fault_and_bus_lock() {
        let r = soft_report();
        let present: Vec<_> = r.capabilities.iter().map(|c| (c.name, c.present)).collect();
        assert_eq!(
            present,
            [
                ("notify_vmexit", true),
                ("triple_fault_event", true),
                ("bus_lock_exit", true),
                ("nested_state", false)
            ]
        );
    }

    #[test]
    fn kvm_actions_follow_the_answers() {
        let none = KvmCaps {
            api_version: 12,
            notify_vmexit: 0,
            triple_fault_event: 0,
            bus_lock_exit: 0,
            nested_state: 0,
        };
        let caps = kvm_capabilities(&none);
        assert!(caps[0].action.contains("require refuses"));
        assert!(caps[1].action.contains("--notify-invalid stop"));
        let all = KvmCaps {
            notify_vmexit: 3,
            triple_fault_event: 1,
            bus_lock_exit: 3,
            nested_state: 8192,
            ..none
        };
        let caps = kvm_capabilities(&all);
        assert!(caps.iter().all(|c| c.present));
        assert!(caps[0].action.contains("ENABLED|USER"));
        assert!(caps[1].action.contains("KVM_SET_VCPU_EVENTS"));
        assert!(caps[3].action.contains("8192"));
    }

    #[test]
    fn text_is_aligned() {
        let text = render_text(&[soft_report()]);
        let col = |l: &str| l.find("yes").or_else(|| l.find("no ("));
        let cols: Vec<_> = text
            .lines()
            .filter(|l| l.contains("(cap "))
            .map(col)
            .collect();
        assert_eq!(cols.len(), 4);
        assert!(cols.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}
