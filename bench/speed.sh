#!/usr/bin/env bash
# speed.sh - guest MIPS of Vigil's soft CPU, QEMU TCG and Bochs on one image.
#
#   bench/speed.sh            (from the repository root, or from anywhere)
#
# For each workload (bench/guest/alu.S, bench/guest/mem.S) it builds images
# that differ only in the loop count: 1 iteration and N iterations. Each
# engine runs both; the 1-iteration run's wall time (engine start, guest
# boot, output, exit) is subtracted from the N-iteration run's, leaving the
# time of N-1 iterations. Instructions per iteration come from objdump of
# the image (bench/loopinsns.py), so guest instructions = (N-1) x count.
# An engine too fast to time at N (QEMU) is timed at k x N as well. Every
# engine's result line at N must be the same. See bench/README.md.
#
# Environment (all optional):
#   BENCH_INSNS      guest instructions per timed run (default 300000000);
#                    N = BENCH_INSNS / instructions per iteration
#   BENCH_REPEAT     runs of each image on each engine; the fastest counts
#                    (default 1)
#   BENCH_MIN_SECS   an engine whose N-iteration run takes less than this
#                    many seconds beyond its 1-iteration run (QEMU's JIT) is
#                    timed again on an image with k x N iterations, aiming at
#                    twice this (default 1; up to 3 rounds); its result line
#                    is still checked at N
#   BENCH_TIMEOUT    seconds before one engine run is killed (default 120)
#   BENCH_WORKLOADS  default "alu mem"
#   BENCH_ENGINES    default "softcpu softcpu-jit qemu-tcg bochs"
#   VIGIL            a vigil binary to use instead of building one with
#                    `cargo build --release -p vigil` (CARGO_TARGET_DIR is
#                    honoured)
#   QEMU, BOCHS      the engine commands (default qemu-system-x86_64, bochs)
#   BOCHS_BIOS, BOCHS_VGABIOS  ROM images (default Debian's, under
#                    /usr/share/bochs)
#
# Missing tools are installed with apt-get when possible (Debian packages
# binutils, python3, qemu-system-x86, bochs bochsbios vgabios bochs-term);
# otherwise the script stops with one line naming what is missing.
# Nothing is written outside bench/ except a `mktemp -d` directory (removed
# at exit) and cargo's own target directory.

set -euo pipefail

prog=speed.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

INSNS=${BENCH_INSNS:-300000000}
WORKLOADS=${BENCH_WORKLOADS:-alu mem}
QEMU=${QEMU:-qemu-system-x86_64}
BOCHS=${BOCHS:-bochs}
BOCHS_BIOS=${BOCHS_BIOS:-/usr/share/bochs/BIOS-bochs-latest}
BOCHS_VGABIOS=${BOCHS_VGABIOS:-/usr/share/bochs/VGABIOS-lgpl-latest}
ENGINES=${BENCH_ENGINES:-softcpu softcpu-jit qemu-tcg bochs}

isnum "$INSNS" && [ "$INSNS" -ge 1000 ] || die "BENCH_INSNS must be an integer >= 1000, not '$INSNS'"
timing_settings 1 1 # BENCH_REPEAT, BENCH_MIN_SECS defaults
for w in $WORKLOADS; do
	[ -f "$here/guest/$w.S" ] || die "no workload '$w' (bench/guest/$w.S)"
done

make_tmp vigil-bench

# ---------------------------------------------------------------- tools

pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# install_pkgs WHAT PKG...: install the Debian packages that are missing, or die.
install_pkgs() {
	local what=$1 p missing=()
	shift
	if command -v dpkg-query >/dev/null; then
		for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
	else
		missing=("$@")
	fi
	[ ${#missing[@]} -gt 0 ] || return 0
	command -v apt-get >/dev/null ||
		die "$what is missing and there is no apt-get to install it (Debian packages: ${missing[*]})"
	[ "$(id -u)" -eq 0 ] ||
		die "$what is missing; as root run: apt-get install ${missing[*]}"
	note "installing ${missing[*]} for $what ..."
	local log=$tmp/apt.log
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >"$log" 2>&1; then
		apt-get update -q >>"$log" 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			"${missing[@]}" >>"$log" 2>&1 ||
			die "cannot install ${missing[*]} for $what: $(grep -E '^E:' "$log" | tail -n 1)"
	fi
}

need_cmds() { # WHAT PACKAGES CMD...
	local what=$1 pkgs=$2 c
	shift 2
	for c in "$@"; do
		command -v "$c" >/dev/null || {
			# shellcheck disable=SC2086
			install_pkgs "$what" $pkgs
			break
		}
	done
	for c in "$@"; do
		command -v "$c" >/dev/null || die "$what: command '$c' not found after installing $pkgs"
	done
}

need_cmds "binutils (as, ld, objcopy, objdump, nm)" binutils as ld objcopy objdump nm
need_cmds "python3" python3 python3
need_cmds "QEMU" qemu-system-x86 "$QEMU"

bochs_term_plugin() {
	compgen -G '/usr/lib/*/bochs/plugins/libbx_term_gui.so*' >/dev/null ||
		compgen -G '/usr/lib/bochs/plugins/libbx_term_gui.so*' >/dev/null ||
		compgen -G '/usr/local/lib/bochs/plugins/libbx_term_gui.so*' >/dev/null
}
if ! command -v "$BOCHS" >/dev/null || ! bochs_term_plugin ||
	[ ! -r "$BOCHS_BIOS" ] || [ ! -r "$BOCHS_VGABIOS" ]; then
	install_pkgs "Bochs with the term display" bochs bochsbios vgabios bochs-term
fi
command -v "$BOCHS" >/dev/null || die "Bochs: command '$BOCHS' not found"
bochs_term_plugin || die "Bochs: no term display plugin (libbx_term_gui.so; Debian package bochs-term)"
[ -r "$BOCHS_BIOS" ] || die "Bochs: no BIOS image at $BOCHS_BIOS (Debian package bochsbios)"
[ -r "$BOCHS_VGABIOS" ] || die "Bochs: no VGA BIOS image at $BOCHS_VGABIOS (Debian package vgabios)"

find_vigil

# ---------------------------------------------------------------- images

# build_image WORKLOAD ITERS PREFIX: PREFIX.elf (multiboot), PREFIX.img (floppy)
build_image() {
	local w=$1 iters=$2 p=$3 size sectors entry
	as --32 -I "$here/guest" --defsym ITERS="$iters" -o "$p.o" "$here/guest/$w.S" ||
		die "assembling $w.S failed"
	ld -m elf_i386 -T "$here/guest/guest.ld" -o "$p.elf" "$p.o" || die "linking $w failed"
	objcopy -O binary "$p.elf" "$p.bin"
	size=$(stat -c %s "$p.bin")
	sectors=$(((size + 511) / 512))
	[ "$sectors" -ge 1 ] && [ "$sectors" -le 120 ] || die "$w: raw image of $size bytes does not fit the boot loader"
	entry=$(nm "$p.elf" | awk '$3 == "_start" { print $1 }')
	[ -n "$entry" ] || die "$w: no _start symbol"
	as --32 --defsym SECTORS="$sectors" --defsym ENTRY="0x$entry" \
		-o "$p.boot.o" "$here/guest/boot.S" || die "assembling boot.S failed"
	ld -m elf_i386 -Ttext=0x7c00 --oformat binary -o "$p.boot" "$p.boot.o" || die "linking boot.S failed"
	[ "$(stat -c %s "$p.boot")" -eq 512 ] || die "boot sector is not 512 bytes"
	cat "$p.boot" "$p.bin" >"$p.img"
	truncate -s 1474560 "$p.img"
}

# ---------------------------------------------------------------- engines

# run_engine ENGINE PREFIX TAG: run PREFIX's image once; sets run_secs and
# run_line (the guest's result line). Dies on a timeout or a bad ending.
# The soft CPU runs with exact virtual time: paced time (vigil run's
# default) holds a guest that runs faster than the modelled 2 GHz clock to
# it by sleeping, which would time the clock, not the CPU (QEMU TCG
# without -icount is not held either).
run_engine() {
	local e=$1 p=$2 tag=$3 o=$tmp/$1.$3 res secs status
	rm -f "$o".*
	case $e in
	softcpu)
		res=$(python3 "$here/run.py" --timeout "$TIMEOUT" --out "$o.out" --log "$o.err" -- \
			"$vigil" run --jit off --virtual-time exact "$p.elf")
		;;
	softcpu-jit)
		res=$(python3 "$here/run.py" --timeout "$TIMEOUT" --out "$o.out" --log "$o.err" -- \
			"$vigil" run --jit on --virtual-time exact "$p.elf")
		;;
	qemu-tcg)
		res=$(python3 "$here/run.py" --timeout "$TIMEOUT" --out "$o.out" --log "$o.err" -- \
			"$QEMU" -accel tcg -kernel "$p.elf" -display none -nodefaults -serial stdio \
			-device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 128 -no-reboot)
		;;
	bochs)
		cat >"$o.bochsrc" <<-EOF
			megs: 32
			romimage: file=$BOCHS_BIOS
			vgaromimage: file=$BOCHS_VGABIOS
			floppya: 1_44=$p.img, status=inserted
			boot: floppy
			clock: sync=none, time0=1
			cpu: count=1, reset_on_triple_fault=0
			display_library: term
			mouse: enabled=0
			com1: enabled=1, mode=file, dev=$o.out
			plugin_ctrl: speaker=0, sb16=0, es1370=0, ne2k=0, e1000=0, pcipnic=0, usb_uhci=0, gameport=0, parallel=0
			log: $o.log
			panic: action=fatal
			error: action=report
			info: action=report
			debug: action=ignore
		EOF
		echo c >"$o.rc"
		res=$(python3 "$here/run.py" --pty --timeout "$TIMEOUT" --log "$o.err" -- \
			"$BOCHS" -q -f "$o.bochsrc" -rc "$o.rc")
		;;
	esac
	read -r secs status <<<"$res"
	[ "$status" != timeout ] || die "$e timed out after ${TIMEOUT}s on $(basename "$p") (raise BENCH_TIMEOUT or lower BENCH_INSNS)"
	case $e in
	softcpu | softcpu-jit | qemu-tcg)
		[ "$status" = 1 ] ||
			die "$e ended with status $status on $(basename "$p"), not 1 (guest exit 0): $(tail -n 1 "$o.err" 2>/dev/null)"
		;;
	bochs)
		grep -q 'Shutdown port: shutdown requested' "$o.log" 2>/dev/null ||
			die "bochs did not reach the guest's shutdown on $(basename "$p") (status $status): $(grep -m1 -E 'PANIC|ERROR' "$o.log" 2>/dev/null || echo 'see its log')"
		;;
	esac
	run_line=$(grep -E '^[a-z]+ iters=0x[0-9a-f]{8} result=0x[0-9a-f]{8}$' "$o.out" 2>/dev/null | head -n 1 || true)
	[ -n "$run_line" ] || die "$e printed no result line on $(basename "$p"): $(head -c 200 "$o.out" 2>/dev/null | tr '\n' ' ')"
	run_secs=$secs
}

# run_same ENGINE PREFIX TAG: run_engine, and the result line must be the
# one the runs before it printed (best_line).
run_same() {
	run_engine "$@"
	if [ -n "$best_line" ] && [ "$run_line" != "$best_line" ]; then
		die "$1 printed different results on two runs: '$best_line' and '$run_line'"
	fi
	best_line=$run_line
}

# best_run ENGINE PREFIX TAG: the fastest of REPEAT runs; sets best_secs, best_line.
best_run() {
	best_line=
	best_of run_same : "$@"
}

# ---------------------------------------------------------------- run

print_header "Vigil guest speed: softcpu vs QEMU TCG vs Bochs"
echo "qemu:     $("$QEMU" --version | head -n 1)"
echo "bochs:    $(dpkg-query -W -f='Debian bochs ${Version}' bochs 2>/dev/null || echo "$BOCHS")"
echo "settings: BENCH_INSNS=$INSNS BENCH_REPEAT=$REPEAT BENCH_MIN_SECS=$MIN_SECS BENCH_TIMEOUT=$TIMEOUT"

# timed ENGINE WORKLOAD: sets t_insns, t_full, t_one, t_line for ENGINE on
# the workload's images (built by the caller: 1 and N iterations).
timed() {
	local e=$1 w=$2 iters=$n m round
	best_run "$e" "$tmp/$w.1" one
	t_one=$best_secs
	best_run "$e" "$tmp/$w.n" n
	t_full=$best_secs
	t_line=$best_line
	# Too short to time well (QEMU's JIT runs these loops at GIPS): run again
	# with more iterations, aiming at 2 x BENCH_MIN_SECS; at most 3 rounds.
	for round in 1 2 3; do
		m=$(next_iters "$iters" "$t_full" "$t_one" 0.05 4294967295)
		[ "$m" -gt "$iters" ] || break
		note "$w: $e: $iters iterations took under ${MIN_SECS}s; timing $m"
		build_image "$w" "$m" "$tmp/$w.$e.$round"
		[ "$(python3 "$here/loopinsns.py" objdump "$tmp/$w.$e.$round.elf")" = "$per" ] ||
			die "$w: loop length changed at N=$m"
		best_run "$e" "$tmp/$w.$e.$round" "k$round"
		t_full=$best_secs
		iters=$m
	done
	t_insns=$(((iters - 1) * per))
}

status=0
for w in $WORKLOADS; do
	build_image "$w" 1 "$tmp/$w.1"
	per=$(python3 "$here/loopinsns.py" objdump "$tmp/$w.1.elf") || die "$w: cannot count the loop's instructions"
	n=$((INSNS / per))
	[ "$n" -ge 2 ] || n=2
	[ "$n" -le 4294967295 ] || die "$w: N=$n does not fit in 32 bits; lower BENCH_INSNS"
	build_image "$w" "$n" "$tmp/$w.n"
	perN=$(python3 "$here/loopinsns.py" objdump "$tmp/$w.n.elf") || die "$w: cannot count the loop's instructions"
	[ "$perN" = "$per" ] || die "$w: loop has $per instructions at N=1 but $perN at N=$n"

	echo
	echo "== $w: $per instructions per iteration (objdump), N = $n; guest instructions = (iterations - 1) x $per"
	rows=()
	ref_line=
	for e in $ENGINES; do
		note "$w: $e ..."
		timed "$e" "$w"
		if [ -z "$ref_line" ]; then
			ref_line=$t_line
		elif [ "$t_line" != "$ref_line" ]; then
			echo "   !! $e printed '$t_line' for N = $n, softcpu printed '$ref_line'"
			status=1
		fi
		rows+=("$e $t_insns $t_full $t_one")
	done
	echo "   guest output at N = $n: $ref_line"
	printf '%s\n' "${rows[@]}" | awk '
		{ e[NR] = $1; insns[NR] = $2; full[NR] = $3; one[NR] = $4; net[NR] = $3 - $4
		  mips[NR] = net[NR] > 0 ? insns[NR] / net[NR] / 1e6 : -1 }
		END {
			tcg = 0
			for (i = 1; i <= NR; i++) if (e[i] == "qemu-tcg") tcg = mips[i]
			printf "   %-11s %13s %9s %9s %9s %10s %s\n", "engine", "guest insns", "run s", "boot s", "net s", "MIPS", "x qemu-tcg"
			for (i = 1; i <= NR; i++) {
				r = (tcg > 0 && mips[i] > 0) ? sprintf("%.4f", mips[i] / tcg) : "n/a"
				m = mips[i] > 0 ? sprintf("%.1f", mips[i]) : "n/a"
				printf "   %-11s %13.0f %9.3f %9.3f %9.3f %10s %s\n", e[i], insns[i], full[i], one[i], net[i], m, r
				if (mips[i] <= 0) bad = 1
			}
			if (bad) print "   n/a: the N-iteration run was not slower than the 1-iteration run; raise BENCH_INSNS"
		}'
done
echo
echo "x qemu-tcg = the engine's MIPS / QEMU TCG's MIPS, measured in this run: 1 is parity with TCG."
echo "softcpu interprets (--jit off); softcpu-jit translates hot blocks (--jit on)."
exit $status
