#!/bin/sh
# Runs the pc-probe test kernel under Vigil (soft, and kvm where usable) and
# under qemu-system-x86_64 -accel tcg with the same command line and modules,
# and shows the differences. Lines that depend on the firmware QEMU runs
# before the kernel (SeaBIOS's memory map and mem_upper) and fw_cfg's DMA
# bit are expected to differ; docs/compatibility.md explains them.
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
image=$(ls -t target/release/build/guests-*/out/pc-probe.elf | head -n 1)
[ -f "$image" ] || die "pc-probe.elf not built"
cp "$image" "$work/pc-probe.elf"
cd "$work"
printf 'CPUS=1\nTIMER_HZ=100\n' > config.txt
timeout 60 qemu-system-x86_64 -accel tcg -kernel pc-probe.elf -append "hello world" \
    -initrd "config.txt,config.txt arg1 arg2" -display none -nodefaults -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -device pc-testdev -m 128 -no-reboot \
    > qemu.out || [ $? -eq 1 ] || die "QEMU failed"
for accel in soft kvm; do
    "$OLDPWD/target/release/vigil" run --accel "$accel" pc-probe.elf --append "hello world" \
        --module config.txt --module "config.txt,arg1 arg2" > "$accel.out" 2> "$accel.err" || true
    echo "== qemu vs vigil --accel $accel"
    diff qemu.out "$accel.out" || true
done
