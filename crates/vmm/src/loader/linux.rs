//! Linux x86 boot protocol loader: what `qemu-system-x86_64 -kernel bzImage
//! -initrd FILE -append CMDLINE` does, entering the kernel through its
//! 32-bit boot entry (`Documentation/x86/boot.rst`, "32-bit boot protocol").
//!
//! [`load_linux`] recognises a bzImage by its setup header (`"HdrS"` at
//! 0x202, boot flag 0xAA55 at 0x1FE, protocol 2.10 or newer, `LOADED_HIGH`)
//! and returns a [`BootImage`] like the multiboot loader: regions to copy and
//! the entry state. The boot-parameter structures (`boot_params`,
//! `setup_header`, `boot_e820_entry`) and the command-line checks come from
//! rust-vmm's `linux-loader` crate; its own bzImage loader is not used
//! because it writes into a `vm-memory` guest memory object, whereas Vigil's
//! loaders only describe what goes where (so they can be tested without a
//! VM) and the accelerators own their memory.
//!
//! # Guest memory layout
//!
//! | guest address | contents |
//! |---|---|
//! | `0x6000` ([`ENTRY_STUB_ADDR`]) | 16-byte entry stub: clears EBP, EDI and EBX, loads ESI with the zero page, jumps to `code32_start` |
//! | `0x7000` ([`ZERO_PAGE_ADDR`]) | the zero page (`struct boot_params`) |
//! | `0x20000` ([`CMDLINE_ADDR`]) | the command line, NUL-terminated (QEMU's address) |
//! | `0xE0000` ([`FIRMWARE_ADDR`]) | the platform's firmware tables (ACPI), when given |
//! | `0x100000` | the protected-mode kernel (the file from `(setup_sects + 1) * 512` on) |
//! | top of RAM (below `initrd_addr_max`) | the initrd, 4 KiB aligned, as QEMU places it |
//!
//! The vCPU starts as for multiboot (32-bit protected mode, paging off,
//! flat CS 0x10 and data 0x18, which are the `__BOOT_CS` and `__BOOT_DS`
//! selectors the protocol requires, interrupts off) at the stub, because the
//! accelerators' common entry state sets only EAX and EBX; the stub's three
//! instructions complete the protocol's register state (ESI = zero page,
//! EBP = EDI = EBX = 0) before the kernel's first instruction.
//!
//! # The E820 map
//!
//! `[0, 0x9FC00)` RAM, `[0x9FC00, 0xA0000)` reserved (the EBDA of a PC),
//! `[0xE0000, 0x100000)` reserved (firmware: the ACPI tables live there),
//! `[1 MiB, RAM end)` RAM, and `[0xFEC00000, 4 GiB)` reserved (the I/O APIC,
//! the local APIC and pc-testdev's MMIO buffer). `[0xA0000, 0xE0000)` (VGA
//! and option ROMs on a PC) is left out. Vigil's RAM is at most 3 GiB, so no
//! RAM is remapped above 4 GiB.

use super::{BootImage, MIB};
use accel::{EntryMode, EntryState};
use linux_loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::cmdline::Cmdline;
use std::fmt;
use vm_memory::ByteValued;

/// Offset of the setup header in a bzImage (`hdr` in `boot_params`).
pub const SETUP_HEADER_OFFSET: usize = 0x1F1;
/// The setup header's magic, "HdrS", at file offset 0x202.
pub const HEADER_MAGIC: u32 = 0x5372_6448;
/// The boot sector flag at 0x1FE.
pub const BOOT_FLAG: u16 = 0xAA55;
/// The oldest boot protocol accepted (2.10: `kernel_alignment`,
/// `init_size`, `pref_address` and relocatable kernels are all there).
pub const MIN_PROTOCOL: u16 = 0x020A;
/// `loadflags` bit 0: the protected-mode code is loaded at 1 MiB (bzImage).
pub const LOADED_HIGH: u8 = 1 << 0;
/// `loadflags` bit 7: `heap_end_ptr` is valid.
pub const CAN_USE_HEAP: u8 = 1 << 7;
/// `type_of_loader` for a boot loader without an assigned id.
pub const LOADER_TYPE_UNDEFINED: u8 = 0xFF;
/// Where the protected-mode kernel is loaded (`code32_start` of a bzImage).
pub const KERNEL_LOAD_ADDR: u64 = 0x10_0000;
/// Guest-physical address of the entry stub.
pub const ENTRY_STUB_ADDR: u64 = 0x6000;
/// Guest-physical address of the zero page (`boot_params`), ESI at entry.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Guest-physical address of the command line.
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// Guest-physical address of the firmware area (ACPI tables).
pub const FIRMWARE_ADDR: u64 = 0xE_0000;
/// Bytes in the firmware area.
pub const FIRMWARE_LEN: u64 = 0x2_0000;
/// Start of the reserved MMIO range at the top of the 32-bit space.
pub const MMIO_HOLE_START: u64 = 0xFEC0_0000;
/// E820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type: reserved.
pub const E820_RESERVED: u32 = 2;

/// Why a bzImage cannot be booted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinuxError {
    /// The file is shorter than the structure being read.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes the file has.
        len: u64,
    },
    /// The boot protocol is older than 2.10.
    ProtocolTooOld {
        /// The header's `version`.
        version: u16,
    },
    /// The kernel is not a bzImage (`LOADED_HIGH` clear: a zImage).
    NotBzImage,
    /// Guest RAM cannot hold the kernel while it decompresses itself.
    MemoryTooSmall {
        /// Bytes the kernel needs from address 0.
        needed: u64,
        /// Guest RAM in bytes.
        memory_bytes: u64,
    },
    /// The command line is not printable ASCII.
    CmdlineInvalid,
    /// The command line exceeds the kernel's `cmdline_size`.
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The kernel's limit.
        max: usize,
    },
    /// The initrd does not fit between the kernel and `initrd_addr_max`.
    InitrdTooLarge {
        /// Its size.
        size: u64,
        /// Room there is for it.
        room: u64,
    },
    /// The firmware tables do not fit in the firmware area.
    FirmwareTooLarge {
        /// Their size.
        size: u64,
    },
    /// Multiboot modules given for a Linux kernel.
    ModulesForLinux,
}

impl fmt::Display for LinuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinuxError::Truncated { what, needed, len } => write!(
                f,
                "Linux kernel image truncated: {what} needs {needed} bytes but the file has {len}; re-copy the bzImage"
            ),
            LinuxError::ProtocolTooOld { version } => write!(
                f,
                "Linux boot protocol {}.{:02} is older than 2.10; use a kernel from 2.6.31 or later",
                version >> 8,
                version & 0xFF
            ),
            LinuxError::NotBzImage => write!(
                f,
                "Linux kernel is a zImage (loaded below 1 MiB), not a bzImage; build it with 'make bzImage'"
            ),
            LinuxError::MemoryTooSmall { needed, memory_bytes } => write!(
                f,
                "the Linux kernel needs {} MiB of guest RAM to decompress itself but --memory gives {} MiB; raise --memory",
                needed.div_ceil(MIB),
                memory_bytes / MIB
            ),
            LinuxError::CmdlineInvalid => write!(
                f,
                "kernel command line holds a character other than printable ASCII; fix --append"
            ),
            LinuxError::CmdlineTooLong { len, max } => write!(
                f,
                "kernel command line of {len} bytes is longer than the kernel's limit of {max}; shorten --append"
            ),
            LinuxError::InitrdTooLarge { size, room } => write!(
                f,
                "initrd of {size} bytes does not fit in the {room} bytes between the kernel and the top of RAM; raise --memory"
            ),
            LinuxError::FirmwareTooLarge { size } => write!(
                f,
                "firmware tables of {size} bytes exceed the {FIRMWARE_LEN:#x}-byte firmware area"
            ),
            LinuxError::ModulesForLinux => write!(
                f,
                "--module is for multiboot kernels, and this is a Linux bzImage; pass its initramfs with --initrd"
            ),
        }
    }
}

impl std::error::Error for LinuxError {}

/// What to boot a bzImage with besides the kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxArgs<'a> {
    /// The command line (QEMU's `-append`), without the kernel's name.
    pub cmdline: &'a str,
    /// The initial RAM disk, if any.
    pub initrd: Option<&'a [u8]>,
    /// Firmware tables to place at [`FIRMWARE_ADDR`] and the address of the
    /// ACPI RSDP among them (`acpi_rsdp_addr` of the zero page).
    pub firmware: Option<(&'a [u8], u64)>,
}

/// Whether `image` carries a Linux setup header (the "HdrS" magic), so that
/// it should be booted with [`load_linux`] rather than as multiboot.
pub fn is_bzimage(image: &[u8]) -> bool {
    image
        .get(0x202..0x206)
        .is_some_and(|m| m == HEADER_MAGIC.to_le_bytes())
}

/// Reads the setup header out of the image.
fn read_header(image: &[u8]) -> Result<setup_header, LinuxError> {
    let len = image.len() as u64;
    let end = SETUP_HEADER_OFFSET + std::mem::size_of::<setup_header>();
    // The header's real length: 0x202 + the byte at 0x201 (the jump's
    // offset); fields past it are zero for the kernel's protocol.
    let declared = 0x202 + usize::from(*image.get(0x201).unwrap_or(&0));
    if image.len() < 0x206 {
        return Err(LinuxError::Truncated {
            what: "the setup header",
            needed: 0x206,
            len,
        });
    }
    let mut raw = [0u8; std::mem::size_of::<setup_header>()];
    let take = end.min(declared).min(image.len()) - SETUP_HEADER_OFFSET;
    raw[..take].copy_from_slice(&image[SETUP_HEADER_OFFSET..SETUP_HEADER_OFFSET + take]);
    Ok(*setup_header::from_slice(&raw).unwrap_or(&setup_header::default()))
}

/// The E820 map for `memory_bytes` of RAM (see the module documentation).
pub fn e820_map(memory_bytes: u64) -> Vec<boot_e820_entry> {
    let entry = |addr: u64, size: u64, r#type: u32| boot_e820_entry { addr, size, r#type };
    let mut map = vec![
        entry(0, 0x9_FC00, E820_RAM),
        entry(0x9_FC00, 0x400, E820_RESERVED),
        entry(FIRMWARE_ADDR, FIRMWARE_LEN, E820_RESERVED),
    ];
    let top = memory_bytes.min(MMIO_HOLE_START);
    if top > MIB {
        map.push(entry(MIB, top - MIB, E820_RAM));
    }
    map.push(entry(
        MMIO_HOLE_START,
        (1u64 << 32) - MMIO_HOLE_START,
        E820_RESERVED,
    ));
    map
}

/// The entry stub at [`ENTRY_STUB_ADDR`]: `xor ebp,ebp; xor edi,edi;
/// xor ebx,ebx; mov esi, zero_page; mov eax, entry; jmp eax`.
fn entry_stub(zero_page: u32, entry: u32) -> Vec<u8> {
    let mut s = vec![0x31, 0xED, 0x31, 0xFF, 0x31, 0xDB, 0xBE];
    s.extend_from_slice(&zero_page.to_le_bytes());
    s.push(0xB8);
    s.extend_from_slice(&entry.to_le_bytes());
    s.extend_from_slice(&[0xFF, 0xE0]);
    s
}

/// Checks the command line against the kernel's limit and returns it
/// NUL-terminated.
fn command_line(text: &str, max: usize) -> Result<Vec<u8>, LinuxError> {
    if text.len() > max {
        return Err(LinuxError::CmdlineTooLong {
            len: text.len(),
            max,
        });
    }
    // linux-loader's Cmdline checks printable ASCII only for what is
    // inserted into it, not for a whole line it parses: check here.
    if !text.chars().all(|c| matches!(c, ' '..='~')) {
        return Err(LinuxError::CmdlineInvalid);
    }
    if text.trim().is_empty() {
        return Ok(vec![0]);
    }
    let line = Cmdline::try_from(text, max + 1).map_err(|e| match e {
        linux_loader::cmdline::Error::TooLarge => LinuxError::CmdlineTooLong {
            len: text.len(),
            max,
        },
        _ => LinuxError::CmdlineInvalid,
    })?;
    let c = line.as_cstring().map_err(|_| LinuxError::CmdlineInvalid)?;
    Ok(c.into_bytes_with_nul())
}

/// Builds the regions and entry state that boot the bzImage `image` with
/// `memory_bytes` of RAM (see the module documentation).
pub fn load_linux(
    image: &[u8],
    memory_bytes: u64,
    args: &LinuxArgs<'_>,
) -> Result<BootImage, LinuxError> {
    let len = image.len() as u64;
    let mut hdr = read_header(image)?;
    let (version, loadflags) = (hdr.version, hdr.loadflags);
    if hdr.boot_flag != BOOT_FLAG || hdr.header != HEADER_MAGIC {
        return Err(LinuxError::Truncated {
            what: "the setup header's boot flag and magic",
            needed: 0x206,
            len,
        });
    }
    if version < MIN_PROTOCOL {
        return Err(LinuxError::ProtocolTooOld { version });
    }
    if loadflags & LOADED_HIGH == 0 {
        return Err(LinuxError::NotBzImage);
    }
    let setup_sects = if hdr.setup_sects == 0 {
        4
    } else {
        u64::from(hdr.setup_sects)
    };
    let kernel_offset = (setup_sects + 1) * 512;
    let kernel_size = u64::from(hdr.syssize) * 16;
    if len < kernel_offset + kernel_size {
        return Err(LinuxError::Truncated {
            what: "the protected-mode kernel",
            needed: kernel_offset + kernel_size,
            len,
        });
    }
    let kernel = &image[kernel_offset as usize..];
    // The kernel decompresses itself at pref_address (or 1 MiB up) and
    // needs init_size bytes there.
    let pref = { hdr.pref_address }.max(KERNEL_LOAD_ADDR);
    let kernel_end = KERNEL_LOAD_ADDR + kernel.len() as u64;
    let needed = (pref + u64::from(hdr.init_size)).max(kernel_end);
    if memory_bytes < needed {
        return Err(LinuxError::MemoryTooSmall {
            needed,
            memory_bytes,
        });
    }

    let cmdline = command_line(args.cmdline, hdr.cmdline_size as usize)?;
    let mut regions = vec![(KERNEL_LOAD_ADDR, kernel.to_vec())];
    hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    hdr.loadflags = loadflags | CAN_USE_HEAP;
    hdr.heap_end_ptr = 0xFE00 - 0x200;
    hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
    if let Some(initrd) = args.initrd {
        let size = initrd.len() as u64;
        let top = memory_bytes.min(u64::from(hdr.initrd_addr_max) + 1);
        let room = top.saturating_sub(needed);
        let addr = top.saturating_sub(size) & !0xFFF;
        if size > room || addr < needed {
            return Err(LinuxError::InitrdTooLarge { size, room });
        }
        hdr.ramdisk_image = addr as u32;
        hdr.ramdisk_size = size as u32;
        regions.push((addr, initrd.to_vec()));
    }

    let mut params = boot_params {
        hdr,
        ..boot_params::default()
    };
    let map = e820_map(memory_bytes);
    for (slot, e) in params.e820_table.iter_mut().zip(&map) {
        *slot = *e;
    }
    params.e820_entries = map.len() as u8;
    if let Some((tables, rsdp)) = args.firmware {
        if tables.len() as u64 > FIRMWARE_LEN {
            return Err(LinuxError::FirmwareTooLarge {
                size: tables.len() as u64,
            });
        }
        params.acpi_rsdp_addr = rsdp;
        regions.push((FIRMWARE_ADDR, tables.to_vec()));
    }
    regions.push((CMDLINE_ADDR, cmdline));
    regions.push((ZERO_PAGE_ADDR, params.as_slice().to_vec()));
    let code32 = hdr.code32_start;
    regions.push((ENTRY_STUB_ADDR, entry_stub(ZERO_PAGE_ADDR as u32, code32)));
    Ok(BootImage {
        regions,
        entry: EntryState {
            mode: EntryMode::Protected32Flat,
            rip: ENTRY_STUB_ADDR,
            rsp: 0,
            rax: 0,
            rbx: 0,
        },
    })
}

#[cfg(test)]
mod tests;
