//! The host KVM's answers to the capability checks that matter to Vigil's
//! notify story (`KVM_CHECK_EXTENSION` on `/dev/kvm`).
//!
//! [`query`] asks them all at once and returns a [`KvmCaps`]. Each field
//! keeps the raw value the kernel returned (0 when the capability is absent,
//! or when the check itself failed), and the `has_*` methods say what the
//! value means for Vigil.

use kvm_bindings::{
    KVM_BUS_LOCK_DETECTION_EXIT, KVM_CAP_NESTED_STATE, KVM_CAP_X86_BUS_LOCK_EXIT,
    KVM_CAP_X86_NOTIFY_VMEXIT, KVM_CAP_X86_TRIPLE_FAULT_EVENT, KVM_X86_NOTIFY_VMEXIT_ENABLED,
    KVM_X86_NOTIFY_VMEXIT_USER,
};
use kvm_ioctls::Kvm;

use crate::system::KvmAccelerator;

/// `KVM_CAP_X86_NOTIFY_VMEXIT`: notify VM exits (per-VM, enabled with
/// `(window << 32) | flags`).
pub const CAP_NOTIFY_VMEXIT: u32 = KVM_CAP_X86_NOTIFY_VMEXIT;
/// `KVM_CAP_X86_TRIPLE_FAULT_EVENT`: a triple fault can be made pending
/// through `KVM_SET_VCPU_EVENTS`.
pub const CAP_TRIPLE_FAULT_EVENT: u32 = KVM_CAP_X86_TRIPLE_FAULT_EVENT;
/// `KVM_CAP_X86_BUS_LOCK_EXIT`: bus-lock detection; the check returns the
/// supported modes as a bitmask ([`BUS_LOCK_DETECTION_EXIT`] among them).
pub const CAP_BUS_LOCK_EXIT: u32 = KVM_CAP_X86_BUS_LOCK_EXIT;
/// `KVM_CAP_NESTED_STATE`: nested virtualization state can be saved; the
/// check returns the largest state size in bytes.
pub const CAP_NESTED_STATE: u32 = KVM_CAP_NESTED_STATE;
/// The bus-lock mode bit that makes a bus lock exit to userspace
/// (`KVM_BUS_LOCK_DETECTION_EXIT`).
pub const BUS_LOCK_DETECTION_EXIT: u32 = KVM_BUS_LOCK_DETECTION_EXIT;
/// The notify flags Vigil enables (`ENABLED | USER`).
pub const NOTIFY_FLAGS_VIGIL_USES: u32 = KVM_X86_NOTIFY_VMEXIT_ENABLED | KVM_X86_NOTIFY_VMEXIT_USER;

/// What the host's KVM reports for the capabilities Vigil cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvmCaps {
    /// `KVM_GET_API_VERSION` (12 on every Linux since 2.6.22).
    pub api_version: i32,
    /// [`CAP_NOTIFY_VMEXIT`]: the notify flags the kernel accepts; 0 when
    /// absent.
    pub notify_vmexit: u32,
    /// [`CAP_TRIPLE_FAULT_EVENT`]: nonzero when present.
    pub triple_fault_event: u32,
    /// [`CAP_BUS_LOCK_EXIT`]: bitmask of supported bus-lock detection modes;
    /// 0 when absent.
    pub bus_lock_exit: u32,
    /// [`CAP_NESTED_STATE`]: the largest nested state in bytes; 0 when absent.
    pub nested_state: u32,
}

impl KvmCaps {
    /// Whether notify VM exits are offered (the same test as
    /// [`Accelerator::supports_notify_vmexit`](accel::Accelerator::supports_notify_vmexit)).
    pub fn has_notify_vmexit(&self) -> bool {
        self.notify_vmexit != 0
    }

    /// Whether a triple fault can be injected (`KVM_SET_VCPU_EVENTS`).
    pub fn has_triple_fault_event(&self) -> bool {
        self.triple_fault_event != 0
    }

    /// Whether bus locks can be made to exit to userspace.
    pub fn has_bus_lock_exit(&self) -> bool {
        self.bus_lock_exit & BUS_LOCK_DETECTION_EXIT != 0
    }

    /// Whether nested state can be saved and restored.
    pub fn has_nested_state(&self) -> bool {
        self.nested_state != 0
    }
}

/// Asks the KVM behind `accel` for the capabilities in [`KvmCaps`].
pub fn query(accel: &KvmAccelerator) -> KvmCaps {
    query_kvm(accel.kvm())
}

/// Like [`query`], on a bare `kvm-ioctls` handle.
pub fn query_kvm(kvm: &Kvm) -> KvmCaps {
    KvmCaps {
        api_version: kvm.get_api_version(),
        notify_vmexit: check(kvm, CAP_NOTIFY_VMEXIT),
        triple_fault_event: check(kvm, CAP_TRIPLE_FAULT_EVENT),
        bus_lock_exit: check(kvm, CAP_BUS_LOCK_EXIT),
        nested_state: check(kvm, CAP_NESTED_STATE),
    }
}

/// `KVM_CHECK_EXTENSION`; an error (negative return) counts as absent.
fn check(kvm: &Kvm, cap: u32) -> u32 {
    u32::try_from(kvm.check_extension_raw(cap.into())).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use accel::Accelerator;

    #[test]
    fn capability_numbers_are_the_kernel_abi() {
        assert_eq!(CAP_NOTIFY_VMEXIT, 219);
        assert_eq!(CAP_TRIPLE_FAULT_EVENT, 218);
        assert_eq!(CAP_BUS_LOCK_EXIT, 193);
        assert_eq!(CAP_NESTED_STATE, 157);
    }

    #[test]
    fn values_are_interpreted() {
        let none = KvmCaps {
            api_version: 12,
            notify_vmexit: 0,
            triple_fault_event: 0,
            bus_lock_exit: 0,
            nested_state: 0,
        };
        assert!(!none.has_notify_vmexit());
        assert!(!none.has_triple_fault_event());
        assert!(!none.has_bus_lock_exit());
        assert!(!none.has_nested_state());
        let all = KvmCaps {
            api_version: 12,
            notify_vmexit: 3,
            triple_fault_event: 1,
            bus_lock_exit: 3,
            nested_state: 8192,
        };
        assert!(all.has_notify_vmexit());
        assert!(all.has_triple_fault_event());
        assert!(all.has_bus_lock_exit());
        assert!(all.has_nested_state());
        // Detection "off" alone is not a bus-lock exit.
        assert!(!KvmCaps {
            bus_lock_exit: 1,
            ..all
        }
        .has_bus_lock_exit());
    }

    #[test]
    fn query_agrees_with_the_accelerator() {
        if let Err(why) = crate::probe() {
            println!("SKIP query_agrees_with_the_accelerator: {why}");
            return;
        }
        let accel = match KvmAccelerator::open() {
            Ok(a) => a,
            Err(e) => {
                println!("SKIP query_agrees_with_the_accelerator: {e}");
                return;
            }
        };
        let caps = query(&accel);
        assert_eq!(caps.api_version, crate::REQUIRED_API_VERSION);
        assert_eq!(caps.notify_vmexit != 0, accel.supports_notify_vmexit());
        assert_eq!(caps, query(&accel), "capabilities are stable");
        let cpu = accel.describe_cpu().expect("KVM_GET_SUPPORTED_CPUID");
        assert_eq!(cpu.vendor.len(), 12, "{cpu:?}");
        assert_ne!(cpu.signature, 0, "{cpu:?}");
        assert_eq!(cpu.timing, None);
    }
}
