#!/usr/bin/env python3
"""loopinsns.py - count the instructions of one iteration of a workload loop.

    loopinsns.py OBJDUMP IMAGE.elf

Disassembles IMAGE with `OBJDUMP -d` and counts the instructions from the
symbol bench_loop up to (not including) bench_loop_end. Prints the count.

It checks that this range is one straight-line iteration, so that the
count times the iteration count is the number of instructions executed:
the last instruction must be a conditional jump back to bench_loop, and no
other instruction in the range may transfer control.
"""

import re
import subprocess
import sys

# A line of `objdump -d --no-show-raw-insn`: "  10011f:\tmov    %ebx,%eax"
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S.*)$")
SYMBOL = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
CONTROL = re.compile(r"^(j\w+|call\w*|ret\w*|loop\w*|int\w*|iret\w*|"
                     r"hlt|sysenter|syscall|ud\d*|lcall|ljmp)\b")


def fail(msg):
    sys.exit(f"loopinsns.py: {msg}")


def main():
    if len(sys.argv) != 3:
        fail("usage: loopinsns.py OBJDUMP IMAGE.elf")
    objdump, image = sys.argv[1:]
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", image],
                          check=True, capture_output=True, text=True).stdout
    symbols = {}
    insns = []  # (address, text)
    for line in text.splitlines():
        m = SYMBOL.match(line)
        if m:
            symbols[m.group(2)] = int(m.group(1), 16)
            continue
        m = INSN.match(line)
        if m:
            insns.append((int(m.group(1), 16), m.group(2).strip()))
    for name in ("bench_loop", "bench_loop_end"):
        if name not in symbols:
            fail(f"{image}: no symbol {name} in the disassembly")
    start, end = symbols["bench_loop"], symbols["bench_loop_end"]
    body = [(a, t) for a, t in insns if start <= a < end]
    if not body:
        fail(f"{image}: no instructions between bench_loop and bench_loop_end")
    if body[0][0] != start:
        fail(f"{image}: bench_loop is not on an instruction boundary")
    last_addr, last = body[-1]
    m = re.match(r"^j(\w+)\s+([0-9a-f]+)\b", last)
    if not m or m.group(1) in ("mp", "mpl", "mpw") or int(m.group(2), 16) != start:
        fail(f"{image}: loop does not end with a conditional jump to "
             f"bench_loop: {last!r}")
    for a, t in body[:-1]:
        if CONTROL.match(t):
            fail(f"{image}: control transfer inside the loop at {a:#x}: {t!r}")
    print(len(body))


if __name__ == "__main__":
    main()
