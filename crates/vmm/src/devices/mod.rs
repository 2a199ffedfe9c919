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
//! * [`testdev`]: QEMU's pc-testdev ([`TestDevPorts`] at
//!   [`TESTDEV_PORT_BASE`], [`TestDevIrqLines`], [`TestDevMmio`]).
//!
//! [`PortBus::pc_default`] builds the bus of the guest ABI: COM1 and the
//! debug-exit device.

pub mod bus;
pub mod debug_exit;
pub mod fw_cfg;
pub mod pic;
pub mod pit;
pub mod serial;
pub mod testdev;

pub use bus::{BusError, DeviceAction, PortBus, PortDevice, UnclaimedAccesses};
pub use debug_exit::{exit_status, DebugExit, DEBUG_EXIT_BASE, DEBUG_EXIT_LEN};
pub use fw_cfg::{FwCfg, FwCfgError, FW_CFG_BASE, FW_CFG_LEN};
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::SharedBuf as Shared;

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
