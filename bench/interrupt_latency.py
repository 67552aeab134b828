"""How fast ``autotts eval`` stops on Ctrl-C / SIGTERM while its workers spin in a user controller.

Starts ``autotts eval`` on a tiny store with three cells under the default ``processes``
backend (two workers): one that finishes at once and two whose controller never returns.
Once the first cell is saved, it sends Ctrl-C (SIGINT to the process group, as a
terminal does) or SIGTERM (to the parent only, as ``kill`` does) and prints the time
until the command has exited, its exit code, its last line and whether any process of
its session is left. Run: ``python bench/interrupt_latency.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autotts.testing import write_tiny_store

SPIN = """
class Spin:
    def __init__(self, n=1):
        self.n = n

    def solve(self, session):
        while self.n > 1:
            pass
        return session.read().answer
"""


def _left_in_session(sid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            count += fields[0] != "Z" and int(fields[3]) == sid
    return count


def once(tmp: Path, sig: signal.Signals) -> None:
    store = write_tiny_store(tmp / "m" / "tiny.parquet", questions=3)
    ctrl = tmp / "spin.py"
    ctrl.write_text(SPIN)
    out = tmp / f"res-{sig.name}.json"
    out.unlink(missing_ok=True)
    args = [sys.executable, "-m", "autotts.cli.main", "eval", "--store", str(store), "--runs", "2"]
    args += ["--workers", "2", "--json", str(out)]
    for n in (1, 2, 3):
        args += ["-c", f"{ctrl}:Spin:n={n}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    while not out.exists():
        time.sleep(0.02)
    time.sleep(1.0)  # the spinning cells are running now
    t0 = time.monotonic()
    if sig is signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate()
    elapsed = time.monotonic() - t0
    last = (err.strip().splitlines() or [""])[-1]
    left = _left_in_session(proc.pid)
    print(f"{sig.name:8s} exit {proc.returncode}  {elapsed:5.2f} s  processes left {left}  | {last}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for sig in (signal.SIGINT, signal.SIGTERM):
                once(Path(tmp), sig)


if __name__ == "__main__":
    main()
