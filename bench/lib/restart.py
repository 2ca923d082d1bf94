"""Restart latency on a file change: `hlocal start -w` (and watchexec, when installed).

Usage: restart.py --hlocal PATH --writer PATH --work DIR [--changes 20]
                  [--debounces 200ms,50ms] [--watchexec PATH]

For each change: wait until the instance is up, wait GAP, write `app.py` in the app root,
then stamp the lines that follow as they arrive on the runner's stdout (a pipe):
  hlocal     `hlocal | r.1: Starting process with command …` (the restart's spawn), and
             the new process's own first line `r:1` (what the app itself can see);
  watchexec  the new process's own first line `r:1` (watchexec prints no spawn line).
then wait for `State changed from starting to up` (hlocal) / the `r:END` line before the
next write. Reported: median and p90 of (latency - debounce), over every change.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

import procs
from lines import LineReader

GAP = 0.3  # seconds between an instance being up and the next write
TIMEOUT = 10.0  # per step
BUSY = procs.BusyLog()


def debounce_seconds(text: str) -> float:
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text.rstrip("s"))


def touch(path: str, i: int) -> float:
    """Writes the file as an editor's plain save does; returns when the write began."""
    t = procs.now()
    with open(path, "w") as f:
        f.write(f"# change {i}\n")
    return t


def measure(argv: list[str], app: str, changes: int, spawn_line: str | None, up_line: str) -> dict:
    """Runs ARGV, makes CHANGES edits, returns the latencies (seconds) per marker."""
    BUSY.sample()
    tracker = procs.Tracker()
    proc = subprocess.Popen(argv, cwd=app, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    reader = LineReader(proc.stdout.fileno())
    up_rx = re.compile(up_line)
    spawn, child, failures = [], [], 0
    try:
        if reader.wait_for(up_line, procs.now() + TIMEOUT) is None:
            raise RuntimeError(f"{argv[0]} never came up:\n" + "\n".join(l for _, l in reader.history))
        for i in range(changes):
            time.sleep(GAP)
            reader.drain()
            tracker.add_tree(proc.pid)
            t_write = touch(os.path.join(app, "app.py"), i)
            deadline = t_write + TIMEOUT
            t_spawn = t_child = None
            up = False
            while (item := reader.next_line(deadline)) is not None:
                t, line = item
                if spawn_line and t_spawn is None and spawn_line in line:
                    t_spawn = t
                if t_child is None and line.rstrip().endswith("r:1"):
                    t_child = t
                up = up or up_rx.search(line) is not None
                if up and t_child is not None and (t_spawn is not None or not spawn_line):
                    break
            if t_child is None or (spawn_line and t_spawn is None):
                failures += 1
                continue
            child.append(t_child - t_write)
            if t_spawn is not None:
                spawn.append(t_spawn - t_write)
    finally:
        tracker.add_tree(proc.pid)
        procs.stop(proc)
        tracker.kill_all()
    return {"spawn": spawn, "child": child, "failures": failures, "log": reader.history}


def row(runner: str, debounce: str, marker: str, xs: list[float], failures: int, changes: int) -> list[str]:
    d = debounce_seconds(debounce)
    over = [x - d for x in xs]
    return [
        runner,
        debounce,
        marker,
        procs.ms(procs.median(over)),
        procs.ms(procs.percentile(over, 90)),
        f"{procs.ms(min(over))} / {procs.ms(max(over))}" if over else "n/a",
        f"{len(xs)} / {changes}" + (f" ({failures} missed)" if failures else ""),
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hlocal", required=True)
    ap.add_argument("--writer", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--debounces", default="200ms,50ms")
    ap.add_argument("--watchexec", default="")
    args = ap.parse_args()

    app = os.path.join(args.work, "restart-app")
    os.makedirs(app, exist_ok=True)
    # Not `web`: the router and port readiness are not what is measured here; an
    # instance of another type is `up` once spawned.
    with open(os.path.join(app, "Procfile"), "w") as f:
        f.write(f"r: {args.writer} r 1 600\n")
    with open(os.path.join(app, "app.py"), "w") as f:
        f.write("# app\n")

    rows = []
    for debounce in args.debounces.split(","):
        port = str(procs.free_port_base([0]))
        argv = [args.hlocal, "start", "--color", "never", "--no-timestamp", "-p", port,
                "-w", "--watch-debounce", debounce]
        res = measure(argv, app, args.changes, "r.1: Starting process", r"r\.1: State changed from starting to up")
        rows.append(row("hlocal", debounce, "`Starting process` line", res["spawn"], res["failures"], args.changes))
        rows.append(row("hlocal", debounce, "new process's first line", res["child"], res["failures"], args.changes))
        print(f"  hlocal {debounce}: spawn {[round(x * 1000) for x in res['spawn']]} ms, load {procs.loadavg()}",
              file=sys.stderr)
        if args.watchexec:
            argv = [args.watchexec, "--debounce", debounce, "-r", "-w", app, "--", args.writer, "r", "1", "600"]
            res = measure(argv, app, args.changes, None, r"r:END$")
            rows.append(row("watchexec", debounce, "new process's first line", res["child"], res["failures"], args.changes))
            print(f"  watchexec {debounce}: child {[round(x * 1000) for x in res['child']]} ms, load {procs.loadavg()}",
                  file=sys.stderr)
    for peer in ("honcho", "node-foreman (nf)"):
        rows.append([peer, "—", "no watch mode", "—", "—", "—", "—"])
    headers = ["runner", "debounce", "measured to", "median − debounce", "p90 − debounce", "min / max − debounce", "changes"]
    print(procs.table(headers, rows))
    print(f"\n- CPU busy (both cores) in the 0.5 s before each series: {BUSY.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
