//! Exit information for VM exits caused by VMX instructions executed in VMX
//! non-root operation: the exit qualification (SDM Vol. 3C §28.2.1, Table
//! 28-1) and the VM-exit instruction-information field (§28.2.5, the tables
//! for INVEPT/INVVPID, for VMCLEAR/VMPTRLD/VMPTRST/VMXON, and for
//! VMREAD/VMWRITE), so that the hypervisor can find the operands without
//! decoding the instruction itself.

use crate::fault::{ExitInfo, Stop};
use iced_x86::{Instruction, OpKind, Register};

/// Index 0–15 of a general-purpose register in the SDM's encoding (RAX = 0 …
/// R15 = 15), whatever its width.
fn gpr_number(r: Register) -> u32 {
    (r.full_register() as u32).wrapping_sub(Register::RAX as u32) & 15
}

/// Segment register number of the instruction-information field (ES = 0 …
/// GS = 5).
fn segment_number(r: Register) -> u32 {
    match r {
        Register::ES => 0,
        Register::CS => 1,
        Register::SS => 2,
        Register::FS => 4,
        Register::GS => 5,
        _ => 3,
    }
}

/// Address-size code: 0 for 16-bit, 1 for 32-bit, 2 for 64-bit.
fn address_size_code(ins: &Instruction, mode64: bool) -> u32 {
    let size = match (ins.memory_base(), ins.memory_index()) {
        (Register::RIP, _) => 8,
        (Register::EIP, _) => 4,
        (Register::None, Register::None) => match ins.memory_displ_size() {
            2 => 2,
            4 if !mode64 => 4,
            _ => 8,
        },
        (Register::None, index) => index.size(),
        (base, _) => base.size(),
    };
    match size {
        2 => 0,
        4 => 1,
        _ => 2,
    }
}

/// The memory-operand part of the instruction-information field and the
/// exit qualification (the displacement, or for RIP-relative addressing the
/// displacement plus the address of the next instruction, which iced reports
/// as the displacement).
fn memory_operand(ins: &Instruction, mode64: bool) -> (u32, u64) {
    let base = ins.memory_base();
    let index = ins.memory_index();
    let rip_relative = matches!(base, Register::RIP | Register::EIP);
    let scale = match ins.memory_index_scale() {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    let mut info = address_size_code(ins, mode64) << 7;
    info |= segment_number(ins.memory_segment()) << 15;
    if index == Register::None {
        info |= 1 << 22;
    } else {
        info |= scale | gpr_number(index) << 18;
    }
    if base == Register::None || rip_relative {
        info |= 1 << 27;
    } else {
        info |= gpr_number(base) << 23;
    }
    let disp = ins.memory_displacement64();
    let qualification = if mode64 || rip_relative {
        disp
    } else {
        // Sign-extended from the 32-bit (or 16-bit) displacement.
        disp as u32 as i32 as i64 as u64
    };
    (info, qualification)
}

/// The VM exit for a VMX instruction (VMCLEAR … VMXON, INVEPT, INVVPID)
/// executed in VMX non-root operation, with its qualification and
/// instruction information.
pub(crate) fn vmx_instruction_exit(ins: &Instruction, reason: u16, mode64: bool) -> Stop {
    use x86::vmx::exit_reason as er;
    let mut info = ExitInfo::new(reason, 0);
    info.instruction_len = ins.len() as u32;
    match reason {
        er::VMREAD | er::VMWRITE => {
            // Reg2 is the field encoding; reg1 or memory the value
            // (VMREAD's destination, VMWRITE's source).
            let (encoding, value) = if reason == er::VMREAD { (1, 0) } else { (0, 1) };
            let mut ii = gpr_number(ins.op_register(encoding)) << 28;
            if ins.op_kind(value) == OpKind::Memory {
                let (mem, qual) = memory_operand(ins, mode64);
                ii |= mem;
                info.qualification = qual;
            } else {
                ii |= 1 << 10 | gpr_number(ins.op_register(value)) << 3;
                // Address size is reported for register operands too.
                ii |= if mode64 { 2 << 7 } else { 1 << 7 };
            }
            info.instruction_info = ii;
        }
        er::INVEPT | er::INVVPID => {
            let (mem, qual) = memory_operand(ins, mode64);
            info.instruction_info = mem | gpr_number(ins.op_register(0)) << 28;
            info.qualification = qual;
        }
        er::VMCLEAR | er::VMPTRLD | er::VMPTRST | er::VMXON
            if ins.op_count() > 0 && ins.op_kind(0) == OpKind::Memory =>
        {
            let (mem, qual) = memory_operand(ins, mode64);
            info.instruction_info = mem;
            info.qualification = qual;
        }
        _ => {}
    }
    Stop::VmExit(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};
    use x86::vmx::exit_reason as er;

    fn exit(bytes: &[u8], bitness: u32, reason: u16) -> ExitInfo {
        let mut d = Decoder::with_ip(bitness, bytes, 0x1000, DecoderOptions::NONE);
        let ins = d.decode();
        match vmx_instruction_exit(&ins, reason, bitness == 64) {
            Stop::VmExit(i) => i,
            other => panic!("not an exit: {other:?}"),
        }
    }

    #[test]
    fn vmwrite_register_operands() {
        // vmwrite rax, rbx: field in RAX (reg2), value in RBX (reg1).
        let i = exit(&[0x0F, 0x79, 0xC3], 64, er::VMWRITE);
        assert_eq!(i.instruction_info >> 28, 0);
        assert_eq!((i.instruction_info >> 3) & 15, 3);
        assert_ne!(i.instruction_info & 1 << 10, 0);
        assert_eq!(i.instruction_len, 3);
    }

    #[test]
    fn vmread_to_memory_with_base_index_and_displacement() {
        // vmread [rsi + rdi*4 + 0x10], rcx
        let i = exit(&[0x0F, 0x78, 0x4C, 0xBE, 0x10], 64, er::VMREAD);
        let ii = i.instruction_info;
        assert_eq!(ii >> 28, 1, "field in RCX");
        assert_eq!(ii & 1 << 10, 0, "memory operand");
        assert_eq!(ii & 3, 2, "scale 4");
        assert_eq!((ii >> 7) & 7, 2, "64-bit addresses");
        assert_eq!((ii >> 15) & 7, 3, "DS");
        assert_eq!((ii >> 18) & 15, 7, "index RDI");
        assert_eq!((ii >> 23) & 15, 6, "base RSI");
        assert_eq!(ii & (1 << 22 | 1 << 27), 0);
        assert_eq!(i.qualification, 0x10);
    }

    #[test]
    fn vmptrld_absolute_and_rip_relative() {
        // vmptrld [0x2000] (disp32, no base, no index)
        let i = exit(&[0x0F, 0xC7, 0x34, 0x25, 0, 0x20, 0, 0], 64, er::VMPTRLD);
        assert_ne!(i.instruction_info & 1 << 22, 0);
        assert_ne!(i.instruction_info & 1 << 27, 0);
        assert_eq!(i.qualification, 0x2000);
        // vmxon [rip + 0x100]: the qualification is the operand's address.
        let i = exit(&[0xF3, 0x0F, 0xC7, 0x35, 0, 1, 0, 0], 64, er::VMXON);
        assert_eq!(i.qualification, 0x1000 + 8 + 0x100);
        assert_ne!(i.instruction_info & 1 << 27, 0);
    }

    #[test]
    fn negative_displacements_sign_extend_in_32_bit_code() {
        // vmclear [ebp - 8] in 32-bit code: SS, base EBP, 32-bit addresses.
        let i = exit(&[0x66, 0x0F, 0xC7, 0x75, 0xF8], 32, er::VMCLEAR);
        assert_eq!(i.qualification, (-8i64) as u64);
        assert_eq!((i.instruction_info >> 15) & 7, 2);
        assert_eq!((i.instruction_info >> 7) & 7, 1);
        assert_eq!((i.instruction_info >> 23) & 15, 5);
    }

    #[test]
    fn invvpid_names_its_type_register() {
        // invvpid rdx, [rax]
        let i = exit(&[0x66, 0x0F, 0x38, 0x81, 0x10], 64, er::INVVPID);
        assert_eq!(i.instruction_info >> 28, 2);
        assert_eq!((i.instruction_info >> 23) & 15, 0);
    }
}
