//! Port-I/O devices and the bus that routes `IN`/`OUT` exits to them.
//!
//! * [`bus`]: [`PortBus`], the [`PortDevice`] trait and [`DeviceAction`];
//!   ports no device claims behave as a PC's open bus.
//! * [`serial`]: a 16550A UART ([`Serial`]), COM1 at [`COM1_BASE`].
//! * [`debug_exit`]: QEMU's isa-debug-exit ([`DebugExit`]) at
//!   [`DEBUG_EXIT_BASE`].
//! * [`fw_cfg`]: QEMU's firmware configuration device ([`FwCfg`]) at
//!   [`FW_CFG_BASE`].
//! * [`pic`]: the 8259A pair ([`DualPic`]) at [`PIC_MASTER_BASE`] and
//!   [`PIC_SLAVE_BASE`].
//! * [`pit`]: the 8254 PIT ([`Pit`]) at [`PIT_BASE`], counting a shared
//!   [`VirtualClock`].
//! * [`mmio_bus`]: [`MmioBus`], the guest-physical devices (pc-testdev's
//!   buffer), unassigned memory reading all ones.
//! * [`testdev`]: QEMU's pc-testdev ([`TestDevPorts`] at
//!   [`TESTDEV_PORT_BASE`], [`TestDevIrqLines`], [`TestDevMmio`]).
//!
//! * [`rtc`], [`port61`], [`post`], [`i8042`], [`pci`], [`acpi`]'s
//!   power-management ports and the [`ioapic`]: what a PC kernel probes
//!   besides, used by the Linux board (`crate::platform`).
//!
//! [`PortBus::pc_default`] builds the bus of the guest ABI: COM1 and the
//! debug-exit device. [`PortBus::pc`] adds what QEMU's PC with `-kernel`
//! offers test kernels on ports: fw_cfg, the PIC pair, the PIT and
//! pc-testdev.

pub mod acpi;
pub mod bus;
pub mod debug_exit;
pub mod fw_cfg;
pub mod i8042;
pub mod ioapic;
pub mod mmio_bus;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod port61;
pub mod post;
pub mod rtc;
pub mod serial;
pub mod testdev;

pub use bus::{BusError, DeviceAction, PortBus, PortDevice, UnclaimedAccesses};
pub use debug_exit::{exit_status, DebugExit, DEBUG_EXIT_BASE, DEBUG_EXIT_LEN};
pub use fw_cfg::{FwCfg, FwCfgError, FW_CFG_BASE, FW_CFG_LEN};
pub use mmio_bus::{MmioBus, MmioDevice};
pub use pic::{DualPic, Pic8259, PicPorts, SharedPic, PIC_LEN, PIC_MASTER_BASE, PIC_SLAVE_BASE};
pub use pit::{Pit, VirtualClock, PIT_BASE, PIT_HZ, PIT_IRQ, PIT_LEN};
pub use serial::{Serial, COM1_BASE, SERIAL_LEN};
pub use testdev::{
    IrqLineLevels, TestDevIrqLines, TestDevMmio, TestDevPorts, TESTDEV_IRQ_BASE, TESTDEV_IRQ_LEN,
    TESTDEV_MMIO_BASE, TESTDEV_MMIO_LEN, TESTDEV_PORT_BASE, TESTDEV_PORT_LEN,
};

impl PortBus {
    /// The guest ABI's port devices: a 16550A UART at COM1 (0x3F8–0x3FF)
    /// writing to `serial_out`, and the debug-exit device at 0xF4–0xF7.
    pub fn pc_default(serial_out: Box<dyn std::io::Write + Send>) -> Result<PortBus, BusError> {
        let mut bus = PortBus::new();
        bus.register(COM1_BASE, SERIAL_LEN, Box::new(Serial::new(serial_out)))?;
        bus.register(DEBUG_EXIT_BASE, DEBUG_EXIT_LEN, Box::new(DebugExit::new()))?;
        Ok(bus)
    }

    /// [`PortBus::pc_default`] plus the port devices of QEMU's PC: fw_cfg
    /// (0x510) describing `ram_bytes` and one CPU, the 8259A pair (0x20,
    /// 0xA0), the 8254 PIT (0x40) counting `clock`, and pc-testdev's ports
    /// (0xE0, 0x2000).
    ///
    /// fw_cfg's command-line items are empty, as QEMU leaves them for a
    /// multiboot kernel (it reads its command line from the multiboot
    /// information). Interrupt lines are modelled but not yet delivered to
    /// the vCPU: kernels can program and mask the PIC and read the PIT.
    pub fn pc(
        serial_out: Box<dyn std::io::Write + Send>,
        ram_bytes: u64,
        clock: VirtualClock,
    ) -> Result<(PortBus, SharedPic), BusError> {
        PortBus::pc_with(
            Box::new(Serial::new(serial_out)),
            Box::new(Pit::new(clock)),
            ram_bytes,
        )
    }

    /// [`PortBus::pc`] with the given COM1 and PIT port devices (shared
    /// ones, for a board that wires their interrupt lines).
    pub fn pc_with(
        serial: Box<dyn PortDevice>,
        pit: Box<dyn PortDevice>,
        ram_bytes: u64,
    ) -> Result<(PortBus, SharedPic), BusError> {
        let mut bus = PortBus::new();
        bus.register(COM1_BASE, SERIAL_LEN, serial)?;
        bus.register(DEBUG_EXIT_BASE, DEBUG_EXIT_LEN, Box::new(DebugExit::new()))?;
        bus.register(
            FW_CFG_BASE,
            FW_CFG_LEN,
            Box::new(FwCfg::new(ram_bytes, 1, b"")),
        )?;
        let (pic, master, slave) = DualPic::shared();
        bus.register(PIC_MASTER_BASE, PIC_LEN, Box::new(master))?;
        bus.register(PIC_SLAVE_BASE, PIC_LEN, Box::new(slave))?;
        bus.register(PIT_BASE, PIT_LEN, pit)?;
        bus.register(
            TESTDEV_PORT_BASE,
            TESTDEV_PORT_LEN,
            Box::new(TestDevPorts::new()),
        )?;
        bus.register(
            TESTDEV_IRQ_BASE,
            TESTDEV_IRQ_LEN,
            Box::new(TestDevIrqLines::new(IrqLineLevels::new())),
        )?;
        Ok((bus, pic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::SharedBuf as Shared;

    #[test]
    fn pc_bus_has_the_qemu_port_devices() {
        let (mut bus, _pic) =
            PortBus::pc(Box::new(Shared::default()), 128 << 20, VirtualClock::new()).unwrap();
        bus.write(0x510, &[0, 0]);
        let mut sig = [0u8; 4];
        for b in &mut sig {
            let mut v = [0];
            bus.read(0x511, &mut v);
            *b = v[0];
        }
        assert_eq!(&sig, b"QEMU");
        bus.write(0xE0, &0x1234_5678u32.to_le_bytes());
        bus.write(0xE0, &[0xAB]);
        let mut v = [0; 4];
        bus.read(0xE0, &mut v);
        assert_eq!(u32::from_le_bytes(v), 0x1234_56AB);
        bus.write(0x21, &[0xFF]);
        bus.write(0xA1, &[0xFF]);
        let (mut m, mut sl) = ([0], [0]);
        bus.read(0x21, &mut m);
        bus.read(0xA1, &mut sl);
        assert_eq!((m[0], sl[0]), (0xFF, 0xFF));
        assert_eq!(bus.unclaimed(), UnclaimedAccesses::default());
    }

    #[test]
    fn pc_default_bus() {
        let out = Shared::default();
        let mut bus = PortBus::pc_default(Box::new(out.clone())).unwrap();
        for &b in b"ok\n" {
            assert_eq!(bus.write(0x3F8, &[b]), DeviceAction::None);
        }
        assert_eq!(&*out.bytes(), b"ok\n");
        let mut lsr = [0];
        bus.read(0x3FD, &mut lsr);
        assert_eq!(lsr[0] & 0x60, 0x60);
        assert_eq!(bus.write(0xF4, &[0x10, 0, 0, 0]), DeviceAction::Exit(0x10));
        assert_eq!(bus.unclaimed(), UnclaimedAccesses::default());
        let mut b = [0; 1];
        bus.read(0x2F8, &mut b);
        assert_eq!(b, [0xFF]);
        assert_eq!(bus.unclaimed().reads, 1);
    }
}
