//! The memory operand of a VMX instruction L1 executed: its linear address,
//! from the VM-exit instruction-information field and the exit
//! qualification (SDM Vol. 3C §28.2.5, §28.2.1), its segment checks, and the
//! access through L1's page tables — with the fault L1 would have taken
//! instead of the access.

use crate::hw::{HwError, VmxHardware};
use crate::soft::walk;
use x86::address::is_canonical;
use x86::cr::{CR0_WP, EFER_LMA};
use x86::segment::{AR_L, AR_UNUSABLE};
use x86::vmx::field as f;

/// A fault the operand access raises in L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperandFault {
    /// #GP(0): a segment limit, an unusable segment or a non-canonical address.
    General,
    /// #SS(0): the same through SS.
    Stack,
    /// #PF with this error code at this linear address.
    Page { code: u32, addr: u64 },
}

/// Why an operand could not be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperandError {
    /// L1 takes this fault.
    Fault(OperandFault),
    /// The operand, or a paging structure on the way to it, is not in L1's
    /// RAM (device memory, or nothing): L0 does not emulate VMX operands
    /// there.
    NotRam,
    /// The processor refused a VMREAD or a physical access.
    Hw(HwError),
}

impl From<HwError> for OperandError {
    fn from(e: HwError) -> Self {
        OperandError::Hw(e)
    }
}

/// Segment base, limit and access-rights fields, by the instruction
/// information's segment number (ES = 0 … GS = 5).
const SEGMENTS: [(u32, u32, u32); 6] = [
    (f::GUEST_ES_BASE, f::GUEST_ES_LIMIT, f::GUEST_ES_AR_BYTES),
    (f::GUEST_CS_BASE, f::GUEST_CS_LIMIT, f::GUEST_CS_AR_BYTES),
    (f::GUEST_SS_BASE, f::GUEST_SS_LIMIT, f::GUEST_SS_AR_BYTES),
    (f::GUEST_DS_BASE, f::GUEST_DS_LIMIT, f::GUEST_DS_AR_BYTES),
    (f::GUEST_FS_BASE, f::GUEST_FS_LIMIT, f::GUEST_FS_AR_BYTES),
    (f::GUEST_GS_BASE, f::GUEST_GS_LIMIT, f::GUEST_GS_AR_BYTES),
];

/// Whether the current guest runs in 64-bit mode (IA-32e mode and CS.L).
pub(crate) fn in_64bit_mode(hw: &impl VmxHardware) -> Result<bool, HwError> {
    let efer = hw.vmread(f::GUEST_IA32_EFER)?;
    let cs_ar = hw.vmread(f::GUEST_CS_AR_BYTES)?;
    Ok(efer & EFER_LMA != 0 && cs_ar & u64::from(AR_L) != 0)
}

/// The linear address of the memory operand described by `info` and
/// `displacement`, checked against its segment for an access of `size`
/// bytes.
pub(crate) fn linear_address(
    hw: &impl VmxHardware,
    info: u32,
    displacement: u64,
    size: u64,
) -> Result<u64, OperandError> {
    let gprs = hw.gprs();
    let mut offset = displacement;
    if info & 1 << 27 == 0 {
        offset = offset.wrapping_add(gprs[((info >> 23) & 15) as usize]);
    }
    if info & 1 << 22 == 0 {
        let index = gprs[((info >> 18) & 15) as usize];
        offset = offset.wrapping_add(index << (info & 3));
    }
    offset &= match (info >> 7) & 7 {
        0 => 0xFFFF,
        1 => 0xFFFF_FFFF,
        _ => u64::MAX,
    };
    let seg = ((info >> 15) & 7).min(5) as usize;
    let fault = if seg == 2 {
        OperandFault::Stack
    } else {
        OperandFault::General
    };
    let (base_f, limit_f, ar_f) = SEGMENTS[seg];
    if in_64bit_mode(hw)? {
        // Only FS and GS have bases in 64-bit mode (SDM Vol. 3A §3.2.4).
        let base = if seg >= 4 { hw.vmread(base_f)? } else { 0 };
        let la = base.wrapping_add(offset);
        if !is_canonical(la) || !is_canonical(la.wrapping_add(size - 1)) {
            return Err(OperandError::Fault(fault));
        }
        return Ok(la);
    }
    let ar = hw.vmread(ar_f)? as u32;
    let limit = hw.vmread(limit_f)?;
    if ar & AR_UNUSABLE != 0 || offset.wrapping_add(size - 1) > limit {
        return Err(OperandError::Fault(fault));
    }
    Ok(hw.vmread(base_f)?.wrapping_add(offset) & 0xFFFF_FFFF)
}

/// Guest-physical address of one byte of the operand, with the page fault
/// a CPL-0 access would take (SDM Vol. 3A §4.7: error code bit 0 present,
/// bit 1 write; CR0.WP makes read-only pages read-only for supervisors).
fn translate(hw: &impl VmxHardware, la: u64, write: bool, ram: u64) -> Result<u64, OperandError> {
    let wp = hw.vmread(f::GUEST_CR0)? & CR0_WP != 0;
    let w = u32::from(write) << 1;
    let walked = match walk::walk(hw, la, ram) {
        Err(HwError::PhysicalRange(_)) => return Err(OperandError::NotRam),
        other => other?,
    };
    match walked {
        None => Err(OperandError::Fault(OperandFault::Page {
            code: w,
            addr: la,
        })),
        Some(t) if write && wp && !t.writable => Err(OperandError::Fault(OperandFault::Page {
            code: 1 | w,
            addr: la,
        })),
        Some(t) if t.gpa >= ram => Err(OperandError::NotRam),
        Some(t) => Ok(t.gpa),
    }
}

/// Reads `buf.len()` bytes of L1's memory (RAM `[0, ram)`) at linear
/// address `la`.
pub(crate) fn read(
    hw: &impl VmxHardware,
    la: u64,
    buf: &mut [u8],
    ram: u64,
) -> Result<(), OperandError> {
    for (i, b) in buf.iter_mut().enumerate() {
        let gpa = translate(hw, la.wrapping_add(i as u64), false, ram)?;
        let mut one = [0u8];
        hw.read_phys(gpa, &mut one)?;
        *b = one[0];
    }
    Ok(())
}

/// Writes `data` to L1's memory (RAM `[0, ram)`) at linear address `la`;
/// nothing is written unless every byte can be (the fault comes first).
pub(crate) fn write(
    hw: &mut impl VmxHardware,
    la: u64,
    data: &[u8],
    ram: u64,
) -> Result<(), OperandError> {
    let mut gpas = Vec::with_capacity(data.len());
    for i in 0..data.len() {
        gpas.push(translate(hw, la.wrapping_add(i as u64), true, ram)?);
    }
    for (gpa, b) in gpas.into_iter().zip(data) {
        hw.write_phys(gpa, &[*b])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::test_hw::FakeHw;
    use x86::cr::{CR0_PE, CR0_PG, CR4_PSE};

    /// 32-bit paging at CR3 = 0x1000 over 1 MiB of RAM and 1 MiB of L0's
    /// own pages above it.
    fn l1() -> FakeHw {
        let mut hw = FakeHw {
            memory: vec![0; 2 << 20],
            ..FakeHw::default()
        };
        hw.fields.insert(f::GUEST_CR0, CR0_PE | CR0_PG | CR0_WP);
        hw.fields.insert(f::GUEST_CR4, CR4_PSE);
        hw.fields.insert(f::GUEST_CR3, 0x1000);
        // PDE 0: page table at 0x2000. PTE 1: page 0x5000, read-only.
        // PTE 2: a page beyond RAM. PDE 1: a page table beyond RAM.
        hw.write_phys(0x1000, &0x2003u32.to_le_bytes()).unwrap();
        hw.write_phys(0x1004, &0x10_0003u32.to_le_bytes()).unwrap();
        hw.write_phys(0x2004, &0x5001u32.to_le_bytes()).unwrap();
        hw.write_phys(0x2008, &0x18_0003u32.to_le_bytes()).unwrap();
        hw
    }

    const RAM: u64 = 1 << 20;

    #[test]
    fn operands_fault_as_l1_would_and_never_reach_l0_pages() {
        let mut hw = l1();
        let mut b = [0u8; 8];
        assert_eq!(read(&hw, 0x1000, &mut b, RAM), Ok(()));
        // Not present: #PF, read, at the first byte that fails.
        assert_eq!(
            read(&hw, 0x3FFC, &mut b, RAM),
            Err(OperandError::Fault(OperandFault::Page {
                code: 0,
                addr: 0x3FFC
            }))
        );
        // A write to a read-only page with CR0.WP: #PF, present and write.
        assert_eq!(
            write(&mut hw, 0x1000, &[1], RAM),
            Err(OperandError::Fault(OperandFault::Page {
                code: 3,
                addr: 0x1000
            }))
        );
        // A page, or a page table, outside RAM: not emulated, not read.
        assert_eq!(read(&hw, 0x2000, &mut b, RAM), Err(OperandError::NotRam));
        assert_eq!(
            write(&mut hw, 0x40_0000, &[1], RAM),
            Err(OperandError::NotRam)
        );
        assert!(hw.memory[RAM as usize..].iter().all(|&x| x == 0));
    }
}
