#!/usr/bin/env bash
# Boots Debian's 6.1 cloud kernel with the test initramfs on Vigil's soft
# CPU (paced virtual time, the default, and exact; each interpreted and
# with the translating tier, --jit on) and on QEMU TCG, in one run, and prints the host time each took to reach the initramfs marker and
# to power off, the ratios soft / QEMU, the instructions the soft CPU
# retired, and the host's load (the machine should be otherwise idle).
#
# Usage: bench/linux-boot.sh
# Needs the packages guests/linux/fetch-and-build.sh fetches; installs
# qemu-system-x86 with apt-get when qemu-system-x86_64 is missing (as root).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

paths=$("$root/guests/linux/fetch-and-build.sh")
kernel=$(echo "$paths" | sed -n 's/^kernel //p')
initrd=$(echo "$paths" | sed -n 's/^initrd //p')
marker="VIGIL-LINUX-MARKER: userspace reached"
append="console=ttyS0 panic=-1"

if ! command -v qemu-system-x86_64 >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "linux-boot: qemu-system-x86_64 missing; apt-get install qemu-system-x86" >&2; exit 2; }
    apt-get install -y -qq qemu-system-x86 >/dev/null
fi
(cd "$root" && cargo build --release -q -p vigil)
vigil="$root/target/release/vigil"

# time_boot NAME CMD...: runs CMD, timestamps each output line; prints
# "NAME marker_s poweroff_s status".
time_boot() {
    local name=$1; shift
    python3 - "$name" "$marker" "$@" <<'PY'
import subprocess, sys, time
name, marker, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
start = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
mark = None
log = open(f"/tmp/linux-boot-{name}.log", "wb")
for line in p.stdout:
    log.write(line)
    if mark is None and marker.encode() in line:
        mark = time.monotonic() - start
status = p.wait()
end = time.monotonic() - start
print(f"{name} {mark if mark is not None else float('nan'):.3f} {end:.3f} {status}")
PY
}

soft=$(time_boot soft "$vigil" run --timeout 600s --stats --initrd "$initrd" --append "$append" "$kernel")
exact=$(time_boot soft-exact "$vigil" run --virtual-time exact --timeout 600s --stats --initrd "$initrd" --append "$append" "$kernel")
jit=$(time_boot soft-jit "$vigil" run --jit on --timeout 600s --stats --initrd "$initrd" --append "$append" "$kernel")
exact_jit=$(time_boot soft-exact-jit "$vigil" run --jit on --virtual-time exact --timeout 600s --stats --initrd "$initrd" --append "$append" "$kernel")
qemu=$(time_boot qemu qemu-system-x86_64 -accel tcg -m 128 -display none -nodefaults \
    -serial stdio -no-reboot -kernel "$kernel" -initrd "$initrd" -append "$append")

echo "engine  marker_s  poweroff_s  status   (logs: /tmp/linux-boot-{soft,soft-exact,soft-jit,soft-exact-jit,qemu}.log)"
echo "$soft"
echo "$exact"
echo "$jit"
echo "$exact_jit"
echo "$qemu"
python3 - "$soft" "$exact" "$jit" "$exact_jit" "$qemu" <<'PY'
import math, sys
q = sys.argv[-1].split()
def ratio(a, b):
    a, b = float(a), float(b)
    return "n/a" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.1f}x"
for arg in sys.argv[1:-1]:
    s = arg.split()
    print(f"ratio {s[0]}/qemu: to marker {ratio(s[1], q[1])}, to power-off {ratio(s[2], q[2])}")
PY
grep -H "stats: instructions retired" /tmp/linux-boot-soft.log /tmp/linux-boot-soft-exact.log \
    /tmp/linux-boot-soft-jit.log /tmp/linux-boot-soft-exact-jit.log | sed 's|^/tmp/linux-boot-||; s|\.log:stats: |: |'
uptime
