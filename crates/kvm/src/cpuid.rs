//! The CPUID table each vCPU gets: what KVM supports on this host
//! (`KVM_GET_SUPPORTED_CPUID`), with the APIC bits of the userspace local
//! APIC and the vCPU's own APIC ID filled in.

use accel::CpuDescription;
use kvm_bindings::kvm_cpuid_entry2;

/// A leaf's registers (EAX, EBX, ECX, EDX) in `entries`, subleaf 0; zeros
/// when the table lacks it.
fn leaf(entries: &[kvm_cpuid_entry2], function: u32) -> [u32; 4] {
    entries
        .iter()
        .find(|e| e.function == function && e.index == 0)
        .map_or([0; 4], |e| [e.eax, e.ebx, e.ecx, e.edx])
}

/// The processor a CPUID table describes: the vendor (leaf 0), the
/// signature (leaf 1) and the brand string (leaves 0x80000002–4, trimmed).
pub fn describe(entries: &[kvm_cpuid_entry2]) -> CpuDescription {
    let [_, ebx, ecx, edx] = leaf(entries, 0);
    let brand: Vec<u8> = (0x8000_0002..=0x8000_0004)
        .flat_map(|f| leaf(entries, f))
        .flat_map(u32::to_le_bytes)
        .take_while(|&b| b != 0)
        .collect();
    CpuDescription {
        name: String::from_utf8_lossy(&brand).trim().to_string(),
        vendor: accel::cpuid_vendor(ebx, edx, ecx),
        signature: leaf(entries, 1)[0],
        timing: None,
    }
}

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

/// Makes leaf 1 offer the APIC this accelerator hosts in userspace rather
/// than KVM's in-kernel one: KVM reports x2APIC, which it emulates only with
/// an in-kernel irqchip (without one the x2APIC MSRs raise #GP), so the bit
/// is cleared; TSC-deadline mode is offered when IA32_TSC_DEADLINE reaches
/// the userspace APIC (`tsc_deadline_msr`). The soft accelerator's leaf 1
/// goes through the same [`lapic::cpuid_leaf1`].
pub fn offer_apic(entries: &mut [kvm_cpuid_entry2], tsc_deadline_msr: bool) {
    for entry in entries.iter_mut().filter(|e| e.function == 0x1) {
        (entry.ecx, entry.edx) = lapic::cpuid_leaf1(entry.ecx, entry.edx, tsc_deadline_msr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_1_offers_the_userspace_apic() {
        let mut entries = [kvm_cpuid_entry2 {
            function: 0x1,
            ecx: lapic::CPUID1_ECX_X2APIC | 1,
            edx: lapic::CPUID1_EDX_APIC,
            ..Default::default()
        }];
        offer_apic(&mut entries, true);
        assert_eq!(entries[0].ecx, lapic::CPUID1_ECX_TSC_DEADLINE | 1);
        offer_apic(&mut entries, false);
        assert_eq!(entries[0].ecx, 1);
    }

    #[test]
    fn a_table_describes_its_processor() {
        let entry = |function, eax, ebx, ecx, edx| kvm_cpuid_entry2 {
            function,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        };
        // "GenuineIntel", family 6 model 0x8F stepping 8, "  Xeon(R)".
        let entries = [
            entry(0, 0x20, 0x756E_6547, 0x6C65_746E, 0x4965_6E69),
            entry(1, 0x0008_06F8, 0, 0, 0),
            entry(0x8000_0002, 0x6558_2020, 0x52286E6F, 0x0000_0029, 0),
        ];
        let d = describe(&entries);
        assert_eq!(d.vendor, "GenuineIntel");
        assert_eq!(d.signature, 0x0008_06F8);
        assert_eq!(d.name, "Xeon(R)");
        assert_eq!(d.timing, None);
        assert_eq!(describe(&[]).signature, 0);
    }

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
