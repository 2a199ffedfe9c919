//! Tests of the Linux boot protocol loader on synthetic bzImages.

use super::*;
use crate::loader::{load_kernel, KernelArgs, LoadError, Module};

const RAM: u64 = 64 * MIB;
const INIT_SIZE: u32 = 0x80_0000;

/// A bzImage with one setup sector after the boot sector, `payload` as the
/// protected-mode kernel, protocol `version`.
fn bzimage(version: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 1024];
    f[0x1F1] = 1; // setup_sects
    let syssize = (payload.len() as u32).div_ceil(16);
    f[0x1F4..0x1F8].copy_from_slice(&syssize.to_le_bytes());
    f[0x1FE..0x200].copy_from_slice(&BOOT_FLAG.to_le_bytes());
    f[0x200] = 0xEB;
    f[0x201] = 0x6A; // the header runs to 0x26C
    f[0x202..0x206].copy_from_slice(b"HdrS");
    f[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    f[0x211] = LOADED_HIGH;
    f[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    f[0x22C..0x230].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    f[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
    f[0x238..0x23C].copy_from_slice(&2048u32.to_le_bytes());
    f[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
    f[0x260..0x264].copy_from_slice(&INIT_SIZE.to_le_bytes());
    f.extend_from_slice(payload);
    f.resize(1024 + syssize as usize * 16, 0);
    f
}

fn region(boot: &BootImage, addr: u64) -> &[u8] {
    &boot
        .regions
        .iter()
        .find(|(a, _)| *a == addr)
        .unwrap_or_else(|| panic!("no region at {addr:#x}"))
        .1
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

#[test]
fn recognises_only_a_setup_header() {
    assert!(is_bzimage(&bzimage(0x020F, b"k")));
    assert!(!is_bzimage(b"\x7FELF"));
    assert!(!is_bzimage(&[0; 0x300]));
}

#[test]
fn boots_through_the_32_bit_entry() {
    let image = bzimage(0x020F, b"KERNEL");
    let initrd = vec![0x5Au8; 5000];
    let boot = load_linux(
        &image,
        RAM,
        &LinuxArgs {
            cmdline: "console=ttyS0 quiet",
            initrd: Some(&initrd),
            firmware: Some((b"RSD PTR tables", FIRMWARE_ADDR)),
        },
    )
    .unwrap();
    assert_eq!(boot.entry.mode, EntryMode::Protected32Flat);
    assert_eq!(boot.entry.rip, ENTRY_STUB_ADDR);
    assert_eq!(&region(&boot, KERNEL_LOAD_ADDR)[..6], b"KERNEL");
    assert_eq!(region(&boot, CMDLINE_ADDR), b"console=ttyS0 quiet\0");
    assert_eq!(region(&boot, FIRMWARE_ADDR), b"RSD PTR tables");
    // The stub: xor ebp/edi/ebx, mov esi, zero page, mov eax, code32_start, jmp eax.
    let stub = region(&boot, ENTRY_STUB_ADDR);
    assert_eq!(&stub[..7], &[0x31, 0xED, 0x31, 0xFF, 0x31, 0xDB, 0xBE]);
    assert_eq!(le32(stub, 7) as u64, ZERO_PAGE_ADDR);
    assert_eq!(stub[11], 0xB8);
    assert_eq!(le32(stub, 12), 0x10_0000);
    assert_eq!(&stub[16..], &[0xFF, 0xE0]);

    let zp = region(&boot, ZERO_PAGE_ADDR);
    assert_eq!(zp.len(), 4096);
    assert_eq!(&zp[0x202..0x206], b"HdrS");
    assert_eq!(zp[0x210], LOADER_TYPE_UNDEFINED);
    assert_eq!(zp[0x211], LOADED_HIGH | CAN_USE_HEAP);
    assert_eq!(le32(zp, 0x228) as u64, CMDLINE_ADDR);
    // The initrd: 4 KiB aligned, as high as RAM allows.
    let initrd_addr = le32(zp, 0x218) as u64;
    assert_eq!(initrd_addr, (RAM - 5000) & !0xFFF);
    assert_eq!(le32(zp, 0x21C), 5000);
    assert_eq!(region(&boot, initrd_addr), &initrd[..]);
    assert_eq!(le64(zp, 0x70), FIRMWARE_ADDR);
    // E820: 5 entries, the last RAM one ends at the top of RAM.
    assert_eq!(zp[0x1E8], 5);
    let entry = |i: usize| {
        let o = 0x2D0 + 20 * i;
        (le64(zp, o), le64(zp, o + 8), le32(zp, o + 16))
    };
    assert_eq!(entry(0), (0, 0x9_FC00, E820_RAM));
    assert_eq!(entry(2), (FIRMWARE_ADDR, FIRMWARE_LEN, E820_RESERVED));
    assert_eq!(entry(3), (MIB, RAM - MIB, E820_RAM));
    assert_eq!(entry(4), (MMIO_HOLE_START, 0x140_0000, E820_RESERVED));
    // Regions never overlap.
    let mut spans: Vec<_> = boot
        .regions
        .iter()
        .map(|(a, d)| (*a, *a + d.len() as u64))
        .collect();
    spans.sort();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "{spans:x?}");
}

#[test]
fn initrd_stays_below_initrd_addr_max() {
    let mut image = bzimage(0x020A, b"k");
    image[0x22C..0x230].copy_from_slice(&0x1FF_FFFFu32.to_le_bytes()); // 32 MiB - 1
    let initrd = [1u8; 100];
    let boot = load_linux(
        &image,
        RAM,
        &LinuxArgs {
            initrd: Some(&initrd),
            ..LinuxArgs::default()
        },
    )
    .unwrap();
    let zp = region(&boot, ZERO_PAGE_ADDR);
    assert_eq!(le32(zp, 0x218) as u64, (32 * MIB - 100) & !0xFFF);
    assert_eq!(region(&boot, CMDLINE_ADDR), b"\0");
    assert_eq!(le64(zp, 0x70), 0);
}

#[test]
fn refusals_name_the_cause() {
    let ok = bzimage(0x020F, b"k");
    let args = LinuxArgs::default();
    let e = load_linux(&bzimage(0x0209, b"k"), RAM, &args).unwrap_err();
    assert_eq!(e, LinuxError::ProtocolTooOld { version: 0x0209 });
    assert!(e.to_string().contains("2.09"));
    let mut zimage = ok.clone();
    zimage[0x211] = 0;
    assert_eq!(
        load_linux(&zimage, RAM, &args).unwrap_err(),
        LinuxError::NotBzImage
    );
    let e = load_linux(&ok, 16 * MIB, &args).unwrap_err();
    assert_eq!(
        e,
        LinuxError::MemoryTooSmall {
            needed: 0x100_0000 + u64::from(INIT_SIZE),
            memory_bytes: 16 * MIB
        }
    );
    assert!(e.to_string().contains("needs 24 MiB"));
    assert!(matches!(
        load_linux(&ok[..0x300], RAM, &args),
        Err(LinuxError::Truncated { .. })
    ));
    let long = "x".repeat(2049);
    assert!(matches!(
        load_linux(
            &ok,
            RAM,
            &LinuxArgs {
                cmdline: &long,
                ..args
            }
        ),
        Err(LinuxError::CmdlineTooLong {
            len: 2049,
            max: 2048
        })
    ));
    assert_eq!(
        load_linux(
            &ok,
            RAM,
            &LinuxArgs {
                cmdline: "a\tb",
                ..args
            }
        )
        .unwrap_err(),
        LinuxError::CmdlineInvalid
    );
    let big = vec![0u8; 41 << 20];
    assert!(matches!(
        load_linux(
            &ok,
            RAM,
            &LinuxArgs {
                initrd: Some(&big),
                ..args
            }
        ),
        Err(LinuxError::InitrdTooLarge { .. })
    ));
    for e in [
        LinuxError::NotBzImage,
        LinuxError::ModulesForLinux,
        LinuxError::FirmwareTooLarge { size: 1 << 20 },
    ] {
        assert!(!e.to_string().contains('\n'));
    }
}

#[test]
fn load_kernel_dispatches_on_the_header() {
    let image = bzimage(0x020F, b"k");
    let module = [Module {
        data: b"m",
        string: "m",
    }];
    let e = load_kernel(
        &image,
        RAM,
        &KernelArgs {
            modules: &module,
            ..KernelArgs::default()
        },
    )
    .unwrap_err();
    assert_eq!(e, LoadError::Linux(LinuxError::ModulesForLinux));
    assert!(load_kernel(&image, RAM, &KernelArgs::default()).is_ok());
    let e = load_kernel(
        b"not a kernel",
        RAM,
        &KernelArgs {
            linux: LinuxArgs {
                initrd: Some(b"x"),
                ..LinuxArgs::default()
            },
            ..KernelArgs::default()
        },
    )
    .unwrap_err();
    assert_eq!(e, LoadError::InitrdForMultiboot);
    assert_eq!(
        load_kernel(b"not a kernel", RAM, &KernelArgs::default()).unwrap_err(),
        LoadError::NoMultibootHeader
    );
}

#[test]
fn e820_map_follows_memory() {
    let small = e820_map(MIB);
    assert!(small.iter().all(|e| e.addr != MIB));
    let big = e820_map(3072 * MIB);
    let ram: u64 = big
        .iter()
        .filter(|e| e.r#type == E820_RAM)
        .map(|e| e.size)
        .sum();
    assert_eq!(ram, 3072 * MIB - 0x6_0400);
}
