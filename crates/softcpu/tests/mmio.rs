//! MMIO emulation by the executor (`softcpu::mmio`): the instruction behind
//! an EPT violation runs again with the accesses EPT does not map going to
//! an `MmioSession`, whatever the instruction.

use softcpu::harness::{machine, Mode, CODE, RAM};
use softcpu::{MmioLoad, MmioSession, MmioStep, MmioStore, SoftCpu};
use x86::vmx::{exit_reason, field as f};

/// Runs `code` (64-bit) with `rax` until its first exit, which must be the
/// EPT violation of an operand beyond RAM.
fn stopped_at_mmio(code: &[u8], rax: u64) -> SoftCpu {
    let mut cpu = machine(Mode::Long64, code);
    cpu.vmwrite(f::VMX_PREEMPTION_TIMER_VALUE, 100_000).unwrap();
    let mut g = cpu.gprs();
    g[0] = rax;
    g[7] = RAM + 0x100; // RDI
    g[1] = 3; // RCX
    cpu.set_gprs(&g);
    cpu.vmlaunch().unwrap();
    let reason = cpu.vmread(f::VM_EXIT_REASON).unwrap() as u16;
    assert_eq!(reason, exit_reason::EPT_VIOLATION);
    assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), CODE, "nothing executed");
    cpu
}

fn stores(s: &mut MmioSession) -> Vec<MmioStore> {
    std::iter::from_fn(|| s.take_store()).collect()
}

#[test]
fn an_alu_read_modify_write_loads_then_stores() {
    // add [RAM+0x100], eax
    let mut cpu = stopped_at_mmio(&[0x01, 0x04, 0x25, 0x00, 0x01, 0x40, 0x00], 0x22);
    let mut s = MmioSession::new();
    let load = MmioLoad {
        gpa: RAM + 0x100,
        size: 4,
    };
    assert_eq!(cpu.emulate_mmio(&mut s), MmioStep::NeedsLoad(load));
    assert_eq!(
        cpu.vmread(f::GUEST_RIP).unwrap(),
        CODE,
        "stopped without effect"
    );
    assert!(stores(&mut s).is_empty());
    s.supply(0xFFFF_FFF0);
    assert_eq!(cpu.emulate_mmio(&mut s), MmioStep::Completed);
    let want = MmioStore {
        gpa: RAM + 0x100,
        size: 4,
        value: 0x12,
    };
    assert_eq!(stores(&mut s), [want]);
    assert_eq!(cpu.vmread(f::GUEST_RIP).unwrap(), CODE + 7);
    // The carry out of 0xFFFFFFF0 + 0x22.
    assert_eq!(cpu.vmread(f::GUEST_RFLAGS).unwrap() & 1, 1);
}

#[test]
fn xchg_and_rep_stos_reach_mmio() {
    // xchg [rdi], eax
    let mut cpu = stopped_at_mmio(&[0x87, 0x07], 0x55);
    let mut s = MmioSession::new();
    assert!(matches!(cpu.emulate_mmio(&mut s), MmioStep::NeedsLoad(_)));
    s.supply(0x66);
    assert_eq!(cpu.emulate_mmio(&mut s), MmioStep::Completed);
    assert_eq!(stores(&mut s)[0].value, 0x55);
    assert_eq!(cpu.gprs()[0], 0x66);
    // rep stosd with RCX = 3: three stores, RCX and RDI updated.
    let mut cpu = stopped_at_mmio(&[0xF3, 0xAB], 0xAB);
    let mut s = MmioSession::new();
    assert_eq!(cpu.emulate_mmio(&mut s), MmioStep::Completed);
    let got: Vec<u64> = stores(&mut s).iter().map(|w| w.gpa).collect();
    assert_eq!(got, [RAM + 0x100, RAM + 0x104, RAM + 0x108]);
    assert_eq!(cpu.gprs()[1], 0);
    assert_eq!(cpu.gprs()[7], RAM + 0x10C);
}

#[test]
fn rep_movs_from_mmio_keeps_the_iterations_done() {
    // rep movsd from [rsi] (MMIO) to [rdi] (RAM), RCX = 3.
    let mut cpu = stopped_at_mmio(&[0xF3, 0xA5], 0);
    let mut g = cpu.gprs();
    g[6] = RAM + 0x200;
    g[7] = 0x2000;
    cpu.set_gprs(&g);
    let mut s = MmioSession::new();
    for i in 0..3u64 {
        let step = cpu.emulate_mmio(&mut s);
        assert_eq!(
            step,
            MmioStep::NeedsLoad(MmioLoad {
                gpa: RAM + 0x200 + 4 * i,
                size: 4
            })
        );
        assert_eq!(cpu.gprs()[1], 3 - i, "iterations before stay done");
        s.supply(0x100 + i);
    }
    assert_eq!(cpu.emulate_mmio(&mut s), MmioStep::Completed);
    let mut b = [0u8; 12];
    cpu.memory().read(0x2000, &mut b).unwrap();
    assert_eq!(b, [0, 1, 0, 0, 1, 1, 0, 0, 2, 1, 0, 0]);
}

#[test]
fn an_access_straddling_the_end_of_ram_splits_at_the_page_edge() {
    // mov [RAM-2], eax: two bytes in RAM, two beyond.
    let code = [0x89, 0x04, 0x25, 0xFE, 0xFF, 0x3F, 0x00];
    let mut cpu = stopped_at_mmio(&code, 0x1122_3344);
    let mut s = MmioSession::new();
    assert_eq!(cpu.emulate_mmio(&mut s), MmioStep::Completed);
    let want = MmioStore {
        gpa: RAM,
        size: 2,
        value: 0x1122,
    };
    assert_eq!(stores(&mut s), [want]);
    let mut b = [0u8; 2];
    cpu.memory().read(RAM - 2, &mut b).unwrap();
    assert_eq!(b, [0x44, 0x33]);
    // mov eax, [RAM-2]: the RAM half from memory, the rest from the device.
    let code = [0x8B, 0x04, 0x25, 0xFE, 0xFF, 0x3F, 0x00];
    let mut cpu = stopped_at_mmio(&code, 0);
    cpu.memory_mut().write(RAM - 2, &[0x44, 0x33]).unwrap();
    let mut s = MmioSession::new();
    let load = MmioLoad { gpa: RAM, size: 2 };
    assert_eq!(cpu.emulate_mmio(&mut s), MmioStep::NeedsLoad(load));
    s.supply(0xFFFF);
    assert_eq!(cpu.emulate_mmio(&mut s), MmioStep::Completed);
    assert_eq!(cpu.gprs()[0], 0xFFFF_3344);
}
