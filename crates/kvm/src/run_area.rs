//! The few reads of the vCPU's shared `kvm_run` area that `kvm-ioctls` does
//! not offer: the port-I/O descriptor (size and count, which its `VcpuExit`
//! merges into one slice length), the internal-error suberror and the notify
//! flags.
//!
//! Why the port-I/O data slice is rebuilt here instead of taken from
//! `kvm_ioctls::VcpuExit`: that exit borrows the vCPU mutably for as long as
//! it lives, and `run()` returns such a slice on some paths while it must
//! query the vCPU again on others (registers for the RIP of a failed access,
//! the I/O count to tell string I/O apart). Today's borrow checker rejects
//! that shape (a borrow returned on one path stays live on all paths), so
//! `run()` first summarises the exit into an owned value, drops the borrow,
//! and then reads what it needs from `kvm_run` through this module.

use kvm_bindings::{
    kvm_run, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_IO, KVM_EXIT_IO_IN, KVM_EXIT_MMIO, KVM_EXIT_NOTIFY,
};
use kvm_ioctls::VcpuFd;

/// A copy of the `io` member of `kvm_run` for a `KVM_EXIT_IO` exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IoRequest {
    /// `IN` (true) or `OUT` (false).
    pub(crate) is_in: bool,
    /// Access size in bytes.
    pub(crate) size: u8,
    /// The I/O port.
    pub(crate) port: u16,
    /// Number of accesses (greater than 1 only for `REP INS/OUTS`).
    pub(crate) count: u32,
    /// Offset of the data within the run area.
    pub(crate) data_offset: u64,
}

/// The exit reason KVM left in the run area.
pub(crate) fn exit_reason(vcpu: &mut VcpuFd) -> u32 {
    vcpu.get_kvm_run().exit_reason
}

/// The port-I/O descriptor, if the last exit was `KVM_EXIT_IO`.
pub(crate) fn io_request(vcpu: &mut VcpuFd) -> Option<IoRequest> {
    let run = vcpu.get_kvm_run();
    if run.exit_reason != KVM_EXIT_IO {
        return None;
    }
    // SAFETY: reading a union member. The kernel filled `io` for
    // KVM_EXIT_IO (checked above), and `io` is a plain struct of integers, so
    // every bit pattern is a valid value anyway.
    let io = unsafe { run.__bindgen_anon_1.io };
    Some(IoRequest {
        is_in: u32::from(io.direction) == KVM_EXIT_IO_IN,
        size: io.size,
        port: io.port,
        count: io.count,
        data_offset: io.data_offset,
    })
}

/// The suberror of a `KVM_EXIT_INTERNAL_ERROR` exit.
pub(crate) fn internal_suberror(vcpu: &mut VcpuFd) -> Option<u32> {
    let run = vcpu.get_kvm_run();
    if run.exit_reason != KVM_EXIT_INTERNAL_ERROR {
        return None;
    }
    // SAFETY: reading a union member. The kernel filled `internal` for
    // KVM_EXIT_INTERNAL_ERROR (checked above), and it is plain integers.
    Some(unsafe { run.__bindgen_anon_1.internal.suberror })
}

/// `kvm_run.notify.flags` bit 0: the VM context is invalid
/// (`KVM_NOTIFY_CONTEXT_INVALID`).
pub const NOTIFY_CONTEXT_INVALID: u32 = 1 << 0;

/// A `KVM_EXIT_NOTIFY` (exit 37) decoded from a run structure: whether the
/// guest context is invalid, or `None` for any other exit. Pure, so it can
/// be tested on synthetic run structures without notify-capable hardware.
pub fn decode_notify(run: &kvm_run) -> Option<bool> {
    if run.exit_reason != KVM_EXIT_NOTIFY {
        return None;
    }
    // SAFETY: reading a union member. The kernel filled `notify` for
    // KVM_EXIT_NOTIFY (checked above), and it is a plain integer, valid for
    // any bit pattern.
    let flags = unsafe { run.__bindgen_anon_1.notify.flags };
    Some(flags & NOTIFY_CONTEXT_INVALID != 0)
}

/// The context-invalid flag of the vCPU's last exit, if it was a notify exit.
pub(crate) fn notify_context_invalid(vcpu: &mut VcpuFd) -> Option<bool> {
    decode_notify(vcpu.get_kvm_run())
}

/// The data bytes of the port-I/O request `req`, inside the vCPU's run area
/// of `run_size` bytes (`KVM_GET_VCPU_MMAP_SIZE`). `None` if the kernel's
/// offset and length do not lie inside the area past the `kvm_run` header.
pub(crate) fn io_data<'a>(
    vcpu: &'a mut VcpuFd,
    run_size: usize,
    req: &IoRequest,
) -> Option<&'a mut [u8]> {
    let len = usize::from(req.size).checked_mul(usize::try_from(req.count).ok()?)?;
    let offset = usize::try_from(req.data_offset).ok()?;
    let end = offset.checked_add(len)?;
    if offset < std::mem::size_of::<kvm_run>() || end > run_size {
        return None;
    }
    let base = (vcpu.get_kvm_run() as *mut kvm_run).cast::<u8>();
    // SAFETY: `kvm-ioctls` keeps the vCPU's whole run area (`run_size` bytes,
    // as KVM_GET_VCPU_MMAP_SIZE reported, starting with `kvm_run`) mapped
    // read/write at `base` for as long as `vcpu` lives, and it builds the
    // same slice the same way for its own `VcpuExit::IoIn/IoOut`.
    // `offset..end` lies inside that area and after the `kvm_run` header
    // (checked above), in the page the kernel reserves for port-I/O data; any
    // byte value is a valid `u8`. The slice borrows `vcpu` mutably for `'a`,
    // so nothing else in this process touches the area while it lives, and
    // the kernel only accesses the page inside KVM_RUN, which needs that
    // same mutable borrow.
    Some(unsafe { std::slice::from_raw_parts_mut(base.add(offset), len) })
}

/// A `KVM_EXIT_MMIO` access: its guest-physical address, whether it is a
/// store, and its data bytes (`len` of them, at most 8) in the run area,
/// which the caller fills for a load before the next `KVM_RUN`.
pub(crate) fn mmio(vcpu: &mut VcpuFd) -> Option<(u64, bool, &mut [u8])> {
    let run = vcpu.get_kvm_run();
    if run.exit_reason != KVM_EXIT_MMIO {
        return None;
    }
    // SAFETY: reading and borrowing a union member. The kernel filled `mmio`
    // for KVM_EXIT_MMIO (checked above); it is integers and a byte array, so
    // any bit pattern is valid. The borrow of `data` is tied to the mutable
    // borrow of `vcpu`, as for the port-I/O data.
    let m = unsafe { &mut run.__bindgen_anon_1.mmio };
    let len = usize::try_from(m.len).ok().filter(|&l| l <= m.data.len())?;
    Some((m.phys_addr, m.is_write != 0, &mut m.data[..len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(reason: u32, flags: u32) -> kvm_run {
        // SAFETY: kvm_run is a plain C struct of integers, arrays and
        // unions of such; all zeroes is a valid value.
        let mut run: kvm_run = unsafe { std::mem::zeroed() };
        run.exit_reason = reason;
        run.__bindgen_anon_1.notify.flags = flags;
        run
    }

    #[test]
    fn exit_37_and_its_flags() {
        assert_eq!(KVM_EXIT_NOTIFY, 37);
        assert_eq!(decode_notify(&run_with(37, 0)), Some(false));
        assert_eq!(decode_notify(&run_with(37, 1)), Some(true));
        // Undefined flag bits do not make a context invalid.
        assert_eq!(decode_notify(&run_with(37, 0xFFFF_FFFE)), Some(false));
        assert_eq!(decode_notify(&run_with(KVM_EXIT_IO, 1)), None);
        assert_eq!(decode_notify(&run_with(0, 0)), None);
    }
}
