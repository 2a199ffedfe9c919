#!/usr/bin/env bash
# nested.sh - what nested VMX costs on Vigil's soft accelerator.
#
#   bench/nested.sh            (from the repository root, or from anywhere)
#
# Runs the l1hv guest in its bench mode (`--append "mode=bench what=W
# loops=N"`, guests/l1hv/bench.c) on the soft accelerator, for
#
#   cpuid   L1 executes N CPUIDs: each a VM exit to L0 and back (one level)
#   spin    L2 runs N iterations of a 5-instruction loop without an exit
#   vmcall  L2 runs the same loop with a VMCALL in each iteration; L1 sets
#           GUEST_RIP past it and VMRESUMEs: L2 -> L0 -> L1 -> L0 -> L2
#
# each with loops=1 and loops=N. As in speed.sh, the loops=1 run's wall time
# (vigil's start, L1's setup, output, exit) is subtracted from the loops=N
# run's, leaving N-1 iterations; a loop too fast to time at N (the spin
# loop) is timed again at k x N. Per iteration, the vmcall loop's net time
# minus the spin loop's is one nested round trip; the cpuid loop's is one
# one-level round trip. The VM exits L0 took come from `vigil run --stats`,
# the loops=1 run's subtracted as well. See bench/README.md.
#
# Environment (all optional):
#   BENCH_LOOPS    N, the iterations of the timed runs (default 200000)
#   BENCH_REPEAT   runs of each (what, loops); the fastest counts (default 3)
#   BENCH_MIN_SECS a what whose loops=N run takes less than this many seconds
#                  beyond its loops=1 run is timed again at k x N, aiming at
#                  twice this (default 0.25; up to 3 rounds)
#   BENCH_TIMEOUT  seconds before one run is killed (default 120)
#   VIGIL          a vigil binary to use instead of building one with
#                  `cargo build --release -p vigil` (CARGO_TARGET_DIR is
#                  honoured)
#
# Every run must end with status 1 (the guest's exit(0)) and print its
# result line `bench: what=W loops=N done`; otherwise the script stops with
# one `nested.sh: error:` line and status 1. Nothing is written outside a
# `mktemp -d` directory (removed at exit) and cargo's target directory.

set -euo pipefail

prog=nested.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOOPS=${BENCH_LOOPS:-200000}
WHATS="cpuid spin vmcall"

isnum "$LOOPS" && [ "$LOOPS" -ge 2 ] && [ "$LOOPS" -le 10000000000 ] ||
	die "BENCH_LOOPS must be an integer from 2 to 10000000000, not '$LOOPS'"
timing_settings 3 0.25 # BENCH_REPEAT, BENCH_MIN_SECS defaults
command -v python3 >/dev/null || die "python3 not found (bench/run.py times the runs)"

make_tmp vigil-nested
find_vigil

# run_one WHAT LOOPS: one run; sets run_secs and run_log (its stderr, with
# the --stats lines). Dies on a timeout, a status other than 1 or a missing
# result line.
run_one() {
	local what=$1 loops=$2 o=$tmp/run res secs status want
	rm -f "$o".*
	res=$(python3 "$here/run.py" --timeout "$TIMEOUT" --out "$o.out" --log "$o.err" -- \
		"$vigil" run --guest l1hv --stats --append "mode=bench what=$what loops=$loops")
	read -r secs status <<<"$res"
	[ "$status" != timeout ] ||
		die "what=$what loops=$loops timed out after ${TIMEOUT}s (raise BENCH_TIMEOUT or lower BENCH_LOOPS)"
	want="bench: what=$what loops=$loops done"
	grep -qxF "$want" "$o.out" ||
		die "what=$what loops=$loops printed no '$want' (status $status): $(grep -m1 '^bench: ' "$o.out" ||
			grep -m1 -E '^vigil: ' "$o.err" || tail -n 1 "$o.out" | grep . || echo 'no output')"
	[ "$status" = 1 ] ||
		die "what=$what loops=$loops ended with status $status, not 1 (guest exit 0): $(grep -m1 -E '^vigil: ' "$o.err" || echo 'see vigil run --help')"
	run_secs=$secs
	run_log=$o.err
}

# keep_stats WHAT LOOPS: the last run's stderr as $tmp/WHAT.LOOPS.stats.
keep_stats() { cp "$run_log" "$tmp/$1.$2.stats"; }

# best_run WHAT LOOPS: the fastest of REPEAT runs; sets best_secs and keeps
# that run's stderr as $tmp/WHAT.LOOPS.stats.
best_run() { best_of run_one keep_stats "$1" "$2"; }

# exits FILE: "reason count" lines for L0's VM exits, then "to-L1 count".
exits() {
	awk '/^stats: vm exit / { print $4, $5 }
	     /^stats: nested vm exits to L1 / { l1 = $NF }
	     END { print "to-L1", l1 + 0 }' "$1"
}

print_header "Vigil nested VMX cost on the soft accelerator (l1hv mode=bench)"
echo "settings: BENCH_LOOPS=$LOOPS BENCH_REPEAT=$REPEAT BENCH_MIN_SECS=$MIN_SECS BENCH_TIMEOUT=$TIMEOUT"

rows=()
for w in $WHATS; do
	note "what=$w: loops=1 and loops=$LOOPS, $REPEAT run(s) each ..."
	best_run "$w" 1
	one=$best_secs
	n=$LOOPS
	best_run "$w" "$n"
	full=$best_secs
	# Too short to time well (the spin loop has no exits): again with more
	# iterations, aiming at 2 x BENCH_MIN_SECS; at most 3 rounds.
	for round in 1 2 3; do
		m=$(next_iters "$n" "$full" "$one" 0.01 10000000000)
		[ "$m" -gt "$n" ] || break
		note "what=$w: $n iterations took under ${MIN_SECS}s; timing $m"
		n=$m
		best_run "$w" "$n"
		full=$best_secs
	done
	# L0's exits per iteration: (loops=n run - loops=1 run) / (n - 1), by reason.
	per=$( (exits "$tmp/$w.1.stats" | sed 's/^/one /'; exits "$tmp/$w.$n.stats" | sed 's/^/full /') |
		awk -v d=$((n - 1)) '
			{ if ($1 == "one") a[$2] = $3; else b[$2] = $3; seen[$2] = 1 }
			END {
				for (r in seen) {
					x = (b[r] - a[r]) / d
					if (r == "to-L1") l1 = x; else { total += x; if (x >= 0.01 || x <= -0.01) parts = parts sprintf(" %s=%.3f", r, x) }
				}
				printf "%.3f %.3f%s\n", total, l1, parts
			}')
	rows+=("$w $n $one $full $per")
done

echo
printf '%s\n' "${rows[@]}" | awk '
	{ w = $1; n[w] = $2; one[w] = $3; full[w] = $4; net[w] = $4 - $3; per[w] = net[w] / ($2 - 1) * 1e6
	  l0[w] = $5; l1[w] = $6; parts[w] = ""; for (i = 7; i <= NF; i++) parts[w] = parts[w] " " $i; order[NR] = w }
	END {
		printf "   %-7s %11s %9s %9s %9s %11s %13s %9s  %s\n", "what", "loops", "run s", "boot s", "net s",
			"us/iter", "L0 exits/iter", "to L1", "L0 exits/iter by reason"
		for (i = 1; i <= NR; i++) {
			w = order[i]
			printf "   %-7s %11d %9.3f %9.3f %9.3f %11.4f %13.3f %9.3f %s\n", w, n[w], full[w], one[w], net[w],
				per[w], l0[w], l1[w], parts[w] == "" ? " -" : parts[w]
		}
		cpuid = per["cpuid"]
		nested = per["vmcall"] - per["spin"]
		print ""
		if (cpuid <= 0 || nested <= 0) {
			print "   n/a: a loops=N run was not slower than its baseline; raise BENCH_LOOPS"
			exit 1
		}
		printf "   one-level round trip (L1 CPUID -> L0 -> L1):              %8.3f us, %.3f L0 exits\n", cpuid, l0["cpuid"]
		printf "   nested round trip (L2 VMCALL -> L0 -> L1 -> L0 -> L2):    %8.3f us, %.3f L0 exits (%.3f to L1); spin loop subtracted\n",
			nested, l0["vmcall"] - l0["spin"], l1["vmcall"] - l1["spin"]
		printf "   nested / one-level: %.2f", nested / cpuid
		if (l0["cpuid"] > 0 && l0["vmcall"] - l0["spin"] > 0)
			printf "; per L0 exit %.3f us against %.3f us (%.2f)", nested / (l0["vmcall"] - l0["spin"]), cpuid / l0["cpuid"],
				(nested / (l0["vmcall"] - l0["spin"])) / (cpuid / l0["cpuid"])
		printf "\n"
	}' || exit 1
