//! What stops the execution of an instruction: an exception to deliver, or a
//! VM exit.

/// An exception raised by an instruction or by event delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    /// Vector 0–31.
    pub vector: u8,
    /// Error code, for the vectors that push one.
    pub error_code: Option<u32>,
}

impl Exception {
    /// An exception without an error code.
    pub const fn plain(vector: u8) -> Self {
        Exception {
            vector,
            error_code: None,
        }
    }
    /// An exception with an error code.
    pub const fn with_code(vector: u8, code: u32) -> Self {
        Exception {
            vector,
            error_code: Some(code),
        }
    }
    /// #UD.
    pub const fn ud() -> Self {
        Self::plain(x86::exception::UD)
    }
    /// #GP with an error code.
    pub const fn gp(code: u32) -> Self {
        Self::with_code(x86::exception::GP, code)
    }
}

/// Exit information the processor records on a VM exit (SDM Vol. 3C §28.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitInfo {
    /// Basic exit reason (bits 15:0 of the exit-reason field).
    pub reason: u16,
    /// Exit qualification.
    pub qualification: u64,
    /// VM-exit instruction length (instruction-caused exits).
    pub instruction_len: u32,
    /// VM-exit interruption information (exception/NMI/external-interrupt exits).
    pub intr_info: u32,
    /// VM-exit interruption error code.
    pub intr_error_code: u32,
    /// Guest-linear address, where the exit defines one.
    pub guest_linear: u64,
    /// Guest-physical address (EPT exits).
    pub guest_physical: u64,
    /// VM-exit instruction-information field (VMX instructions, SDM Vol.
    /// 3C §28.2.5).
    pub instruction_info: u32,
}

impl ExitInfo {
    /// An exit with only a reason and a qualification.
    pub const fn new(reason: u16, qualification: u64) -> Self {
        ExitInfo {
            reason,
            qualification,
            instruction_len: 0,
            intr_info: 0,
            intr_error_code: 0,
            guest_linear: 0,
            guest_physical: 0,
            instruction_info: 0,
        }
    }
}

/// Why an instruction did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Deliver this exception (a fault leaves RIP at the instruction).
    Exception(Exception),
    /// #PF with the faulting linear address for CR2.
    PageFault {
        /// Linear address for CR2.
        addr: u64,
        /// #PF error code.
        error_code: u32,
    },
    /// Leave VMX non-root operation.
    VmExit(ExitInfo),
    /// The machine lost power: stop at once, with no VM exit and no further
    /// architectural effect.
    PowerOff,
    /// MMIO emulation: a load the hypervisor has not supplied yet; the
    /// instruction stops without effect (`crate::mmio`).
    MmioPending,
}

impl From<Exception> for Stop {
    fn from(e: Exception) -> Self {
        Stop::Exception(e)
    }
}

/// Result of a step that may stop.
pub type Ex<T> = Result<T, Stop>;
