//! VMX facts: VMCS field encodings (SDM Vol. 3C Appendix B), control bits
//! (§25.6–§25.8), basic exit reasons (Appendix C) and exit-information formats
//! (§25.9).

/// VMCS field encodings (SDM Vol. 3C Appendix B).
pub mod field {
    /// Virtual-processor identifier (16-bit control field).
    pub const VIRTUAL_PROCESSOR_ID: u32 = 0x0000;
    // 16-bit guest-state fields.
    /// Guest ES selector.
    pub const GUEST_ES_SELECTOR: u32 = 0x0800;
    /// Guest CS selector.
    pub const GUEST_CS_SELECTOR: u32 = 0x0802;
    /// Guest SS selector.
    pub const GUEST_SS_SELECTOR: u32 = 0x0804;
    /// Guest DS selector.
    pub const GUEST_DS_SELECTOR: u32 = 0x0806;
    /// Guest FS selector.
    pub const GUEST_FS_SELECTOR: u32 = 0x0808;
    /// Guest GS selector.
    pub const GUEST_GS_SELECTOR: u32 = 0x080A;
    /// Guest LDTR selector.
    pub const GUEST_LDTR_SELECTOR: u32 = 0x080C;
    /// Guest TR selector.
    pub const GUEST_TR_SELECTOR: u32 = 0x080E;
    /// PML index (page-modification logging, SDM Vol. 3C §29.3.6).
    pub const GUEST_PML_INDEX: u32 = 0x0812;
    // 16-bit host-state fields.
    /// Host ES selector.
    pub const HOST_ES_SELECTOR: u32 = 0x0C00;
    /// Host CS selector.
    pub const HOST_CS_SELECTOR: u32 = 0x0C02;
    /// Host SS selector.
    pub const HOST_SS_SELECTOR: u32 = 0x0C04;
    /// Host DS selector.
    pub const HOST_DS_SELECTOR: u32 = 0x0C06;
    /// Host FS selector.
    pub const HOST_FS_SELECTOR: u32 = 0x0C08;
    /// Host GS selector.
    pub const HOST_GS_SELECTOR: u32 = 0x0C0A;
    /// Host TR selector.
    pub const HOST_TR_SELECTOR: u32 = 0x0C0C;
    // 64-bit control fields.
    /// I/O bitmap A address.
    pub const IO_BITMAP_A: u32 = 0x2000;
    /// I/O bitmap B address.
    pub const IO_BITMAP_B: u32 = 0x2002;
    /// MSR bitmap address.
    pub const MSR_BITMAP: u32 = 0x2004;
    /// VM-exit MSR-store address.
    pub const VM_EXIT_MSR_STORE_ADDR: u32 = 0x2006;
    /// VM-exit MSR-load address.
    pub const VM_EXIT_MSR_LOAD_ADDR: u32 = 0x2008;
    /// VM-entry MSR-load address.
    pub const VM_ENTRY_MSR_LOAD_ADDR: u32 = 0x200A;
    /// PML address: the page-modification log (SDM Vol. 3C §25.6.18).
    pub const PML_ADDRESS: u32 = 0x200E;
    /// TSC offset.
    pub const TSC_OFFSET: u32 = 0x2010;
    /// Virtual-APIC address (the page holding VTPR, with "use TPR shadow").
    pub const VIRTUAL_APIC_PAGE_ADDR: u32 = 0x2012;
    /// EPT pointer.
    pub const EPT_POINTER: u32 = 0x201A;
    // 64-bit read-only data fields.
    /// Guest-physical address (EPT violations and misconfigurations).
    pub const GUEST_PHYSICAL_ADDRESS: u32 = 0x2400;
    // 64-bit guest-state fields.
    /// VMCS link pointer.
    pub const VMCS_LINK_POINTER: u32 = 0x2800;
    /// Guest IA32_DEBUGCTL.
    pub const GUEST_IA32_DEBUGCTL: u32 = 0x2802;
    /// Guest IA32_PAT.
    pub const GUEST_IA32_PAT: u32 = 0x2804;
    /// Guest IA32_EFER.
    pub const GUEST_IA32_EFER: u32 = 0x2806;
    /// Guest PDPTE0 (PAE paging with EPT).
    pub const GUEST_PDPTE0: u32 = 0x280A;
    /// Guest PDPTE1.
    pub const GUEST_PDPTE1: u32 = 0x280C;
    /// Guest PDPTE2.
    pub const GUEST_PDPTE2: u32 = 0x280E;
    /// Guest PDPTE3.
    pub const GUEST_PDPTE3: u32 = 0x2810;
    // 64-bit host-state fields.
    /// Host IA32_PAT.
    pub const HOST_IA32_PAT: u32 = 0x2C00;
    /// Host IA32_EFER.
    pub const HOST_IA32_EFER: u32 = 0x2C02;
    // 32-bit control fields.
    /// Pin-based VM-execution controls.
    pub const PIN_BASED_VM_EXEC_CONTROL: u32 = 0x4000;
    /// Primary processor-based VM-execution controls.
    pub const CPU_BASED_VM_EXEC_CONTROL: u32 = 0x4002;
    /// Exception bitmap.
    pub const EXCEPTION_BITMAP: u32 = 0x4004;
    /// Page-fault error-code mask.
    pub const PAGE_FAULT_ERROR_CODE_MASK: u32 = 0x4006;
    /// Page-fault error-code match.
    pub const PAGE_FAULT_ERROR_CODE_MATCH: u32 = 0x4008;
    /// CR3-target count.
    pub const CR3_TARGET_COUNT: u32 = 0x400A;
    /// Primary VM-exit controls.
    pub const VM_EXIT_CONTROLS: u32 = 0x400C;
    /// VM-exit MSR-store count.
    pub const VM_EXIT_MSR_STORE_COUNT: u32 = 0x400E;
    /// VM-exit MSR-load count.
    pub const VM_EXIT_MSR_LOAD_COUNT: u32 = 0x4010;
    /// VM-entry controls.
    pub const VM_ENTRY_CONTROLS: u32 = 0x4012;
    /// VM-entry MSR-load count.
    pub const VM_ENTRY_MSR_LOAD_COUNT: u32 = 0x4014;
    /// VM-entry interruption-information field.
    pub const VM_ENTRY_INTR_INFO: u32 = 0x4016;
    /// VM-entry exception error code.
    pub const VM_ENTRY_EXCEPTION_ERROR_CODE: u32 = 0x4018;
    /// VM-entry instruction length.
    pub const VM_ENTRY_INSTRUCTION_LEN: u32 = 0x401A;
    /// TPR threshold.
    pub const TPR_THRESHOLD: u32 = 0x401C;
    /// Secondary processor-based VM-execution controls.
    pub const SECONDARY_VM_EXEC_CONTROL: u32 = 0x401E;
    /// PLE gap.
    pub const PLE_GAP: u32 = 0x4020;
    /// PLE window.
    pub const PLE_WINDOW: u32 = 0x4022;
    /// Notify window, in crystal-clock cycles.
    pub const NOTIFY_WINDOW: u32 = 0x4024;
    // 32-bit read-only data fields.
    /// VM-instruction error.
    pub const VM_INSTRUCTION_ERROR: u32 = 0x4400;
    /// Exit reason.
    pub const VM_EXIT_REASON: u32 = 0x4402;
    /// VM-exit interruption information.
    pub const VM_EXIT_INTR_INFO: u32 = 0x4404;
    /// VM-exit interruption error code.
    pub const VM_EXIT_INTR_ERROR_CODE: u32 = 0x4406;
    /// IDT-vectoring information.
    pub const IDT_VECTORING_INFO: u32 = 0x4408;
    /// IDT-vectoring error code.
    pub const IDT_VECTORING_ERROR_CODE: u32 = 0x440A;
    /// VM-exit instruction length.
    pub const VM_EXIT_INSTRUCTION_LEN: u32 = 0x440C;
    /// VM-exit instruction information.
    pub const VMX_INSTRUCTION_INFO: u32 = 0x440E;
    // 32-bit guest-state fields.
    /// Guest ES limit.
    pub const GUEST_ES_LIMIT: u32 = 0x4800;
    /// Guest CS limit.
    pub const GUEST_CS_LIMIT: u32 = 0x4802;
    /// Guest SS limit.
    pub const GUEST_SS_LIMIT: u32 = 0x4804;
    /// Guest DS limit.
    pub const GUEST_DS_LIMIT: u32 = 0x4806;
    /// Guest FS limit.
    pub const GUEST_FS_LIMIT: u32 = 0x4808;
    /// Guest GS limit.
    pub const GUEST_GS_LIMIT: u32 = 0x480A;
    /// Guest LDTR limit.
    pub const GUEST_LDTR_LIMIT: u32 = 0x480C;
    /// Guest TR limit.
    pub const GUEST_TR_LIMIT: u32 = 0x480E;
    /// Guest GDTR limit.
    pub const GUEST_GDTR_LIMIT: u32 = 0x4810;
    /// Guest IDTR limit.
    pub const GUEST_IDTR_LIMIT: u32 = 0x4812;
    /// Guest ES access rights.
    pub const GUEST_ES_AR_BYTES: u32 = 0x4814;
    /// Guest CS access rights.
    pub const GUEST_CS_AR_BYTES: u32 = 0x4816;
    /// Guest SS access rights.
    pub const GUEST_SS_AR_BYTES: u32 = 0x4818;
    /// Guest DS access rights.
    pub const GUEST_DS_AR_BYTES: u32 = 0x481A;
    /// Guest FS access rights.
    pub const GUEST_FS_AR_BYTES: u32 = 0x481C;
    /// Guest GS access rights.
    pub const GUEST_GS_AR_BYTES: u32 = 0x481E;
    /// Guest LDTR access rights.
    pub const GUEST_LDTR_AR_BYTES: u32 = 0x4820;
    /// Guest TR access rights.
    pub const GUEST_TR_AR_BYTES: u32 = 0x4822;
    /// Guest interruptibility state.
    pub const GUEST_INTERRUPTIBILITY_INFO: u32 = 0x4824;
    /// Guest activity state.
    pub const GUEST_ACTIVITY_STATE: u32 = 0x4826;
    /// Guest SMBASE.
    pub const GUEST_SMBASE: u32 = 0x4828;
    /// Guest IA32_SYSENTER_CS.
    pub const GUEST_SYSENTER_CS: u32 = 0x482A;
    /// VMX-preemption timer value.
    pub const VMX_PREEMPTION_TIMER_VALUE: u32 = 0x482E;
    // 32-bit host-state field.
    /// Host IA32_SYSENTER_CS.
    pub const HOST_IA32_SYSENTER_CS: u32 = 0x4C00;
    // Natural-width control fields.
    /// CR0 guest/host mask.
    pub const CR0_GUEST_HOST_MASK: u32 = 0x6000;
    /// CR4 guest/host mask.
    pub const CR4_GUEST_HOST_MASK: u32 = 0x6002;
    /// CR0 read shadow.
    pub const CR0_READ_SHADOW: u32 = 0x6004;
    /// CR4 read shadow.
    pub const CR4_READ_SHADOW: u32 = 0x6006;
    // Natural-width read-only data fields.
    /// Exit qualification.
    pub const EXIT_QUALIFICATION: u32 = 0x6400;
    /// Guest-linear address.
    pub const GUEST_LINEAR_ADDRESS: u32 = 0x640A;
    // Natural-width guest-state fields.
    /// Guest CR0.
    pub const GUEST_CR0: u32 = 0x6800;
    /// Guest CR3.
    pub const GUEST_CR3: u32 = 0x6802;
    /// Guest CR4.
    pub const GUEST_CR4: u32 = 0x6804;
    /// Guest ES base.
    pub const GUEST_ES_BASE: u32 = 0x6806;
    /// Guest CS base.
    pub const GUEST_CS_BASE: u32 = 0x6808;
    /// Guest SS base.
    pub const GUEST_SS_BASE: u32 = 0x680A;
    /// Guest DS base.
    pub const GUEST_DS_BASE: u32 = 0x680C;
    /// Guest FS base.
    pub const GUEST_FS_BASE: u32 = 0x680E;
    /// Guest GS base.
    pub const GUEST_GS_BASE: u32 = 0x6810;
    /// Guest LDTR base.
    pub const GUEST_LDTR_BASE: u32 = 0x6812;
    /// Guest TR base.
    pub const GUEST_TR_BASE: u32 = 0x6814;
    /// Guest GDTR base.
    pub const GUEST_GDTR_BASE: u32 = 0x6816;
    /// Guest IDTR base.
    pub const GUEST_IDTR_BASE: u32 = 0x6818;
    /// Guest DR7.
    pub const GUEST_DR7: u32 = 0x681A;
    /// Guest RSP.
    pub const GUEST_RSP: u32 = 0x681C;
    /// Guest RIP.
    pub const GUEST_RIP: u32 = 0x681E;
    /// Guest RFLAGS.
    pub const GUEST_RFLAGS: u32 = 0x6820;
    /// Guest pending debug exceptions.
    pub const GUEST_PENDING_DBG_EXCEPTIONS: u32 = 0x6822;
    /// Guest IA32_SYSENTER_ESP.
    pub const GUEST_SYSENTER_ESP: u32 = 0x6824;
    /// Guest IA32_SYSENTER_EIP.
    pub const GUEST_SYSENTER_EIP: u32 = 0x6826;
    // Natural-width host-state fields.
    /// Host CR0.
    pub const HOST_CR0: u32 = 0x6C00;
    /// Host CR3.
    pub const HOST_CR3: u32 = 0x6C02;
    /// Host CR4.
    pub const HOST_CR4: u32 = 0x6C04;
    /// Host FS base.
    pub const HOST_FS_BASE: u32 = 0x6C06;
    /// Host GS base.
    pub const HOST_GS_BASE: u32 = 0x6C08;
    /// Host TR base.
    pub const HOST_TR_BASE: u32 = 0x6C0A;
    /// Host GDTR base.
    pub const HOST_GDTR_BASE: u32 = 0x6C0C;
    /// Host IDTR base.
    pub const HOST_IDTR_BASE: u32 = 0x6C0E;
    /// Host IA32_SYSENTER_ESP.
    pub const HOST_IA32_SYSENTER_ESP: u32 = 0x6C10;
    /// Host IA32_SYSENTER_EIP.
    pub const HOST_IA32_SYSENTER_EIP: u32 = 0x6C12;
    /// Host RSP.
    pub const HOST_RSP: u32 = 0x6C14;
    /// Host RIP.
    pub const HOST_RIP: u32 = 0x6C16;

    /// Width of a field, from bits 14:13 of its encoding (SDM Vol. 3C §25.11.2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Width {
        /// 16-bit field.
        Word,
        /// 64-bit field.
        Quad,
        /// 32-bit field.
        Dword,
        /// Natural-width field (64 bits on a 64-bit CPU).
        Natural,
    }

    /// The width encoded in a field encoding.
    pub const fn width(encoding: u32) -> Width {
        match (encoding >> 13) & 3 {
            0 => Width::Word,
            1 => Width::Quad,
            2 => Width::Dword,
            _ => Width::Natural,
        }
    }

    /// Whether the encoding names the high half of a 64-bit field (bit 0 set).
    pub const fn is_high_access(encoding: u32) -> bool {
        matches!(width(encoding), Width::Quad) && encoding & 1 == 1
    }

    /// Whether a field is read-only VM-exit information (type bits 11:10 = 1).
    pub const fn is_read_only(encoding: u32) -> bool {
        (encoding >> 10) & 3 == 1
    }

    /// The field's name (the constant's, in lower case: `guest_rip`), or
    /// `None` for an encoding this crate does not name.
    pub fn name(encoding: u32) -> Option<&'static str> {
        Some(match encoding {
            VIRTUAL_PROCESSOR_ID => "virtual_processor_id",
            GUEST_ES_SELECTOR => "guest_es_selector",
            GUEST_CS_SELECTOR => "guest_cs_selector",
            GUEST_SS_SELECTOR => "guest_ss_selector",
            GUEST_DS_SELECTOR => "guest_ds_selector",
            GUEST_FS_SELECTOR => "guest_fs_selector",
            GUEST_GS_SELECTOR => "guest_gs_selector",
            GUEST_LDTR_SELECTOR => "guest_ldtr_selector",
            GUEST_TR_SELECTOR => "guest_tr_selector",
            GUEST_PML_INDEX => "guest_pml_index",
            HOST_ES_SELECTOR => "host_es_selector",
            HOST_CS_SELECTOR => "host_cs_selector",
            HOST_SS_SELECTOR => "host_ss_selector",
            HOST_DS_SELECTOR => "host_ds_selector",
            HOST_FS_SELECTOR => "host_fs_selector",
            HOST_GS_SELECTOR => "host_gs_selector",
            HOST_TR_SELECTOR => "host_tr_selector",
            IO_BITMAP_A => "io_bitmap_a",
            IO_BITMAP_B => "io_bitmap_b",
            MSR_BITMAP => "msr_bitmap",
            VM_EXIT_MSR_STORE_ADDR => "vm_exit_msr_store_addr",
            VM_EXIT_MSR_LOAD_ADDR => "vm_exit_msr_load_addr",
            VM_ENTRY_MSR_LOAD_ADDR => "vm_entry_msr_load_addr",
            PML_ADDRESS => "pml_address",
            TSC_OFFSET => "tsc_offset",
            VIRTUAL_APIC_PAGE_ADDR => "virtual_apic_page_addr",
            EPT_POINTER => "ept_pointer",
            GUEST_PHYSICAL_ADDRESS => "guest_physical_address",
            VMCS_LINK_POINTER => "vmcs_link_pointer",
            GUEST_IA32_DEBUGCTL => "guest_ia32_debugctl",
            GUEST_IA32_PAT => "guest_ia32_pat",
            GUEST_IA32_EFER => "guest_ia32_efer",
            GUEST_PDPTE0 => "guest_pdpte0",
            GUEST_PDPTE1 => "guest_pdpte1",
            GUEST_PDPTE2 => "guest_pdpte2",
            GUEST_PDPTE3 => "guest_pdpte3",
            HOST_IA32_PAT => "host_ia32_pat",
            HOST_IA32_EFER => "host_ia32_efer",
            PIN_BASED_VM_EXEC_CONTROL => "pin_based_vm_exec_control",
            CPU_BASED_VM_EXEC_CONTROL => "cpu_based_vm_exec_control",
            EXCEPTION_BITMAP => "exception_bitmap",
            PAGE_FAULT_ERROR_CODE_MASK => "page_fault_error_code_mask",
            PAGE_FAULT_ERROR_CODE_MATCH => "page_fault_error_code_match",
            CR3_TARGET_COUNT => "cr3_target_count",
            VM_EXIT_CONTROLS => "vm_exit_controls",
            VM_EXIT_MSR_STORE_COUNT => "vm_exit_msr_store_count",
            VM_EXIT_MSR_LOAD_COUNT => "vm_exit_msr_load_count",
            VM_ENTRY_CONTROLS => "vm_entry_controls",
            VM_ENTRY_MSR_LOAD_COUNT => "vm_entry_msr_load_count",
            VM_ENTRY_INTR_INFO => "vm_entry_intr_info",
            VM_ENTRY_EXCEPTION_ERROR_CODE => "vm_entry_exception_error_code",
            VM_ENTRY_INSTRUCTION_LEN => "vm_entry_instruction_len",
            TPR_THRESHOLD => "tpr_threshold",
            SECONDARY_VM_EXEC_CONTROL => "secondary_vm_exec_control",
            PLE_GAP => "ple_gap",
            PLE_WINDOW => "ple_window",
            NOTIFY_WINDOW => "notify_window",
            VM_INSTRUCTION_ERROR => "vm_instruction_error",
            VM_EXIT_REASON => "vm_exit_reason",
            VM_EXIT_INTR_INFO => "vm_exit_intr_info",
            VM_EXIT_INTR_ERROR_CODE => "vm_exit_intr_error_code",
            IDT_VECTORING_INFO => "idt_vectoring_info",
            IDT_VECTORING_ERROR_CODE => "idt_vectoring_error_code",
            VM_EXIT_INSTRUCTION_LEN => "vm_exit_instruction_len",
            VMX_INSTRUCTION_INFO => "vmx_instruction_info",
            GUEST_ES_LIMIT => "guest_es_limit",
            GUEST_CS_LIMIT => "guest_cs_limit",
            GUEST_SS_LIMIT => "guest_ss_limit",
            GUEST_DS_LIMIT => "guest_ds_limit",
            GUEST_FS_LIMIT => "guest_fs_limit",
            GUEST_GS_LIMIT => "guest_gs_limit",
            GUEST_LDTR_LIMIT => "guest_ldtr_limit",
            GUEST_TR_LIMIT => "guest_tr_limit",
            GUEST_GDTR_LIMIT => "guest_gdtr_limit",
            GUEST_IDTR_LIMIT => "guest_idtr_limit",
            GUEST_ES_AR_BYTES => "guest_es_ar_bytes",
            GUEST_CS_AR_BYTES => "guest_cs_ar_bytes",
            GUEST_SS_AR_BYTES => "guest_ss_ar_bytes",
            GUEST_DS_AR_BYTES => "guest_ds_ar_bytes",
            GUEST_FS_AR_BYTES => "guest_fs_ar_bytes",
            GUEST_GS_AR_BYTES => "guest_gs_ar_bytes",
            GUEST_LDTR_AR_BYTES => "guest_ldtr_ar_bytes",
            GUEST_TR_AR_BYTES => "guest_tr_ar_bytes",
            GUEST_INTERRUPTIBILITY_INFO => "guest_interruptibility_info",
            GUEST_ACTIVITY_STATE => "guest_activity_state",
            GUEST_SMBASE => "guest_smbase",
            GUEST_SYSENTER_CS => "guest_sysenter_cs",
            VMX_PREEMPTION_TIMER_VALUE => "vmx_preemption_timer_value",
            HOST_IA32_SYSENTER_CS => "host_ia32_sysenter_cs",
            CR0_GUEST_HOST_MASK => "cr0_guest_host_mask",
            CR4_GUEST_HOST_MASK => "cr4_guest_host_mask",
            CR0_READ_SHADOW => "cr0_read_shadow",
            CR4_READ_SHADOW => "cr4_read_shadow",
            EXIT_QUALIFICATION => "exit_qualification",
            GUEST_LINEAR_ADDRESS => "guest_linear_address",
            GUEST_CR0 => "guest_cr0",
            GUEST_CR3 => "guest_cr3",
            GUEST_CR4 => "guest_cr4",
            GUEST_ES_BASE => "guest_es_base",
            GUEST_CS_BASE => "guest_cs_base",
            GUEST_SS_BASE => "guest_ss_base",
            GUEST_DS_BASE => "guest_ds_base",
            GUEST_FS_BASE => "guest_fs_base",
            GUEST_GS_BASE => "guest_gs_base",
            GUEST_LDTR_BASE => "guest_ldtr_base",
            GUEST_TR_BASE => "guest_tr_base",
            GUEST_GDTR_BASE => "guest_gdtr_base",
            GUEST_IDTR_BASE => "guest_idtr_base",
            GUEST_DR7 => "guest_dr7",
            GUEST_RSP => "guest_rsp",
            GUEST_RIP => "guest_rip",
            GUEST_RFLAGS => "guest_rflags",
            GUEST_PENDING_DBG_EXCEPTIONS => "guest_pending_dbg_exceptions",
            GUEST_SYSENTER_ESP => "guest_sysenter_esp",
            GUEST_SYSENTER_EIP => "guest_sysenter_eip",
            HOST_CR0 => "host_cr0",
            HOST_CR3 => "host_cr3",
            HOST_CR4 => "host_cr4",
            HOST_FS_BASE => "host_fs_base",
            HOST_GS_BASE => "host_gs_base",
            HOST_TR_BASE => "host_tr_base",
            HOST_GDTR_BASE => "host_gdtr_base",
            HOST_IDTR_BASE => "host_idtr_base",
            HOST_IA32_SYSENTER_ESP => "host_ia32_sysenter_esp",
            HOST_IA32_SYSENTER_EIP => "host_ia32_sysenter_eip",
            HOST_RSP => "host_rsp",
            HOST_RIP => "host_rip",
            _ => return None,
        })
    }

    /// Every field this crate names, in the order of its definitions.
    pub const ALL: [u32; 127] = [
        VIRTUAL_PROCESSOR_ID,
        GUEST_ES_SELECTOR,
        GUEST_CS_SELECTOR,
        GUEST_SS_SELECTOR,
        GUEST_DS_SELECTOR,
        GUEST_FS_SELECTOR,
        GUEST_GS_SELECTOR,
        GUEST_LDTR_SELECTOR,
        GUEST_TR_SELECTOR,
        GUEST_PML_INDEX,
        HOST_ES_SELECTOR,
        HOST_CS_SELECTOR,
        HOST_SS_SELECTOR,
        HOST_DS_SELECTOR,
        HOST_FS_SELECTOR,
        HOST_GS_SELECTOR,
        HOST_TR_SELECTOR,
        IO_BITMAP_A,
        IO_BITMAP_B,
        MSR_BITMAP,
        VM_EXIT_MSR_STORE_ADDR,
        VM_EXIT_MSR_LOAD_ADDR,
        VM_ENTRY_MSR_LOAD_ADDR,
        PML_ADDRESS,
        TSC_OFFSET,
        VIRTUAL_APIC_PAGE_ADDR,
        EPT_POINTER,
        GUEST_PHYSICAL_ADDRESS,
        VMCS_LINK_POINTER,
        GUEST_IA32_DEBUGCTL,
        GUEST_IA32_PAT,
        GUEST_IA32_EFER,
        GUEST_PDPTE0,
        GUEST_PDPTE1,
        GUEST_PDPTE2,
        GUEST_PDPTE3,
        HOST_IA32_PAT,
        HOST_IA32_EFER,
        PIN_BASED_VM_EXEC_CONTROL,
        CPU_BASED_VM_EXEC_CONTROL,
        EXCEPTION_BITMAP,
        PAGE_FAULT_ERROR_CODE_MASK,
        PAGE_FAULT_ERROR_CODE_MATCH,
        CR3_TARGET_COUNT,
        VM_EXIT_CONTROLS,
        VM_EXIT_MSR_STORE_COUNT,
        VM_EXIT_MSR_LOAD_COUNT,
        VM_ENTRY_CONTROLS,
        VM_ENTRY_MSR_LOAD_COUNT,
        VM_ENTRY_INTR_INFO,
        VM_ENTRY_EXCEPTION_ERROR_CODE,
        VM_ENTRY_INSTRUCTION_LEN,
        TPR_THRESHOLD,
        SECONDARY_VM_EXEC_CONTROL,
        PLE_GAP,
        PLE_WINDOW,
        NOTIFY_WINDOW,
        VM_INSTRUCTION_ERROR,
        VM_EXIT_REASON,
        VM_EXIT_INTR_INFO,
        VM_EXIT_INTR_ERROR_CODE,
        IDT_VECTORING_INFO,
        IDT_VECTORING_ERROR_CODE,
        VM_EXIT_INSTRUCTION_LEN,
        VMX_INSTRUCTION_INFO,
        GUEST_ES_LIMIT,
        GUEST_CS_LIMIT,
        GUEST_SS_LIMIT,
        GUEST_DS_LIMIT,
        GUEST_FS_LIMIT,
        GUEST_GS_LIMIT,
        GUEST_LDTR_LIMIT,
        GUEST_TR_LIMIT,
        GUEST_GDTR_LIMIT,
        GUEST_IDTR_LIMIT,
        GUEST_ES_AR_BYTES,
        GUEST_CS_AR_BYTES,
        GUEST_SS_AR_BYTES,
        GUEST_DS_AR_BYTES,
        GUEST_FS_AR_BYTES,
        GUEST_GS_AR_BYTES,
        GUEST_LDTR_AR_BYTES,
        GUEST_TR_AR_BYTES,
        GUEST_INTERRUPTIBILITY_INFO,
        GUEST_ACTIVITY_STATE,
        GUEST_SMBASE,
        GUEST_SYSENTER_CS,
        VMX_PREEMPTION_TIMER_VALUE,
        HOST_IA32_SYSENTER_CS,
        CR0_GUEST_HOST_MASK,
        CR4_GUEST_HOST_MASK,
        CR0_READ_SHADOW,
        CR4_READ_SHADOW,
        EXIT_QUALIFICATION,
        GUEST_LINEAR_ADDRESS,
        GUEST_CR0,
        GUEST_CR3,
        GUEST_CR4,
        GUEST_ES_BASE,
        GUEST_CS_BASE,
        GUEST_SS_BASE,
        GUEST_DS_BASE,
        GUEST_FS_BASE,
        GUEST_GS_BASE,
        GUEST_LDTR_BASE,
        GUEST_TR_BASE,
        GUEST_GDTR_BASE,
        GUEST_IDTR_BASE,
        GUEST_DR7,
        GUEST_RSP,
        GUEST_RIP,
        GUEST_RFLAGS,
        GUEST_PENDING_DBG_EXCEPTIONS,
        GUEST_SYSENTER_ESP,
        GUEST_SYSENTER_EIP,
        HOST_CR0,
        HOST_CR3,
        HOST_CR4,
        HOST_FS_BASE,
        HOST_GS_BASE,
        HOST_TR_BASE,
        HOST_GDTR_BASE,
        HOST_IDTR_BASE,
        HOST_IA32_SYSENTER_ESP,
        HOST_IA32_SYSENTER_EIP,
        HOST_RSP,
        HOST_RIP,
    ];
}

/// Pin-based VM-execution controls (SDM Vol. 3C §25.6.1).
pub mod pin {
    /// External-interrupt exiting.
    pub const EXT_INTR_EXITING: u32 = 1 << 0;
    /// NMI exiting.
    pub const NMI_EXITING: u32 = 1 << 3;
    /// Virtual NMIs.
    pub const VIRTUAL_NMIS: u32 = 1 << 5;
    /// Activate VMX-preemption timer.
    pub const PREEMPTION_TIMER: u32 = 1 << 6;
}

/// Primary processor-based VM-execution controls (SDM Vol. 3C §25.6.2).
pub mod proc {
    /// Interrupt-window exiting.
    pub const INTR_WINDOW_EXITING: u32 = 1 << 2;
    /// Use TSC offsetting.
    pub const USE_TSC_OFFSETTING: u32 = 1 << 3;
    /// HLT exiting.
    pub const HLT_EXITING: u32 = 1 << 7;
    /// INVLPG exiting.
    pub const INVLPG_EXITING: u32 = 1 << 9;
    /// MWAIT exiting.
    pub const MWAIT_EXITING: u32 = 1 << 10;
    /// RDPMC exiting.
    pub const RDPMC_EXITING: u32 = 1 << 11;
    /// RDTSC exiting.
    pub const RDTSC_EXITING: u32 = 1 << 12;
    /// CR3-load exiting.
    pub const CR3_LOAD_EXITING: u32 = 1 << 15;
    /// CR3-store exiting.
    pub const CR3_STORE_EXITING: u32 = 1 << 16;
    /// CR8-load exiting.
    pub const CR8_LOAD_EXITING: u32 = 1 << 19;
    /// CR8-store exiting.
    pub const CR8_STORE_EXITING: u32 = 1 << 20;
    /// Use TPR shadow.
    pub const USE_TPR_SHADOW: u32 = 1 << 21;
    /// NMI-window exiting.
    pub const NMI_WINDOW_EXITING: u32 = 1 << 22;
    /// MOV-DR exiting.
    pub const MOV_DR_EXITING: u32 = 1 << 23;
    /// Unconditional I/O exiting.
    pub const UNCOND_IO_EXITING: u32 = 1 << 24;
    /// Use I/O bitmaps.
    pub const USE_IO_BITMAPS: u32 = 1 << 25;
    /// Monitor trap flag.
    pub const MONITOR_TRAP_FLAG: u32 = 1 << 27;
    /// Use MSR bitmaps.
    pub const USE_MSR_BITMAPS: u32 = 1 << 28;
    /// MONITOR exiting.
    pub const MONITOR_EXITING: u32 = 1 << 29;
    /// PAUSE exiting.
    pub const PAUSE_EXITING: u32 = 1 << 30;
    /// Activate secondary controls.
    pub const ACTIVATE_SECONDARY_CONTROLS: u32 = 1 << 31;
}

/// Secondary processor-based VM-execution controls (SDM Vol. 3C §25.6.2).
pub mod proc2 {
    /// Enable EPT.
    pub const ENABLE_EPT: u32 = 1 << 1;
    /// Descriptor-table exiting.
    pub const DESC_TABLE_EXITING: u32 = 1 << 2;
    /// Enable RDTSCP.
    pub const ENABLE_RDTSCP: u32 = 1 << 3;
    /// Enable VPID.
    pub const ENABLE_VPID: u32 = 1 << 5;
    /// WBINVD exiting.
    pub const WBINVD_EXITING: u32 = 1 << 6;
    /// Unrestricted guest.
    pub const UNRESTRICTED_GUEST: u32 = 1 << 7;
    /// PAUSE-loop exiting (PLE_Gap and PLE_Window, at CPL 0).
    pub const PAUSE_LOOP_EXITING: u32 = 1 << 10;
    /// Enable INVPCID.
    pub const ENABLE_INVPCID: u32 = 1 << 12;
    /// Enable PML (page-modification logging).
    pub const ENABLE_PML: u32 = 1 << 17;
    /// Bus-lock detection (VM exit 74).
    pub const BUS_LOCK_DETECTION: u32 = 1 << 30;
    /// Notify VM exiting ("instruction timeout" in newer SDM editions).
    pub const NOTIFY_VM_EXITING: u32 = 1 << 31;
}

/// VM-exit controls (SDM Vol. 3C §25.7.1).
pub mod exit_ctl {
    /// Save debug controls.
    pub const SAVE_DEBUG_CONTROLS: u32 = 1 << 2;
    /// Host address-space size (64-bit host).
    pub const HOST_ADDR_SPACE_SIZE: u32 = 1 << 9;
    /// Acknowledge interrupt on exit.
    pub const ACK_INTR_ON_EXIT: u32 = 1 << 15;
    /// Save IA32_PAT.
    pub const SAVE_IA32_PAT: u32 = 1 << 18;
    /// Load IA32_PAT.
    pub const LOAD_IA32_PAT: u32 = 1 << 19;
    /// Save IA32_EFER.
    pub const SAVE_IA32_EFER: u32 = 1 << 20;
    /// Load IA32_EFER.
    pub const LOAD_IA32_EFER: u32 = 1 << 21;
    /// Save VMX-preemption timer value.
    pub const SAVE_PREEMPTION_TIMER: u32 = 1 << 22;
}

/// VM-entry controls (SDM Vol. 3C §25.8.1).
pub mod entry_ctl {
    /// Load debug controls.
    pub const LOAD_DEBUG_CONTROLS: u32 = 1 << 2;
    /// IA-32e mode guest.
    pub const IA32E_MODE_GUEST: u32 = 1 << 9;
    /// Load IA32_PAT.
    pub const LOAD_IA32_PAT: u32 = 1 << 14;
    /// Load IA32_EFER.
    pub const LOAD_IA32_EFER: u32 = 1 << 15;
}

/// Basic exit reasons (SDM Vol. 3C Appendix C).
pub mod exit_reason {
    /// Exception or non-maskable interrupt.
    pub const EXCEPTION_NMI: u16 = 0;
    /// External interrupt.
    pub const EXTERNAL_INTERRUPT: u16 = 1;
    /// Triple fault.
    pub const TRIPLE_FAULT: u16 = 2;
    /// INIT signal.
    pub const INIT_SIGNAL: u16 = 3;
    /// Interrupt window.
    pub const INTERRUPT_WINDOW: u16 = 7;
    /// NMI window.
    pub const NMI_WINDOW: u16 = 8;
    /// Task switch.
    pub const TASK_SWITCH: u16 = 9;
    /// CPUID.
    pub const CPUID: u16 = 10;
    /// HLT.
    pub const HLT: u16 = 12;
    /// INVD.
    pub const INVD: u16 = 13;
    /// INVLPG.
    pub const INVLPG: u16 = 14;
    /// RDPMC.
    pub const RDPMC: u16 = 15;
    /// RDTSC.
    pub const RDTSC: u16 = 16;
    /// VMCALL.
    pub const VMCALL: u16 = 18;
    /// VMCLEAR.
    pub const VMCLEAR: u16 = 19;
    /// VMLAUNCH.
    pub const VMLAUNCH: u16 = 20;
    /// VMPTRLD.
    pub const VMPTRLD: u16 = 21;
    /// VMPTRST.
    pub const VMPTRST: u16 = 22;
    /// VMREAD.
    pub const VMREAD: u16 = 23;
    /// VMRESUME.
    pub const VMRESUME: u16 = 24;
    /// VMWRITE.
    pub const VMWRITE: u16 = 25;
    /// VMXOFF.
    pub const VMXOFF: u16 = 26;
    /// VMXON.
    pub const VMXON: u16 = 27;
    /// Control-register access.
    pub const CR_ACCESS: u16 = 28;
    /// MOV DR.
    pub const DR_ACCESS: u16 = 29;
    /// I/O instruction.
    pub const IO_INSTRUCTION: u16 = 30;
    /// RDMSR.
    pub const MSR_READ: u16 = 31;
    /// WRMSR.
    pub const MSR_WRITE: u16 = 32;
    /// VM-entry failure due to invalid guest state.
    pub const INVALID_GUEST_STATE: u16 = 33;
    /// VM-entry failure due to MSR loading.
    pub const MSR_LOAD_FAIL: u16 = 34;
    /// MWAIT.
    pub const MWAIT: u16 = 36;
    /// Monitor trap flag.
    pub const MONITOR_TRAP_FLAG: u16 = 37;
    /// MONITOR.
    pub const MONITOR: u16 = 39;
    /// PAUSE.
    pub const PAUSE: u16 = 40;
    /// VM-entry failure due to machine-check event.
    pub const MCE_DURING_VMENTRY: u16 = 41;
    /// TPR below threshold.
    pub const TPR_BELOW_THRESHOLD: u16 = 43;
    /// APIC access.
    pub const APIC_ACCESS: u16 = 44;
    /// Access to GDTR or IDTR.
    pub const GDTR_IDTR: u16 = 46;
    /// Access to LDTR or TR.
    pub const LDTR_TR: u16 = 47;
    /// EPT violation.
    pub const EPT_VIOLATION: u16 = 48;
    /// EPT misconfiguration.
    pub const EPT_MISCONFIG: u16 = 49;
    /// Page-modification log full.
    pub const PML_FULL: u16 = 62;
    /// INVEPT.
    pub const INVEPT: u16 = 50;
    /// RDTSCP.
    pub const RDTSCP: u16 = 51;
    /// VMX-preemption timer expired.
    pub const PREEMPTION_TIMER: u16 = 52;
    /// INVVPID.
    pub const INVVPID: u16 = 53;
    /// WBINVD.
    pub const WBINVD: u16 = 54;
    /// XSETBV.
    pub const XSETBV: u16 = 55;
    /// Bus lock.
    pub const BUS_LOCK: u16 = 74;
    /// Notify (instruction timeout).
    pub const NOTIFY: u16 = 75;

    /// Bit 31 of the exit-reason field: VM-entry failure.
    pub const ENTRY_FAILURE: u32 = 1 << 31;

    /// A short name for a basic exit reason, for logs and statistics.
    pub fn name(reason: u16) -> &'static str {
        match reason {
            EXCEPTION_NMI => "exception-nmi",
            EXTERNAL_INTERRUPT => "external-interrupt",
            TRIPLE_FAULT => "triple-fault",
            INIT_SIGNAL => "init-signal",
            INTERRUPT_WINDOW => "interrupt-window",
            NMI_WINDOW => "nmi-window",
            TASK_SWITCH => "task-switch",
            CPUID => "cpuid",
            HLT => "hlt",
            INVD => "invd",
            INVLPG => "invlpg",
            RDPMC => "rdpmc",
            RDTSC => "rdtsc",
            VMCALL => "vmcall",
            VMCLEAR => "vmclear",
            VMLAUNCH => "vmlaunch",
            VMPTRLD => "vmptrld",
            VMPTRST => "vmptrst",
            VMREAD => "vmread",
            VMRESUME => "vmresume",
            VMWRITE => "vmwrite",
            VMXOFF => "vmxoff",
            VMXON => "vmxon",
            INVEPT => "invept",
            INVVPID => "invvpid",
            TPR_BELOW_THRESHOLD => "tpr-below-threshold",
            APIC_ACCESS => "apic-access",
            GDTR_IDTR => "gdtr-idtr-access",
            LDTR_TR => "ldtr-tr-access",
            CR_ACCESS => "cr-access",
            DR_ACCESS => "dr-access",
            IO_INSTRUCTION => "io-instruction",
            MSR_READ => "msr-read",
            MSR_WRITE => "msr-write",
            INVALID_GUEST_STATE => "invalid-guest-state",
            MSR_LOAD_FAIL => "msr-load-fail",
            MWAIT => "mwait",
            MONITOR_TRAP_FLAG => "monitor-trap-flag",
            MONITOR => "monitor",
            PAUSE => "pause",
            EPT_VIOLATION => "ept-violation",
            EPT_MISCONFIG => "ept-misconfig",
            RDTSCP => "rdtscp",
            PREEMPTION_TIMER => "preemption-timer",
            WBINVD => "wbinvd",
            XSETBV => "xsetbv",
            BUS_LOCK => "bus-lock",
            NOTIFY => "notify",
            _ => "other",
        }
    }
}

/// Interruption-information format shared by the VM-entry interruption
/// information, VM-exit interruption information and IDT-vectoring
/// information fields (SDM Vol. 3C §25.8.3, §25.9.2, §25.9.3).
pub mod intr_info {
    /// Vector in bits 7:0.
    pub const VECTOR_MASK: u32 = 0xFF;
    /// Type shift (bits 10:8).
    pub const TYPE_SHIFT: u32 = 8;
    /// Type: external interrupt.
    pub const TYPE_EXT_INTR: u32 = 0;
    /// Type: NMI.
    pub const TYPE_NMI: u32 = 2;
    /// Type: hardware exception.
    pub const TYPE_HW_EXCEPTION: u32 = 3;
    /// Type: software interrupt (INT n).
    pub const TYPE_SW_INTR: u32 = 4;
    /// Type: privileged software exception (INT1).
    pub const TYPE_PRIV_SW_EXCEPTION: u32 = 5;
    /// Type: software exception (INT3, INTO).
    pub const TYPE_SW_EXCEPTION: u32 = 6;
    /// Error code valid.
    pub const ERROR_CODE_VALID: u32 = 1 << 11;
    /// NMI unblocking due to IRET (exit interruption information only).
    pub const NMI_UNBLOCKING_IRET: u32 = 1 << 12;
    /// Valid.
    pub const VALID: u32 = 1 << 31;

    /// Builds an interruption-information value.
    pub const fn make(vector: u8, kind: u32, error_code: bool) -> u32 {
        VALID | (kind << TYPE_SHIFT) | vector as u32 | if error_code { ERROR_CODE_VALID } else { 0 }
    }

    /// The VM-entry checks on event injection (SDM Vol. 3C §27.2.1.3) for
    /// VM-entry interruption information `info`, exception error code
    /// `error_code` and instruction length `len`, on a processor with the
    /// monitor trap flag (type 7, vector 0, exists) and IA32_VMX_MISC[30] =
    /// 0 (a software event's length is 1 to 15). `protected`: the guest
    /// will be in protected mode ("unrestricted guest" is 0 or guest
    /// CR0.PE is 1), where exceptions that push an error code must have
    /// one. True when the valid bit is clear.
    pub fn injection_valid(info: u32, error_code: u32, len: u32, protected: bool) -> bool {
        if info & VALID == 0 {
            return true;
        }
        let ty = (info >> TYPE_SHIFT) & 7;
        let vector = info & VECTOR_MASK;
        // No reserved type (1), reserved bits 30:12 clear.
        if ty == 1 || info & 0x7FFF_F000 != 0 {
            return false;
        }
        // Other event: vector 0 alone, a pending MTF VM exit.
        if ty == 7 {
            return vector == 0 && info & ERROR_CODE_VALID == 0;
        }
        if (ty == TYPE_NMI && vector != 2) || (ty == TYPE_HW_EXCEPTION && vector > 31) {
            return false;
        }
        let wants_code =
            protected && ty == TYPE_HW_EXCEPTION && crate::exception::has_error_code(vector as u8);
        let has_code = info & ERROR_CODE_VALID != 0;
        // An error code exactly where one is delivered, bits 31:16 clear.
        if has_code != wants_code || (has_code && error_code >> 16 != 0) {
            return false;
        }
        let software = matches!(
            ty,
            TYPE_SW_INTR | TYPE_PRIV_SW_EXCEPTION | TYPE_SW_EXCEPTION
        );
        !software || (1..=15).contains(&len)
    }
}

/// Guest interruptibility-state bits (SDM Vol. 3C §25.4.2, Table 25-3).
pub mod interruptibility {
    /// Blocking by STI.
    pub const STI: u32 = 1 << 0;
    /// Blocking by MOV SS.
    pub const MOV_SS: u32 = 1 << 1;
    /// Blocking by SMI.
    pub const SMI: u32 = 1 << 2;
    /// Blocking by NMI.
    pub const NMI: u32 = 1 << 3;
}

/// The pending-debug-exceptions field (SDM Vol. 3C §25.4.2, Table 25-5):
/// debug traps recognised but not yet delivered when the guest state was
/// saved.
pub mod pending_dbg {
    /// B3–B0: breakpoint conditions met (DR6's positions).
    pub const BREAKPOINTS: u64 = 0xF;
    /// Enabled breakpoint: at least one data or I/O breakpoint enabled in
    /// DR7 was met.
    pub const ENABLED_BP: u64 = 1 << 12;
    /// BS: a single-step trap (DR6's position).
    pub const BS: u64 = 1 << 14;
    /// Every bit defined without RTM; VM entry fails on the others.
    pub const DEFINED: u64 = BREAKPOINTS | ENABLED_BP | BS;

    /// The field's check at VM entry (SDM Vol. 3C §27.3.1.5): no reserved
    /// bit, and while events are blocked by STI or MOV SS or the activity
    /// state is HLT (`held`), BS is 1 exactly when a single step is pending:
    /// RFLAGS.TF = 1 and IA32_DEBUGCTL.BTF = 0.
    pub fn valid(pending: u64, held: bool, tf: bool, btf: bool) -> bool {
        pending & !DEFINED == 0 && (!held || (pending & BS != 0) == (tf && !btf))
    }
}

/// The EPT pointer's check at VM entry (SDM Vol. 3C §27.2.1.1) on a
/// processor whose IA32_VMX_EPT_VPID_CAP is `cap`: a memory type it reports
/// (UC, bit 8; WB, bit 14), a 4-level walk (bit 6), bit 6 (accessed and
/// dirty flags) only with bit 21, bits 11:7 clear, and no bit beyond
/// `phys_bits`. INVEPT's single-context type checks its EPTP the same way.
pub fn eptp_valid(eptp: u64, cap: u64, phys_bits: u32) -> bool {
    let has = |bit: u32| cap & 1 << bit != 0;
    let memory_type = match eptp & 7 {
        0 => has(8),
        6 => has(14),
        _ => false,
    };
    memory_type
        && (eptp >> 3) & 7 == 3
        && has(6)
        && (eptp & 1 << 6 == 0 || has(21))
        && eptp & 0xF80 == 0
        && eptp >> phys_bits == 0
}

/// The VMCS link pointer's check at VM entry (SDM Vol. 3C §27.3.1.5) on a
/// processor without VMCS shadowing in use: all ones, or a 4 KiB-aligned
/// address within `phys_bits` that is not the current VMCS (`current`) and
/// whose first dword (`header`, `None` where it cannot be read) holds
/// `revision` with bit 31 clear ("VMCS shadowing" being 0).
pub fn link_pointer_valid(
    link: u64,
    phys_bits: u32,
    current: Option<u64>,
    revision: u32,
    header: impl FnOnce(u64) -> Option<u32>,
) -> bool {
    if link == u64::MAX {
        return true;
    }
    link & 0xFFF == 0
        && link >> phys_bits == 0
        && current != Some(link)
        && header(link) == Some(revision & 0x7FFF_FFFF)
}

/// Guest activity states (SDM Vol. 3C §25.4.2, Table 25-4).
pub mod activity {
    /// Active.
    pub const ACTIVE: u32 = 0;
    /// HLT.
    pub const HLT: u32 = 1;
    /// Shutdown.
    pub const SHUTDOWN: u32 = 2;
    /// Wait-for-SIPI.
    pub const WAIT_SIPI: u32 = 3;
}

/// Exit-qualification formats.
pub mod qualification {
    /// Notify exit: VM context invalid (SDM Vol. 3C §28.2.1, exit qualification for notify VM exits).
    pub const NOTIFY_CONTEXT_INVALID: u64 = 1 << 0;
    /// Notify exit: NMI unblocking due to IRET.
    pub const NOTIFY_NMI_UNBLOCKING_IRET: u64 = 1 << 12;
    /// VM-entry failure for invalid guest state: the VMCS link pointer
    /// (SDM Vol. 3C §27.8).
    pub const ENTRY_VMCS_LINK_POINTER: u64 = 4;
    /// I/O exit: size of access minus one in bits 2:0.
    pub const IO_SIZE_MASK: u64 = 7;
    /// I/O exit: direction is IN.
    pub const IO_IN: u64 = 1 << 3;
    /// I/O exit: string instruction.
    pub const IO_STRING: u64 = 1 << 4;
    /// I/O exit: REP prefixed.
    pub const IO_REP: u64 = 1 << 5;
    /// I/O exit: operand encoding is immediate.
    pub const IO_IMM: u64 = 1 << 6;
    /// I/O exit: port number shift.
    pub const IO_PORT_SHIFT: u32 = 16;

    /// Control-register access (SDM Vol. 3C Table 28-3): the register number
    /// in bits 3:0.
    pub const CR_NUMBER_MASK: u64 = 0xF;
    /// Control-register access: shift of the access type (bits 5:4).
    pub const CR_ACCESS_TYPE_SHIFT: u32 = 4;
    /// Access type: MOV to CR.
    pub const CR_MOV_TO: u64 = 0;
    /// Access type: MOV from CR.
    pub const CR_MOV_FROM: u64 = 1;
    /// Access type: CLTS.
    pub const CR_CLTS: u64 = 2;
    /// Access type: LMSW.
    pub const CR_LMSW: u64 = 3;
    /// Control-register access: LMSW operand type is memory (bit 6).
    pub const CR_LMSW_MEMORY: u64 = 1 << 6;
    /// Control-register access: shift of the general register (bits 11:8).
    pub const CR_GPR_SHIFT: u32 = 8;
    /// Control-register access: shift of the LMSW source data (bits 31:16).
    pub const CR_LMSW_SOURCE_SHIFT: u32 = 16;

    /// The qualification of a MOV to or from CR`cr` (access type
    /// [`CR_MOV_TO`] or [`CR_MOV_FROM`]) with general register `gpr`
    /// (0 = RAX … 15 = R15), or of CLTS (`cr` 0, `gpr` 0).
    pub const fn cr_access(cr: u64, access: u64, gpr: u64) -> u64 {
        (cr & CR_NUMBER_MASK)
            | ((access & 3) << CR_ACCESS_TYPE_SHIFT)
            | ((gpr & 15) << CR_GPR_SHIFT)
    }

    /// The qualification of an LMSW with source data `source`, from memory
    /// or from a register.
    pub const fn cr_lmsw(source: u16, memory: bool) -> u64 {
        let mem = if memory { CR_LMSW_MEMORY } else { 0 };
        (CR_LMSW << CR_ACCESS_TYPE_SHIFT) | mem | ((source as u64) << CR_LMSW_SOURCE_SHIFT)
    }

    /// The control register a CR-access qualification names.
    pub const fn cr_number(qual: u64) -> u64 {
        qual & CR_NUMBER_MASK
    }

    /// The access type of a CR-access qualification.
    pub const fn cr_access_type(qual: u64) -> u64 {
        (qual >> CR_ACCESS_TYPE_SHIFT) & 3
    }

    /// The general register (0 = RAX … 15 = R15) of a MOV-CR qualification.
    pub const fn cr_gpr(qual: u64) -> usize {
        ((qual >> CR_GPR_SHIFT) & 15) as usize
    }

    /// The LMSW source data of a CR-access qualification.
    pub const fn cr_lmsw_source(qual: u64) -> u64 {
        (qual >> CR_LMSW_SOURCE_SHIFT) & 0xFFFF
    }
}

/// VM-instruction error numbers (SDM Vol. 3C §31.4).
pub mod instruction_error {
    /// VMCALL executed in VMX root operation.
    pub const VMCALL_IN_ROOT: u32 = 1;
    /// VMCLEAR with an invalid physical address.
    pub const VMCLEAR_INVALID_ADDRESS: u32 = 2;
    /// VMCLEAR with the VMXON pointer.
    pub const VMCLEAR_VMXON_POINTER: u32 = 3;
    /// VMPTRLD with an invalid physical address.
    pub const VMPTRLD_INVALID_ADDRESS: u32 = 9;
    /// VMPTRLD with the VMXON pointer.
    pub const VMPTRLD_VMXON_POINTER: u32 = 10;
    /// VMPTRLD with an incorrect VMCS revision identifier.
    pub const VMPTRLD_INCORRECT_REVISION: u32 = 11;
    /// VMXON executed in VMX root operation.
    pub const VMXON_IN_ROOT: u32 = 15;
    /// VM entry with events blocked by MOV SS.
    pub const ENTRY_MOV_SS_BLOCKING: u32 = 26;
    /// Invalid operand to INVEPT/INVVPID.
    pub const INVALID_INVEPT_INVVPID_OPERAND: u32 = 28;
    /// VMLAUNCH with non-clear VMCS.
    pub const VMLAUNCH_NONCLEAR: u32 = 4;
    /// VMRESUME with non-launched VMCS.
    pub const VMRESUME_NONLAUNCHED: u32 = 5;
    /// VM entry with invalid control field(s).
    pub const ENTRY_INVALID_CONTROL: u32 = 7;
    /// VM entry with invalid host-state field(s).
    pub const ENTRY_INVALID_HOST_STATE: u32 = 8;
    /// VMREAD/VMWRITE from/to unsupported VMCS component.
    pub const UNSUPPORTED_COMPONENT: u32 = 12;
    /// VMWRITE to read-only VMCS component.
    pub const WRITE_READ_ONLY: u32 = 13;
}

#[cfg(test)]
mod tests {
    use super::qualification as q;

    #[test]
    fn cr_access_qualifications_round_trip_in_the_sdm_layout() {
        // MOV from CR3 into R9 (SDM Vol. 3C Table 28-3).
        let mov = q::cr_access(3, q::CR_MOV_FROM, 9);
        assert_eq!(mov, 0x913);
        assert_eq!(
            (q::cr_number(mov), q::cr_access_type(mov)),
            (3, q::CR_MOV_FROM)
        );
        assert_eq!(q::cr_gpr(mov), 9);
        assert_eq!(q::cr_access(0, q::CR_CLTS, 0), 0x20);
        // LMSW of 0x000B from memory.
        let lmsw = q::cr_lmsw(0xB, true);
        assert_eq!(lmsw, 0x000B_0070);
        assert_eq!(q::cr_access_type(lmsw), q::CR_LMSW);
        assert_eq!(q::cr_lmsw_source(lmsw), 0xB);
    }
}
