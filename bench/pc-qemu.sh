#!/bin/sh
# Runs the PC-platform test kernels under Vigil (soft, and kvm where usable)
# and under qemu-system-x86_64 -accel tcg with the same command line and
# modules, and shows the differences:
#   pc-kernel  the checking kernel: its output must be identical (the
#              script fails otherwise);
#   pc-probe   prints raw facts: lines that depend on the firmware QEMU runs
#              before the kernel (SeaBIOS's memory map and mem_upper) and
#              fw_cfg's DMA bit differ; docs/compatibility.md explains them.
set -eu
die() { echo "pc-qemu: $*" >&2; exit 1; }
cd "$(dirname "$0")/.."
command -v qemu-system-x86_64 >/dev/null 2>&1 || {
    echo "pc-qemu: installing qemu-system-x86" >&2
    apt-get install -y qemu-system-x86 >/dev/null || die "cannot install qemu-system-x86"
}
cargo build --release -p vigil >/dev/null 2>&1 || die "cargo build failed"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for g in pc-probe pc-kernel; do
    image=$(ls -t target/release/build/guests-*/out/$g.elf | head -n 1)
    [ -f "$image" ] || die "$g.elf not built"
    cp "$image" "$work/$g.elf"
done
vigil="$PWD/target/release/vigil"
cd "$work"
printf 'CPUS=1\nMEMORY=128\n' > kconfig.txt
status=0
timeout 120 qemu-system-x86_64 -accel tcg -kernel pc-kernel.elf -append "mode=check" \
    -initrd kconfig.txt -display none -nodefaults -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -device pc-testdev -m 128 -no-reboot \
    > kqemu.out || [ $? -eq 1 ] || die "QEMU failed on pc-kernel"
for accel in soft kvm; do
    "$vigil" run --accel "$accel" pc-kernel.elf --append "mode=check" --module kconfig.txt \
        > "k$accel.out" 2> "k$accel.err" || true
    if cmp -s kqemu.out "k$accel.out"; then
        echo "== pc-kernel: qemu and vigil --accel $accel print the same $(wc -l < kqemu.out) lines"
    elif grep -q "host accelerator internal error" "k$accel.err" &&
        [ "$(head -c "$(wc -c < "k$accel.out")" kqemu.out)" = "$(cat "k$accel.out")" ]; then
        echo "== pc-kernel: vigil --accel $accel stopped early (the host KVM cannot run an" \
            "instruction: $(grep -o 'suberror [0-9]*' "k$accel.err")); its $(wc -l < "k$accel.out") lines agree with qemu"
    else
        echo "== pc-kernel: qemu vs vigil --accel $accel DIFFER"
        diff kqemu.out "k$accel.out" || true
        head -n 3 "k$accel.err"
        status=1
    fi
done
printf 'CPUS=1\nTIMER_HZ=100\n' > config.txt
timeout 60 qemu-system-x86_64 -accel tcg -kernel pc-probe.elf -append "hello world" \
    -initrd "config.txt,config.txt arg1 arg2" -display none -nodefaults -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -device pc-testdev -m 128 -no-reboot \
    > qemu.out || [ $? -eq 1 ] || die "QEMU failed"
for accel in soft kvm; do
    "$vigil" run --accel "$accel" pc-probe.elf --append "hello world" \
        --module config.txt --module "config.txt,arg1 arg2" > "$accel.out" 2> "$accel.err" || true
    echo "== pc-probe: qemu vs vigil --accel $accel (firmware-dependent lines differ)"
    diff qemu.out "$accel.out" || true
done
exit $status
