//! What a soft vCPU hands to userspace: the exit `run()` returns, with the
//! bytes of an I/O or MMIO access kept in the vCPU until the next `run()`
//! completes it.

use super::SoftVcpu;
use crate::hw::HwError;
use crate::soft::exits;
use accel::VcpuExit;
use softcpu::SoftCpu;

/// An exit to userspace that the next `run()` completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Port I/O: for IN the access size (the data goes to RAX).
    Io {
        /// Access size for IN, `None` for OUT.
        in_size: Option<usize>,
        /// Length of the I/O instruction.
        len: u64,
    },
    /// A store of an emulated instruction (`super::emulate`), performed.
    MmioStore,
    /// A load of an emulated instruction: its bytes go to the emulation.
    MmioLoad,
}

/// An exit for userspace as the hooks decide it; the bytes of an access
/// wait in the vCPU ([`SoftVcpu::user_exit`] lends them out).
#[derive(Debug)]
pub(super) enum ToUser {
    /// An exit that carries no bytes.
    Exit(VcpuExit<'static>),
    /// OUT to `port`.
    IoOut { port: u16 },
    /// IN from `port`.
    IoIn { port: u16 },
    /// A store to guest-physical `addr`, which is not RAM.
    MmioWrite { addr: u64 },
    /// A load from guest-physical `addr`, which is not RAM.
    MmioRead { addr: u64 },
}

impl SoftVcpu {
    /// The exit `run()` returns, over the vCPU's access bytes.
    pub(super) fn user_exit(&mut self, exit: ToUser) -> VcpuExit<'_> {
        let len = self.io_len;
        match exit {
            ToUser::Exit(e) => e,
            ToUser::IoOut { port } => VcpuExit::IoOut {
                port,
                data: &self.io_data[..len],
            },
            ToUser::IoIn { port } => VcpuExit::IoIn {
                port,
                data: &mut self.io_data[..len],
            },
            ToUser::MmioWrite { addr } => VcpuExit::MmioWrite {
                addr,
                data: &self.io_data[..len],
            },
            ToUser::MmioRead { addr } => VcpuExit::MmioRead {
                addr,
                data: &mut self.io_data[..len],
            },
        }
    }

    /// Completes the exit userspace just handled: an IN takes its bytes
    /// into AL, AX or EAX (which zero-extends into RAX) and the instruction
    /// is stepped over; an MMIO load's bytes go to the emulation.
    pub(super) fn complete_io(&mut self, cpu: &mut SoftCpu) -> Result<(), HwError> {
        let mut v = [0u8; 8];
        v[..self.io_len].copy_from_slice(&self.io_data[..self.io_len]);
        let value = u64::from_le_bytes(v);
        match self.pending.take() {
            None | Some(Pending::MmioStore) => Ok(()),
            Some(Pending::MmioLoad) => {
                if let Some(e) = self.emulation.as_mut() {
                    e.supply(value);
                }
                Ok(())
            }
            Some(Pending::Io { in_size, len }) => {
                if let Some(size) = in_size {
                    let mut g = cpu.gprs();
                    g[0] = match size {
                        1 => (g[0] & !0xFF) | value,
                        2 => (g[0] & !0xFFFF) | value,
                        _ => value,
                    };
                    cpu.set_gprs(&g);
                }
                exits::skip_instruction(cpu, len)
            }
        }
    }

    /// Keeps a store's bytes for userspace, and what the next `run()`
    /// completes.
    pub(super) fn stash_store(&mut self, value: u64, size: usize, pending: Pending) {
        self.io_data = value.to_le_bytes();
        self.io_len = size;
        self.pending = Some(pending);
    }

    /// Zeroed room for a load's bytes, which userspace fills before the
    /// next `run()` completes the load.
    pub(super) fn stash_load(&mut self, size: usize, pending: Pending) {
        self.io_data = [0; 8];
        self.io_len = size;
        self.pending = Some(pending);
    }
}
