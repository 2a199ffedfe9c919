//! The multiboot information block and where it goes.
//!
//! Everything the loader writes for the kernel besides its own image and
//! modules — the `multiboot_info` structure, the memory map, the boot loader
//! name, the module descriptors with their strings and the command line —
//! is one block, built here and placed on the first page boundary after the
//! highest byte the kernel and its modules occupy (see the loader's module
//! documentation for the layout and the rules).

use super::{
    LoadError, Module, Regions, BOOT_DEVICE, INFO_BOOTLOADER_NAME, INFO_BOOT_DEVICE, INFO_CMDLINE,
    INFO_MEM, INFO_MMAP, INFO_MODS, KIB, MIB, MMAP_AVAILABLE, MMAP_RESERVED,
};

/// Alignment of modules and of the information block.
pub const PAGE_SIZE: u64 = 4096;
/// Bytes reserved for the `multiboot_info` structure at the block's start.
pub const BOOT_INFO_SIZE: u64 = 0x80;
/// Offset of the memory map (`mmap_addr`) in the block.
pub const MMAP_OFFSET: u64 = BOOT_INFO_SIZE;
/// Size of one memory-map entry including its `size` field.
pub const MMAP_ENTRY_SIZE: u64 = 24;
/// Most memory-map entries the loader writes.
pub const MMAP_MAX_ENTRIES: u64 = 4;
/// Offset of the boot loader name in the block.
pub const BOOTLOADER_NAME_OFFSET: u64 = MMAP_OFFSET + MMAP_ENTRY_SIZE * MMAP_MAX_ENTRIES;
/// The boot loader name given to the kernel.
pub const BOOTLOADER_NAME: &str = "vigil";
/// Offset of the module descriptors (`mods_addr`) in the block; their
/// strings follow them, then the command line.
pub const MODS_OFFSET: u64 = 0x100;
/// Size of one module descriptor.
pub const MOD_ENTRY_SIZE: u64 = 16;
/// Most bytes the module descriptors and their strings may take together.
pub const MODULE_LIST_MAX: u64 = 4096;
/// Longest command line accepted, in bytes, not counting the NUL: one
/// 4 KiB page with it.
pub const CMDLINE_MAX: usize = 4095;
/// End of the conventional memory the memory map reports as available; the
/// block never reaches into `[LOW_RAM_END, 1 MiB)`, which a PC reserves.
pub const LOW_RAM_END: u64 = 0x9_FC00;
/// Conventional memory reported in `mem_lower`, in KiB (0–0x9FC00).
const MEM_LOWER_KIB: u32 = (LOW_RAM_END / KIB) as u32;

/// Offsets of the fields this loader fills in the multiboot information.
mod info {
    pub const FLAGS: usize = 0;
    pub const MEM_LOWER: usize = 4;
    pub const MEM_UPPER: usize = 8;
    pub const BOOT_DEVICE: usize = 12;
    pub const CMDLINE: usize = 16;
    pub const MODS_COUNT: usize = 20;
    pub const MODS_ADDR: usize = 24;
    pub const MMAP_LENGTH: usize = 44;
    pub const MMAP_ADDR: usize = 48;
    pub const BOOT_LOADER_NAME: usize = 64;
}

/// Bytes the module descriptors and their NUL-terminated strings take.
pub(super) fn module_list_size(modules: &[Module<'_>]) -> u64 {
    modules
        .iter()
        .map(|m| MOD_ENTRY_SIZE + m.string.len() as u64 + 1)
        .sum()
}

/// Bytes the whole block takes for `cmdline` and `modules`.
pub(super) fn block_size(cmdline: &str, modules: &[Module<'_>]) -> u64 {
    MODS_OFFSET + module_list_size(modules) + cmdline.len() as u64 + 1
}

/// Rounds `addr` up to a page boundary (saturating: an address that close
/// to the top fails the RAM checks anyway).
fn page_up(addr: u64) -> u64 {
    addr.div_ceil(PAGE_SIZE).saturating_mul(PAGE_SIZE)
}

/// Places the modules page-aligned from `kernel_end`, in order; returns
/// each module's start address and the regions holding their bytes.
pub(super) fn place_modules(
    modules: &[Module<'_>],
    kernel_end: u64,
    memory_bytes: u64,
) -> Result<(Vec<u64>, Regions), LoadError> {
    let mut starts = Vec::with_capacity(modules.len());
    let mut regions = Vec::with_capacity(modules.len());
    let mut next = page_up(kernel_end);
    for (index, m) in modules.iter().enumerate() {
        let size = m.data.len() as u64;
        let end = next
            .checked_add(size)
            .filter(|&e| e <= memory_bytes && e <= u64::from(u32::MAX))
            .ok_or(LoadError::ModuleOutsideRam {
                index,
                addr: next,
                size,
            })?;
        starts.push(next);
        regions.push((next, m.data.to_vec()));
        next = page_up(end);
    }
    Ok((starts, regions))
}

/// Where the block of `size` bytes goes, given the `(address, length)`
/// regions the kernel and its modules occupy. First choice, as QEMU: the
/// first page boundary after the highest of them, or 1 MiB when the block
/// would reach into the reserved `[LOW_RAM_END, 1 MiB)` from below it. When
/// that does not fit in RAM (a kernel or module reaching the top of RAM),
/// the lowest page boundary from 4 KiB up where it overlaps neither them
/// nor that reserved range. The block must end within RAM and below
/// 4 GiB, since the kernel gets 32-bit pointers to it.
pub(super) fn block_addr(
    loaded: &[(u64, u64)],
    size: u64,
    memory_bytes: u64,
) -> Result<u64, LoadError> {
    let reserved = (LOW_RAM_END, MIB - LOW_RAM_END);
    let free = |addr: u64| {
        let Some(end) = addr.checked_add(size) else {
            return false;
        };
        end <= memory_bytes
            && end <= 1 << 32
            && std::iter::once(&reserved)
                .chain(loaded)
                .all(|&(start, len)| end <= start || start.saturating_add(len) <= addr)
    };
    let loaded_end = loaded
        .iter()
        .map(|&(start, len)| start.saturating_add(len))
        .max()
        .unwrap_or(0);
    let mut after = page_up(loaded_end);
    if !free(after) && after < MIB {
        after = MIB;
    }
    if free(after) {
        return Ok(after);
    }
    let mut below: Vec<u64> = std::iter::once(PAGE_SIZE)
        .chain(std::iter::once(MIB))
        .chain(
            loaded
                .iter()
                .map(|&(start, len)| page_up(start.saturating_add(len))),
        )
        .collect();
    below.sort_unstable();
    below
        .into_iter()
        .find(|&addr| free(addr))
        .ok_or(LoadError::BootInfoOutsideRam {
            addr: after,
            size,
            memory_bytes,
        })
}

/// The memory map: `(base, length, type)` per entry.
fn memory_map(memory_bytes: u64) -> Vec<(u64, u64, u32)> {
    let mut entries = vec![
        (0, LOW_RAM_END, MMAP_AVAILABLE),
        (LOW_RAM_END, 0xA_0000 - LOW_RAM_END, MMAP_RESERVED),
        (0xF_0000, 0x1_0000, MMAP_RESERVED),
    ];
    if memory_bytes > MIB {
        entries.push((MIB, memory_bytes - MIB, MMAP_AVAILABLE));
    }
    entries
}

/// Builds the block for guest-physical address `base` (from
/// [`block_addr`], so every address in it fits in 32 bits). `cmdline` must
/// fit and hold no NUL; `starts` holds each module's load address.
pub(super) fn build_block(
    base: u64,
    memory_bytes: u64,
    cmdline: &str,
    modules: &[Module<'_>],
    starts: &[u64],
) -> Vec<u8> {
    let mut block = vec![0u8; MODS_OFFSET as usize];
    let put32 = |block: &mut Vec<u8>, off: usize, v: u64| {
        // Addresses lie below 4 GiB (block_addr, place_modules); sizes
        // and counts are small.
        block[off..off + 4].copy_from_slice(&(v as u32).to_le_bytes());
    };
    let entries = memory_map(memory_bytes);
    let mem_upper = u32::try_from((memory_bytes - MIB) / KIB).unwrap_or(u32::MAX);
    let mods = if modules.is_empty() { 0 } else { INFO_MODS };
    let flags =
        INFO_MEM | INFO_BOOT_DEVICE | INFO_CMDLINE | mods | INFO_MMAP | INFO_BOOTLOADER_NAME;
    put32(&mut block, info::FLAGS, u64::from(flags));
    put32(&mut block, info::MEM_LOWER, u64::from(MEM_LOWER_KIB));
    put32(&mut block, info::MEM_UPPER, u64::from(mem_upper));
    put32(&mut block, info::BOOT_DEVICE, u64::from(BOOT_DEVICE));
    if !modules.is_empty() {
        put32(&mut block, info::MODS_COUNT, modules.len() as u64);
        put32(&mut block, info::MODS_ADDR, base + MODS_OFFSET);
    }
    let mmap_length = entries.len() as u64 * MMAP_ENTRY_SIZE;
    put32(&mut block, info::MMAP_LENGTH, mmap_length);
    put32(&mut block, info::MMAP_ADDR, base + MMAP_OFFSET);
    put32(
        &mut block,
        info::BOOT_LOADER_NAME,
        base + BOOTLOADER_NAME_OFFSET,
    );

    let mut off = MMAP_OFFSET as usize;
    for (entry_base, length, kind) in entries {
        put32(&mut block, off, MMAP_ENTRY_SIZE - 4);
        block[off + 4..off + 12].copy_from_slice(&entry_base.to_le_bytes());
        block[off + 12..off + 20].copy_from_slice(&length.to_le_bytes());
        put32(&mut block, off + 20, u64::from(kind));
        off += MMAP_ENTRY_SIZE as usize;
    }
    let name = BOOTLOADER_NAME_OFFSET as usize;
    block[name..name + BOOTLOADER_NAME.len()].copy_from_slice(BOOTLOADER_NAME.as_bytes());

    // Module descriptors, then their strings.
    block.resize(block.len() + modules.len() * MOD_ENTRY_SIZE as usize, 0);
    for (i, (m, &start)) in modules.iter().zip(starts).enumerate() {
        let string_addr = base + block.len() as u64;
        block.extend_from_slice(m.string.as_bytes());
        block.push(0);
        let e = MODS_OFFSET as usize + i * MOD_ENTRY_SIZE as usize;
        put32(&mut block, e, start);
        put32(&mut block, e + 4, start + m.data.len() as u64);
        put32(&mut block, e + 8, string_addr);
    }

    let cmdline_addr = base + block.len() as u64;
    put32(&mut block, info::CMDLINE, cmdline_addr);
    block.extend_from_slice(cmdline.as_bytes());
    block.push(0);
    block
}
