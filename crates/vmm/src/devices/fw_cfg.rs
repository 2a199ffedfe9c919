//! QEMU's firmware configuration device (fw_cfg), traditional port-I/O
//! interface only.
//!
//! Follows QEMU's `docs/specs/fw_cfg.rst` ("Guest-side Hardware Interface"):
//!
//! * Selector register, port [`FW_CFG_PORT_SEL`] (0x510): a 16-bit
//!   little-endian write selects an item and resets the data offset to zero.
//! * Data register, port [`FW_CFG_PORT_DATA`] (0x511): each 8-bit read
//!   returns the next byte of the selected item; once the offset has passed
//!   the item's end (or for a key with no item) reads return 0.
//!
//! Details of this model:
//!
//! * The two ports overlap in QEMU's x86 device (the spec's footnote on
//!   placement), which accepts byte reads at either port as data reads; this
//!   model does the same.
//! * Writes to the data register are ignored, as the spec says since QEMU
//!   2.4 (writes exist only through DMA, which is not offered: [`FW_CFG_ID`]
//!   reads 1, "traditional interface" only).
//! * Accesses of other widths (a 16-bit read, a byte write at 0x510, a
//!   16-bit write at 0x511, any 32-bit access) are not valid for the device:
//!   reads return all ones, writes are ignored.
//! * Bit 14 (write channel) and bit 15 (architecture-local) of the selector
//!   are part of the key: a key nobody provides simply reads zeros.
//!
//! Items: [`FW_CFG_SIGNATURE`] ("QEMU"), [`FW_CFG_ID`] (u32 1),
//! [`FW_CFG_RAM_SIZE`] (u64), [`FW_CFG_NB_CPUS`] and [`FW_CFG_MAX_CPUS`]
//! (u16), [`FW_CFG_CMDLINE_SIZE`] (u32, bytes including the NUL) and
//! [`FW_CFG_CMDLINE_DATA`] (the command line and its NUL), and the file
//! directory [`FW_CFG_FILE_DIR`]. Numbers are little-endian except in the
//! file directory, whose fields are big-endian (the spec's `FWCfgFiles`).
//! Files added with [`FwCfg::add_file`] get keys from [`FW_CFG_FILE_FIRST`]
//! and are listed in the directory sorted by name.

use std::collections::BTreeMap;
use std::fmt;

use super::bus::{DeviceAction, PortDevice};

/// The selector register's port on x86.
pub const FW_CFG_PORT_SEL: u16 = 0x510;
/// The data register's port on x86 (always the selector port + 1).
pub const FW_CFG_PORT_DATA: u16 = 0x511;
/// Base port of the device: the selector register.
pub const FW_CFG_BASE: u16 = FW_CFG_PORT_SEL;
/// Number of ports the device occupies (selector and data).
pub const FW_CFG_LEN: u16 = 2;

/// Key of the signature item: the bytes "QEMU".
pub const FW_CFG_SIGNATURE: u16 = 0x0000;
/// Key of the revision / feature bitmap: a little-endian u32; bit 0
/// traditional interface (always set), bit 1 DMA interface.
pub const FW_CFG_ID: u16 = 0x0001;
/// Key of the RAM size in bytes: a little-endian u64.
pub const FW_CFG_RAM_SIZE: u16 = 0x0003;
/// Key of the number of CPUs present at boot: a little-endian u16.
pub const FW_CFG_NB_CPUS: u16 = 0x0005;
/// Key of the maximum number of CPUs: a little-endian u16.
pub const FW_CFG_MAX_CPUS: u16 = 0x000F;
/// Key of the kernel command line's size including its NUL: a
/// little-endian u32.
pub const FW_CFG_CMDLINE_SIZE: u16 = 0x0014;
/// Key of the kernel command line's bytes, NUL-terminated.
pub const FW_CFG_CMDLINE_DATA: u16 = 0x0015;
/// Key of the file directory: a big-endian u32 count, then one 64-byte
/// entry per file (big-endian u32 size, big-endian u16 key, u16 reserved,
/// 56-byte NUL-terminated name).
pub const FW_CFG_FILE_DIR: u16 = 0x0019;
/// The first key given to a file.
pub const FW_CFG_FILE_FIRST: u16 = 0x0020;
/// The longest file name, in bytes, leaving room for the NUL of the
/// directory's 56-byte name field.
pub const FW_CFG_MAX_FILE_NAME: usize = 55;

/// Size in bytes of one file-directory entry.
const FILE_ENTRY_LEN: usize = 64;
/// Size of the name field of a file-directory entry.
const FILE_NAME_FIELD: usize = 56;
/// The largest file key: files stay in the generic, read-only range
/// 0x0000–0x3FFF.
const FW_CFG_FILE_LAST: u16 = 0x3FFF;

/// Why a file cannot be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwCfgError {
    /// The name is empty, longer than [`FW_CFG_MAX_FILE_NAME`] bytes, or
    /// contains a NUL.
    BadName(String),
    /// A file with this name already exists.
    Duplicate(String),
    /// The file is 4 GiB or larger: the directory's size field is a u32.
    TooLarge(String),
    /// Every file key up to 0x3FFF is taken.
    NoKeyLeft,
}

impl fmt::Display for FwCfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FwCfgError::BadName(n) => write!(
                f,
                "cannot add fw_cfg file {n:?}: a name must be 1 to {FW_CFG_MAX_FILE_NAME} bytes without NUL"
            ),
            FwCfgError::Duplicate(n) => {
                write!(f, "cannot add fw_cfg file {n:?}: the name is already used")
            }
            FwCfgError::TooLarge(n) => {
                write!(f, "cannot add fw_cfg file {n:?}: files must be smaller than 4 GiB")
            }
            FwCfgError::NoKeyLeft => write!(f, "cannot add an fw_cfg file: no selector key left"),
        }
    }
}

impl std::error::Error for FwCfgError {}

/// The fw_cfg device.
#[derive(Debug, Clone)]
pub struct FwCfg {
    /// Items by key (the file directory is rebuilt when a file is added).
    items: BTreeMap<u16, Vec<u8>>,
    /// Files as (name, key), sorted by name.
    files: Vec<(String, u16)>,
    /// The selected key.
    selector: u16,
    /// The data offset in the selected item.
    offset: usize,
}

impl FwCfg {
    /// An fw_cfg device describing a machine with `ram_bytes` of RAM and
    /// `cpus` CPUs (also reported as the maximum), booted with `cmdline`
    /// (bytes after a NUL, if any, are dropped: the item is a C string).
    /// An empty `cmdline` leaves both command-line items empty (size 0), as
    /// QEMU does for a kernel that gets its command line another way.
    /// The signature item is selected, as after QEMU's reset.
    pub fn new(ram_bytes: u64, cpus: u16, cmdline: &[u8]) -> FwCfg {
        let mut cmd: Vec<u8> = cmdline.iter().copied().take_while(|&b| b != 0).collect();
        if !cmd.is_empty() {
            cmd.push(0);
        }
        let cmd_len = u32::try_from(cmd.len()).unwrap_or(u32::MAX);
        let mut items = BTreeMap::new();
        items.insert(FW_CFG_SIGNATURE, b"QEMU".to_vec());
        items.insert(FW_CFG_ID, 1u32.to_le_bytes().to_vec());
        items.insert(FW_CFG_RAM_SIZE, ram_bytes.to_le_bytes().to_vec());
        items.insert(FW_CFG_NB_CPUS, cpus.to_le_bytes().to_vec());
        items.insert(FW_CFG_MAX_CPUS, cpus.to_le_bytes().to_vec());
        items.insert(FW_CFG_CMDLINE_SIZE, cmd_len.to_le_bytes().to_vec());
        items.insert(FW_CFG_CMDLINE_DATA, cmd);
        let mut fw = FwCfg {
            items,
            files: Vec::new(),
            selector: FW_CFG_SIGNATURE,
            offset: 0,
        };
        fw.rebuild_directory();
        fw
    }

    /// Adds a named file, listed in the file directory; returns its key.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<u16, FwCfgError> {
        if name.is_empty() || name.len() > FW_CFG_MAX_FILE_NAME || name.contains('\0') {
            return Err(FwCfgError::BadName(name.to_string()));
        }
        if self.files.iter().any(|(n, _)| n == name) {
            return Err(FwCfgError::Duplicate(name.to_string()));
        }
        if u32::try_from(data.len()).is_err() {
            return Err(FwCfgError::TooLarge(name.to_string()));
        }
        let key = (FW_CFG_FILE_FIRST..=FW_CFG_FILE_LAST)
            .find(|k| !self.items.contains_key(k))
            .ok_or(FwCfgError::NoKeyLeft)?;
        self.items.insert(key, data);
        let at = self.files.partition_point(|(n, _)| n.as_str() < name);
        self.files.insert(at, (name.to_string(), key));
        self.rebuild_directory();
        Ok(key)
    }

    /// The bytes of the item at `key`, if there is one.
    pub fn item(&self, key: u16) -> Option<&[u8]> {
        self.items.get(&key).map(Vec::as_slice)
    }

    /// The selected key.
    pub fn selected(&self) -> u16 {
        self.selector
    }

    /// Selects `key` and resets the data offset, as a selector write does.
    pub fn select(&mut self, key: u16) {
        self.selector = key;
        self.offset = 0;
    }

    /// Reads the next data byte of the selected item (0 past its end).
    pub fn read_data_byte(&mut self) -> u8 {
        let byte = self
            .items
            .get(&self.selector)
            .and_then(|item| item.get(self.offset).copied());
        match byte {
            Some(b) => {
                self.offset += 1;
                b
            }
            None => 0,
        }
    }

    fn rebuild_directory(&mut self) {
        let count = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        let mut dir = Vec::with_capacity(4 + self.files.len() * FILE_ENTRY_LEN);
        dir.extend_from_slice(&count.to_be_bytes());
        for (name, key) in &self.files {
            let size = self
                .items
                .get(key)
                .map_or(0, |d| u32::try_from(d.len()).unwrap_or(u32::MAX));
            dir.extend_from_slice(&size.to_be_bytes());
            dir.extend_from_slice(&key.to_be_bytes());
            dir.extend_from_slice(&[0, 0]);
            let mut field = [0u8; FILE_NAME_FIELD];
            for (dst, src) in field.iter_mut().zip(name.as_bytes()) {
                *dst = *src;
            }
            dir.extend_from_slice(&field);
        }
        self.items.insert(FW_CFG_FILE_DIR, dir);
    }
}

impl PortDevice for FwCfg {
    fn name(&self) -> &str {
        "fw_cfg"
    }

    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        match data {
            [b] => *b = self.read_data_byte(),
            _ => data.fill(0xFF),
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> DeviceAction {
        if let (0, &[lo, hi]) = (offset, data) {
            self.select(u16::from_le_bytes([lo, hi]));
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::PortBus;

    fn bus(fw: FwCfg) -> PortBus {
        let mut bus = PortBus::new();
        bus.register(FW_CFG_BASE, FW_CFG_LEN, Box::new(fw)).unwrap();
        bus
    }

    /// What a guest does: outw key to 0x510, inb 0x511 `n` times.
    fn read_item(bus: &mut PortBus, key: u16, n: usize) -> Vec<u8> {
        bus.write(FW_CFG_PORT_SEL, &key.to_le_bytes());
        (0..n)
            .map(|_| {
                let mut b = [0xAA];
                bus.read(FW_CFG_PORT_DATA, &mut b);
                b[0]
            })
            .collect()
    }

    #[test]
    fn well_known_items() {
        let mut bus = bus(FwCfg::new(0x12_3456_789A, 3, b"console=ttyS0"));
        assert_eq!(read_item(&mut bus, FW_CFG_SIGNATURE, 4), b"QEMU");
        assert_eq!(read_item(&mut bus, FW_CFG_ID, 4), [1, 0, 0, 0]);
        assert_eq!(
            read_item(&mut bus, FW_CFG_RAM_SIZE, 8),
            [0x9A, 0x78, 0x56, 0x34, 0x12, 0, 0, 0]
        );
        assert_eq!(read_item(&mut bus, FW_CFG_NB_CPUS, 2), [3, 0]);
        assert_eq!(read_item(&mut bus, FW_CFG_MAX_CPUS, 2), [3, 0]);
        assert_eq!(read_item(&mut bus, FW_CFG_CMDLINE_SIZE, 4), [14, 0, 0, 0]);
        assert_eq!(
            read_item(&mut bus, FW_CFG_CMDLINE_DATA, 14),
            b"console=ttyS0\0"
        );
        assert_eq!(read_item(&mut bus, FW_CFG_FILE_DIR, 4), [0, 0, 0, 0]);
        assert_eq!(bus.unclaimed().reads + bus.unclaimed().writes, 0);
    }

    #[test]
    fn past_the_end_and_unknown_keys_read_zero() {
        let mut bus = bus(FwCfg::new(1 << 20, 1, b""));
        assert_eq!(read_item(&mut bus, FW_CFG_SIGNATURE, 6), b"QEMU\0\0");
        // An empty command line is no item at all (QEMU with a multiboot kernel).
        assert_eq!(read_item(&mut bus, FW_CFG_CMDLINE_SIZE, 4), [0, 0, 0, 0]);
        assert_eq!(read_item(&mut bus, FW_CFG_CMDLINE_DATA, 2), [0, 0]);
        for key in [0x0002, 0x0013, 0x4000, 0x8000, 0xFFFF] {
            assert_eq!(read_item(&mut bus, key, 3), [0, 0, 0], "key {key:#x}");
        }
    }

    #[test]
    fn selecting_resets_the_offset() {
        let mut fw = FwCfg::new(0, 1, b"abc");
        assert_eq!(fw.selected(), FW_CFG_SIGNATURE);
        assert_eq!(fw.read_data_byte(), b'Q');
        assert_eq!(fw.read_data_byte(), b'E');
        fw.write(0, &FW_CFG_SIGNATURE.to_le_bytes());
        assert_eq!(fw.read_data_byte(), b'Q');
        fw.write(0, &FW_CFG_CMDLINE_DATA.to_le_bytes());
        assert_eq!(fw.selected(), FW_CFG_CMDLINE_DATA);
        // Byte reads at the selector port are data reads too.
        let mut b = [0];
        fw.read(0, &mut b);
        assert_eq!(b, [b'a']);
        fw.read(1, &mut b);
        assert_eq!(b, [b'b']);
    }

    #[test]
    fn cmdline_stops_at_nul() {
        let fw = FwCfg::new(0, 1, b"ab\0cd");
        assert_eq!(fw.item(FW_CFG_CMDLINE_DATA), Some(&b"ab\0"[..]));
        assert_eq!(fw.item(FW_CFG_CMDLINE_SIZE), Some(&[3u8, 0, 0, 0][..]));
    }

    #[test]
    fn invalid_accesses_are_harmless() {
        let mut fw = FwCfg::new(0, 1, b"");
        fw.read_data_byte();
        // Data writes, byte selector writes, wide writes: ignored.
        for (off, data) in [
            (1u16, &[0x15u8][..]),
            (0, &[0x15]),
            (1, &[0x15, 0]),
            (0, &[0x15, 0, 0, 0]),
            (0, &[]),
        ] {
            assert_eq!(fw.write(off, data), DeviceAction::None);
            assert_eq!(fw.selected(), FW_CFG_SIGNATURE);
        }
        let mut w = [0u8; 2];
        fw.read(0, &mut w);
        assert_eq!(w, [0xFF, 0xFF]);
        let mut d = [0u8; 4];
        fw.read(1, &mut d);
        assert_eq!(d, [0xFF; 4]);
        fw.read(0, &mut []);
        // The offset moved only for the one byte read.
        assert_eq!(fw.read_data_byte(), b'E');
    }

    #[test]
    fn a_16_bit_selector_write_at_0x511_is_split_by_the_bus() {
        // outw to 0x511 puts the low byte on the data port (ignored) and the
        // high byte on 0x512, outside the device.
        let mut bus = bus(FwCfg::new(0, 1, b""));
        bus.write(FW_CFG_PORT_DATA, &[0x05, 0x00]);
        let mut b = [0];
        bus.read(FW_CFG_PORT_DATA, &mut b);
        assert_eq!(b, [b'Q']);
        assert_eq!(bus.unclaimed().writes, 1);
    }

    #[test]
    fn file_directory_is_big_endian_and_sorted() {
        let mut fw = FwCfg::new(0, 1, b"");
        assert_eq!(fw.add_file("opt/zeta", vec![1, 2, 3]), Ok(0x20));
        assert_eq!(fw.add_file("etc/alpha", vec![9; 0x1_0203]), Ok(0x21));
        let dir = fw.item(FW_CFG_FILE_DIR).unwrap().to_vec();
        assert_eq!(dir.len(), 4 + 2 * 64);
        assert_eq!(dir[..4], [0, 0, 0, 2]);
        let first = &dir[4..68];
        assert_eq!(first[..4], [0, 1, 2, 3]);
        assert_eq!(first[4..6], [0, 0x21]);
        assert_eq!(first[6..8], [0, 0]);
        assert_eq!(&first[8..17], b"etc/alpha");
        assert!(first[17..].iter().all(|&b| b == 0));
        let second = &dir[68..];
        assert_eq!(second[..8], [0, 0, 0, 3, 0, 0x20, 0, 0]);
        assert_eq!(&second[8..16], b"opt/zeta");
        let mut bus = bus(fw);
        assert_eq!(read_item(&mut bus, 0x20, 4), [1, 2, 3, 0]);
    }

    #[test]
    fn file_errors() {
        let mut fw = FwCfg::new(0, 1, b"");
        let long = "x".repeat(FW_CFG_MAX_FILE_NAME + 1);
        assert!(matches!(
            fw.add_file(&long, vec![]),
            Err(FwCfgError::BadName(_))
        ));
        assert!(matches!(
            fw.add_file("", vec![]),
            Err(FwCfgError::BadName(_))
        ));
        assert!(matches!(
            fw.add_file("a\0b", vec![]),
            Err(FwCfgError::BadName(_))
        ));
        let max = "y".repeat(FW_CFG_MAX_FILE_NAME);
        assert_eq!(fw.add_file(&max, vec![]), Ok(0x20));
        let e = fw.add_file(&max, vec![]).unwrap_err();
        assert!(matches!(e, FwCfgError::Duplicate(_)));
        assert!(!e.to_string().contains('\n'));
        // The 55-byte name keeps its NUL in the directory entry.
        let dir = fw.item(FW_CFG_FILE_DIR).unwrap();
        assert_eq!(dir[4 + 8 + 54], b'y');
        assert_eq!(dir[4 + 8 + 55], 0);
    }
}
