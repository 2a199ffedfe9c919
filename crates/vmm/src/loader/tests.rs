//! Tests of the multiboot loader.

use super::*;

const RAM: u64 = 16 * MIB;

/// One program header for [`elf_image`].
#[derive(Clone)]
struct Seg {
    p_type: u32,
    vaddr: u32,
    paddr: u32,
    data: Vec<u8>,
    memsz: u32,
    flags: u32,
}

fn seg(paddr: u32, data: Vec<u8>, memsz: u32) -> Seg {
    Seg {
        p_type: PT_LOAD,
        vaddr: paddr,
        paddr,
        data,
        memsz,
        flags: 5,
    }
}

fn mb_header(flags: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&HEADER_MAGIC.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(
        &HEADER_MAGIC
            .wrapping_add(flags)
            .wrapping_neg()
            .to_le_bytes(),
    );
    h
}

/// Emits an ELF32 i386 image: header, program headers, then each
/// segment's data in order, nothing after the last segment's data (so
/// that any truncation cuts something the loader needs).
fn elf_image(entry: u32, segs: &[Seg]) -> Vec<u8> {
    let phoff = ELF32_EHDR_SIZE as u32;
    let mut data_off = phoff + (segs.len() * ELF32_PHDR_SIZE) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&ELF_MAGIC);
    out.extend_from_slice(&[ELFCLASS32, ELFDATA2LSB, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
    out.extend_from_slice(&EM_386.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&phoff.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(ELF32_EHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&(ELF32_PHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&(segs.len() as u16).to_le_bytes());
    out.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(out.len(), ELF32_EHDR_SIZE);
    for s in segs {
        for v in [
            s.p_type,
            data_off,
            s.vaddr,
            s.paddr,
            s.data.len() as u32,
            s.memsz,
            s.flags,
            0x1000,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        data_off += s.data.len() as u32;
    }
    for s in segs {
        out.extend_from_slice(&s.data);
    }
    out
}

/// Text that starts with a multiboot header with `flags`.
fn text(flags: u32, len: usize) -> Vec<u8> {
    let mut t = mb_header(flags);
    t.extend((t.len()..len).map(|i| (i as u8) | 1));
    t
}

/// A minimal valid multiboot kernel: text at 1 MiB holding the header,
/// data with bss at 2 MiB.
fn kernel() -> Vec<u8> {
    elf_image(
        0x10_000C,
        &[
            seg(0x10_0000, text(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO, 64), 64),
            Seg {
                flags: 6,
                ..seg(0x20_0000, vec![0xAA; 16], 0x1000)
            },
        ],
    )
}

fn rd32(b: &[u8], off: usize) -> u32 {
    le32(b, off).unwrap()
}
fn rd64(b: &[u8], off: usize) -> u64 {
    u64::from(rd32(b, off)) | u64::from(rd32(b, off + 4)) << 32
}

/// The information block: the last region, at the address EBX holds.
fn info_region(img: &BootImage) -> &[u8] {
    let (addr, bytes) = img.regions.last().unwrap();
    assert_eq!(*addr, img.entry.rbx);
    bytes
}

/// The bytes of the NUL-terminated string at guest address `addr` in the
/// information block at `base`.
fn info_string(info: &[u8], base: u64, addr: u32) -> &[u8] {
    let off = (u64::from(addr) - base) as usize;
    let len = info[off..].iter().position(|&b| b == 0).unwrap();
    &info[off..off + len]
}

/// Checks that no two regions overlap.
fn assert_disjoint(img: &BootImage) {
    for (i, (a, ab)) in img.regions.iter().enumerate() {
        for (b, bb) in &img.regions[..i] {
            assert!(
                a + ab.len() as u64 <= *b || b + bb.len() as u64 <= *a,
                "regions at {a:#x} and {b:#x} overlap"
            );
        }
    }
}

#[test]
fn loads_segments_and_zeroes_bss() {
    let img = load_multiboot(&kernel(), RAM, "").unwrap();
    assert_eq!(img.regions.len(), 3);
    let (a0, r0) = &img.regions[0];
    assert_eq!(*a0, 0x10_0000);
    assert_eq!(r0.len(), 64);
    assert_eq!(&r0[..12], &mb_header(3)[..]);
    let (a1, r1) = &img.regions[1];
    assert_eq!(*a1, 0x20_0000);
    assert_eq!(r1.len(), 0x1000);
    assert!(r1[..16].iter().all(|&b| b == 0xAA));
    assert!(r1[16..].iter().all(|&b| b == 0));
}

#[test]
fn entry_state_is_the_multiboot_handoff() {
    let img = load_multiboot(&kernel(), RAM, "").unwrap();
    assert_eq!(
        img.entry,
        EntryState {
            mode: EntryMode::Protected32Flat,
            rip: 0x10_000C,
            rsp: 0,
            rax: 0x2BAD_B002,
            // The first page boundary after the bss that ends at 0x201000.
            rbx: 0x20_1000,
        }
    );
}

#[test]
fn info_fields() {
    let img = load_multiboot(&kernel(), RAM, "console=ttyS0").unwrap();
    let base = img.entry.rbx;
    let info = info_region(&img);
    assert_eq!(rd32(info, 0), 1 | 2 | 4 | 64 | 512);
    assert_eq!(rd32(info, 4), 639);
    assert_eq!(rd32(info, 8), 15 * 1024);
    assert_eq!(rd32(info, 12), 0x8000_FFFF);
    assert_eq!(u64::from(rd32(info, 48)), base + MMAP_OFFSET);
    assert_eq!(rd32(info, 44), 4 * 24);
    assert_eq!(u64::from(rd32(info, 64)), base + BOOTLOADER_NAME_OFFSET);
    // Fields this loader does not provide stay zero.
    for off in [20, 24, 28, 32, 36, 40, 52, 56, 60, 68, 72, 76] {
        assert_eq!(rd32(info, off), 0, "offset {off}");
    }
    assert_eq!(info_string(info, base, rd32(info, 64)), b"vigil");
    assert_eq!(info_string(info, base, rd32(info, 16)), b"console=ttyS0");
    // Without modules the command line follows the fixed part directly and
    // ends the block.
    assert_eq!(u64::from(rd32(info, 16)), base + MODS_OFFSET);
    assert_eq!(info.len() as u64, MODS_OFFSET + 14);
}

#[test]
fn mmap_entries() {
    let img = load_multiboot(&kernel(), RAM, "").unwrap();
    let info = info_region(&img);
    let base = MMAP_OFFSET as usize;
    let want = [
        (0u64, 0x9FC00u64, 1u32),
        (0x9FC00, 0x400, 2),
        (0xF0000, 0x10000, 2),
        (0x100000, RAM - 0x100000, 1),
    ];
    for (i, (b, l, t)) in want.into_iter().enumerate() {
        let e = base + i * 24;
        assert_eq!(rd32(info, e), 20);
        assert_eq!(rd64(info, e + 4), b);
        assert_eq!(rd64(info, e + 12), l);
        assert_eq!(rd32(info, e + 20), t);
    }
}

#[test]
fn one_mib_guest_has_three_mmap_entries() {
    let k = elf_image(0x1000, &[seg(0x1000, text(0, 32), 32)]);
    let img = load_multiboot(&k, MIB, "").unwrap();
    let info = info_region(&img);
    assert_eq!(rd32(info, 8), 0);
    assert_eq!(rd32(info, 44), 3 * 24);
}

#[test]
fn mem_upper_large_guests() {
    let img = load_multiboot(&kernel(), 8 << 30, "").unwrap();
    let info = info_region(&img);
    assert_eq!(rd32(info, 8), (8 << 20) - 1024);
    let last = MMAP_OFFSET as usize + 3 * 24;
    assert_eq!(rd64(info, last + 12), (8 << 30) - MIB);
    // mem_upper counts KiB in 32 bits: it saturates beyond 4 TiB.
    let img = load_multiboot(&kernel(), 8 << 40, "").unwrap();
    assert_eq!(rd32(info_region(&img), 8), u32::MAX);
}

#[test]
fn cmdline_limits() {
    let long = "x".repeat(CMDLINE_MAX);
    let img = load_multiboot(&kernel(), RAM, &long).unwrap();
    let info = info_region(&img);
    assert_eq!(
        info_string(info, img.entry.rbx, rd32(info, 16)),
        long.as_bytes()
    );
    let too_long = "x".repeat(CMDLINE_MAX + 1);
    assert_eq!(
        load_multiboot(&kernel(), RAM, &too_long),
        Err(LoadError::CmdlineTooLong {
            len: CMDLINE_MAX + 1
        })
    );
    assert_eq!(
        load_multiboot(&kernel(), RAM, "a\0b"),
        Err(LoadError::CmdlineContainsNul)
    );
}

#[test]
fn memory_too_small() {
    assert_eq!(
        load_multiboot(&kernel(), MIB - 1, ""),
        Err(LoadError::MemoryTooSmall {
            memory_bytes: MIB - 1
        })
    );
}

#[test]
fn header_may_be_anywhere_aligned_in_first_8k() {
    // Header at file offset 8192 - 12: the last place it fits.
    let mut t = vec![0x90u8; 8192];
    let pad = 8192 - 12 - (ELF32_EHDR_SIZE + ELF32_PHDR_SIZE);
    t[pad..pad + 12].copy_from_slice(&mb_header(0));
    let k = elf_image(0x10_0000, &[seg(0x10_0000, t.clone(), 8192)]);
    assert_eq!(find_header(&k).unwrap().offset, 8192 - 12);
    assert!(load_multiboot(&k, RAM, "").is_ok());
    // Four bytes later it no longer lies within the first 8 KiB.
    let mut t2 = vec![0x90u8; 8196];
    t2[pad + 4..pad + 16].copy_from_slice(&mb_header(0));
    let k2 = elf_image(0x10_0000, &[seg(0x10_0000, t2, 8196)]);
    assert_eq!(
        load_multiboot(&k2, RAM, ""),
        Err(LoadError::NoMultibootHeader)
    );
    // Unaligned headers are not found.
    let mut t3 = vec![0x90u8; 64];
    t3[2..14].copy_from_slice(&mb_header(0));
    let k3 = elf_image(0x10_0000, &[seg(0x10_0000, t3, 64)]);
    assert_eq!(
        load_multiboot(&k3, RAM, ""),
        Err(LoadError::NoMultibootHeader)
    );
}

#[test]
fn no_header() {
    let k = elf_image(0x10_0000, &[seg(0x10_0000, vec![0x90; 64], 64)]);
    let e = load_multiboot(&k, RAM, "").unwrap_err();
    assert_eq!(e, LoadError::NoMultibootHeader);
    assert!(e
        .to_string()
        .contains("no 0x1BADB002 header in the first 8 KiB"));
}

#[test]
fn bad_checksum_is_skipped_then_reported() {
    let mut t = text(0, 64);
    t[8] ^= 1;
    let k = elf_image(0x10_0000, &[seg(0x10_0000, t.clone(), 64)]);
    assert!(matches!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::BadChecksum { flags: 0, .. })
    ));
    // A valid header after a bad one is used.
    t[16..28].copy_from_slice(&mb_header(2));
    let k = elf_image(0x10_0000, &[seg(0x10_0000, t, 64)]);
    let h = find_header(&k).unwrap();
    assert_eq!(h.flags, 2);
    assert!(load_multiboot(&k, RAM, "").is_ok());
}

#[test]
fn unsupported_flags() {
    for flags in [FLAG_VIDEO_MODE, 1 << 3, 1 << 15, 3 | 1 << 7] {
        let k = elf_image(0x10_0000, &[seg(0x10_0000, text(flags, 64), 64)]);
        assert_eq!(
            load_multiboot(&k, RAM, ""),
            Err(LoadError::UnsupportedFlags {
                flags,
                unsupported: flags & !3
            })
        );
    }
    // Unknown optional bits are ignored.
    let k = elf_image(0x10_0000, &[seg(0x10_0000, text(3 | 1 << 20, 64), 64)]);
    assert!(load_multiboot(&k, RAM, "").is_ok());
}

#[test]
fn elf_identity_errors() {
    let good = kernel();
    let mut k = good.clone();
    k[0] = 0;
    assert_eq!(load_multiboot(&k, RAM, ""), Err(LoadError::NotElf));
    let mut k = good.clone();
    k[4] = 2;
    let e = load_multiboot(&k, RAM, "").unwrap_err();
    assert_eq!(e, LoadError::NotElf32 { class: 2 });
    let mut k = good.clone();
    k[5] = 2;
    assert_eq!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::NotLittleEndian { data: 2 })
    );
    let mut k = good.clone();
    k[18] = 62;
    let e = load_multiboot(&k, RAM, "").unwrap_err();
    assert_eq!(e, LoadError::NotX86 { machine: 62 });
    assert!(e.to_string().contains("x86-64"));
    let mut k = good.clone();
    k[18] = 40;
    assert_eq!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::NotX86 { machine: 40 })
    );
    let mut k = good;
    k[42] = 40;
    assert_eq!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::BadProgramHeaderSize { phentsize: 40 })
    );
}

#[test]
fn program_headers_out_of_bounds() {
    let mut k = kernel();
    k[44] = 200; // e_phnum
    assert!(matches!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::ProgramHeadersOutOfBounds { phnum: 200, .. })
    ));
    let mut k = kernel();
    k[28..32].copy_from_slice(&u32::MAX.to_le_bytes()); // e_phoff
    assert!(matches!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::ProgramHeadersOutOfBounds { .. })
    ));
}

#[test]
fn segment_data_out_of_bounds() {
    let mut k = kernel();
    let ph1 = ELF32_EHDR_SIZE + ELF32_PHDR_SIZE;
    k[ph1 + 4..ph1 + 8].copy_from_slice(&u32::MAX.to_le_bytes()); // p_offset
    assert!(matches!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::SegmentDataOutOfBounds { index: 1, .. })
    ));
}

#[test]
fn filesz_above_memsz() {
    let k = elf_image(
        0x10_0000,
        &[
            seg(0x10_0000, text(0, 64), 64),
            seg(0x20_0000, vec![1; 32], 16),
        ],
    );
    assert_eq!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::FileSizeExceedsMemSize {
            index: 1,
            filesz: 32,
            memsz: 16
        })
    );
}

#[test]
fn segment_outside_ram() {
    let k = elf_image(
        0x10_0000,
        &[
            seg(0x10_0000, text(0, 64), 64),
            seg(0xFF_F000, vec![], 0x2000),
        ],
    );
    let e = load_multiboot(&k, RAM, "").unwrap_err();
    assert_eq!(
        e,
        LoadError::SegmentOutsideRam {
            addr: 0xFF_F000,
            size: 0x2000,
            memory_bytes: RAM
        }
    );
    assert_eq!(
        e.to_string(),
        "segment at 0xfff000 of 0x2000 bytes does not fit in 16 MiB of guest RAM; raise --memory"
    );
    // Exactly at the end of RAM is fine.
    let k = elf_image(
        0x10_0000,
        &[
            seg(0x10_0000, text(0, 64), 64),
            seg(0xFF_F000, vec![], 0x1000),
        ],
    );
    assert!(load_multiboot(&k, RAM, "").is_ok());
    // A 32-bit address plus size beyond 4 GiB does not wrap.
    let k = elf_image(
        0x10_0000,
        &[
            seg(0x10_0000, text(0, 64), 64),
            seg(0xFFFF_F000, vec![], 0xFFFF_F000),
        ],
    );
    assert!(matches!(
        load_multiboot(&k, 4 << 30, ""),
        Err(LoadError::SegmentOutsideRam { .. })
    ));
}

/// Kernels loaded over what used to be the fixed information page at
/// 0x9000 (and the module list at 0x8000) were refused; the information
/// now follows whatever is loaded, so they load, and nothing overlaps.
#[test]
fn kernels_around_0x9000_load_with_the_info_after_them() {
    let data = b"module bytes".to_vec();
    let mods = [Module {
        data: &data,
        string: "m arg",
    }];
    for (addr, size) in [
        (0x8000u32, 0x1001u32),
        (0x8000, 0x2000),
        (0x9000, 0x1000),
        (0x9050, 16),
        (0x90F8, 16),
        (0x9102, 16),
    ] {
        let k = elf_image(addr, &[seg(addr, text(0, 16), size)]);
        let kernel_end = u64::from(addr + size);
        for modules in [&[][..], &mods[..]] {
            let img = load_multiboot_with_modules(&k, RAM, "a command line", modules).unwrap();
            assert_disjoint(&img);
            assert_eq!(img.regions[0].0, u64::from(addr));
            assert_eq!(&img.regions[0].1[..12], &mb_header(0)[..]);
            let loaded_end = img.regions[..img.regions.len() - 1]
                .iter()
                .map(|(a, b)| a + b.len() as u64)
                .max()
                .unwrap();
            assert!(loaded_end >= kernel_end);
            // The block starts on the first page boundary after everything
            // loaded, as EBX says.
            assert_eq!(img.entry.rbx, loaded_end.div_ceil(4096) * 4096);
            let info = info_region(&img);
            assert_eq!(
                info_string(info, img.entry.rbx, rd32(info, 16)),
                b"a command line"
            );
        }
    }
}

#[test]
fn info_block_avoids_the_pc_hole_below_1_mib() {
    let k = elf_image(0x9_E000, &[seg(0x9_E000, text(0, 16), 0x1000)]);
    // Room below 0x9FC00: the block follows the kernel.
    let img = load_multiboot(&k, RAM, "").unwrap();
    assert_eq!(img.entry.rbx, 0x9_F000);
    // A long command line would reach into [0x9FC00, 1 MiB): 1 MiB instead.
    let img = load_multiboot(&k, RAM, &"x".repeat(CMDLINE_MAX)).unwrap();
    assert_eq!(img.entry.rbx, MIB);
    // A kernel ending inside the hole: 1 MiB as well.
    let k = elf_image(0x9_F000, &[seg(0x9_F000, text(0, 16), 0x800)]);
    assert_eq!(load_multiboot(&k, RAM, "").unwrap().entry.rbx, MIB);
    // In a 1 MiB guest there is no room at 1 MiB: the lowest free page.
    assert_eq!(load_multiboot(&k, MIB, "").unwrap().entry.rbx, 0x1000);
}

#[test]
fn info_block_takes_a_lower_gap_when_nothing_fits_above() {
    // A bss that ends at the top of RAM leaves no room above: the block
    // takes the lowest free page instead.
    let top = (RAM - 0x1000) as u32;
    let k = elf_image(
        0x10_0000,
        &[
            seg(0x10_0000, text(0, 16), 0x1000),
            Seg {
                flags: 6,
                ..seg(top, vec![], 0x1000)
            },
        ],
    );
    let img = load_multiboot(&k, RAM, "ab").unwrap();
    assert_eq!(img.entry.rbx, 0x1000);
    // A kernel at 0x1000 pushes it past itself, and a module that ends at
    // the top of RAM does the same.
    let k = elf_image(
        0x1000,
        &[
            seg(0x1000, text(0, 16), 0x1000),
            Seg {
                flags: 6,
                ..seg(0x3000, vec![], 0x1000)
            },
        ],
    );
    let big = vec![1u8; (RAM - 0x4000) as usize];
    let m = [Module {
        data: &big,
        string: "big",
    }];
    let img = load_multiboot_with_modules(&k, RAM, "", &m).unwrap();
    assert_eq!(img.entry.rbx, 0x2000);
    assert_disjoint(&img);
    let info = info_region(&img);
    assert_eq!(rd32(info, MODS_OFFSET as usize), 0x4000);
}

#[test]
fn info_block_must_fit_somewhere() {
    // A 1 MiB guest whose conventional memory the kernel fills entirely.
    let k = elf_image(0, &[seg(0, text(0, 16), LOW_RAM_END as u32)]);
    let e = load_multiboot(&k, MIB, "ab").unwrap_err();
    assert_eq!(
        e,
        LoadError::BootInfoOutsideRam {
            addr: MIB,
            size: MODS_OFFSET + 3,
            memory_bytes: MIB
        }
    );
    assert_eq!(
        e.to_string(),
        "the multiboot information (259 bytes) fits in 1 MiB of guest RAM neither after the \
         kernel and its modules (at 0x100000) nor in a gap below them; raise --memory"
    );
    // With room at 1 MiB it goes there.
    assert_eq!(load_multiboot(&k, 2 * MIB, "ab").unwrap().entry.rbx, MIB);
}

#[test]
fn overlapping_segments() {
    let k = elf_image(
        0x10_0000,
        &[
            seg(0x10_0000, text(0, 64), 64),
            seg(0x10_0020, vec![1; 64], 64),
        ],
    );
    assert_eq!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::SegmentsOverlap {
            first: 0x10_0000,
            second: 0x10_0020
        })
    );
}

#[test]
fn bss_overlapping_next_segment_is_truncated_like_qemu() {
    let k = elf_image(
        0x10_0000,
        &[
            seg(0x10_0000, text(0, 64), 0x1000),
            seg(0x10_0040, vec![7; 16], 16),
        ],
    );
    let img = load_multiboot(&k, RAM, "").unwrap();
    assert_eq!(img.regions[0].1.len(), 64);
    assert_eq!(img.regions[1], (0x10_0040, vec![7; 16]));
}

#[test]
fn no_loadable_segment() {
    // Only a non-load segment (PT_NOTE) carrying the header.
    let k = elf_image(
        0,
        &[Seg {
            p_type: 4,
            ..seg(0x10_0000, text(0, 16), 16)
        }],
    );
    assert_eq!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::NoLoadableSegment)
    );
    // Zero program headers: header sits in bytes after the ELF header.
    let mut k = elf_image(0, &[]);
    k.extend_from_slice(&mb_header(0));
    assert_eq!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::NoLoadableSegment)
    );
    // PT_LOAD with p_memsz 0 is skipped.
    let mut k = elf_image(0, &[seg(0x10_0000, vec![], 0)]);
    k.extend_from_slice(&mb_header(0));
    assert_eq!(
        load_multiboot(&k, RAM, ""),
        Err(LoadError::NoLoadableSegment)
    );
}

#[test]
fn entry_translated_from_virtual_like_qemu() {
    let k = elf_image(
        0xC010_0010,
        &[Seg {
            vaddr: 0xC010_0000,
            ..seg(0x10_0000, text(0, 64), 64)
        }],
    );
    assert_eq!(load_multiboot(&k, RAM, "").unwrap().entry.rip, 0x10_0010);
    // Not executable: e_entry is used as is.
    let k = elf_image(
        0xC010_0010,
        &[Seg {
            vaddr: 0xC010_0000,
            flags: 4,
            ..seg(0x10_0000, text(0, 64), 64)
        }],
    );
    assert_eq!(load_multiboot(&k, RAM, "").unwrap().entry.rip, 0xC010_0010);
}

/// A flat binary with an a.out-kludge header loaded at 1 MiB.
fn kludge_image(header_addr: u32, load: u32, load_end: u32, bss_end: u32) -> Vec<u8> {
    let flags = FLAG_AOUT_KLUDGE | FLAG_MEMORY_INFO;
    let mut k = vec![0xF4u8; 16]; // some code before the header
    k.extend_from_slice(&mb_header(flags));
    for v in [
        header_addr,
        load,
        load_end,
        bss_end,
        load.wrapping_add(0x30),
    ] {
        k.extend_from_slice(&v.to_le_bytes());
    }
    k.extend((0..32).map(|i| i as u8));
    k
}

#[test]
fn aout_kludge_loads_flat_binary() {
    // 80-byte file, header at offset 16 = load address 0x100010.
    let k = kludge_image(0x10_0010, 0x10_0000, 0, 0x10_0100);
    assert_eq!(k.len(), 80);
    let img = load_multiboot(&k, RAM, "").unwrap();
    assert_eq!(img.entry.rip, 0x10_0030);
    let (addr, bytes) = &img.regions[0];
    assert_eq!(*addr, 0x10_0000);
    assert_eq!(bytes.len(), 0x100);
    assert_eq!(&bytes[..80], &k[..]);
    assert!(bytes[80..].iter().all(|&b| b == 0));
    // load_end_addr limits what is read; no bss.
    let k = kludge_image(0x10_0010, 0x10_0000, 0x10_0020, 0);
    let img = load_multiboot(&k, RAM, "").unwrap();
    assert_eq!(img.regions[0].1, k[..32].to_vec());
    // Load address after the file start: text begins 8 bytes into the file.
    let k = kludge_image(0x10_0008, 0x10_0000, 0, 0);
    let img = load_multiboot(&k, RAM, "").unwrap();
    assert_eq!(img.regions[0].1, k[8..].to_vec());
}

#[test]
fn aout_kludge_errors() {
    let bad = |k: Vec<u8>| load_multiboot(&k, RAM, "").unwrap_err();
    assert!(matches!(
        bad(kludge_image(0x10_0000, 0x10_0010, 0, 0)),
        LoadError::BadAoutKludge { .. }
    ));
    assert!(matches!(
        bad(kludge_image(0x10_0100, 0x10_0000, 0, 0)),
        LoadError::BadAoutKludge { .. }
    ));
    assert!(matches!(
        bad(kludge_image(0x10_0010, 0x10_0000, 0x0F_0000, 0)),
        LoadError::BadAoutKludge { .. }
    ));
    assert!(matches!(
        bad(kludge_image(0x10_0010, 0x10_0000, 0x10_0040, 0x10_0020)),
        LoadError::BadAoutKludge { .. }
    ));
    assert!(matches!(
        bad(kludge_image(0x10_0010, 0x10_0000, 0x10_1000, 0)),
        LoadError::Truncated { needed: 0x1000, .. }
    ));
    assert!(matches!(
        bad(kludge_image(0xFFFF_FFFF, 0xFFFF_FFEF, 0, 0)),
        LoadError::BadAoutKludge { .. }
    ));
    // Empty: load_end == load_addr and no bss.
    assert_eq!(
        bad(kludge_image(0x10_0010, 0x10_0010, 0x10_0010, 0)),
        LoadError::NoLoadableSegment
    );
    // Address fields cut off by the end of the file.
    let k = kludge_image(0x10_0010, 0x10_0000, 0, 0);
    assert!(matches!(bad(k[..40].to_vec()), LoadError::Truncated { .. }));
    // Does not fit in RAM.
    assert!(matches!(
        load_multiboot(&kludge_image(0x10_0010, 0x10_0000, 0, 0x20_0000), MIB, ""),
        Err(LoadError::SegmentOutsideRam { .. })
    ));
}

#[test]
fn truncation_at_every_offset_fails_cleanly() {
    // With load_end_addr 0 the file length defines what is loaded, so
    // only an explicit load_end_addr makes every truncation an error.
    for image in [
        kernel(),
        kludge_image(0x10_0010, 0x10_0000, 0x10_0050, 0x10_0100),
    ] {
        assert!(load_multiboot(&image, RAM, "").is_ok());
        for len in 0..image.len() {
            let r = load_multiboot(&image[..len], RAM, "");
            assert!(r.is_err(), "truncated to {len} bytes loaded: {r:?}");
        }
    }
    assert_eq!(
        load_multiboot(&[], RAM, ""),
        Err(LoadError::Truncated {
            what: "a multiboot header",
            needed: 12,
            len: 0
        })
    );
    // A header-only prefix of an ELF file reports the ELF header's size.
    let k = kernel();
    let mut short = k[..28].to_vec();
    short.extend_from_slice(&mb_header(0));
    assert!(matches!(
        load_multiboot(&short, RAM, ""),
        Err(LoadError::Truncated {
            needed: 52,
            len: 40,
            ..
        })
    ));
}

/// xorshift64*: small, deterministic, good enough to mutate bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    let seeds = [
        kernel(),
        kludge_image(0x10_0010, 0x10_0000, 0, 0x10_0100),
        elf_image(
            0xC010_0010,
            &[
                Seg {
                    vaddr: 0xC010_0000,
                    ..seg(0x10_0000, text(3, 48), 0x2000)
                },
                seg(0x10_1000, vec![9; 8], 8),
                Seg {
                    p_type: 4,
                    ..seg(0, vec![1; 4], 4)
                },
            ],
        ),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0u32, 0u32);
    for round in 0..100_000 {
        let mut k = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(k.len());
            match rng.below(4) {
                0 => k[i] = rng.next() as u8,
                1 => k[i] ^= 1 << rng.below(8),
                2 => k[i] = [0, 0xFF, 0x7F, 0x80][rng.below(4)],
                _ => {
                    // Overwrite an aligned word with an interesting value.
                    let w = i & !3;
                    if w + 4 <= k.len() {
                        let v: u32 = [0, u32::MAX, 0x8000_0000, 0x10_0000, 0x9000][rng.below(5)];
                        k[w..w + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
        if rng.below(8) == 0 {
            let len = rng.below(k.len() + 1);
            k.truncate(len);
        }
        let memory = [MIB, RAM, 64 * MIB][rng.below(3)];
        match load_multiboot(&k, memory, "fuzz") {
            Ok(img) => {
                ok += 1;
                // Whatever loads must respect the invariants.
                for (addr, bytes) in &img.regions {
                    assert!(addr + bytes.len() as u64 <= memory);
                }
            }
            Err(e) => {
                err += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok} err {err}");
}

#[test]
fn error_messages_are_one_line() {
    let errors = [
        LoadError::MemoryTooSmall { memory_bytes: 1000 },
        LoadError::CmdlineTooLong { len: 5000 },
        LoadError::CmdlineContainsNul,
        LoadError::Truncated {
            what: "x",
            needed: 52,
            len: 10,
        },
        LoadError::NoMultibootHeader,
        LoadError::BadChecksum {
            offset: 0,
            flags: 0,
            checksum: 0,
        },
        LoadError::UnsupportedFlags {
            flags: 4,
            unsupported: 4,
        },
        LoadError::BadAoutKludge { reason: "r" },
        LoadError::NotElf,
        LoadError::NotElf32 { class: 2 },
        LoadError::NotLittleEndian { data: 2 },
        LoadError::NotX86 { machine: 62 },
        LoadError::NotX86 { machine: 40 },
        LoadError::BadProgramHeaderSize { phentsize: 0 },
        LoadError::ProgramHeadersOutOfBounds {
            phoff: 0,
            phnum: 1,
            len: 0,
        },
        LoadError::SegmentDataOutOfBounds {
            index: 0,
            offset: 0,
            filesz: 0,
            len: 0,
        },
        LoadError::FileSizeExceedsMemSize {
            index: 0,
            filesz: 0,
            memsz: 0,
        },
        LoadError::SegmentOutsideRam {
            addr: 0,
            size: 0,
            memory_bytes: 1500,
        },
        LoadError::BootInfoOutsideRam {
            addr: 0,
            size: 0,
            memory_bytes: 1500,
        },
        LoadError::SegmentsOverlap {
            first: 0,
            second: 0,
        },
        LoadError::NoLoadableSegment,
    ];
    for e in errors {
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        assert!(s.contains(';'), "message names no fix: {s}");
    }
    assert!(LoadError::Truncated {
        what: "the ELF32 header",
        needed: 52,
        len: 10
    }
    .to_string()
    .contains("needs 52 bytes but the file has 10"));
}

#[test]
fn modules_follow_the_kernel_page_aligned_with_their_strings() {
    let a = b"CPUS=1\n".to_vec();
    let b = vec![7u8; 5000];
    let mods = [
        Module {
            data: &a,
            string: "config.txt",
        },
        Module {
            data: &b,
            string: "blob.bin arg1 arg2",
        },
    ];
    let img = load_multiboot_with_modules(&kernel(), RAM, "k", &mods).unwrap();
    assert_disjoint(&img);
    let base = img.entry.rbx;
    let info = info_region(&img);
    assert_eq!(rd32(info, 0) & 8, 8, "MODS flag");
    assert_eq!(rd32(info, 20), 2);
    assert_eq!(u64::from(rd32(info, 24)), base + MODS_OFFSET);
    let list = &info[MODS_OFFSET as usize..];
    let kernel_end = img.regions[..img.regions.len() - 3]
        .iter()
        .map(|(g, b)| g + b.len() as u64)
        .max()
        .unwrap();
    let mut prev_end = kernel_end;
    for (i, m) in mods.iter().enumerate() {
        let start = u64::from(rd32(list, i * 16));
        let end = u64::from(rd32(list, i * 16 + 4));
        let string = rd32(list, i * 16 + 8);
        assert_eq!(start % 4096, 0, "module {i} page-aligned");
        assert!(start >= prev_end, "module {i} after what precedes it");
        assert_eq!(end - start, m.data.len() as u64);
        assert_eq!(info_string(info, base, string), m.string.as_bytes());
        let (_, bytes) = img.regions.iter().find(|(g, _)| *g == start).unwrap();
        assert_eq!(bytes, &m.data.to_vec());
        prev_end = end;
    }
    // The information block follows the last module, then the command line
    // follows the module strings.
    assert_eq!(base, prev_end.div_ceil(4096) * 4096);
    assert_eq!(info_string(info, base, rd32(info, 16)), b"k");
}

#[test]
fn module_errors() {
    let big = vec![0u8; RAM as usize];
    let m = [Module {
        data: &big,
        string: "big",
    }];
    assert!(matches!(
        load_multiboot_with_modules(&kernel(), RAM, "", &m),
        Err(LoadError::ModuleOutsideRam { index: 0, .. })
    ));
    let long = "x".repeat(5000);
    let m = [Module {
        data: b"",
        string: &long,
    }];
    assert!(matches!(
        load_multiboot_with_modules(&kernel(), RAM, "", &m),
        Err(LoadError::ModuleStringsTooLong { .. })
    ));
}
