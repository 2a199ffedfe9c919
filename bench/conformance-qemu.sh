#!/usr/bin/env bash
# conformance-qemu.sh - run the conformance guests under QEMU TCG and under
# Vigil's soft CPU, compare their outputs check by check, print a verdict
# per guest.
#
#   bench/conformance-qemu.sh [--kvm] [GUEST...]
#
# GUEST defaults to every conformance-* image the build produces. Both
# engines run the same image file: the one embedded in target/release/vigil
# (built with `cargo build --release -p vigil` first; a no-op when fresh).
#
# Every check prints one line, `PASS name: detail` or `FAIL name: detail`,
# and the detail is deterministic, so the two outputs must be identical
# check for check. A check whose QEMU line differs from the soft CPU's is
# accepted only when guests/conformance-differences.txt lists it with
# oracle `qemu` (a place where QEMU TCG departs from the SDM/APM and from
# real silicon) and the soft CPU PASSes it; a listed check that no longer
# differs is reported as stale, as crates/vigil/tests/conformance.rs does
# for KVM.
#
# --kvm also runs every guest on the host's KVM (`vigil run --accel kvm`)
# and compares it with the soft CPU the same way, using the `kvm` entries
# of the list (kvm_pvm, the development hosts' KVM, stops on some
# instructions, so checks after that point are missing there and must be
# listed). Without usable KVM this part is skipped with a note.
#
# Verdicts: `same`, `same except N listed` or `DIFFERENT`, with the
# differing lines. Exit status: 0 when every guest is `same` or `same
# except N listed`, 1 when any differs (or a listed entry is stale), 2 on
# usage or tool errors.
#
# Environment (all optional):
#   QEMU                  QEMU command (default qemu-system-x86_64)
#   VIGIL                 vigil binary (default: the one cargo builds)
#   CONFORMANCE_TIMEOUT   seconds per engine run (default 120)
#   CONFORMANCE_DIFFERENCES  the list of accepted differences (default
#                         guests/conformance-differences.txt)
#   CONFORMANCE_KEEP      a directory to keep the raw outputs in
#                         (<guest>.qemu, <guest>.soft, <guest>.kvm)
#   CARGO_TARGET_DIR      as for cargo

set -euo pipefail

prog=conformance-qemu.sh
die_status=2
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${CONFORMANCE_TIMEOUT:-120}
DIFFS=${CONFORMANCE_DIFFERENCES:-$root/guests/conformance-differences.txt}

use_kvm=0
guests=()
for a in "$@"; do
	case $a in
	--kvm) use_kvm=1 ;;
	-h | --help)
		sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) die "unknown option $a (usage: $prog [--kvm] [GUEST...])" ;;
	*) guests+=("$a") ;;
	esac
done

command -v python3 >/dev/null || die "python3 is needed (Debian package python3)"
command -v "$QEMU" >/dev/null || die "$QEMU not found (Debian package qemu-system-x86)"
command -v timeout >/dev/null || die "timeout not found (coreutils)"

# Build vigil (and with it the guest images) and find both: the vigil
# executable and the guests' OUT_DIR, from cargo's JSON messages.
note "building: cargo build --release -p vigil"
json=$(cd "$root" && cargo build --release -p vigil --message-format=json) ||
	die "cargo build failed (run it by hand to see why)"
read -r out_dir vigil_exe < <(printf '%s\n' "$json" | python3 -c '
import json, sys
out = exe = ""
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "build-script-executed" and "/guests#" in m.get("package_id", "") or \
       m.get("reason") == "build-script-executed" and m.get("package_id", "").startswith("guests "):
        out = m.get("out_dir", out)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and \
       m.get("target", {}).get("name") == "vigil":
        exe = m["executable"]
print(out or "-", exe or "-")
')
[ "$out_dir" != "-" ] && [ -d "$out_dir" ] || die "cannot find the guests' OUT_DIR in cargo's output"
VIGIL=${VIGIL:-$vigil_exe}
[ -x "$VIGIL" ] || die "no vigil binary (set VIGIL)"

if [ ${#guests[@]} -eq 0 ]; then
	for f in "$out_dir"/conformance-*.elf; do
		[ -e "$f" ] && guests+=("$(basename "$f" .elf)")
	done
fi
[ ${#guests[@]} -gt 0 ] || die "no conformance-* images in $out_dir"
[ -f "$DIFFS" ] || {
	note "no $DIFFS: every difference counts"
	DIFFS=/dev/null
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
keep=${CONFORMANCE_KEEP:-}
[ -z "$keep" ] || mkdir -p "$keep"

# run ENGINE GUEST: the guest's serial output in $work/GUEST.ENGINE, the
# process status in $work/GUEST.ENGINE.status. The command runs in a
# subshell that records the status itself, so that the shell's report of an
# engine killed by a signal ("Aborted") goes to the output file, not here.
run() {
	local engine=$1 g=$2 image=$out_dir/$2.elf st=$work/$2.$1.status
	case $engine in
	qemu)
		(
			s=0
			timeout "$TIMEOUT" "$QEMU" -accel tcg -kernel "$image" -display none \
				-nodefaults -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
				-m 128 -no-reboot || s=$?
			echo "$s" >"$st"
		) >"$work/$g.qemu" 2>&1 </dev/null
		;;
	soft | kvm)
		(
			s=0
			timeout "$TIMEOUT" "$VIGIL" run --accel "$engine" "$image" || s=$?
			echo "$s" >"$st"
		) >"$work/$g.$engine" 2>&1 </dev/null
		;;
	esac
	[ -z "$keep" ] || cp "$work/$g.$engine" "$keep/"
}

# compare ORACLE GUEST: print the verdict line (and the differing checks);
# returns 1 when the outputs differ beyond the listed differences.
compare() {
	python3 - "$1" "$2" "$work" "$DIFFS" <<'EOF'
import sys
oracle, guest, work, diffs = sys.argv[1:5]

def checks(path):
    out = {}
    for line in open(path, errors="replace").read().splitlines():
        if line.startswith(("PASS ", "FAIL ")):
            name = line[5:].split(":", 1)[0].strip()
            out.setdefault(name, line)
    return out

def status(path):
    return open(path).read().strip()

listed = set()
for line in open(diffs):
    if not line.strip() or line.startswith("#"):
        continue
    f = [x.strip() for x in line.split("|", 3)]
    if len(f) == 4 and f[0] == guest and f[2] == oracle:
        listed.add(f[1])

ref = checks(f"{work}/{guest}.{oracle}")
soft = checks(f"{work}/{guest}.soft")
order = list(soft) + [n for n in ref if n not in soft]
differ, accepted, bad_listed = [], [], []
shared = []
for name in order:
    a, b = ref.get(name), soft.get(name)
    if a == b:
        # Listed, yet the same FAIL line: the soft CPU repeats the oracle's
        # deviation instead of giving the architectural answer.
        if name in listed and b is not None and b.startswith("FAIL "):
            shared.append((name, a, b))
        continue
    # A listed difference is accepted when the soft CPU gives the
    # architectural answer (PASS) or has no such line (one printed only by
    # the oracle, e.g. its unexpected-exception line).
    if name in listed and (b is None or b.startswith("PASS ")):
        accepted.append(name)
    elif name in listed:
        bad_listed.append((name, a, b))
    else:
        differ.append((name, a, b))
stale = sorted(n for n in listed
               if ref.get(n) == soft.get(n) and not (soft.get(n) or "").startswith("FAIL "))

label = f"{guest} [{oracle} vs soft]"
n = len(soft)
note = f"{n} checks; exit {oracle} {status(f'{work}/{guest}.{oracle}.status')}, " \
       f"soft {status(f'{work}/{guest}.soft.status')}"
if not differ and not bad_listed and not stale and not shared:
    if accepted:
        print(f"{label:44} same except {len(accepted)} listed ({note})")
        for name in accepted:
            print(f"      listed: {name}")
    else:
        print(f"{label:44} same ({note})")
    sys.exit(0)
print(f"{label:44} DIFFERENT: {len(differ) + len(bad_listed) + len(shared)} checks, "
      f"{len(stale)} stale list entries ({note})")
for name, a, b in differ + bad_listed + shared:
    extra = ""
    if (name, a, b) in bad_listed:
        extra = " (listed, but the soft CPU does not PASS it)"
    elif (name, a, b) in shared:
        extra = f" (listed as a {oracle} deviation, and the soft CPU FAILs it the same way)"
    print(f"    {name}{extra}")
    print(f"      {oracle + ':':5} {a or '(missing)'}")
    print(f"      soft: {b or '(missing)'}")
for name in stale:
    print(f"    {name}: listed as differing from {oracle}, but the outputs agree")
if not ref:
    tail = open(f"{work}/{guest}.{oracle}", errors="replace").read().splitlines()[-3:]
    for line in tail:
        print(f"      {oracle} said: {line}")
sys.exit(1)
EOF
}

kvm_ok=$use_kvm
if [ "$use_kvm" = 1 ] && [ ! -w /dev/kvm ]; then
	note "KVM part skipped: /dev/kvm is missing or not writable"
	kvm_ok=0
fi

fail=0
for g in "${guests[@]}"; do
	[ -f "$out_dir/$g.elf" ] || die "no guest image $g (have: $(cd "$out_dir" && ls conformance-*.elf | sed 's/\.elf$//' | tr '\n' ' '))"
	run soft "$g"
	run qemu "$g"
	compare qemu "$g" || fail=1
	if [ "$kvm_ok" = 1 ]; then
		run kvm "$g"
		if [ "$(cat "$work/$g.kvm.status")" = 10 ]; then
			note "KVM part skipped: $(tail -n 1 "$work/$g.kvm")"
			kvm_ok=0
		else
			compare kvm "$g" || fail=1
		fi
	fi
done
exit $fail
