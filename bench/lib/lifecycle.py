"""Lifecycle costs: idle memory, start-up of 50 instances, shutdown of 20, no `sh` between.

Usage: lifecycle.py --hlocal PATH --idle PATH --work DIR [--reps 5]
                    [--honcho 'python3 -m honcho'] [--nf nf]

(a) RSS with 10 idle `sleep 1000`: VmRSS/VmHWM of the runner's main process 1 s after all
    ten are running; the runner's other processes (hlocal's watchdog, honcho's per-process
    helpers) are listed separately.
(b) Start-up of 50 instances: each instance runs `idle FIFO` (writes one byte to a FIFO we
    hold open, then sleeps), so the 50th byte is when the 50th instance is really running,
    measured the same way for every runner. For hlocal also: its `ready:` line.
(c) Shutdown of 20 `sleep 1000`: the signal (SIGTERM; SIGINT for node-foreman, which
    ignores nothing but handles only SIGINT: SIGTERM kills node and orphans every child)
    until the runner has exited; and how many of its processes outlived it.
(d) The process chain from the runner to one `sleep` (does an `sh` sit in between?).
"""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import procs
from lines import LineReader

TIMEOUT = 30.0
BUSY = procs.BusyLog()
READY = re.compile(r"hlocal +\| ready: ")


@dataclass
class Runner:
    name: str
    argv: object  # callable(count, port) -> argv
    stop_sig: int
    group: bool = False  # signal the runner's process group (a terminal's Ctrl-C), not its PID

    @property
    def stop_label(self) -> str:
        name = "SIGINT" if self.stop_sig == signal.SIGINT else "SIGTERM"
        return f"{name} to its process group (Ctrl-C)" if self.group else f"{name} to its PID"


def make_runners(args) -> list[Runner]:
    return [
        Runner("hlocal", lambda n, p: [args.hlocal, "start", "--color", "never", "-p", p, "-m", f"worker={n}"],
               signal.SIGTERM),
        Runner("honcho", lambda n, p: args.honcho.split() + ["start", "--no-colour", "-p", p, "-c", f"worker={n}"],
               signal.SIGTERM),
        # node-foreman handles SIGINT only and passes it to each `sh` only, which waits for
        # its child: stopped as a terminal's Ctrl-C stops it, SIGINT to the whole group.
        Runner("node-foreman (nf)", lambda n, p: args.nf.split() + ["start", "-p", p, f"worker={n}"],
               signal.SIGINT, group=True),
    ]


def app_dir(work: str, name: str, command: str) -> str:
    root = os.path.join(work, name)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "Procfile"), "w") as f:
        f.write(f"worker: {command}\n")
    return root


def spawn(runner: Runner, app: str, n: int, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    port = str(procs.free_port_base(list(range(n))))
    return subprocess.Popen(runner.argv(n, port), cwd=app, stdout=stdout, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, process_group=0)


def wait_for_sleeps(pid: int, n: int, deadline: float) -> list[int]:
    """Polls (every 10 ms; not a timed phase) until PID has N `sleep` descendants."""
    while procs.now() < deadline:
        desc = procs.descendants(pid)
        if sum(procs.comm(p) == "sleep" for p in desc) >= n:
            return desc
        time.sleep(0.01)
    raise RuntimeError(f"pid {pid}: fewer than {n} sleep processes after {TIMEOUT} s")


def finish(proc: subprocess.Popen, runner: Runner, tracker: procs.Tracker) -> int:
    """Stops the runner as its users would, then kills by PID whatever outlived it."""
    tracker.add_tree(proc.pid)
    procs.stop(proc, runner.stop_sig, group=runner.group)
    return len(tracker.kill_all())


# ---------------------------------------------------------------- (a) and (d)


def idle_memory(runner: Runner, app: str) -> dict:
    BUSY.sample()
    tracker = procs.Tracker()
    proc = spawn(runner, app, 10)
    try:
        desc = wait_for_sleeps(proc.pid, 10, procs.now() + TIMEOUT)
        time.sleep(1.0)
        desc = tracker.add_tree(proc.pid)
        main_exe = procs.exe(proc.pid)
        helpers = [p for p in desc if procs.exe(p) == main_exe]
        shells = [p for p in desc if procs.comm(p) in ("sh", "dash", "bash")]
        sleep = next(p for p in desc if procs.comm(p) == "sleep")
        chain, p = [], sleep
        while p != proc.pid:
            chain.append(procs.comm(p))
            p = int(procs._stat_fields(p)[1])
        chain.append(runner.name.split()[0])
        return {
            "rss": procs.status_kib(proc.pid, "VmRSS"),
            "hwm": procs.status_kib(proc.pid, "VmHWM"),
            "helpers": [procs.status_kib(h, "VmRSS") or 0 for h in helpers],
            "shells": len(shells),
            "chain": " → ".join(reversed(chain)),
            "left": finish(proc, runner, tracker),
        }
    finally:
        procs.stop(proc, signal.SIGKILL)
        tracker.kill_all()


# ---------------------------------------------------------------- (b)


def startup(runner: Runner, app: str, fifo: str, n: int) -> dict:
    """Seconds from exec to the Nth instance running (FIFO byte), and to `ready:` (hlocal)."""
    BUSY.sample()
    tracker = procs.Tracker()
    # O_RDWR keeps a writer open too, so the FIFO never reports hang-up between instances.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        t0 = procs.now()
        proc = spawn(runner, app, n, stdout=subprocess.PIPE)
        reader = LineReader(proc.stdout.fileno())
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(reader.fd, select.POLLIN | select.POLLHUP)
        got, t_all = 0, None
        deadline = t0 + TIMEOUT
        # One poll over both: FIFO bytes (instances running) and the runner's stdout,
        # which must be drained anyway so the runner never blocks on a full pipe.
        while t_all is None and procs.now() < deadline:
            for ready_fd, _ in poller.poll(100):
                if ready_fd == fd:
                    try:
                        got += len(os.read(fd, 4096))
                    except BlockingIOError:
                        pass
                    if got >= n:
                        t_all = procs.now()
                else:
                    reader.drain()
        t_ready = None
        if runner.name == "hlocal":
            reader.drain()
            t_ready = next((t for t, line in reader.history if READY.search(line)), None)
            if t_ready is None:
                t_ready = reader.wait_for(READY.pattern, deadline)
        tracker.add_tree(proc.pid)
        left = finish(proc, runner, tracker)
        return {
            "all": None if t_all is None else t_all - t0,
            "ready": None if t_ready is None else t_ready - t0,
            "left": left,
        }
    finally:
        os.close(fd)
        tracker.kill_all()


# ---------------------------------------------------------------- (c)


def shutdown(runner: Runner, app: str, n: int) -> dict:
    BUSY.sample()
    tracker = procs.Tracker()
    proc = spawn(runner, app, n)
    try:
        wait_for_sleeps(proc.pid, n, procs.now() + TIMEOUT)
        time.sleep(0.5)
        tracker.add_tree(proc.pid)
        t0 = procs.now()
        if runner.group:
            os.killpg(proc.pid, runner.stop_sig)
        else:
            proc.send_signal(runner.stop_sig)
        try:
            proc.wait(TIMEOUT)
            took = procs.now() - t0
        except subprocess.TimeoutExpired:
            took = None
        # Let orphans that are already dying finish, then count who outlived the runner.
        time.sleep(0.2)
        left = tracker.alive()
        left = [p for p in left if p != proc.pid]
        return {"took": took, "left": len(left), "left_comm": sorted({procs.comm(p) for p in left})}
    finally:
        procs.stop(proc, signal.SIGKILL)
        tracker.kill_all()


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hlocal", required=True)
    ap.add_argument("--idle", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--honcho", default="python3 -m honcho")
    ap.add_argument("--nf", default="nf")
    args = ap.parse_args()
    runners = make_runners(args)
    sleep_app = app_dir(args.work, "sleep-app", "sleep 1000")
    fifo = os.path.join(args.work, "started.fifo")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    idle_app = app_dir(args.work, "idle-app", f"{args.idle} {fifo} 1000")

    def log(msg: str) -> None:
        print(f"  {msg}, load {procs.loadavg()}", file=sys.stderr)

    # (a) + (d)
    rows_a, rows_d = [], []
    for r in runners:
        runs = [idle_memory(r, sleep_app) for _ in range(3)]
        log(f"(a) {r.name}: {[x['rss'] for x in runs]} KiB")
        helpers = runs[0]["helpers"]
        label = "watchdog" if r.name == "hlocal" else "helper processes"
        rows_a.append([
            r.name,
            procs.mib(procs.median([x["rss"] for x in runs])),
            procs.mib(procs.median([x["hwm"] for x in runs])),
            (f"{len(helpers)} {label}: " + ", ".join(procs.mib(h) for h in helpers[:3])
             + (" …" if len(helpers) > 3 else "") + f" (sum {procs.mib(sum(helpers))})") if helpers else "none",
            str(len(runs)),
        ])
        rows_d.append([r.name, runs[0]["chain"], str(runs[0]["shells"])])

    # (b)
    rows_b = []
    for r in runners:
        runs = [startup(r, idle_app, fifo, 50) for _ in range(args.reps)]
        alls = [x["all"] for x in runs if x["all"] is not None]
        readys = [x["ready"] for x in runs if x["ready"] is not None]
        log(f"(b) {r.name}: {[procs.ms(x) for x in alls]}")
        rows_b.append([
            r.name,
            procs.ms(procs.median(alls)),
            f"{procs.ms(min(alls))} / {procs.ms(max(alls))}" if alls else "n/a",
            procs.ms(procs.median(readys)) if readys else "— (no such line)",
            f"{len(alls)} / {len(runs)}",
        ])

    # (c)
    rows_c = []
    nf_term = Runner("node-foreman (nf)", runners[2].argv, signal.SIGTERM)
    for r in runners + [nf_term]:
        runs = [shutdown(r, sleep_app, 20) for _ in range(args.reps)]
        took = [x["took"] for x in runs if x["took"] is not None]
        log(f"(c) {r.name}: {[procs.ms(x) for x in took]} left {[x['left'] for x in runs]}")
        left = max(x["left"] for x in runs)
        comms = sorted({c for x in runs for c in x["left_comm"]})
        rows_c.append([
            r.name,
            r.stop_label,
            procs.ms(procs.median(took)),
            f"{procs.ms(min(took))} / {procs.ms(max(took))}" if took else "n/a",
            f"{left} ({', '.join(comms)})" if left else "0",
            f"{len(took)} / {len(runs)}",
        ])

    print("#### (a) Memory with 10 idle processes (`sleep 1000`), 1 s after start\n")
    print(procs.table(["runner", "main process RSS (median)", "main VmHWM", "runner's other processes", "runs"], rows_a))
    print("\n#### (b) Start-up: 50 instances, exec → 50th instance running\n")
    print(procs.table(["runner", "all 50 running (median)", "min / max", "hlocal `ready:` line (median)", "runs"], rows_b))
    print("\n#### (c) Shutdown of 20 `sleep 1000`: signal → runner exited\n")
    print(procs.table(["runner", "signal", "exit (median)", "min / max", "processes left behind (worst run)", "runs"], rows_c))
    print("\n#### (d) Process chain to a simple command (`worker: sleep 1000`)\n")
    print(procs.table(["runner", "chain", "`sh` processes for 10 instances"], rows_d))
    print(f"\n- CPU busy (both cores) in the 0.5 s before each trial: {BUSY.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
