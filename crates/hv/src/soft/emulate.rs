//! MMIO through the soft CPU's own executor, as KVM has one x86 emulator
//! for every instruction: an EPT violation on an operand that is not RAM
//! makes L0 ask the CPU to execute that instruction with an
//! [`MmioSession`], and L0 carries out the accesses the session collects —
//! the local APIC's page itself, guest RAM itself (an L2 page its L1's EPT
//! maps to RAM that the shadow EPT does not hold yet), anything else in
//! userspace as `MmioRead`/`MmioWrite` exits (where the VMM's bus answers
//! addresses no device claims with all ones and drops stores, as a PC's
//! bus does). See `docs/softcpu.md` for the protocol.
//!
//! No instruction decoding happens here: whatever the instruction — `MOV`,
//! an ALU operation, `XCHG`, a LOCK-prefixed read-modify-write, a string
//! instruction with or without REP, a stack operation — the CPU performs
//! it and says which loads and stores left RAM.

use crate::hw::HwError;
use softcpu::{MmioLoad, MmioSession, MmioStep, SoftCpu};

/// Where L0 sends one access of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Guest RAM at this host-physical address.
    Ram(u64),
    /// A device (or nothing) at this guest-physical address of L1's.
    Device(u64),
    /// Nothing L0 can serve (an L2 address its L1's EPT does not map).
    Unmapped,
}

/// The devices L0 serves itself (the local APIC).
pub(crate) trait LocalDevices {
    /// Whether the device at `addr` is L0's.
    fn claims(&self, addr: u64) -> bool;
    /// A load of `size` bytes.
    fn load(&mut self, addr: u64, size: usize) -> u64;
    /// A store of the low `size` bytes of `value`.
    fn store(&mut self, addr: u64, size: usize, value: u64);
}

/// What the vCPU does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// The instruction is done and its stores are carried out: enter the
    /// guest.
    Resume,
    /// A VM exit happened during the instruction; handle it as one after
    /// VMRESUME.
    Exited,
    /// Userspace performs this store; then call [`Emulation::drive`] again.
    Store {
        /// Guest-physical address.
        addr: u64,
        /// Bytes.
        size: usize,
        /// The bytes, little-endian.
        value: u64,
    },
    /// Userspace performs this load; [`Emulation::supply`] its value, then
    /// call [`Emulation::drive`] again.
    Load {
        /// Guest-physical address.
        addr: u64,
        /// Bytes.
        size: usize,
    },
    /// The access at this guest-physical address has nowhere to go.
    Unmapped(u64),
    /// The power was cut.
    PoweredOff,
}

/// Where the instruction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// To be executed (again) once the stores and the load are served.
    Execute,
    /// Completed: serve the stores, then resume.
    Completed,
    /// A VM exit happened: serve the stores of completed work, then handle it.
    Exited,
}

/// One instruction emulated for MMIO, from the EPT violation to its end.
#[derive(Debug)]
pub(crate) struct Emulation {
    session: MmioSession,
    /// A load to serve before the next execution.
    wanted: Option<MmioLoad>,
    phase: Phase,
}

impl Emulation {
    /// Emulation of the instruction at the guest's RIP, not executed yet.
    pub(crate) fn new() -> Self {
        Emulation {
            session: MmioSession::new(),
            wanted: None,
            phase: Phase::Execute,
        }
    }

    /// The value of the load userspace performed.
    pub(crate) fn supply(&mut self, value: u64) {
        self.session.supply(value);
    }

    /// Serves what the session holds and executes the instruction until it
    /// is done or userspace must act. `target` maps an address of the
    /// session (guest-physical as the current EPT sees it) to where it goes.
    pub(crate) fn drive(
        &mut self,
        cpu: &mut SoftCpu,
        target: &mut dyn FnMut(&SoftCpu, u64) -> Result<Target, HwError>,
        local: &mut dyn LocalDevices,
    ) -> Result<Next, HwError> {
        loop {
            while let Some(store) = self.session.take_store() {
                let bytes = store.value.to_le_bytes();
                match target(cpu, store.gpa)? {
                    Target::Ram(hpa) => cpu
                        .memory_mut()
                        .write(hpa, &bytes[..store.size])
                        .map_err(|e| HwError::PhysicalRange(e.addr))?,
                    Target::Device(addr) if local.claims(addr) => {
                        local.store(addr, store.size, store.value)
                    }
                    Target::Device(addr) => {
                        return Ok(Next::Store {
                            addr,
                            size: store.size,
                            value: store.value,
                        })
                    }
                    Target::Unmapped => return Ok(Next::Unmapped(store.gpa)),
                }
            }
            if let Some(load) = self.wanted.take() {
                match target(cpu, load.gpa)? {
                    Target::Ram(hpa) => {
                        let mut b = [0u8; 8];
                        cpu.memory()
                            .read(hpa, &mut b[..load.size])
                            .map_err(|e| HwError::PhysicalRange(e.addr))?;
                        self.session.supply(u64::from_le_bytes(b));
                    }
                    Target::Device(addr) if local.claims(addr) => {
                        self.session.supply(local.load(addr, load.size));
                    }
                    Target::Device(addr) => {
                        return Ok(Next::Load {
                            addr,
                            size: load.size,
                        })
                    }
                    Target::Unmapped => return Ok(Next::Unmapped(load.gpa)),
                }
            }
            match self.phase {
                Phase::Completed => return Ok(Next::Resume),
                Phase::Exited => return Ok(Next::Exited),
                Phase::Execute => {}
            }
            match cpu.emulate_mmio(&mut self.session) {
                MmioStep::Completed => self.phase = Phase::Completed,
                MmioStep::NeedsLoad(load) => self.wanted = Some(load),
                MmioStep::Exited => self.phase = Phase::Exited,
                // An event goes first: the guest retries the instruction
                // after it, and comes back here.
                MmioStep::Refused => return Ok(Next::Resume),
                MmioStep::PoweredOff => return Ok(Next::PoweredOff),
            }
        }
    }
}
