//! Runs the register ALU loop of `bench/guest/alu.S` on the bare-machine
//! harness and prints guest MIPS: a quick look at interpreter speed without
//! building the guests (the comparison with other engines is `bench/speed.sh`).

use softcpu::harness::{machine, run, Mode};
use std::time::Instant;

fn main() {
    // add ebx,eax... the 12-instruction body of bench/guest/alu.S, looping forever.
    let body: [u8; 26] = [
        0x01, 0xD8, 0x31, 0xC2, 0xC1, 0xE3, 0x03, 0x29, 0xD3, 0x46, 0x01, 0xF7, 0x31, 0xF8, 0xD1,
        0xE2, 0x39, 0xC7, 0x2D, 0x47, 0x86, 0xC8, 0x61, 0x49, 0x75, 0xE6,
    ];
    let cycles: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000_000);
    for (name, mode) in [("32-bit", Mode::Protected32), ("64-bit", Mode::Long64)] {
        let mut cpu = machine(mode, &body);
        let start = Instant::now();
        let out = run(&mut cpu, cycles);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {} instructions in {secs:.3} s = {:.1} MIPS",
            cpu.instructions_retired(),
            cpu.instructions_retired() as f64 / secs / 1e6
        );
        assert!(out.budget_exhausted);
    }
}
