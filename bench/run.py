#!/usr/bin/env python3
"""run.py - run one engine once, with a timeout, and time it.

    run.py [--pty] [--timeout SECONDS] [--out FILE] [--log FILE] -- CMD ARGS...

Prints one line on stdout: "<wall seconds> <exit status>", where the status
is the command's exit code, "sig<N>" if a signal ended it, or "timeout" if
it was still running after SECONDS (it is then killed, with its whole
process group). The clock runs from just before the process is started
until it has exited.

--out FILE  the command's stdout (the guest's serial port for QEMU and Vigil)
--log FILE  its stderr; with --pty, everything the command wrote to the
            terminal (Bochs's text display)
--pty       give the command a pseudo-terminal as stdin, stdout and stderr
            (Bochs's term display library needs one). Its output is read and
            written to --log as it comes, so the command never blocks on it.
"""

import argparse
import os
import pty
import select
import signal
import subprocess
import sys
import time


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def status_of(code):
    return f"sig{-code}" if code < 0 else str(code)


def run_plain(cmd, timeout, out, log):
    with open(out, "wb") as o, open(log, "wb") as e:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o,
                                stderr=e, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.wait()
            return time.monotonic() - start, "timeout"
        return time.monotonic() - start, status_of(code)


def run_pty(cmd, timeout, log):
    master, slave = pty.openpty()
    env = dict(os.environ)
    env.setdefault("TERM", "xterm")
    if env["TERM"] in ("", "dumb"):
        env["TERM"] = "xterm"
    with open(log, "wb") as e:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                                env=env, start_new_session=True)
        os.close(slave)
        deadline = start + timeout
        timed_out = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([master], [], [], min(left, 0.05))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave end is closed
                    data = b""
                if data:
                    e.write(data)
                    continue
                break
            if proc.poll() is not None:
                break
        if timed_out:
            kill_group(proc)
            proc.wait()
            os.close(master)
            return time.monotonic() - start, "timeout"
        os.close(master)
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.wait()
            return time.monotonic() - start, "timeout"
        return time.monotonic() - start, status_of(code)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pty", action="store_true")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--out", default=os.devnull)
    p.add_argument("--log", default=os.devnull)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        p.error("no command")
    if a.pty:
        elapsed, status = run_pty(cmd, a.timeout, a.log)
    else:
        elapsed, status = run_plain(cmd, a.timeout, a.out, a.log)
    print(f"{elapsed:.6f} {status}")


if __name__ == "__main__":
    sys.exit(main())
