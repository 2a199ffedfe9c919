//! The port-I/O bus: routes `IN`/`OUT` accesses to the device that claims
//! each port.
//!
//! Devices are registered over non-overlapping port ranges. An access is
//! handed to the device owning its first port with an offset relative to the
//! device's base; an access that runs past the end of a device's range is
//! split, each part going to whoever owns it (as an ISA bus splits a wide
//! access to narrow devices). Ports nobody claims behave as a PC's open bus,
//! as in QEMU: reads return all ones (0xFF bytes), writes are ignored. Such
//! accesses are counted so the VMM can report them. Ports past 0xFFFF (the
//! tail of a wide access at the top of the port space) are unclaimed.

use std::fmt;

/// What the VMM must do after a device handled a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAction {
    /// Nothing: resume the guest.
    None,
    /// The guest asked to end the run with this value (the debug-exit
    /// device); the VMM exits with status `(value << 1) | 1`.
    Exit(u32),
    /// The guest powered the machine off (ACPI S5).
    PowerOff,
    /// The guest pulled the CPU's reset line (a reboot).
    Reset,
}

/// A device on the port bus.
pub trait PortDevice: Send {
    /// A short name for diagnostics ("serial", "debug-exit").
    fn name(&self) -> &str;
    /// Handles `IN`: fills `data` (the access size, 1, 2 or 4 bytes,
    /// little-endian) for an access at `offset` from the device's base.
    fn read(&mut self, offset: u16, data: &mut [u8]);
    /// Handles `OUT` of `data` (little-endian) at `offset` from the base.
    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction;
}

/// Counts of accesses to ports no device claims.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnclaimedAccesses {
    /// `IN` accesses that touched at least one unclaimed port.
    pub reads: u64,
    /// `OUT` accesses that touched at least one unclaimed port.
    pub writes: u64,
    /// The first unclaimed port of the most recent such access.
    pub last_port: Option<u16>,
}

/// Why a device cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    /// The range is empty.
    EmptyRange {
        /// The device's name.
        name: String,
        /// The requested base port.
        base: u16,
    },
    /// The range runs past port 0xFFFF.
    BeyondPortSpace {
        /// The device's name.
        name: String,
        /// The requested base port.
        base: u16,
        /// The requested number of ports.
        len: u16,
    },
    /// The range overlaps a device already registered.
    Overlap {
        /// The new device's name.
        name: String,
        /// Its base port.
        base: u16,
        /// Its number of ports.
        len: u16,
        /// The registered device's name.
        other: String,
        /// Its base port.
        other_base: u16,
        /// Its number of ports.
        other_len: u16,
    },
}

/// Formats `len` ports from `base` as an inclusive range.
fn range(base: u16, len: u16) -> String {
    let last = u32::from(base) + u32::from(len).saturating_sub(1);
    format!("{base:#x}-{last:#x}")
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::EmptyRange { name, base } => write!(
                f,
                "cannot register {name} at port {base:#x}: its port range is empty; give it at least one port"
            ),
            BusError::BeyondPortSpace { name, base, len } => write!(
                f,
                "cannot register {name} at ports {}: the range runs past port 0xffff; choose a lower base port",
                range(*base, *len)
            ),
            BusError::Overlap {
                name,
                base,
                len,
                other,
                other_base,
                other_len,
            } => write!(
                f,
                "cannot register {name} at ports {}: they overlap {other} at ports {}; choose a free port range",
                range(*base, *len),
                range(*other_base, *other_len)
            ),
        }
    }
}

impl std::error::Error for BusError {}

/// A registered device and the ports it owns: `base .. base + len`.
struct Slot {
    base: u16,
    len: u16,
    device: Box<dyn PortDevice>,
}

impl Slot {
    fn end(&self) -> u32 {
        u32::from(self.base) + u32::from(self.len)
    }
}

/// The I/O port address space of one VM.
#[derive(Default)]
pub struct PortBus {
    /// Sorted by base port, non-overlapping.
    slots: Vec<Slot>,
    unclaimed: UnclaimedAccesses,
}

impl fmt::Debug for PortBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (base, len, name) in self.devices() {
            list.entry(&format_args!("{name}@{}", range(base, len)));
        }
        list.finish()?;
        write!(f, " unclaimed {:?}", self.unclaimed)
    }
}

/// Who owns the next part of an access.
enum Owner {
    /// Slot index and the port's offset in it.
    Device(usize, u16),
    /// Nobody.
    Unclaimed,
}

impl PortBus {
    /// An empty bus: every port unclaimed.
    pub fn new() -> PortBus {
        PortBus::default()
    }

    /// Gives `device` the `len` ports starting at `base`.
    pub fn register(
        &mut self,
        base: u16,
        len: u16,
        device: Box<dyn PortDevice>,
    ) -> Result<(), BusError> {
        let name = device.name().to_string();
        if len == 0 {
            return Err(BusError::EmptyRange { name, base });
        }
        let end = u32::from(base) + u32::from(len);
        if end > 0x1_0000 {
            return Err(BusError::BeyondPortSpace { name, base, len });
        }
        if let Some(other) = self
            .slots
            .iter()
            .find(|s| u32::from(base) < s.end() && u32::from(s.base) < end)
        {
            return Err(BusError::Overlap {
                name,
                base,
                len,
                other: other.device.name().to_string(),
                other_base: other.base,
                other_len: other.len,
            });
        }
        let at = self.slots.partition_point(|s| s.base < base);
        self.slots.insert(at, Slot { base, len, device });
        Ok(())
    }

    /// The registered devices as `(base, len, name)`, by base port.
    pub fn devices(&self) -> impl Iterator<Item = (u16, u16, &str)> + '_ {
        self.slots.iter().map(|s| (s.base, s.len, s.device.name()))
    }

    /// Accesses to unclaimed ports so far.
    pub fn unclaimed(&self) -> UnclaimedAccesses {
        self.unclaimed
    }

    /// Finds who owns `port` (wider than `u16` so that the tail of an
    /// access at the top of the port space can be expressed) and how many of
    /// the next `want` bytes (at least one) they own.
    fn owner(&self, port: u64, want: usize) -> (Owner, usize) {
        let idx = self.slots.partition_point(|s| u64::from(s.base) <= port);
        if let Some(slot) = idx.checked_sub(1).and_then(|i| self.slots.get(i)) {
            if port < u64::from(slot.end()) {
                // Both fit in u16: the port lies inside the slot.
                let room =
                    usize::from(u16::try_from(u64::from(slot.end()) - port).unwrap_or(u16::MAX));
                let offset = u16::try_from(port - u64::from(slot.base)).unwrap_or(u16::MAX);
                return (Owner::Device(idx - 1, offset), want.min(room).max(1));
            }
        }
        let room = match self.slots.get(idx) {
            // next.base > port by the partition.
            Some(next) => {
                usize::try_from(u64::from(next.base).saturating_sub(port)).unwrap_or(usize::MAX)
            }
            None => want,
        };
        (Owner::Unclaimed, want.min(room).max(1))
    }

    /// The port `done` bytes into an access at `port`.
    fn port_at(port: u16, done: usize) -> u64 {
        u64::from(port).saturating_add(u64::try_from(done).unwrap_or(u64::MAX))
    }

    /// Handles `IN` at `port`: fills `data` (its length is the access size).
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        let mut done = 0;
        let mut unclaimed = None;
        while done < data.len() {
            let at = Self::port_at(port, done);
            let (owner, n) = self.owner(at, data.len() - done);
            let Some(part) = data.get_mut(done..done + n) else {
                break;
            };
            match owner {
                Owner::Device(i, offset) => {
                    if let Some(slot) = self.slots.get_mut(i) {
                        slot.device.read(offset, part);
                    }
                }
                Owner::Unclaimed => {
                    part.fill(0xFF);
                    unclaimed.get_or_insert(at);
                }
            }
            done += n;
        }
        if let Some(at) = unclaimed {
            self.unclaimed.reads = self.unclaimed.reads.saturating_add(1);
            self.unclaimed.last_port = u16::try_from(at).ok().or(Some(u16::MAX));
        }
    }

    /// Handles `OUT` of `data` at `port`. Returns the first action a device
    /// asked for (every part of the access is still delivered).
    pub fn write(&mut self, port: u16, data: &[u8]) -> DeviceAction {
        let mut done = 0;
        let mut unclaimed = None;
        let mut action = DeviceAction::None;
        while done < data.len() {
            let at = Self::port_at(port, done);
            let (owner, n) = self.owner(at, data.len() - done);
            let Some(part) = data.get(done..done + n) else {
                break;
            };
            match owner {
                Owner::Device(i, offset) => {
                    if let Some(slot) = self.slots.get_mut(i) {
                        let a = slot.device.write(offset, part);
                        if action == DeviceAction::None {
                            action = a;
                        }
                    }
                }
                Owner::Unclaimed => {
                    unclaimed.get_or_insert(at);
                }
            }
            done += n;
        }
        if let Some(at) = unclaimed {
            self.unclaimed.writes = self.unclaimed.writes.saturating_add(1);
            self.unclaimed.last_port = u16::try_from(at).ok().or(Some(u16::MAX));
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Log = Arc<Mutex<Vec<String>>>;

    /// Records every access; reads return `offset + i` per byte; a write of
    /// 0xEE asks to exit.
    struct Probe {
        name: &'static str,
        log: Log,
    }

    impl PortDevice for Probe {
        fn name(&self) -> &str {
            self.name
        }
        fn read(&mut self, offset: u16, data: &mut [u8]) {
            for (i, b) in data.iter_mut().enumerate() {
                *b = offset as u8 + i as u8;
            }
            self.log
                .lock()
                .unwrap()
                .push(format!("{} r {offset} {}", self.name, data.len()));
        }
        fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} w {offset} {data:?}", self.name));
            if data.first() == Some(&0xEE) {
                DeviceAction::Exit(7)
            } else {
                DeviceAction::None
            }
        }
    }

    fn probe(name: &'static str, log: &Log) -> Box<dyn PortDevice> {
        Box::new(Probe {
            name,
            log: log.clone(),
        })
    }

    fn bus() -> (PortBus, Log) {
        let log = Log::default();
        let mut bus = PortBus::new();
        bus.register(0x3F8, 8, probe("a", &log)).unwrap();
        bus.register(0x400, 4, probe("b", &log)).unwrap();
        (bus, log)
    }

    fn take(log: &Log) -> Vec<String> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    #[test]
    fn dispatch_with_offsets() {
        let (mut bus, log) = bus();
        let mut d = [0u8; 2];
        bus.read(0x3FA, &mut d);
        assert_eq!(d, [2, 3]);
        assert_eq!(bus.write(0x401, &[1, 2]), DeviceAction::None);
        assert_eq!(take(&log), ["a r 2 2", "b w 1 [1, 2]"]);
        assert_eq!(bus.unclaimed(), UnclaimedAccesses::default());
    }

    #[test]
    fn unclaimed_ports_are_open_bus() {
        let (mut bus, log) = bus();
        let mut d = [0u8; 4];
        bus.read(0x80, &mut d);
        assert_eq!(d, [0xFF; 4]);
        assert_eq!(bus.write(0x80, &[1]), DeviceAction::None);
        assert_eq!(bus.write(0x3F7, &[1]), DeviceAction::None);
        assert!(take(&log).is_empty());
        assert_eq!(
            bus.unclaimed(),
            UnclaimedAccesses {
                reads: 1,
                writes: 2,
                last_port: Some(0x3F7)
            }
        );
    }

    #[test]
    fn straddling_access_is_split() {
        let (mut bus, log) = bus();
        // 0x3FE-0x3FF belong to a, 0x400-0x401 to b.
        let mut d = [0u8; 4];
        bus.read(0x3FE, &mut d);
        assert_eq!(d, [6, 7, 0, 1]);
        assert_eq!(take(&log), ["a r 6 2", "b r 0 2"]);
        // 0x3F6-0x3F7 unclaimed, 0x3F8-0x3F9 a.
        bus.read(0x3F6, &mut d);
        assert_eq!(d, [0xFF, 0xFF, 0, 1]);
        assert_eq!(bus.unclaimed().reads, 1);
        assert_eq!(bus.unclaimed().last_port, Some(0x3F6));
        // 0x403 b, 0x404-0x406 unclaimed.
        bus.write(0x403, &[1, 2, 3, 4]);
        assert_eq!(take(&log), ["a r 0 2", "b w 3 [1]"]);
        assert_eq!(bus.unclaimed().writes, 1);
        assert_eq!(bus.unclaimed().last_port, Some(0x404));
    }

    #[test]
    fn top_of_port_space() {
        let log = Log::default();
        let mut bus = PortBus::new();
        bus.register(0xFFFE, 2, probe("top", &log)).unwrap();
        let mut d = [0u8; 4];
        bus.read(0xFFFF, &mut d);
        assert_eq!(d, [1, 0xFF, 0xFF, 0xFF]);
        assert_eq!(bus.unclaimed().last_port, Some(0xFFFF));
        let mut empty = PortBus::new();
        empty.read(0xFFFF, &mut d);
        assert_eq!(d, [0xFF; 4]);
        assert_eq!(empty.write(0xFFFD, &[0; 4]), DeviceAction::None);
        assert_eq!(empty.unclaimed().writes, 1);
    }

    #[test]
    fn zero_length_access_is_nothing() {
        let (mut bus, log) = bus();
        bus.read(0x3F8, &mut []);
        assert_eq!(bus.write(0x80, &[]), DeviceAction::None);
        assert!(take(&log).is_empty());
        assert_eq!(bus.unclaimed(), UnclaimedAccesses::default());
    }

    #[test]
    fn exit_action_is_returned() {
        let (mut bus, log) = bus();
        assert_eq!(bus.write(0x3F8, &[0xEE]), DeviceAction::Exit(7));
        // The first action wins; the rest of the access is still delivered.
        assert_eq!(bus.write(0x3FF, &[0xEE, 0xEE]), DeviceAction::Exit(7));
        assert_eq!(take(&log).len(), 3);
    }

    #[test]
    fn registration_errors() {
        let (mut bus, log) = bus();
        let e = bus.register(0x3FC, 8, probe("c", &log)).unwrap_err();
        assert_eq!(
            e,
            BusError::Overlap {
                name: "c".into(),
                base: 0x3FC,
                len: 8,
                other: "a".into(),
                other_base: 0x3F8,
                other_len: 8
            }
        );
        assert_eq!(
            e.to_string(),
            "cannot register c at ports 0x3fc-0x403: they overlap a at ports 0x3f8-0x3ff; choose a free port range"
        );
        // Overlap from below, containing, contained.
        for (base, len) in [(0x3F0, 9), (0x3F0, 0x20), (0x3F9, 1), (0x403, 1)] {
            assert!(matches!(
                bus.register(base, len, probe("c", &log)),
                Err(BusError::Overlap { .. })
            ));
        }
        assert!(matches!(
            bus.register(0x10, 0, probe("c", &log)),
            Err(BusError::EmptyRange { .. })
        ));
        let e = bus.register(0xFFF0, 0x20, probe("c", &log)).unwrap_err();
        assert!(matches!(e, BusError::BeyondPortSpace { .. }));
        assert!(!e.to_string().contains('\n'));
        // Adjacent ranges are fine, and the list stays sorted.
        bus.register(0x3F0, 8, probe("c", &log)).unwrap();
        bus.register(0x404, 1, probe("d", &log)).unwrap();
        bus.register(0xFFFF, 1, probe("e", &log)).unwrap();
        let names: Vec<_> = bus.devices().map(|(b, _, n)| (b, n.to_string())).collect();
        assert_eq!(
            names,
            [
                (0x3F0, "c".to_string()),
                (0x3F8, "a".into()),
                (0x400, "b".into()),
                (0x404, "d".into()),
                (0xFFFF, "e".into())
            ]
        );
        assert!(format!("{bus:?}").contains("a@0x3f8-0x3ff"));
    }

    #[test]
    fn bus_can_move_to_a_vcpu_thread() {
        fn is_send<T: Send>() {}
        is_send::<PortBus>();
    }

    #[test]
    fn random_accesses_never_panic() {
        let (mut bus, _log) = bus();
        let mut x = 0x1234_5678_9ABC_DEF1u64;
        let mut data = [0u8; 8];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let port = x as u16;
            let len = (x >> 16) as usize % 9;
            if x >> 40 & 1 == 0 {
                bus.read(port, &mut data[..len]);
            } else {
                bus.write(port, &data[..len]);
            }
        }
    }
}
