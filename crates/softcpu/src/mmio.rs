//! MMIO emulation for the hypervisor: the instruction behind an EPT
//! violation that the hypervisor judged to be MMIO is executed by this
//! processor's own executor, with every operand access that EPT does not
//! map exchanged with the hypervisor — KVM's arrangement, where one x86
//! emulator serves every instruction that can touch memory.
//!
//! The protocol is exit-and-complete, so the processor never calls into
//! its hypervisor and knows nothing of devices:
//!
//! 1. The guest's access stops at an EPT violation (an ordinary VM exit;
//!    nothing of the instruction happened).
//! 2. The hypervisor decides the address is a device's (or nobody's) and
//!    calls [`SoftCpu::emulate_mmio`] with an [`MmioSession`]. The
//!    processor runs that one instruction in the guest's context: accesses
//!    EPT maps go to memory as usual; the others become session entries.
//!    A store is recorded; a load takes the next value the session holds,
//!    and when it holds none the instruction stops — nothing architectural
//!    changed — and the call returns [`MmioStep::NeedsLoad`].
//! 3. The hypervisor performs the recorded stores in order
//!    ([`MmioSession::take_store`]), obtains the load's value (from a device
//!    of its own, or from its userspace), [`MmioSession::supply`]s it and
//!    calls again: the instruction runs from its start, its earlier loads
//!    are answered from the session (each device sees each load once), and
//!    so on until [`MmioStep::Completed`].
//!
//! Stores become the hypervisor's when the instruction completes, or when
//! an iteration of a REP string instruction completes (iterations commit
//! their registers one by one, so a stop in a later one keeps the earlier
//! ones); the stores of an execution that stopped are dropped and made
//! again by the next. An access that straddles a page boundary is split at
//! it: each part goes where its own translation says (memory, or a session
//! entry of the part's size, 1 to 7 bytes).

use crate::cpu::SoftCpu;
use crate::fault::{ExitInfo, Stop};
use std::collections::VecDeque;

/// A load from an address EPT does not map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioLoad {
    /// Guest-physical address (as the current VMCS's EPT sees it).
    pub gpa: u64,
    /// Bytes, 1 to 8.
    pub size: usize,
}

/// A store to an address EPT does not map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioStore {
    /// Guest-physical address (as the current VMCS's EPT sees it).
    pub gpa: u64,
    /// Bytes, 1 to 8.
    pub size: usize,
    /// The stored bytes, little-endian in the low `size` bytes.
    pub value: u64,
}

/// What one call of [`SoftCpu::emulate_mmio`](crate::SoftCpu::emulate_mmio)
/// did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioStep {
    /// The instruction completed, or raised an exception that was delivered
    /// to the guest; the guest state is back in the VMCS and the session
    /// holds its stores.
    Completed,
    /// The instruction stopped at this load: perform the session's stores,
    /// supply the value and call again. The guest state in the VMCS is the
    /// instruction's start (or, for a REP string instruction, the start of
    /// the iteration that stopped).
    NeedsLoad(MmioLoad),
    /// A VM exit happened instead (an intercepted exception, an EPT
    /// violation or misconfiguration on something other than an operand, a
    /// notify exit…): its information is in the VMCS as after VMRESUME. The
    /// session keeps the stores of completed work.
    Exited,
    /// Not executed: VM entry would deliver an event first, or the guest is
    /// not active. Enter it normally instead.
    Refused,
    /// The power was cut.
    PoweredOff,
}

/// The accesses of one emulated instruction, between the processor and its
/// hypervisor (see the module documentation).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MmioSession {
    /// Values of the instruction's loads, in program order.
    loads: Vec<u64>,
    /// Loads the execution under way has consumed.
    used: usize,
    /// Stores of the execution under way, not yet committed.
    uncommitted: Vec<MmioStore>,
    /// Committed stores, for the hypervisor, in program order.
    stores: VecDeque<MmioStore>,
}

impl MmioSession {
    /// An empty session.
    pub fn new() -> Self {
        Self::default()
    }

    /// Supplies the value of the load the last call stopped at.
    pub fn supply(&mut self, value: u64) {
        self.loads.push(value);
    }

    /// The oldest committed store not yet taken.
    pub fn take_store(&mut self) -> Option<MmioStore> {
        self.stores.pop_front()
    }

    /// Forgets everything (the instruction is done or abandoned).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Starts an execution of the instruction.
    pub(crate) fn begin(&mut self) {
        self.used = 0;
        self.uncommitted.clear();
    }

    /// The next load's value, if supplied.
    pub(crate) fn load(&mut self) -> Option<u64> {
        let v = self.loads.get(self.used).copied()?;
        self.used += 1;
        Some(v)
    }

    /// Records a store of the execution under way.
    pub(crate) fn store(&mut self, store: MmioStore) {
        self.uncommitted.push(store);
    }

    /// The work so far is done for good (the instruction, or one string
    /// iteration): its stores go to the hypervisor, its loads are spent.
    pub(crate) fn commit(&mut self) {
        self.stores.extend(self.uncommitted.drain(..));
        self.loads.drain(..self.used);
        self.used = 0;
    }

    /// The execution under way stopped: its stores are made again next time.
    pub(crate) fn abandon(&mut self) {
        self.uncommitted.clear();
        self.used = 0;
    }
}

impl SoftCpu {
    /// Executes the instruction at the guest RIP of the current VMCS — the
    /// one whose EPT violation the hypervisor judged to be MMIO — with the
    /// operand accesses EPT does not map going to `session` (see the module
    /// documentation). The guest state comes from the VMCS as VM entry
    /// loads it and goes back as a VM exit saves it; no entry checks are
    /// made (the VMCS entered a moment ago) and no exit information is
    /// written unless a real VM exit happens. Virtual time advances as for
    /// the instruction executed normally.
    pub fn emulate_mmio(&mut self, session: &mut MmioSession) -> MmioStep {
        if self.powered_off || self.power_cut() {
            self.powered_off = true;
            return MmioStep::PoweredOff;
        }
        self.load_guest_state();
        if self.injection.is_some() || self.halted {
            self.injection = None;
            self.preemption_deadline = None;
            return MmioStep::Refused;
        }
        self.iret_unblocked_nmi = false;
        self.update_debug_state();
        self.vmx.non_root = true;
        self.tlb.flush();
        session.begin();
        self.mmio = Some(std::mem::take(session));
        self.mmio_wanted = None;
        let retired = self.retired;
        let result = self.step();
        *session = self.mmio.take().unwrap_or_default();
        // The instruction itself completed when it retired, even if a trap
        // (a bus lock, a debug trap the exception bitmap takes) follows.
        if self.retired != retired {
            session.commit();
        } else {
            session.abandon();
        }
        match result {
            Ok(()) => {
                self.save_guest_state(false);
                MmioStep::Completed
            }
            Err(Stop::MmioPending) => {
                self.save_guest_state(false);
                match self.mmio_wanted.take() {
                    Some(load) => MmioStep::NeedsLoad(load),
                    None => MmioStep::Completed,
                }
            }
            Err(Stop::VmExit(info)) => {
                self.vm_exit(info);
                MmioStep::Exited
            }
            Err(Stop::PowerOff) => {
                self.powered_off = true;
                MmioStep::PoweredOff
            }
            // `step` delivers exceptions; one escaping it is a triple fault.
            Err(_) => {
                self.vm_exit(ExitInfo::new(x86::vmx::exit_reason::TRIPLE_FAULT, 0));
                MmioStep::Exited
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_replay_until_a_commit_and_stores_wait_for_one() {
        let mut s = MmioSession::new();
        s.begin();
        assert_eq!(s.load(), None);
        s.supply(7);
        s.begin();
        assert_eq!(s.load(), Some(7));
        s.store(MmioStore {
            gpa: 1,
            size: 4,
            value: 7,
        });
        assert_eq!(s.load(), None);
        s.abandon();
        assert_eq!(
            s.take_store(),
            None,
            "a stopped execution's store is dropped"
        );
        s.supply(8);
        s.begin();
        assert_eq!(s.load(), Some(7));
        s.store(MmioStore {
            gpa: 1,
            size: 4,
            value: 7,
        });
        assert_eq!(s.load(), Some(8));
        s.commit();
        assert_eq!(s.take_store().map(|w| w.value), Some(7));
        assert_eq!(s.take_store(), None);
        s.begin();
        assert_eq!(s.load(), None, "loads are spent by the commit");
    }
}
