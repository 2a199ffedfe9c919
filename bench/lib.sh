# lib.sh - what the bench scripts share; sourced, not run.
#
#   prog=NAME.sh [die_status=N]; . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Defines die and note (messages start with "$prog: "; die exits with
# $die_status, default 1), here (bench/) and root (the repository), and the
# helpers below. The timing helpers read REPEAT and MIN_SECS (set by
# timing_settings).

die() {
	echo "$prog: error: $*" >&2
	exit "${die_status:-1}"
}
note() { echo "$prog: $*" >&2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

isnum() { [[ $1 =~ ^[0-9]+$ ]]; }

# timing_settings REPEAT MIN_SECS: REPEAT, TIMEOUT and MIN_SECS from
# BENCH_REPEAT, BENCH_TIMEOUT and BENCH_MIN_SECS, with these defaults (120 s
# for TIMEOUT); dies unless REPEAT is an integer >= 1 and the others are
# numbers of seconds.
timing_settings() {
	REPEAT=${BENCH_REPEAT:-$1}
	TIMEOUT=${BENCH_TIMEOUT:-120}
	MIN_SECS=${BENCH_MIN_SECS:-$2}
	isnum "$REPEAT" && [ "$REPEAT" -ge 1 ] || die "BENCH_REPEAT must be an integer >= 1, not '$REPEAT'"
	[[ $TIMEOUT =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_TIMEOUT must be a number of seconds, not '$TIMEOUT'"
	[[ $MIN_SECS =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_MIN_SECS must be a number of seconds, not '$MIN_SECS'"
}

# make_tmp NAME: tmp is a new `mktemp -d` directory ${TMPDIR:-/tmp}/NAME.XXXXXX,
# removed when the script exits.
make_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
}

# find_vigil: vigil is $VIGIL, or the binary `cargo build --release -p vigil`
# builds (CARGO_TARGET_DIR honoured; cargo's output in $tmp/cargo.log).
# Dies if there is no executable there.
find_vigil() {
	local tdir
	if [ -n "${VIGIL:-}" ]; then
		vigil=$VIGIL
	else
		command -v cargo >/dev/null || die "cargo not found: install Rust, or set VIGIL to a vigil binary"
		note "building vigil (cargo build --release -p vigil) ..."
		(cd "$root" && cargo build --release -q -p vigil) >"$tmp/cargo.log" 2>&1 ||
			die "cargo build --release -p vigil failed: $(grep -m1 -E '^error' "$tmp/cargo.log" || tail -n 1 "$tmp/cargo.log")"
		tdir=${CARGO_TARGET_DIR:-$root/target}
		case $tdir in /*) ;; *) tdir=$root/$tdir ;; esac
		vigil=$tdir/release/vigil
	fi
	[ -x "$vigil" ] || die "no vigil binary at $vigil"
}

# print_header TITLE: the title, then the date, the machine and the vigil
# binary (with the repository's commit), one line each.
print_header() {
	local cpu_model
	cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
	echo "$1"
	echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "machine:  $(nproc) CPUs, ${cpu_model:-unknown CPU}; load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
	echo "vigil:    $vigil ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
}

# best_of RUN ON_BEST ARGS...: `RUN ARGS...` REPEAT times; each run sets
# run_secs. best_secs is the fastest; `ON_BEST ARGS...` is called after each
# run that is the fastest so far (`:` for nothing).
best_of() {
	local run=$1 on_best=$2 i
	shift 2
	best_secs=
	for ((i = 0; i < REPEAT; i++)); do
		"$run" "$@"
		if [ -z "$best_secs" ] || awk -v a="$run_secs" -v b="$best_secs" 'BEGIN { exit !(a < b) }'; then
			best_secs=$run_secs
			"$on_best" "$@"
		fi
	done
}

# next_iters N FULL ONE FLOOR MAX: how many iterations to time next, when N
# took FULL seconds and 1 took ONE. N itself when the difference is at least
# MIN_SECS (or cannot grow): timed well enough. Otherwise k x N (at most
# MAX), aiming at 2 x MIN_SECS, a difference under FLOOR counted as FLOOR.
next_iters() {
	local n=$1 k m
	k=$(awk -v f="$2" -v o="$3" -v min="$MIN_SECS" -v floor="$4" 'BEGIN {
		net = f - o; if (net >= min) { print 1; exit }
		if (net < floor) net = floor
		k = int(2 * min / net) + 1; print (k < 2 ? 2 : k) }')
	m=$n
	if [ "$k" -gt 1 ]; then
		m=$((n * k))
		[ "$m" -le "$5" ] || m=$5
		[ "$m" -gt "$n" ] || m=$n
	fi
	echo "$m"
}
