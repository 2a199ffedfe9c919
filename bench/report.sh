#!/usr/bin/env bash
# report.sh - what a person sees of `vigil demo --report`: writes the demo's
# pictures and index page, renders the page with headless Chromium into a
# PNG, and prints where both are and how many bytes the directory holds.
#
#   bench/report.sh [DIR]      (from the repository root, or from anywhere)
#
# DIR (default: a new `mktemp -d` directory, kept) receives the event logs,
# one SVG picture per scenario, index.html and index.png. Look at index.png
# after a change to the pictures: the contained and the stalled runs side by
# side, every label readable.
#
# Environment (all optional):
#   VIGIL          a vigil binary to use instead of building one with
#                  `cargo build --release -p vigil`
#   CHROMIUM       the browser (default: chromium, else chromium-browser)
#   REPORT_WIDTH   the page's width in pixels (default 1500)
#   REPORT_HEIGHT  the screenshot's height in pixels (default 2900)

set -euo pipefail
prog=report.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out=${1:-}
make_tmp vigil-report
find_vigil
browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$browser" ] || die "chromium not found: install Debian's chromium package, or set CHROMIUM"
width=${REPORT_WIDTH:-1500}
height=${REPORT_HEIGHT:-2900}
isnum "$width" && isnum "$height" || die "REPORT_WIDTH and REPORT_HEIGHT must be numbers of pixels"
if [ -z "$out" ]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/vigil-demo-report.XXXXXX")
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

note "running vigil demo --report $out ..."
"$vigil" demo --report "$out" >"$tmp/demo.txt" 2>&1 ||
	die "vigil demo failed: $(grep -m1 -E 'UNEXPECTED|error' "$tmp/demo.txt" || tail -n 1 "$tmp/demo.txt")"
[ -s "$out/index.html" ] || die "vigil demo wrote no $out/index.html"

# Chromium needs a writable home for its profile; --no-sandbox lets it run
# as root in a container.
HOME=$tmp timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
	--user-data-dir="$tmp/profile" --window-size="$width,$height" \
	--screenshot="$out/index.png" "file://$out/index.html" >"$tmp/chromium.log" 2>&1 ||
	die "chromium could not render the page: $(tail -n 1 "$tmp/chromium.log")"
[ -s "$out/index.png" ] || die "chromium wrote no screenshot"

pictures=$(find "$out" -maxdepth 1 -name '*.svg' | wc -l)
bytes=$(du -sb --exclude=index.png "$out" | cut -f1)
echo "pictures:   $pictures SVG files and index.html in $out"
echo "size:       $bytes bytes (event logs included, screenshot not)"
echo "screenshot: $out/index.png (${width}x${height})"
