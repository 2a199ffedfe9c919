#!/usr/bin/env bash
# Linux's KVM as L1 on Vigil's soft CPU, end to end (docs/notify.md,
# "Linux's KVM as L1"): boots Debian's kernel with the KVM initramfs, loads
# kvm and kvm-intel, runs kvm-client's L2 payloads, and injects a stall
# while L2 runs — once with a valid context, once with the context-invalid
# flag aimed at L2. For each run it prints the client's lines, the L0
# notify events (with their level) and the host time from `vigil run` to
# the client's last line; it exits 1 when a run misses what it must show.
#
# Usage: bench/kvm-l1.sh [STALL]   (STALL defaults to 20ms)
# Needs the packages guests/linux/fetch-and-build.sh fetches.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
stall=${1:-20ms}

paths=$("$root/guests/linux/fetch-and-build.sh")
kernel=$(echo "$paths" | sed -n 's/^kernel //p')
initrd=$(echo "$paths" | sed -n 's/^initrd-kvm //p')
(cd "$root" && cargo build --release -q -p vigil)
vigil="$root/target/release/vigil"
events=$(mktemp)
trap 'rm -f "$events"' EXIT

# scenario NAME OPTIONS...: runs vigil, prints what it saw; status 1 when
# the client did not finish with 0 failures or no notify exit reached it.
scenario() {
    local name=$1; shift
    echo "== $name: vigil run --virtual-time exact --inject-stall $stall,level=l2 $*"
    python3 - "$name" "$events" "$vigil" run --virtual-time exact --stats --events "$events" \
        --inject-stall "$stall,level=l2" "$@" --initrd "$initrd" \
        --append "console=ttyS0 panic=-1" "$kernel" <<'PY'
import json, subprocess, sys, time
name, events, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
start = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
last = None
lines = []
for raw in p.stdout:
    line = raw.decode(errors="replace").rstrip()
    if line.startswith("kvm-client:") or line.startswith(("insmod", "kvm_intel.", "dev-kvm")):
        print("  " + line)
        lines.append(line)
        if line.startswith("kvm-client: done"):
            last = time.monotonic() - start
err = p.stderr.read().decode(errors="replace")
status = p.wait()
end = time.monotonic() - start
for l in err.splitlines():
    if "notify" in l or "nested vm exits" in l or "virtual time" in l:
        print("  " + l)
for l in open(events):
    e = json.loads(l)
    if e.get("event") == "notify-exit":
        print(f"  L0 event: {e['level']} exit {e['exit_reason']} qualification {e['qualification']:#x} "
              f"at {e['virtual_ns'] / 1e6:.3f} ms virtual: {e['detail']}")
print(f"  {name}: status {status}; client's last line after {last:.1f} s host time; run {end:.1f} s"
      if last is not None else f"  {name}: status {status}; the client never finished; run {end:.1f} s")
ok = status == 0 and "kvm-client: done, 0 failures" in lines and any("KVM_EXIT_NOTIFY" in l for l in lines)
sys.exit(0 if ok else 1)
PY
}

fail=0
scenario valid || fail=1
scenario invalid --inject-notify-invalid=l2 || fail=1
exit $fail
