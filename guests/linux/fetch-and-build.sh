#!/usr/bin/env bash
# Fetches Debian bookworm's cloud kernel and busybox-static with apt-get
# download into a cache outside the source tree and builds the initramfs the
# Linux boot test and bench/linux-boot.sh use (initrd.gz), and the one with
# the package's KVM modules and kvm-client.c, built static with the system
# gcc, for the KVM-as-L1 test (initrd-kvm.gz).
#
# Usage: guests/linux/fetch-and-build.sh [CACHE_DIR]
#   CACHE_DIR defaults to $VIGIL_LINUX_CACHE, else ~/.cache/vigil/linux.
# On success prints three lines, "kernel PATH", "initrd PATH" and
# "initrd-kvm PATH", and exits 0.
# Exits 3 with one line on stderr naming the cause when the packages cannot
# be fetched or unpacked (no apt-get, no network, no such package).
set -euo pipefail

KERNEL_PKG=linux-image-6.1.0-50-cloud-amd64
BUSYBOX_PKG=busybox-static
MARKER="VIGIL-LINUX-MARKER: userspace reached"

cache=${1:-${VIGIL_LINUX_CACHE:-$HOME/.cache/vigil/linux}}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
cd "$cache"
# One build at a time: tests run in parallel, each calling this script.
if command -v flock >/dev/null; then
    exec 9>.lock
    flock 9
fi

fail() { echo "fetch-and-build: $*" >&2; exit 3; }

command -v apt-get >/dev/null || fail "apt-get not found: this script needs a Debian system"
command -v dpkg >/dev/null || fail "dpkg not found: this script needs a Debian system"

fetch() { # NAME: download the package unless a .deb of it is already cached
    local name=$1
    ls "$name"_*.deb >/dev/null 2>&1 && return 0
    if ! apt-get download "$name" >/dev/null 2>apt.err; then
        # The package lists may be missing or stale: refresh them once.
        if [ "$(id -u)" = 0 ] && [ ! -e .apt-updated ]; then
            apt-get update -qq >/dev/null 2>&1 && touch .apt-updated
            apt-get download "$name" >/dev/null 2>apt.err && return 0
        fi
        fail "apt-get download $name failed: $(tail -n1 apt.err)"
    fi
}
fetch "$KERNEL_PKG"
fetch "$BUSYBOX_PKG"

if ! command -v cpio >/dev/null; then
    [ "$(id -u)" = 0 ] || fail "cpio not found; install it (apt-get install cpio)"
    apt-get install -y -qq cpio >/dev/null 2>&1 || fail "apt-get install cpio failed"
fi

command -v gcc >/dev/null || fail "gcc not found; install it (apt-get install gcc libc6-dev)"

stamp="$(ls "$KERNEL_PKG"_*.deb "$BUSYBOX_PKG"_*.deb | tr '\n' ' ')$(cat "$here/init.sh" "$here/init-kvm.sh" "$here/kvm-client.c" | sha256sum | cut -c1-16)"
report() {
    echo "kernel $cache/vmlinuz"
    echo "initrd $cache/initrd.gz"
    echo "initrd-kvm $cache/initrd-kvm.gz"
}
if [ -s initrd.gz ] && [ -s initrd-kvm.gz ] && [ -s vmlinuz ] && [ "$(cat stamp 2>/dev/null)" = "$stamp" ]; then
    report
    exit 0
fi

rm -rf pkg root
mkdir -p pkg root
dpkg -x "$KERNEL_PKG"_*.deb pkg || fail "dpkg -x of $KERNEL_PKG failed"
dpkg -x "$BUSYBOX_PKG"_*.deb pkg || fail "dpkg -x of $BUSYBOX_PKG failed"
cp pkg/boot/vmlinuz-* vmlinuz.tmp && mv vmlinuz.tmp vmlinuz

mkdir -p root/bin root/sbin root/proc root/sys root/dev root/tmp
cp pkg/bin/busybox root/bin/busybox
for applet in sh mount echo awk sha256sum gzip gunzip date dmesg grep poweroff cat printf; do
    ln -s busybox "root/bin/$applet"
done
sed "s/@MARKER@/$MARKER/" "$here/init.sh" > root/init
chmod 755 root/init
pack() { # DIR OUT: a newc cpio of DIR, gzipped, into OUT
    (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$2.tmp"
    mv "$2.tmp" "$2"
}
pack root initrd.gz

# The KVM initramfs: the same busybox, the KVM modules of the same kernel
# package, and the KVM client.
for applet in ls insmod; do
    ln -sf busybox "root/bin/$applet"
done
mkdir -p root/lib/modules
for ko in arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-intel.ko virt/lib/irqbypass.ko; do
    cp pkg/lib/modules/*/kernel/"$ko" root/lib/modules/ || fail "$KERNEL_PKG has no $ko"
done
gcc -static -O2 -o root/bin/kvm-client "$here/kvm-client.c" 2>gcc.err ||
    fail "building kvm-client.c failed: $(head -n1 gcc.err)"
sed "s/@MARKER@/$MARKER/" "$here/init-kvm.sh" > root/init
chmod 755 root/init
pack root initrd-kvm.gz

rm -rf pkg root
echo "$stamp" > stamp
report
