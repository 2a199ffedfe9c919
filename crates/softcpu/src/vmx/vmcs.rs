//! The VMCS: field storage addressed by SDM encodings (Vol. 3C §25.11.2,
//! Appendix B), with the width rules of VMREAD and VMWRITE (§31.3).

use x86::vmx::field::{self, Width};

/// Every field this processor model implements, sorted by encoding.
pub const FIELDS: &[u32] = &[
    field::VIRTUAL_PROCESSOR_ID,
    field::GUEST_ES_SELECTOR,
    field::GUEST_CS_SELECTOR,
    field::GUEST_SS_SELECTOR,
    field::GUEST_DS_SELECTOR,
    field::GUEST_FS_SELECTOR,
    field::GUEST_GS_SELECTOR,
    field::GUEST_LDTR_SELECTOR,
    field::GUEST_TR_SELECTOR,
    field::GUEST_PML_INDEX,
    field::HOST_ES_SELECTOR,
    field::HOST_CS_SELECTOR,
    field::HOST_SS_SELECTOR,
    field::HOST_DS_SELECTOR,
    field::HOST_FS_SELECTOR,
    field::HOST_GS_SELECTOR,
    field::HOST_TR_SELECTOR,
    field::IO_BITMAP_A,
    field::IO_BITMAP_B,
    field::MSR_BITMAP,
    field::VM_EXIT_MSR_STORE_ADDR,
    field::VM_EXIT_MSR_LOAD_ADDR,
    field::VM_ENTRY_MSR_LOAD_ADDR,
    field::PML_ADDRESS,
    field::TSC_OFFSET,
    field::VIRTUAL_APIC_PAGE_ADDR,
    field::EPT_POINTER,
    field::GUEST_PHYSICAL_ADDRESS,
    field::VMCS_LINK_POINTER,
    field::GUEST_IA32_DEBUGCTL,
    field::GUEST_IA32_PAT,
    field::GUEST_IA32_EFER,
    field::GUEST_PDPTE0,
    field::GUEST_PDPTE1,
    field::GUEST_PDPTE2,
    field::GUEST_PDPTE3,
    field::HOST_IA32_PAT,
    field::HOST_IA32_EFER,
    field::PIN_BASED_VM_EXEC_CONTROL,
    field::CPU_BASED_VM_EXEC_CONTROL,
    field::EXCEPTION_BITMAP,
    field::PAGE_FAULT_ERROR_CODE_MASK,
    field::PAGE_FAULT_ERROR_CODE_MATCH,
    field::CR3_TARGET_COUNT,
    field::VM_EXIT_CONTROLS,
    field::VM_EXIT_MSR_STORE_COUNT,
    field::VM_EXIT_MSR_LOAD_COUNT,
    field::VM_ENTRY_CONTROLS,
    field::VM_ENTRY_MSR_LOAD_COUNT,
    field::VM_ENTRY_INTR_INFO,
    field::VM_ENTRY_EXCEPTION_ERROR_CODE,
    field::VM_ENTRY_INSTRUCTION_LEN,
    field::TPR_THRESHOLD,
    field::SECONDARY_VM_EXEC_CONTROL,
    field::PLE_GAP,
    field::PLE_WINDOW,
    field::NOTIFY_WINDOW,
    field::VM_INSTRUCTION_ERROR,
    field::VM_EXIT_REASON,
    field::VM_EXIT_INTR_INFO,
    field::VM_EXIT_INTR_ERROR_CODE,
    field::IDT_VECTORING_INFO,
    field::IDT_VECTORING_ERROR_CODE,
    field::VM_EXIT_INSTRUCTION_LEN,
    field::VMX_INSTRUCTION_INFO,
    field::GUEST_ES_LIMIT,
    field::GUEST_CS_LIMIT,
    field::GUEST_SS_LIMIT,
    field::GUEST_DS_LIMIT,
    field::GUEST_FS_LIMIT,
    field::GUEST_GS_LIMIT,
    field::GUEST_LDTR_LIMIT,
    field::GUEST_TR_LIMIT,
    field::GUEST_GDTR_LIMIT,
    field::GUEST_IDTR_LIMIT,
    field::GUEST_ES_AR_BYTES,
    field::GUEST_CS_AR_BYTES,
    field::GUEST_SS_AR_BYTES,
    field::GUEST_DS_AR_BYTES,
    field::GUEST_FS_AR_BYTES,
    field::GUEST_GS_AR_BYTES,
    field::GUEST_LDTR_AR_BYTES,
    field::GUEST_TR_AR_BYTES,
    field::GUEST_INTERRUPTIBILITY_INFO,
    field::GUEST_ACTIVITY_STATE,
    field::GUEST_SMBASE,
    field::GUEST_SYSENTER_CS,
    field::VMX_PREEMPTION_TIMER_VALUE,
    field::HOST_IA32_SYSENTER_CS,
    field::CR0_GUEST_HOST_MASK,
    field::CR4_GUEST_HOST_MASK,
    field::CR0_READ_SHADOW,
    field::CR4_READ_SHADOW,
    field::EXIT_QUALIFICATION,
    field::GUEST_LINEAR_ADDRESS,
    field::GUEST_CR0,
    field::GUEST_CR3,
    field::GUEST_CR4,
    field::GUEST_ES_BASE,
    field::GUEST_CS_BASE,
    field::GUEST_SS_BASE,
    field::GUEST_DS_BASE,
    field::GUEST_FS_BASE,
    field::GUEST_GS_BASE,
    field::GUEST_LDTR_BASE,
    field::GUEST_TR_BASE,
    field::GUEST_GDTR_BASE,
    field::GUEST_IDTR_BASE,
    field::GUEST_DR7,
    field::GUEST_RSP,
    field::GUEST_RIP,
    field::GUEST_RFLAGS,
    field::GUEST_PENDING_DBG_EXCEPTIONS,
    field::GUEST_SYSENTER_ESP,
    field::GUEST_SYSENTER_EIP,
    field::HOST_CR0,
    field::HOST_CR3,
    field::HOST_CR4,
    field::HOST_FS_BASE,
    field::HOST_GS_BASE,
    field::HOST_TR_BASE,
    field::HOST_GDTR_BASE,
    field::HOST_IDTR_BASE,
    field::HOST_IA32_SYSENTER_ESP,
    field::HOST_IA32_SYSENTER_EIP,
    field::HOST_RSP,
    field::HOST_RIP,
];

/// Why a VMREAD or VMWRITE failed (VM-instruction error numbers, SDM Vol. 3C §31.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldError {
    /// Error 12: the encoding names no field this processor supports.
    Unsupported,
    /// Error 13: VMWRITE to a read-only VM-exit information field.
    ReadOnly,
}

impl FieldError {
    /// The VM-instruction error number.
    pub fn number(self) -> u32 {
        match self {
            FieldError::Unsupported => x86::vmx::instruction_error::UNSUPPORTED_COMPONENT,
            FieldError::ReadOnly => x86::vmx::instruction_error::WRITE_READ_ONLY,
        }
    }
}

/// Launch state of a VMCS (SDM Vol. 3C §25.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchState {
    /// After VMCLEAR: VMLAUNCH is required.
    Clear,
    /// After a successful VMLAUNCH: VMRESUME is required.
    Launched,
}

/// One VMCS region's contents.
#[derive(Debug, Clone)]
pub struct Vmcs {
    values: Vec<u64>,
    /// Launch state.
    pub launch_state: LaunchState,
}

impl Default for Vmcs {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(encoding: u32) -> Option<usize> {
    FIELDS.binary_search(&encoding).ok()
}

impl Vmcs {
    /// A cleared VMCS with every field zero.
    pub fn new() -> Self {
        Vmcs {
            values: vec![0; FIELDS.len()],
            launch_state: LaunchState::Clear,
        }
    }

    /// Whether the encoding names a supported field (including the high
    /// half of a 64-bit field).
    pub fn supports(encoding: u32) -> bool {
        slot(encoding & !u32::from(field::is_high_access(encoding))).is_some()
    }

    /// VMREAD semantics: the field's value, zero-extended (SDM Vol. 3C §31.3 VMREAD).
    pub fn read(&self, encoding: u32) -> Result<u64, FieldError> {
        if field::is_high_access(encoding) {
            let s = slot(encoding & !1).ok_or(FieldError::Unsupported)?;
            return Ok(self.values[s] >> 32);
        }
        let s = slot(encoding).ok_or(FieldError::Unsupported)?;
        Ok(self.values[s])
    }

    /// VMWRITE semantics: truncates to the field width; read-only fields refuse.
    pub fn write(&mut self, encoding: u32, value: u64) -> Result<(), FieldError> {
        if field::is_high_access(encoding) {
            let s = slot(encoding & !1).ok_or(FieldError::Unsupported)?;
            self.values[s] = (self.values[s] & 0xFFFF_FFFF) | (value << 32);
            return Ok(());
        }
        let s = slot(encoding).ok_or(FieldError::Unsupported)?;
        if field::is_read_only(encoding) {
            return Err(FieldError::ReadOnly);
        }
        self.values[s] = truncate(encoding, value);
        Ok(())
    }

    /// Reads a field (0 for an encoding this model lacks).
    pub fn get(&self, encoding: u32) -> u64 {
        slot(encoding).map_or(0, |s| self.values[s])
    }

    /// Writes any field, read-only ones included, truncated to its width:
    /// the processor filling exit information, or a hypervisor playing the
    /// processor for a VMCS of its guest's.
    pub fn set(&mut self, encoding: u32, value: u64) {
        if let Some(s) = slot(encoding) {
            self.values[s] = truncate(encoding, value);
        }
    }

    /// 32-bit view of a field.
    pub fn get32(&self, encoding: u32) -> u32 {
        self.get(encoding) as u32
    }
}

fn truncate(encoding: u32, value: u64) -> u64 {
    match field::width(encoding) {
        Width::Word => value & 0xFFFF,
        Width::Dword => value & 0xFFFF_FFFF,
        Width::Quad | Width::Natural => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_table_is_sorted_and_unique() {
        assert!(FIELDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn widths_truncate_and_high_halves_alias() {
        let mut v = Vmcs::new();
        v.write(field::GUEST_CS_SELECTOR, 0x1_2345).unwrap();
        assert_eq!(v.read(field::GUEST_CS_SELECTOR), Ok(0x2345));
        v.write(field::NOTIFY_WINDOW, u64::MAX).unwrap();
        assert_eq!(v.read(field::NOTIFY_WINDOW), Ok(0xFFFF_FFFF));
        v.write(field::TSC_OFFSET, 0x1111_2222_3333_4444).unwrap();
        assert_eq!(v.read(field::TSC_OFFSET + 1), Ok(0x1111_2222));
        v.write(field::TSC_OFFSET + 1, 0xAAAA).unwrap();
        assert_eq!(v.read(field::TSC_OFFSET), Ok(0xAAAA_3333_4444));
    }

    #[test]
    fn read_only_and_unknown_fields_fail() {
        let mut v = Vmcs::new();
        assert_eq!(v.write(field::VM_EXIT_REASON, 1), Err(FieldError::ReadOnly));
        assert_eq!(v.write(0x7FFF, 1), Err(FieldError::Unsupported));
        assert_eq!(v.read(0x7FFF), Err(FieldError::Unsupported));
        assert_eq!(FieldError::ReadOnly.number(), 13);
    }
}
