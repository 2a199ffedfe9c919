#!/bin/sh
# /init of the KVM-as-L1 initramfs (guests/linux/fetch-and-build.sh builds
# it as initrd-kvm.gz): Linux's own KVM modules from the same Debian package
# load in the Linux guest, and kvm-client runs L2 payloads under them
# (docs/notify.md, "Linux's KVM as L1"). Every line it prints is checked by
# crates/vigil/tests/kvm_l1.rs.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "@MARKER@"
if grep -q -w vmx /proc/cpuinfo; then echo "cpu-vmx: yes"; else echo "cpu-vmx: no"; fi
for m in irqbypass kvm kvm-intel; do
    if insmod "/lib/modules/$m.ko"; then echo "insmod $m: ok"; else echo "insmod $m: failed"; fi
done
if [ -c /dev/kvm ]; then echo "dev-kvm: present"; else echo "dev-kvm: missing"; fi
for p in ept unrestricted_guest vpid preemption_timer eptad pml flexpriority; do
    echo "kvm_intel.$p=$(cat /sys/module/kvm_intel/parameters/$p 2>/dev/null)"
done
/bin/kvm-client
echo "kvm-client-status: $?"
echo "warnings-begin"
dmesg -r | grep -E '^<[0-4]>|Oops|BUG|WARNING|Call Trace|invalid opcode'
echo "warnings-end"
poweroff -f
