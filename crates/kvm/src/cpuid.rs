//! The CPUID table each vCPU gets: what KVM supports on this host
//! (`KVM_GET_SUPPORTED_CPUID`), with the vCPU's own APIC ID filled in.

use kvm_bindings::kvm_cpuid_entry2;

/// Writes vCPU `id` as the APIC ID the guest sees: `CPUID.1:EBX[31:24]`
/// (initial APIC ID) and the x2APIC ID in EDX of the topology leaves 0xB and
/// 0x1F.
pub fn set_apic_id(entries: &mut [kvm_cpuid_entry2], id: u32) {
    for entry in entries {
        match entry.function {
            0x1 => entry.ebx = (entry.ebx & 0x00FF_FFFF) | ((id & 0xFF) << 24),
            0xB | 0x1F => entry.edx = id,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apic_id_lands_in_leaf_1_and_topology_leaves() {
        let mut entries = [
            kvm_cpuid_entry2 {
                function: 0x1,
                ebx: 0xAA12_3456,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0xB,
                index: 1,
                edx: 7,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0x0,
                ebx: 0x756E_6547,
                ..Default::default()
            },
        ];
        set_apic_id(&mut entries, 3);
        assert_eq!(entries[0].ebx, 0x0312_3456);
        assert_eq!(entries[1].edx, 3);
        assert_eq!(entries[2].ebx, 0x756E_6547);
    }
}
