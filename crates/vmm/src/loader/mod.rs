//! Multiboot v1 kernel loader: what `qemu-system-x86_64 -kernel` does with a
//! multiboot ELF32 image.
//!
//! [`load_multiboot`] parses the image, decides what goes where in guest
//! physical memory and returns it as a [`BootImage`]: a list of byte regions
//! to copy into guest RAM and the vCPU state to start in. It touches no guest
//! memory itself, so it can be tested (and fuzzed) without a VM.
//!
//! # What is accepted
//!
//! * A multiboot v1 header (magic `0x1BADB002`) on a 4-byte boundary that
//!   lies entirely within the first 8 KiB of the file, with a valid checksum
//!   (`magic + flags + checksum == 0` mod 2^32). Candidates with a bad
//!   checksum are skipped, as GRUB and QEMU do; if none is valid the first bad
//!   one is reported.
//! * Required header flags (bits 0–15): bit 0 (page-align modules: modules
//!   are always loaded on 4 KiB boundaries) and bit 1 (memory information:
//!   always provided). Bit 2 (video mode) and the undefined bits are refused.
//!   Optional flags (bits 16–31): bit 16, the "a.out kludge", is honoured as
//!   QEMU does — the load addresses in the header are used instead of the ELF
//!   program headers, even for an ELF file. Other optional bits are ignored.
//! * Without bit 16: an ELF file of class ELFCLASS32, little-endian, machine
//!   EM_386. Every `PT_LOAD` segment with a non-zero `p_memsz` is loaded at
//!   `p_paddr`: `p_filesz` bytes from the file followed by zeros up to
//!   `p_memsz`. As in QEMU, when the zero-filled tail of a segment would
//!   overlap another `PT_LOAD` segment, only `p_filesz` bytes are loaded;
//!   segments that still overlap are refused. The entry point is `e_entry`,
//!   translated to a physical address when it falls in an executable segment
//!   whose `p_vaddr` differs from its `p_paddr` (QEMU's rule again).
//!
//! # Boot information layout
//!
//! The kernel's segments go where they ask; modules
//! ([`load_multiboot_with_modules`], QEMU's `-initrd "file args,file2"`)
//! follow the kernel's highest loaded byte, each on a 4 KiB boundary, in
//! order. Everything else the loader builds is one block, the *information
//! block*, on the first 4 KiB boundary after the highest byte of kernel and
//! modules, so it can never overlap what the kernel loads, wherever that is
//! (a kernel linked at 0x8000 or 0x9000 boots). When the block would reach
//! into `[0x9FC00, 1 MiB)` (the EBDA, VGA and BIOS area of a PC), it starts
//! at 1 MiB instead. When it does not fit there (a kernel or module that
//! reaches the top of RAM), it takes the lowest 4 KiB boundary from 0x1000
//! up where it overlaps neither what is loaded nor `[0x9FC00, 1 MiB)`; with
//! no such room the kernel is refused ([`LoadError::BootInfoOutsideRam`]).
//! It always ends within guest RAM and below 4 GiB. EBX holds its address.
//! Offsets within the block:
//!
//! | offset | size | contents |
//! |---|---|---|
//! | `0x000` | 0x80 ([`BOOT_INFO_SIZE`]) | `multiboot_info` (unused fields zero) |
//! | `0x080` ([`MMAP_OFFSET`]) | 0x60 | memory map, 3 or 4 entries of 24 bytes |
//! | `0x0E0` ([`BOOTLOADER_NAME_OFFSET`]) | 0x20 | `"vigil\0"` |
//! | `0x100` ([`MODS_OFFSET`]) | 16 × count | `mod_start, mod_end, string, 0` per module |
//! | after them | | the modules' strings, NUL-terminated, in order |
//! | after them | ≤ 4 KiB | the command line, NUL-terminated |
//!
//! QEMU (`hw/i386/multiboot.c`) also puts the module descriptors, the
//! command lines and the boot loader name right after the kernel, on a page
//! boundary, with the module contents after them; its `multiboot_info` and
//! memory map, though, stay at fixed addresses near 0x9000, written there by
//! its option ROM. Vigil keeps all of it in the one block after the
//! modules, so no fixed address is left that a kernel could collide with.
//!
//! The info structure sets flags MEM (bit 0), BOOT_DEVICE (bit 1), CMDLINE
//! (bit 2), MODS (bit 3, only with modules), MMAP (bit 6) and
//! BOOT_LOADER_NAME (bit 9):
//!
//! * `mem_lower` = 639 (KiB of conventional memory), `mem_upper` =
//!   (RAM − 1 MiB) / 1 KiB, saturated at `u32::MAX`;
//! * `boot_device` = [`BOOT_DEVICE`], as QEMU;
//! * `cmdline`: the caller's string, stored verbatim (QEMU prepends the
//!   kernel file name; Vigil leaves that to the caller);
//! * `mods_count`, `mods_addr`: the descriptors, when there are modules;
//! * `mmap_length` = 24 × entries. Each entry is
//!   `size: u32 = 20, base_addr: u64, length: u64, type: u32` (1 available,
//!   2 reserved): `[0, 0x9FC00)` available, `[0x9FC00, 0xA0000)` reserved,
//!   `[0xF0000, 0x100000)` reserved, `[1 MiB, RAM end)` available (omitted
//!   when RAM is exactly 1 MiB). `[0xA0000, 0xF0000)` is left out, as on a PC.
//!   The block itself lies in available memory, as QEMU's does: a kernel
//!   reads what it needs from it before reusing that memory.

use std::fmt;

use accel::{EntryMode, EntryState};

mod boot_info;
pub mod linux;
pub use boot_info::{
    BOOTLOADER_NAME, BOOTLOADER_NAME_OFFSET, BOOT_INFO_SIZE, CMDLINE_MAX, LOW_RAM_END,
    MMAP_ENTRY_SIZE, MMAP_MAX_ENTRIES, MMAP_OFFSET, MODS_OFFSET, MODULE_LIST_MAX, MOD_ENTRY_SIZE,
    PAGE_SIZE,
};
pub use linux::{is_bzimage, load_linux, LinuxArgs, LinuxError};

/// The multiboot v1 header magic the kernel carries.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// The value EAX holds when a multiboot v1 kernel is entered.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// How far into the file the multiboot header may lie (it must end within).
pub const HEADER_SEARCH_LIMIT: usize = 8192;

/// Smallest guest RAM the loader can describe: everything below 1 MiB.
pub const MIN_MEMORY: u64 = 1 << 20;

/// Header flag: align modules on 4 KiB boundaries (required bit).
pub const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Header flag: the kernel needs memory information (required bit).
pub const FLAG_MEMORY_INFO: u32 = 1 << 1;
/// Header flag: the kernel wants a video mode (required bit, unsupported).
pub const FLAG_VIDEO_MODE: u32 = 1 << 2;
/// Header flag: load addresses are given in the header (the a.out kludge).
pub const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// Header flag bits a loader must understand or refuse the kernel.
pub const REQUIRED_FLAGS_MASK: u32 = 0xFFFF;
/// The required header flag bits this loader honours.
pub const SUPPORTED_REQUIRED_FLAGS: u32 = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO;

/// Info flag: `mem_lower` and `mem_upper` are valid.
pub const INFO_MEM: u32 = 1 << 0;
/// Info flag: `boot_device` is valid.
pub const INFO_BOOT_DEVICE: u32 = 1 << 1;
/// Info flag: `cmdline` is valid.
pub const INFO_CMDLINE: u32 = 1 << 2;
/// Info flag: `mods_count` and `mods_addr` are valid.
pub const INFO_MODS: u32 = 1 << 3;
/// The `boot_device` QEMU's multiboot loader reports (no BIOS drive, whole disk).
pub const BOOT_DEVICE: u32 = 0x8000_FFFF;
/// Info flag: `mmap_length` and `mmap_addr` are valid.
pub const INFO_MMAP: u32 = 1 << 6;
/// Info flag: `boot_loader_name` is valid.
pub const INFO_BOOTLOADER_NAME: u32 = 1 << 9;

/// Memory-map entry type: RAM the kernel may use.
pub const MMAP_AVAILABLE: u32 = 1;
/// Memory-map entry type: reserved.
pub const MMAP_RESERVED: u32 = 2;

const ELF_MAGIC: [u8; 4] = [0x7F, b'E', b'L', b'F'];
const ELFCLASS32: u8 = 1;
const ELFDATA2LSB: u8 = 1;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const ELF32_EHDR_SIZE: usize = 52;
const ELF32_PHDR_SIZE: usize = 32;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// A kernel ready to be copied into guest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImage {
    /// `(guest-physical address, bytes)` to copy into guest RAM, in order.
    /// Zero-filled parts (bss) are included as explicit zeros. The regions do
    /// not overlap; the last one is the multiboot information block.
    pub regions: Vec<(u64, Vec<u8>)>,
    /// The state the boot vCPU starts in: 32-bit protected mode, paging off,
    /// EIP = kernel entry, EAX = 0x2BADB002, EBX = the information block's
    /// address (the last region), ESP = 0
    /// (multiboot defines no stack).
    pub entry: EntryState,
}

/// Why a kernel image cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Guest RAM is too small to hold even the boot information.
    MemoryTooSmall {
        /// The configured guest RAM in bytes.
        memory_bytes: u64,
    },
    /// The command line does not fit in the boot information page.
    CmdlineTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The command line contains a NUL byte, which would cut it short.
    CmdlineContainsNul,
    /// The file ends before a structure it announces.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// How many bytes the file must have for it.
        needed: u64,
        /// How many bytes it has.
        len: u64,
    },
    /// No multiboot v1 header in the first 8 KiB.
    NoMultibootHeader,
    /// A multiboot header was found but its checksum is wrong.
    BadChecksum {
        /// File offset of the header.
        offset: usize,
        /// The header's flags.
        flags: u32,
        /// The header's checksum field.
        checksum: u32,
    },
    /// The header asks for features this loader does not provide.
    UnsupportedFlags {
        /// The header's flags.
        flags: u32,
        /// The required bits that are not supported.
        unsupported: u32,
    },
    /// The a.out-kludge addresses in the header are inconsistent.
    BadAoutKludge {
        /// Which rule the addresses break.
        reason: &'static str,
    },
    /// Not an ELF file (and the header does not use the a.out kludge).
    NotElf,
    /// An ELF file of class ELFCLASS64 (or another non-32-bit class).
    NotElf32 {
        /// `e_ident[EI_CLASS]`.
        class: u8,
    },
    /// An ELF file that is not little-endian.
    NotLittleEndian {
        /// `e_ident[EI_DATA]`.
        data: u8,
    },
    /// An ELF file for another machine than EM_386.
    NotX86 {
        /// `e_machine`.
        machine: u16,
    },
    /// `e_phentsize` is not the size of an ELF32 program header.
    BadProgramHeaderSize {
        /// `e_phentsize`.
        phentsize: u16,
    },
    /// The program header table lies (partly) outside the file.
    ProgramHeadersOutOfBounds {
        /// `e_phoff`.
        phoff: u32,
        /// `e_phnum`.
        phnum: u16,
        /// File length.
        len: u64,
    },
    /// A segment's file data lies (partly) outside the file.
    SegmentDataOutOfBounds {
        /// Program header index.
        index: usize,
        /// `p_offset`.
        offset: u32,
        /// `p_filesz`.
        filesz: u32,
        /// File length.
        len: u64,
    },
    /// A segment's `p_filesz` exceeds its `p_memsz`.
    FileSizeExceedsMemSize {
        /// Program header index.
        index: usize,
        /// `p_filesz`.
        filesz: u32,
        /// `p_memsz`.
        memsz: u32,
    },
    /// A segment does not fit in guest RAM.
    SegmentOutsideRam {
        /// Guest-physical load address.
        addr: u64,
        /// Size in memory.
        size: u64,
        /// Guest RAM in bytes.
        memory_bytes: u64,
    },
    /// The multiboot information block fits in guest RAM (below 4 GiB)
    /// neither after the kernel and its modules nor in a gap below them.
    BootInfoOutsideRam {
        /// Where it would start after the kernel and its modules.
        addr: u64,
        /// Its size in bytes.
        size: u64,
        /// Guest RAM in bytes.
        memory_bytes: u64,
    },
    /// Two segments overlap in guest memory.
    SegmentsOverlap {
        /// Load address of the first.
        first: u64,
        /// Load address of the second.
        second: u64,
    },
    /// Nothing to load.
    NoLoadableSegment,
    /// The modules' descriptors and strings take more than
    /// [`MODULE_LIST_MAX`] bytes.
    ModuleStringsTooLong {
        /// Bytes they need.
        needed: u64,
    },
    /// A module does not fit in guest RAM after the kernel.
    ModuleOutsideRam {
        /// Module index.
        index: usize,
        /// Where it would start.
        addr: u64,
        /// Its size.
        size: u64,
    },
    /// A Linux bzImage that cannot be booted.
    Linux(LinuxError),
    /// `--initrd` given for a multiboot kernel (which takes modules).
    InitrdForMultiboot,
}

/// A multiboot module: its contents and the string the kernel sees for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module<'a> {
    /// The module's bytes.
    pub data: &'a [u8],
    /// Its string (QEMU: the file name and any arguments after it).
    pub string: &'a str,
}

/// Formats a byte count as "N MiB" when exact, else "N bytes".
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(MIB) {
            write!(f, "{} MiB", self.0 / MIB)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::MemoryTooSmall { memory_bytes } => write!(
                f,
                "{} of guest RAM is too small for a multiboot kernel (at least 1 MiB); raise --memory",
                Size(*memory_bytes)
            ),
            LoadError::CmdlineTooLong { len } => write!(
                f,
                "kernel command line of {len} bytes is too long (at most {CMDLINE_MAX}); shorten it"
            ),
            LoadError::CmdlineContainsNul => write!(
                f,
                "kernel command line contains a NUL byte, which would end it early; remove it"
            ),
            LoadError::Truncated { what, needed, len } => write!(
                f,
                "kernel image truncated: {what} needs {needed} bytes but the file has {len}; rebuild or re-copy the kernel"
            ),
            LoadError::NoMultibootHeader => write!(
                f,
                "not a multiboot v1 kernel: no 0x1BADB002 header in the first 8 KiB; build the kernel with a multiboot header"
            ),
            LoadError::BadChecksum {
                offset,
                flags,
                checksum,
            } => write!(
                f,
                "multiboot header at file offset {offset:#x} has a bad checksum {checksum:#010x} (flags {flags:#010x}; magic + flags + checksum must be 0); fix the header"
            ),
            LoadError::UnsupportedFlags { flags, unsupported } => write!(
                f,
                "multiboot header flags {flags:#010x} require unsupported features {unsupported:#06x} (only page-align and memory-info are provided); drop them from the header"
            ),
            LoadError::BadAoutKludge { reason } => write!(
                f,
                "multiboot a.out-kludge addresses are invalid: {reason}; fix the header addresses"
            ),
            LoadError::NotElf => write!(
                f,
                "kernel is not an ELF file and its multiboot header has no load addresses (flag bit 16); link it as ELF32"
            ),
            LoadError::NotElf32 { class } => write!(
                f,
                "kernel is not ELF32 (class {class}): multiboot v1 loads only 32-bit ELF; use a 32-bit entry that switches to long mode"
            ),
            LoadError::NotLittleEndian { data } => write!(
                f,
                "kernel ELF is not little-endian (data encoding {data}); build it for x86"
            ),
            LoadError::NotX86 { machine } => {
                if *machine == EM_X86_64 {
                    write!(
                        f,
                        "kernel ELF is for x86-64 (machine 62), not i386: multiboot v1 needs EM_386; link with -m elf_i386"
                    )
                } else {
                    write!(
                        f,
                        "kernel ELF is for machine {machine}, not i386 (3); build it for x86"
                    )
                }
            }
            LoadError::BadProgramHeaderSize { phentsize } => write!(
                f,
                "kernel ELF program header size is {phentsize}, not {ELF32_PHDR_SIZE}; the file is corrupt, rebuild it"
            ),
            LoadError::ProgramHeadersOutOfBounds { phoff, phnum, len } => write!(
                f,
                "kernel ELF program headers ({phnum} at offset {phoff:#x}) extend past the end of the {len}-byte file; rebuild or re-copy the kernel"
            ),
            LoadError::SegmentDataOutOfBounds {
                index,
                offset,
                filesz,
                len,
            } => write!(
                f,
                "kernel ELF segment {index} (offset {offset:#x}, {filesz:#x} bytes) extends past the end of the {len}-byte file; rebuild or re-copy the kernel"
            ),
            LoadError::FileSizeExceedsMemSize {
                index,
                filesz,
                memsz,
            } => write!(
                f,
                "kernel ELF segment {index} has p_filesz {filesz:#x} larger than p_memsz {memsz:#x}; the file is corrupt, rebuild it"
            ),
            LoadError::SegmentOutsideRam {
                addr,
                size,
                memory_bytes,
            } => write!(
                f,
                "segment at {addr:#x} of {size:#x} bytes does not fit in {} of guest RAM; raise --memory",
                Size(*memory_bytes)
            ),
            LoadError::BootInfoOutsideRam {
                addr,
                size,
                memory_bytes,
            } => write!(
                f,
                "the multiboot information ({size} bytes) fits in {} of guest RAM neither after the kernel and its modules (at {addr:#x}) nor in a gap below them; raise --memory",
                Size(*memory_bytes)
            ),
            LoadError::SegmentsOverlap { first, second } => write!(
                f,
                "kernel segments at {first:#x} and {second:#x} overlap in memory; fix the linker script"
            ),
            LoadError::NoLoadableSegment => write!(
                f,
                "kernel has nothing to load (no PT_LOAD segment with a non-zero size); check the linker script"
            ),
            LoadError::ModuleStringsTooLong { needed } => write!(
                f,
                "module descriptors and strings need {needed} bytes but at most {MODULE_LIST_MAX} are allowed; use fewer or shorter --module strings"
            ),
            LoadError::ModuleOutsideRam { index, addr, size } => write!(
                f,
                "module {index} ({size} bytes) would end beyond guest RAM when loaded at {addr:#x}; raise --memory"
            ),
            LoadError::Linux(e) => write!(f, "{e}"),
            LoadError::InitrdForMultiboot => write!(
                f,
                "--initrd is for Linux kernels, and this is a multiboot kernel; pass its files with --module"
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// What a kernel boots with besides its image.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelArgs<'a> {
    /// The multiboot command line (QEMU: the kernel's name, a space,
    /// `-append`'s text).
    pub multiboot_cmdline: &'a str,
    /// Multiboot modules.
    pub modules: &'a [Module<'a>],
    /// What a Linux bzImage gets.
    pub linux: LinuxArgs<'a>,
}

/// Loads `image` as QEMU's `-kernel` does: a Linux bzImage (setup header
/// "HdrS") through the Linux boot protocol, anything else as multiboot v1.
pub fn load_kernel(
    image: &[u8],
    memory_bytes: u64,
    args: &KernelArgs<'_>,
) -> Result<BootImage, LoadError> {
    if is_bzimage(image) {
        if !args.modules.is_empty() {
            return Err(LoadError::Linux(LinuxError::ModulesForLinux));
        }
        return load_linux(image, memory_bytes, &args.linux).map_err(LoadError::Linux);
    }
    if args.linux.initrd.is_some() {
        return Err(LoadError::InitrdForMultiboot);
    }
    load_multiboot_with_modules(image, memory_bytes, args.multiboot_cmdline, args.modules)
}

/// Reads a little-endian `u16` at `off`, if the bytes are there.
fn le16(b: &[u8], off: usize) -> Option<u16> {
    let end = off.checked_add(2)?;
    let s = b.get(off..end)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Reads a little-endian `u32` at `off`, if the bytes are there.
fn le32(b: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    let s = b.get(off..end)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a little-endian `u32` at `off` or reports which structure is cut off.
fn need32(b: &[u8], off: usize, what: &'static str) -> Result<u32, LoadError> {
    le32(b, off).ok_or(LoadError::Truncated {
        what,
        needed: off as u64 + 4,
        len: b.len() as u64,
    })
}

/// The multiboot header found in the image.
#[derive(Debug, Clone, Copy)]
struct Header {
    offset: usize,
    flags: u32,
}

/// Finds the first multiboot header with a valid checksum.
fn find_header(image: &[u8]) -> Result<Header, LoadError> {
    let limit = image.len().min(HEADER_SEARCH_LIMIT);
    let mut first_bad = None;
    let mut offset = 0usize;
    while offset + 12 <= limit {
        if le32(image, offset) == Some(HEADER_MAGIC) {
            let flags = le32(image, offset + 4).unwrap_or(0);
            let checksum = le32(image, offset + 8).unwrap_or(0);
            if HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum) == 0 {
                return Ok(Header { offset, flags });
            }
            first_bad.get_or_insert(LoadError::BadChecksum {
                offset,
                flags,
                checksum,
            });
        }
        offset += 4;
    }
    Err(first_bad.unwrap_or(if image.len() < 12 {
        LoadError::Truncated {
            what: "a multiboot header",
            needed: 12,
            len: image.len() as u64,
        }
    } else {
        LoadError::NoMultibootHeader
    }))
}

/// One piece of the kernel to place in guest memory.
#[derive(Debug)]
struct Segment<'a> {
    addr: u64,
    data: &'a [u8],
    size: u64,
}

/// Loads a multiboot v1 kernel for a guest with `memory_bytes` of RAM at
/// guest-physical 0, passing `cmdline` to it.
///
/// Behaves as `qemu-system-x86_64 -kernel` does for a multiboot v1 kernel
/// (see the module documentation for the rules and the boot information
/// layout). Never panics, whatever the bytes.
pub fn load_multiboot(
    image: &[u8],
    memory_bytes: u64,
    cmdline: &str,
) -> Result<BootImage, LoadError> {
    load_multiboot_with_modules(image, memory_bytes, cmdline, &[])
}

/// [`load_multiboot`] with modules, as `qemu-system-x86_64 -kernel K -append
/// S -initrd M` presents them: each module page-aligned after the kernel,
/// described in the information block with its string.
pub fn load_multiboot_with_modules(
    image: &[u8],
    memory_bytes: u64,
    cmdline: &str,
    modules: &[Module<'_>],
) -> Result<BootImage, LoadError> {
    check_memory_and_cmdline(memory_bytes, cmdline)?;
    let header = find_header(image)?;
    let unsupported = header.flags & REQUIRED_FLAGS_MASK & !SUPPORTED_REQUIRED_FLAGS;
    if unsupported != 0 {
        return Err(LoadError::UnsupportedFlags {
            flags: header.flags,
            unsupported,
        });
    }

    let (segments, entry) = if header.flags & FLAG_AOUT_KLUDGE != 0 {
        aout_kludge_segment(image, header)?
    } else {
        elf_segments(image)?
    };
    if segments.is_empty() {
        return Err(LoadError::NoLoadableSegment);
    }

    let module_list = boot_info::module_list_size(modules);
    if module_list > MODULE_LIST_MAX {
        return Err(LoadError::ModuleStringsTooLong {
            needed: module_list,
        });
    }
    let mut regions = segment_regions(&segments, memory_bytes)?;
    let kernel_end = segments.iter().map(|s| s.addr + s.size).max().unwrap_or(0);
    let (starts, placed) = boot_info::place_modules(modules, kernel_end, memory_bytes)?;
    regions.extend(placed);
    let loaded: Vec<(u64, u64)> = regions
        .iter()
        .map(|(addr, bytes)| (*addr, bytes.len() as u64))
        .collect();
    let size = boot_info::block_size(cmdline, modules);
    let info_addr = boot_info::block_addr(&loaded, size, memory_bytes)?;
    let info = boot_info::build_block(info_addr, memory_bytes, cmdline, modules, &starts);
    regions.push((info_addr, info));

    Ok(BootImage {
        regions,
        entry: EntryState {
            mode: EntryMode::Protected32Flat,
            rip: entry,
            rsp: 0,
            rax: u64::from(BOOTLOADER_MAGIC),
            rbx: info_addr,
        },
    })
}

/// Guest RAM a multiboot kernel can boot in, and a command line of at most
/// [`CMDLINE_MAX`] bytes without a NUL.
fn check_memory_and_cmdline(memory_bytes: u64, cmdline: &str) -> Result<(), LoadError> {
    if memory_bytes < MIN_MEMORY {
        return Err(LoadError::MemoryTooSmall { memory_bytes });
    }
    if cmdline.len() > CMDLINE_MAX {
        return Err(LoadError::CmdlineTooLong { len: cmdline.len() });
    }
    if cmdline.as_bytes().contains(&0) {
        return Err(LoadError::CmdlineContainsNul);
    }
    Ok(())
}

/// The segments as regions of guest RAM (zero-filled past their file
/// bytes), refused where one lies outside RAM or overlaps another segment.
fn segment_regions(segments: &[Segment<'_>], memory_bytes: u64) -> Result<Regions, LoadError> {
    let mut regions = Vec::with_capacity(segments.len() + 3);
    for (i, seg) in segments.iter().enumerate() {
        let end = seg
            .addr
            .checked_add(seg.size)
            .filter(|&end| end <= memory_bytes)
            .ok_or(LoadError::SegmentOutsideRam {
                addr: seg.addr,
                size: seg.size,
                memory_bytes,
            })?;
        for other in &segments[..i] {
            // `other` was checked above, so its end cannot overflow.
            if seg.addr < other.addr.saturating_add(other.size) && other.addr < end {
                return Err(LoadError::SegmentsOverlap {
                    first: other.addr,
                    second: seg.addr,
                });
            }
        }
        // size <= memory_bytes and every source of it is a u32 sum, so it fits
        // in usize on 64-bit hosts; refuse rather than truncate elsewhere.
        let size = usize::try_from(seg.size).map_err(|_| LoadError::SegmentOutsideRam {
            addr: seg.addr,
            size: seg.size,
            memory_bytes,
        })?;
        // Zeroed allocation first (lazily zeroed by the allocator for large
        // sizes), then the file bytes over its start.
        let mut bytes = vec![0u8; size];
        if let Some(head) = bytes.get_mut(..seg.data.len()) {
            head.copy_from_slice(seg.data);
        }
        regions.push((seg.addr, bytes));
    }
    Ok(regions)
}

/// The single segment described by the a.out-kludge header fields, following
/// QEMU's rules for them.
fn aout_kludge_segment(image: &[u8], header: Header) -> Result<(Vec<Segment<'_>>, u64), LoadError> {
    const WHAT: &str = "the multiboot header's address fields";
    let field = |n: usize| need32(image, header.offset + n, WHAT);
    let header_addr = field(12)?;
    let load_addr = field(16)?;
    let load_end_addr = field(20)?;
    let bss_end_addr = field(24)?;
    let entry_addr = field(28)?;
    let bad = |reason| LoadError::BadAoutKludge { reason };

    let header_delta = header_addr
        .checked_sub(load_addr)
        .ok_or(bad("header_addr is below load_addr"))?;
    let text_offset = (header.offset as u64)
        .checked_sub(u64::from(header_delta))
        .ok_or(bad(
            "header_addr - load_addr exceeds the header's file offset",
        ))?;
    let file_len = image.len() as u64;
    let load_size = if load_end_addr != 0 {
        u64::from(
            load_end_addr
                .checked_sub(load_addr)
                .ok_or(bad("load_end_addr is below load_addr"))?,
        )
    } else {
        // text_offset <= header.offset < file_len.
        file_len - text_offset
    };
    let load_end = u64::from(load_addr) + load_size;
    if load_end > u64::from(u32::MAX) {
        return Err(bad("the kernel does not fit below 4 GiB"));
    }
    let data_end = text_offset + load_size;
    let data = usize::try_from(text_offset)
        .ok()
        .zip(usize::try_from(data_end).ok())
        .and_then(|(start, end)| image.get(start..end))
        .ok_or(LoadError::Truncated {
            what: "the kernel text named by load_end_addr",
            needed: data_end,
            len: file_len,
        })?;
    let size = if bss_end_addr != 0 {
        if u64::from(bss_end_addr) < load_end {
            return Err(bad("bss_end_addr is below load_end_addr"));
        }
        u64::from(bss_end_addr) - u64::from(load_addr)
    } else {
        load_size
    };
    let segments = if size == 0 {
        Vec::new()
    } else {
        vec![Segment {
            addr: u64::from(load_addr),
            data,
            size,
        }]
    };
    Ok((segments, u64::from(entry_addr)))
}

/// An ELF32 program header, the fields the loader uses.
#[derive(Debug, Clone, Copy)]
struct Phdr {
    index: usize,
    p_type: u32,
    offset: u32,
    vaddr: u32,
    paddr: u32,
    filesz: u32,
    memsz: u32,
    flags: u32,
}

/// The fields of a complete ELF32 i386 header the loader uses.
struct ElfHeader {
    /// `e_entry`: the virtual entry point.
    entry: u32,
    /// `e_phoff`: the program header table's file offset.
    phoff: u32,
    /// `e_phnum`: the number of program headers (at least one).
    phnum: u16,
}

/// Checks the ELF identification and header of an ELF32 little-endian
/// i386 image with a program header table inside the file.
fn elf_header(image: &[u8]) -> Result<ElfHeader, LoadError> {
    let len = image.len() as u64;
    match image.get(..4) {
        Some(magic) if magic == ELF_MAGIC => {}
        Some(_) => return Err(LoadError::NotElf),
        None => {
            return Err(LoadError::Truncated {
                what: "the ELF identification",
                needed: 4,
                len,
            })
        }
    }
    if image.len() < ELF32_EHDR_SIZE {
        return Err(LoadError::Truncated {
            what: "the ELF32 header",
            needed: ELF32_EHDR_SIZE as u64,
            len,
        });
    }
    // The header is complete from here on: the reads below cannot fail.
    let class = image[4];
    let data = image[5];
    if class != ELFCLASS32 {
        return Err(LoadError::NotElf32 { class });
    }
    if data != ELFDATA2LSB {
        return Err(LoadError::NotLittleEndian { data });
    }
    let machine = le16(image, 18).unwrap_or(0);
    if machine != EM_386 {
        return Err(LoadError::NotX86 { machine });
    }
    let entry = le32(image, 24).unwrap_or(0);
    let phoff = le32(image, 28).unwrap_or(0);
    let phentsize = le16(image, 42).unwrap_or(0);
    let phnum = le16(image, 44).unwrap_or(0);
    if phnum == 0 {
        return Err(LoadError::NoLoadableSegment);
    }
    if usize::from(phentsize) != ELF32_PHDR_SIZE {
        return Err(LoadError::BadProgramHeaderSize { phentsize });
    }
    let table_end = u64::from(phoff) + u64::from(phnum) * ELF32_PHDR_SIZE as u64;
    if table_end > len {
        return Err(LoadError::ProgramHeadersOutOfBounds { phoff, phnum, len });
    }
    Ok(ElfHeader {
        entry,
        phoff,
        phnum,
    })
}

/// The `PT_LOAD` program headers, each with its file bytes inside the image.
fn load_headers(image: &[u8], header: &ElfHeader) -> Result<Vec<Phdr>, LoadError> {
    let len = image.len() as u64;
    let mut phdrs = Vec::new();
    for index in 0..usize::from(header.phnum) {
        // In bounds: checked against the table's end by elf_header.
        let base = header.phoff as usize + index * ELF32_PHDR_SIZE;
        let word = |n: usize| le32(image, base + n).unwrap_or(0);
        let ph = Phdr {
            index,
            p_type: word(0),
            offset: word(4),
            vaddr: word(8),
            paddr: word(12),
            filesz: word(16),
            memsz: word(20),
            flags: word(24),
        };
        if ph.p_type != PT_LOAD {
            continue;
        }
        if ph.filesz > ph.memsz {
            return Err(LoadError::FileSizeExceedsMemSize {
                index,
                filesz: ph.filesz,
                memsz: ph.memsz,
            });
        }
        if u64::from(ph.offset) + u64::from(ph.filesz) > len {
            return Err(LoadError::SegmentDataOutOfBounds {
                index,
                offset: ph.offset,
                filesz: ph.filesz,
                len,
            });
        }
        phdrs.push(ph);
    }
    Ok(phdrs)
}

/// QEMU's entry translation: `e_entry` is virtual; if it lies in the file
/// part of an executable segment linked at a different physical address,
/// move it by that segment's offset. The last matching segment wins.
fn physical_entry(e_entry: u32, phdrs: &[Phdr]) -> u64 {
    let mut entry = u64::from(e_entry);
    for ph in phdrs {
        let (vaddr, entry_v) = (u64::from(ph.vaddr), u64::from(e_entry));
        if ph.vaddr != ph.paddr
            && ph.flags & PF_X != 0
            && entry_v >= vaddr
            && entry_v < vaddr + u64::from(ph.filesz)
        {
            entry = entry_v - vaddr + u64::from(ph.paddr);
        }
    }
    entry
}

/// The `PT_LOAD` segments of an ELF32 i386 image and its physical entry point.
fn elf_segments(image: &[u8]) -> Result<(Vec<Segment<'_>>, u64), LoadError> {
    let len = image.len() as u64;
    let header = elf_header(image)?;
    let phdrs = load_headers(image, &header)?;
    let entry = physical_entry(header.entry, &phdrs);
    let mut segments = Vec::new();
    for ph in &phdrs {
        let mut size = u64::from(ph.memsz);
        // QEMU: a zero-fill tail that overlaps another PT_LOAD segment means
        // the file packs segments for run-time relocation; load filesz only.
        if ph.memsz > ph.filesz {
            let zero_start = u64::from(ph.paddr) + u64::from(ph.filesz);
            let zero_end = u64::from(ph.paddr) + u64::from(ph.memsz);
            let clash = phdrs.iter().any(|o| {
                let (start, end) = (u64::from(o.paddr), u64::from(o.paddr) + u64::from(o.memsz));
                o.index != ph.index && !(start >= zero_end || zero_start >= end)
            });
            if clash {
                size = u64::from(ph.filesz);
            }
        }
        if size == 0 {
            continue;
        }
        // In bounds: checked when the header was read.
        let start = ph.offset as usize;
        let data = image.get(start..start + ph.filesz as usize).ok_or(
            LoadError::SegmentDataOutOfBounds {
                index: ph.index,
                offset: ph.offset,
                filesz: ph.filesz,
                len,
            },
        )?;
        segments.push(Segment {
            addr: u64::from(ph.paddr),
            data,
            size,
        });
    }
    Ok((segments, entry))
}

/// `(guest-physical address, bytes)` regions to copy into guest RAM.
type Regions = Vec<(u64, Vec<u8>)>;

#[cfg(test)]
mod tests;
