#!/bin/sh
# /init of the Linux boot test's initramfs (guests/linux/fetch-and-build.sh
# puts the marker in). Every line it prints is checked by
# crates/vigil/tests/linux.rs.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "@MARKER@"
echo "awk: $(awk 'BEGIN{printf "%.6f\n", 1/3}')"
echo "sha256: $(printf 'vigil' | sha256sum)"
echo "gzip: $(printf 'vigil round trip' | gzip -c | gunzip -c)"
echo "date: $(date -u +%Y)"
# With vigil_input=1 on the kernel command line (the kernel hands unknown
# name=value parameters to init's environment), a line from the console:
# what Vigil's stdin sends through COM1's receiver.
if [ -n "$vigil_input" ]; then
    echo "input-ready"
    read -r line
    echo "input: $line"
fi
echo "warnings-begin"
# Messages at KERN_WARNING or above (raw lines start "<0>" to "<4>"), and
# any oops, BUG, WARNING or call trace whatever its level.
dmesg -r | grep -E '^<[0-4]>|Oops|BUG|WARNING|Call Trace|invalid opcode'
echo "warnings-end"
poweroff -f
