//! Test guests for Vigil: small freestanding kernels written in C and GNU
//! assembly, built by `build.rs` with the system's gcc and binutils, and
//! embedded here so the `vigil` binary can find them by name.
//!
//! Every image is a Multiboot v1 ELF32 file, entered in 32-bit protected
//! mode with paging off, `EAX = 0x2BADB002`, `EBX` = multiboot info, exactly
//! as `qemu-system-x86_64 -kernel` enters it; 64-bit guests switch to long
//! mode themselves. Guests print to COM1 (port 0x3F8) and end the run by
//! writing their exit code to port 0xF4 (QEMU's isa-debug-exit, process
//! status `(code << 1) | 1`). Checking guests print one `PASS <check>: ...`
//! or `FAIL <check>: ...` line per check and a final
//! `summary: N passed, M failed` line, then exit 0 when nothing failed.
//! See `guests/README.md` for the runtime and the ABI.

/// One embedded guest image.
#[derive(Debug)]
pub struct Guest {
    /// Short unique name, e.g. `"hello64"`; also the image's file stem.
    pub name: &'static str,
    /// One-line description, as listed by `vigil guests`.
    pub summary: &'static str,
    /// The Multiboot v1 ELF32 image.
    pub image: &'static [u8],
}

macro_rules! guest {
    ($name:literal, $summary:literal) => {
        Guest {
            name: $name,
            summary: $summary,
            image: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".elf")),
        }
    };
}

static GUESTS: &[Guest] = &[
    guest!(
        "hello32",
        "32-bit protected mode: greeting and an FNV-1a checksum, exit 0"
    ),
    guest!(
        "hello64",
        "64-bit long mode: greeting and the same checksum as hello32, exit 0"
    ),
    guest!(
        "sieve",
        "64-bit compute workload: sieve of Eratosthenes below 2,000,000 (~37M instructions)"
    ),
    guest!(
        "selftest",
        "64-bit conformance checks: ALU and flags, string ops, calls, exceptions via the IDT"
    ),
    guest!(
        "selftest32",
        "32-bit protected-mode conformance checks: ALU and flags, string ops, calls, exceptions"
    ),
];

/// Every guest, in a stable order (the order `vigil guests` lists them).
pub fn all() -> &'static [Guest] {
    GUESTS
}

/// The guest called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Guest> {
    GUESTS.iter().find(|g| g.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB_MAGIC: u32 = 0x1BAD_B002;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn images_are_elf32() {
        for g in all() {
            assert!(g.image.len() > 64, "{}: image too small", g.name);
            assert_eq!(&g.image[..4], b"\x7fELF", "{}: no ELF magic", g.name);
            assert_eq!(g.image[4], 1, "{}: not ELFCLASS32", g.name);
            assert_eq!(g.image[5], 1, "{}: not little-endian", g.name);
            let machine = u16::from_le_bytes([g.image[18], g.image[19]]);
            assert_eq!(machine, 3, "{}: e_machine is not EM_386", g.name);
        }
    }

    #[test]
    fn images_have_multiboot_header() {
        for g in all() {
            let window = &g.image[..g.image.len().min(8192)];
            let off = (0..window.len().saturating_sub(11))
                .step_by(4)
                .find(|&off| u32_at(window, off) == MB_MAGIC)
                .unwrap_or_else(|| panic!("{}: no multiboot header in the first 8 KiB", g.name));
            let flags = u32_at(window, off + 4);
            let checksum = u32_at(window, off + 8);
            assert_eq!(
                MB_MAGIC.wrapping_add(flags).wrapping_add(checksum),
                0,
                "{}: bad multiboot checksum",
                g.name
            );
            assert_eq!(
                flags & 0x0001_0000,
                0,
                "{}: unexpected a.out kludge",
                g.name
            );
        }
    }

    #[test]
    fn names_are_unique_and_findable() {
        let mut names: Vec<&str> = all().iter().map(|g| g.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all().len(), "duplicate guest names");
        for g in all() {
            assert!(std::ptr::eq(find(g.name).unwrap(), g));
            assert!(!g.summary.is_empty() && !g.summary.contains('\n'));
        }
        assert!(find("no-such-guest").is_none());
    }
}
