//! L1's VMX instructions (SDM Vol. 3C §31.3), emulated by L0 on vmcs12, with
//! their results: VMsucceed, VMfailInvalid, VMfailValid with a
//! VM-instruction error number (§31.2, §31.4), or the fault the instruction
//! raises instead.

use super::caps::REVISION;
use super::operand::{self, OperandError, OperandFault};
use super::vmcs12::Vmcs12;
use super::Nested;
use crate::hw::{HwError, VmxHardware};
use crate::soft::exits;
use x86::cr::{CR0_PE, CR4_VMXE};
use x86::exception as vec;
use x86::rflags;
use x86::vmx::{exit_reason as er, field as f, instruction_error as ie, interruptibility};

/// Arithmetic flags VMX instructions report through (SDM §31.2).
const STATUS_FLAGS: u64 =
    rflags::CF | rflags::PF | rflags::AF | rflags::ZF | rflags::SF | rflags::OF;

/// How an emulated VMX instruction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// VMsucceed: all status flags clear.
    Succeed,
    /// VMfailInvalid: CF = 1 (no current VMCS to hold an error number).
    FailInvalid,
    /// VMfailValid: ZF = 1 and the error number in the current VMCS.
    FailValid(u32),
    /// The instruction faults: nothing else happens.
    Fault(OperandFault),
    /// #UD.
    Undefined,
    /// Control went elsewhere: into L2 (vmcs02 is current), or to L1's host
    /// RIP after a VM-entry failure.
    Transferred,
    /// The operand is not in RAM: L0 stops the VM (KVM reports the same
    /// as an emulation failure).
    NotRam,
}

impl From<OperandFault> for Outcome {
    fn from(f: OperandFault) -> Self {
        Outcome::Fault(f)
    }
}

/// An operand access that may fault in L1.
type Op<T> = Result<T, OperandError>;

/// The exit's instruction information and qualification.
struct Decoded {
    info: u32,
    qualification: u64,
    len: u64,
}

fn decoded(hw: &impl VmxHardware) -> Result<Decoded, HwError> {
    Ok(Decoded {
        info: hw.vmread(f::VMX_INSTRUCTION_INFO)? as u32,
        qualification: hw.vmread(f::EXIT_QUALIFICATION)?,
        len: hw.vmread(f::VM_EXIT_INSTRUCTION_LEN)?,
    })
}

/// CPL of the current guest: SS.DPL (SDM Vol. 3A §5.5).
fn cpl(hw: &impl VmxHardware) -> Result<u64, HwError> {
    Ok(u64::from(x86::segment::dpl(
        hw.vmread(f::GUEST_SS_AR_BYTES)? as u32,
    )))
}

/// L1's view of CR4: host-owned bits come from the read shadow.
fn l1_cr(hw: &impl VmxHardware, value: u32, mask: u32, shadow: u32) -> Result<u64, HwError> {
    let m = hw.vmread(mask)?;
    Ok((hw.vmread(value)? & !m) | (hw.vmread(shadow)? & m))
}

/// The 64-bit (or, outside 64-bit mode, 32-bit) memory operand of VMXON,
/// VMCLEAR, VMPTRLD and VMPTRST.
fn pointer_operand(hw: &impl VmxHardware, d: &Decoded, ram: u64) -> Op<u64> {
    let la = operand::linear_address(hw, d.info, d.qualification, 8)?;
    let mut b = [0u8; 8];
    operand::read(hw, la, &mut b, ram)?;
    Ok(u64::from_le_bytes(b))
}

/// CR0.PE and PG are fixed to 1 in VMX operation (SDM Vol. 3C §24.8), but
/// vmcs01 runs L1 as an unrestricted guest, where the processor would let
/// them be cleared: between VMXON and VMXOFF L0 owns them, so that a MOV to
/// CR0 clearing them exits and faults (`crate::soft::cr`). Their shadow is
/// their real value, which L1 reads unchanged.
fn guard_cr0(hw: &mut impl VmxHardware, on: bool) -> Result<(), HwError> {
    use x86::cr::{CR0_PE, CR0_PG};
    let guarded = CR0_PE | CR0_PG;
    let mask = hw.vmread(f::CR0_GUEST_HOST_MASK)?;
    hw.vmwrite(
        f::CR0_GUEST_HOST_MASK,
        if on { mask | guarded } else { mask & !guarded },
    )?;
    let real = hw.vmread(f::GUEST_CR0)? & guarded;
    let shadow = hw.vmread(f::CR0_READ_SHADOW)? & !guarded;
    hw.vmwrite(f::CR0_READ_SHADOW, shadow | real)
}

impl Nested {
    /// Emulates the VMX instruction behind an exit from L1 with basic reason
    /// `reason` (VMCALL, VMCLEAR … VMXON, INVEPT, INVVPID); vmcs01 is current.
    /// `false` when L0 cannot emulate it (its operand is not in RAM).
    pub(crate) fn l1_vmx_instruction(
        &mut self,
        hw: &mut impl VmxHardware,
        reason: u16,
    ) -> Result<bool, HwError> {
        let d = decoded(hw)?;
        let outcome = self.outcome(hw, reason, &d)?;
        if outcome == Outcome::NotRam {
            return Ok(false);
        }
        self.finish(hw, outcome, d.len)?;
        Ok(true)
    }

    /// Applies an outcome to L1: flags and RIP, or the fault.
    pub(crate) fn finish(
        &mut self,
        hw: &mut impl VmxHardware,
        outcome: Outcome,
        len: u64,
    ) -> Result<(), HwError> {
        let status = match outcome {
            Outcome::Transferred | Outcome::NotRam => return Ok(()),
            Outcome::Undefined => return exits::inject_exception(hw, vec::UD, None),
            Outcome::Fault(OperandFault::General) => {
                return exits::inject_exception(hw, vec::GP, Some(0))
            }
            Outcome::Fault(OperandFault::Stack) => {
                return exits::inject_exception(hw, vec::SS, Some(0))
            }
            Outcome::Fault(OperandFault::Page { code, addr }) => {
                hw.set_cr2(addr);
                return exits::inject_exception(hw, vec::PF, Some(code));
            }
            Outcome::Succeed => 0,
            Outcome::FailInvalid => rflags::CF,
            Outcome::FailValid(error) => {
                self.vmcs12.set(f::VM_INSTRUCTION_ERROR, u64::from(error));
                rflags::ZF
            }
        };
        let fl = hw.vmread(f::GUEST_RFLAGS)?;
        hw.vmwrite(f::GUEST_RFLAGS, (fl & !STATUS_FLAGS) | status)?;
        exits::skip_instruction(hw, len)
    }

    /// VMfail: valid when there is a current VMCS to hold the error.
    fn vmfail(&self, error: u32) -> Outcome {
        if self.current.is_some() {
            Outcome::FailValid(error)
        } else {
            Outcome::FailInvalid
        }
    }

    fn outcome(
        &mut self,
        hw: &mut impl VmxHardware,
        reason: u16,
        d: &Decoded,
    ) -> Result<Outcome, HwError> {
        // #UD outside VMX operation (VMXON: with CR4.VMXE = 0), in real or
        // virtual-8086 mode, or in compatibility mode (SDM §31.3).
        let cr0 = hw.vmread(f::GUEST_CR0)?;
        let vm86 = hw.vmread(f::GUEST_RFLAGS)? & rflags::VM != 0;
        let efer = hw.vmread(f::GUEST_IA32_EFER)?;
        let cs_l = hw.vmread(f::GUEST_CS_AR_BYTES)? & u64::from(x86::segment::AR_L) != 0;
        let compat = efer & x86::cr::EFER_LMA != 0 && !cs_l;
        let cr4 = l1_cr(hw, f::GUEST_CR4, f::CR4_GUEST_HOST_MASK, f::CR4_READ_SHADOW)?;
        if reason == er::VMCALL {
            // Outside VMX operation VMCALL is L0's (no hypercalls: #UD); in
            // root operation: #UD in virtual-8086 or compatibility mode,
            // #GP(0) above CPL 0, else VMfail 1 (no SMM monitor).
            return Ok(if self.vmxon.is_none() || vm86 || compat {
                Outcome::Undefined
            } else if cpl(hw)? != 0 {
                Outcome::Fault(OperandFault::General)
            } else {
                self.vmfail(ie::VMCALL_IN_ROOT)
            });
        }
        let enabled = if reason == er::VMXON {
            cr4 & CR4_VMXE != 0
        } else {
            self.vmxon.is_some()
        };
        if !enabled || cr0 & CR0_PE == 0 || vm86 || compat {
            return Ok(Outcome::Undefined);
        }
        if reason == er::INVEPT && self.caps.proc2.may & x86::vmx::proc2::ENABLE_EPT == 0 {
            // INVEPT exists only with EPT.
            return Ok(Outcome::Undefined);
        }
        if cpl(hw)? != 0 {
            return Ok(Outcome::Fault(OperandFault::General));
        }
        let result = match reason {
            er::VMXON => self.vmxon(hw, d),
            er::VMXOFF => self.vmxoff(hw).map_err(OperandError::Hw),
            er::VMCLEAR => self.vmclear(hw, d),
            er::VMPTRLD => self.vmptrld(hw, d),
            er::VMPTRST => self.vmptrst(hw, d),
            er::VMREAD => self.vmread(hw, d),
            er::VMWRITE => self.vmwrite(hw, d),
            er::INVVPID => self.invvpid(hw, d),
            er::INVEPT => self.invept(hw, d),
            er::VMLAUNCH | er::VMRESUME => self
                .vm_entry(hw, reason == er::VMLAUNCH)
                .map_err(OperandError::Hw),
            _ => Ok(Outcome::Undefined),
        };
        match result {
            Ok(o) => Ok(o),
            Err(OperandError::Fault(fault)) => Ok(Outcome::Fault(fault)),
            Err(OperandError::NotRam) => Ok(Outcome::NotRam),
            Err(OperandError::Hw(e)) => Err(e),
        }
    }

    /// Whether `addr` can name a VMCS or VMXON region: 4 KiB aligned and
    /// inside L1's memory.
    fn region_ok(&self, addr: u64) -> bool {
        addr & 0xFFF == 0
            && addr
                .checked_add(4096)
                .is_some_and(|end| end <= self.pages.ram)
    }

    /// The revision identifier of a region (bit 31, the shadow-VMCS
    /// indicator, included: this VMX has no shadow VMCSs).
    fn revision_of(hw: &impl VmxHardware, addr: u64) -> Result<u32, HwError> {
        let mut b = [0u8; 4];
        hw.read_phys(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn vmxon(&mut self, hw: &mut impl VmxHardware, d: &Decoded) -> Op<Outcome> {
        if self.vmxon.is_some() {
            return Ok(self.vmfail(ie::VMXON_IN_ROOT));
        }
        // CR0 and CR4 as L1 sees them must honour the fixed bits, or #GP
        // (IA32_FEATURE_CONTROL is always locked with VMX enabled here).
        let cr0 = l1_cr(hw, f::GUEST_CR0, f::CR0_GUEST_HOST_MASK, f::CR0_READ_SHADOW)?;
        let cr4 = l1_cr(hw, f::GUEST_CR4, f::CR4_GUEST_HOST_MASK, f::CR4_READ_SHADOW)?;
        let ((c0f0, c0f1), (c4f0, c4f1)) = (self.caps.cr0_fixed(), self.caps.cr4_fixed());
        if cr0 & c0f0 != c0f0 || cr0 & !c0f1 != 0 || cr4 & c4f0 != c4f0 || cr4 & !c4f1 != 0 {
            return Err(OperandError::Fault(OperandFault::General));
        }
        let addr = pointer_operand(hw, d, self.pages.ram)?;
        if !self.region_ok(addr) || Self::revision_of(hw, addr)? != REVISION {
            return Ok(Outcome::FailInvalid);
        }
        self.vmxon = Some(addr);
        self.current = None;
        guard_cr0(hw, true)?;
        Ok(Outcome::Succeed)
    }

    fn vmxoff(&mut self, hw: &mut impl VmxHardware) -> Result<Outcome, HwError> {
        self.flush_current(hw)?;
        self.current = None;
        self.vmxon = None;
        guard_cr0(hw, false)?;
        Ok(Outcome::Succeed)
    }

    /// Writes the cached vmcs12 back to its region.
    fn flush_current(&mut self, hw: &mut impl VmxHardware) -> Result<(), HwError> {
        if let Some(addr) = self.current {
            self.vmcs12.store(hw, addr)?;
        }
        Ok(())
    }

    fn vmclear(&mut self, hw: &mut impl VmxHardware, d: &Decoded) -> Op<Outcome> {
        let addr = pointer_operand(hw, d, self.pages.ram)?;
        if !self.region_ok(addr) {
            return Ok(self.vmfail(ie::VMCLEAR_INVALID_ADDRESS));
        }
        if Some(addr) == self.vmxon {
            return Ok(self.vmfail(ie::VMCLEAR_VMXON_POINTER));
        }
        if Some(addr) == self.current {
            self.vmcs12.launched = false;
            self.flush_current(hw)?;
            self.current = None;
        } else {
            // Not cached: only the launch state in the region changes.
            let mut v = Vmcs12::load(hw, addr)?;
            v.launched = false;
            v.store(hw, addr)?;
        }
        Ok(Outcome::Succeed)
    }

    fn vmptrld(&mut self, hw: &mut impl VmxHardware, d: &Decoded) -> Op<Outcome> {
        let addr = pointer_operand(hw, d, self.pages.ram)?;
        if !self.region_ok(addr) {
            return Ok(self.vmfail(ie::VMPTRLD_INVALID_ADDRESS));
        }
        if Some(addr) == self.vmxon {
            return Ok(self.vmfail(ie::VMPTRLD_VMXON_POINTER));
        }
        if Self::revision_of(hw, addr)? != REVISION {
            return Ok(self.vmfail(ie::VMPTRLD_INCORRECT_REVISION));
        }
        if self.current != Some(addr) {
            self.flush_current(hw)?;
            self.vmcs12 = Vmcs12::load(hw, addr)?;
            self.current = Some(addr);
        }
        Ok(Outcome::Succeed)
    }

    fn vmptrst(&mut self, hw: &mut impl VmxHardware, d: &Decoded) -> Op<Outcome> {
        let la = operand::linear_address(hw, d.info, d.qualification, 8)?;
        let value = self.current.unwrap_or(u64::MAX);
        operand::write(hw, la, &value.to_le_bytes(), self.pages.ram)?;
        Ok(Outcome::Succeed)
    }

    /// Operand size of VMREAD/VMWRITE: 64 bits in 64-bit mode, else 32.
    fn vm_rw_size(hw: &impl VmxHardware) -> Result<usize, HwError> {
        Ok(if operand::in_64bit_mode(hw)? { 8 } else { 4 })
    }

    fn vmread(&mut self, hw: &mut impl VmxHardware, d: &Decoded) -> Op<Outcome> {
        if self.current.is_none() {
            return Ok(Outcome::FailInvalid);
        }
        let size = Self::vm_rw_size(hw)?;
        let mut g = hw.gprs();
        let encoding = g[(d.info >> 28) as usize & 15];
        // Outside 64-bit mode the encoding operand is 32 bits wide.
        let encoding = if size == 8 {
            encoding
        } else {
            encoding & 0xFFFF_FFFF
        };
        let value = match u32::try_from(encoding)
            .map_err(|_| ie::UNSUPPORTED_COMPONENT)
            .and_then(|e| self.vmcs12.read(e))
        {
            Ok(v) => v,
            Err(error) => return Ok(Outcome::FailValid(error)),
        };
        if d.info & 1 << 10 != 0 {
            let reg = ((d.info >> 3) & 15) as usize;
            g[reg] = if size == 8 {
                value
            } else {
                value & 0xFFFF_FFFF
            };
            hw.set_gprs(&g);
        } else {
            let la = operand::linear_address(hw, d.info, d.qualification, size as u64)?;
            operand::write(hw, la, &value.to_le_bytes()[..size], self.pages.ram)?;
        }
        Ok(Outcome::Succeed)
    }

    fn vmwrite(&mut self, hw: &mut impl VmxHardware, d: &Decoded) -> Op<Outcome> {
        if self.current.is_none() {
            return Ok(Outcome::FailInvalid);
        }
        let size = Self::vm_rw_size(hw)?;
        let g = hw.gprs();
        let encoding = g[(d.info >> 28) as usize & 15];
        let encoding = if size == 8 {
            encoding
        } else {
            encoding & 0xFFFF_FFFF
        };
        let value = if d.info & 1 << 10 != 0 {
            g[((d.info >> 3) & 15) as usize]
        } else {
            let la = operand::linear_address(hw, d.info, d.qualification, size as u64)?;
            let mut b = [0u8; 8];
            operand::read(hw, la, &mut b[..size], self.pages.ram)?;
            u64::from_le_bytes(b)
        };
        let value = if size == 8 {
            value
        } else {
            value & 0xFFFF_FFFF
        };
        Ok(
            match u32::try_from(encoding)
                .map_err(|_| ie::UNSUPPORTED_COMPONENT)
                .and_then(|e| self.vmcs12.write(e, value))
            {
                Ok(()) => Outcome::Succeed,
                Err(error) => Outcome::FailValid(error),
            },
        )
    }

    /// INVVPID (SDM §31.3 INVVPID): the type in a register, a 128-bit
    /// descriptor in memory (VPID in bits 15:0, bits 63:16 reserved, linear
    /// address in 127:64). L0 flushes the processor's TLB at every nested
    /// transition, so a valid invalidation has nothing left to do.
    fn invvpid(&mut self, hw: &mut impl VmxHardware, d: &Decoded) -> Op<Outcome> {
        let (ty, low, addr) = Self::invalidation_operands(hw, d, self.pages.ram)?;
        let vpid = low & 0xFFFF;
        let supported = ty <= 3 && super::caps::EPT_VPID_CAP & 1 << (40 + ty) != 0;
        let canonical = x86::address::is_canonical(addr);
        let bad = !supported || low >> 16 != 0 || (ty != 2 && vpid == 0) || (ty == 0 && !canonical);
        Ok(if bad {
            self.vmfail(ie::INVALID_INVEPT_INVVPID_OPERAND)
        } else {
            Outcome::Succeed
        })
    }

    /// The INVEPT/INVVPID operands: the type register (64 bits in 64-bit
    /// mode, else 32) and the 128-bit descriptor in memory.
    fn invalidation_operands(hw: &impl VmxHardware, d: &Decoded, ram: u64) -> Op<(u64, u64, u64)> {
        let size = Self::vm_rw_size(hw)?;
        let ty = hw.gprs()[(d.info >> 28) as usize & 15];
        let ty = if size == 8 { ty } else { ty & 0xFFFF_FFFF };
        let la = operand::linear_address(hw, d.info, d.qualification, 16)?;
        let mut desc = [0u8; 16];
        operand::read(hw, la, &mut desc, ram)?;
        let low = u64::from_le_bytes(desc[..8].try_into().unwrap_or([0; 8]));
        let high = u64::from_le_bytes(desc[8..].try_into().unwrap_or([0; 8]));
        Ok((ty, low, high))
    }

    /// INVEPT (SDM §31.3 INVEPT): type 1 (single-context: the descriptor's
    /// EPTP must be one VM entry would accept) or 2 (all-context); bits
    /// 127:64 of the descriptor are reserved. Either empties L0's shadow of
    /// L1's EPT, which is all the EPT-derived translations there are.
    fn invept(&mut self, hw: &mut impl VmxHardware, d: &Decoded) -> Op<Outcome> {
        let (ty, eptp, _reserved) = Self::invalidation_operands(hw, d, self.pages.ram)?;
        let supported = matches!(ty, 1 | 2) && super::caps::EPT_VPID_CAP & 1 << (24 + ty) != 0;
        if !supported || (ty == 1 && !super::ept::eptp_valid(eptp, self.caps.phys_bits)) {
            return Ok(self.vmfail(ie::INVALID_INVEPT_INVVPID_OPERAND));
        }
        let shadowed = self.shadow.shadowed;
        self.shadow.reset(hw, shadowed)?;
        Ok(Outcome::Succeed)
    }

    /// VMLAUNCH and VMRESUME: the checks that end in VMfail (SDM §31.3), then
    /// the nested VM entry.
    fn vm_entry(&mut self, hw: &mut impl VmxHardware, launch: bool) -> Result<Outcome, HwError> {
        if self.current.is_none() {
            return Ok(Outcome::FailInvalid);
        }
        let blocking = hw.vmread(f::GUEST_INTERRUPTIBILITY_INFO)? as u32;
        if blocking & interruptibility::MOV_SS != 0 {
            return Ok(Outcome::FailValid(ie::ENTRY_MOV_SS_BLOCKING));
        }
        if launch && self.vmcs12.launched {
            return Ok(Outcome::FailValid(ie::VMLAUNCH_NONCLEAR));
        }
        if !launch && !self.vmcs12.launched {
            return Ok(Outcome::FailValid(ie::VMRESUME_NONLAUNCHED));
        }
        self.enter(hw)
    }
}
