#!/bin/sh
# run-qemu.sh - build the guests if needed and run one under QEMU.
#
#   guests/run-qemu.sh <guest> [extra qemu arguments...]
#   guests/run-qemu.sh --list
#
# Serial output goes to stdout. The exit status is QEMU's: a guest that
# calls exit(code) ends QEMU with status (code << 1) | 1, so 1 means the guest
# exited 0 ("all checks passed") and 3 means exit(1).
#
# Environment: QEMU (default qemu-system-x86_64), QEMU_ACCEL (default tcg;
# "kvm" runs on the host's KVM), CARGO_TARGET_DIR (as for cargo).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
usage="usage: $0 <guest> [qemu args...] | --list"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
name=$1
shift

# Build (a no-op when fresh; errors are shown here), then ask cargo for the
# build script's OUT_DIR.
(cd "$here" && cargo build -q -p guests)
out=$(cd "$here" && cargo build -q -p guests --message-format=json |
	sed -n 's/.*"reason":"build-script-executed","package_id":"[^"]*\/guests#[^"]*".*"out_dir":"\([^"]*\)".*/\1/p' |
	tail -n 1)
[ -n "$out" ] || { echo "run-qemu.sh: cannot find the guests' OUT_DIR" >&2; exit 2; }

if [ "$name" = "--list" ]; then
	for f in "$out"/*.elf; do basename "$f" .elf; done
	exit 0
fi
image=$out/$name.elf
[ -f "$image" ] || { echo "run-qemu.sh: no guest '$name' (try --list)" >&2; exit 2; }

# -no-reboot: a triple fault ends QEMU instead of rebooting into the guest again.
exec "${QEMU:-qemu-system-x86_64}" -accel "${QEMU_ACCEL:-tcg}" -kernel "$image" \
	-display none -nodefaults -serial stdio \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 128 -no-reboot "$@"
