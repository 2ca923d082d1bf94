"""Log throughput: writers as fast as they can, through each runner, stdout to a file.

Usage: logs.py --writer PATH --hlocal PATH --work DIR [--reps N] [--peer-reps N]
               [--honcho 'python3 -m honcho'] [--nf nf] [--only NAME,...]

Scenarios: (a) one writer of 1,000,000 lines, (b) four writers of 250,000 lines each.

How a trial ends, per runner (the writers are the same binary everywhere):
  direct  the writers run under `sh` straight to the file; the trial ends when they exit.
  hlocal  writers that exit: hlocal exits by itself once every instance exited 0,
          so the trial ends at hlocal's exit -- the number a user sees.
  all runners (hlocal too, as a like-for-like row): honcho and node-foreman stop every
          process when the first one exits, which would cut the other writers off, so
          writers linger after their last line and the trial ends when the output file holds
          every writer's `TAG:END` line (polled every 0.5 ms); then the runner is stopped.

Peak RSS is the runner's main process VmHWM from /proc, read at the end of the trial
(for the `exits` row: GNU time's %M, the max over hlocal and the children it reaped; the
writers are ~1.5 MiB, so it is hlocal's).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import procs

LINGER_SECONDS = 600  # lingering writers die on their own after this, whatever happens
DEADLINE = 300.0  # a trial that has not seen every line by then is reported as timed out
BUSY = procs.BusyLog()


@dataclass
class Scenario:
    key: str
    title: str
    writers: list[tuple[str, int]]  # (tag = process type name, lines)

    @property
    def total(self) -> int:
        return sum(n for _, n in self.writers)


SCENARIOS = [
    Scenario("a", "(a) 1 process x 1,000,000 lines", [("w1", 1_000_000)]),
    Scenario("b", "(b) 4 processes x 250,000 lines", [(f"w{i}", 250_000) for i in range(1, 5)]),
]


@dataclass
class Trial:
    wall: float | None  # seconds; None when timed out
    rss_kib: int | None
    check: "Check"
    note: str = ""


@dataclass
class Check:
    intact: int  # distinct writer lines (TAG:NUM, 1 <= NUM <= N) that arrived whole
    torn: int  # lines that arrived cut short (the start of the next expected line)
    out_of_order: int  # other lines that came after a later line of the same process
    #                    (or glued from torn pieces into a valid-looking line)
    mixed: int  # lines printed under another process's name
    expected: int

    @property
    def order_kept(self) -> bool:
        return self.out_of_order == 0 and self.torn == 0


# ---------------------------------------------------------------- app directories


def write_app(root: str, sc: Scenario, writer: str, linger: bool) -> None:
    os.makedirs(root, exist_ok=True)
    extra = f" {LINGER_SECONDS}" if linger else ""
    with open(os.path.join(root, "Procfile"), "w") as f:
        for tag, n in sc.writers:
            f.write(f"{tag}: {writer} {tag} {n}{extra}\n")


# ---------------------------------------------------------------- measuring one trial


def wait_for_markers(path: str, count: int, proc: subprocess.Popen, deadline: float) -> float | None:
    """Monotonic time at which PATH holds COUNT `:END` lines, or None past the deadline.

    Reads the file incrementally (each byte once), so polling costs little CPU.
    """
    marker = b":END\n"
    seen, tail = 0, b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if chunk:
                data = tail + chunk
                seen += data.count(marker)
                tail = data[-(len(marker) - 1) :]
                if seen >= count:
                    return procs.now()
                continue
            if procs.now() > deadline:
                return None
            if proc.poll() is not None:
                # Runner gone: read what it left, then give up if the lines are not there.
                rest = f.read()
                if rest:
                    f.seek(-len(rest), os.SEEK_CUR)
                    continue
                return None
            time.sleep(0.0005)


def run_lingering(argv: list[str], cwd: str, out_path: str, stop_sig: int, sc: Scenario,
                  group: bool = False) -> Trial:
    tracker = procs.Tracker()
    with open(out_path, "wb") as out:
        t0 = procs.now()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                process_group=0)
    try:
        done = wait_for_markers(out_path, len(sc.writers), proc, t0 + DEADLINE)
        rss = procs.status_kib(proc.pid, "VmHWM")
        tracker.add_tree(proc.pid)
        procs.stop(proc, stop_sig, group=group)
    finally:
        procs.stop(proc, signal.SIGKILL)
        left = tracker.kill_all()
    note = f"{len(left)} processes left after stop, killed" if left else ""
    wall = None if done is None else done - t0
    return Trial(wall, rss, verify(out_path, sc), note)


def run_to_exit(argv: list[str], cwd: str, out_path: str, sc: Scenario, use_rss: bool) -> Trial:
    """Runs ARGV to its exit. Peak RSS comes from GNU time's wait4, not from ours: the
    kernel folds the pre-exec memory of the forking process into ru_maxrss, so a child
    forked by this (large) Python process would report Python's RSS."""
    rss_file = out_path + ".rss"
    if use_rss:
        argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv
    with open(out_path, "wb") as out:
        t0 = procs.now()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        code = proc.wait()
        wall = procs.now() - t0
    rss = None
    if use_rss:
        with open(rss_file) as f:
            rss = int(f.read().split()[-1])
        os.unlink(rss_file)
    note = "" if code == 0 else f"exit {code}"
    return Trial(wall, rss, verify(out_path, sc), note)


# ---------------------------------------------------------------- checking the output

_LINE = re.compile(rb"^(w\d+):(\d+|END)$")


def verify(path: str, sc: Scenario) -> Check:
    """Counts, per process, the writer lines that arrived whole and in order.

    A line is `PREFIX| TAG:NUM` (any runner's prefix) or bare `TAG:NUM` (direct). A line
    counts as received when its NUM is in range; a process's order is broken wherever a
    NUM is smaller than the one before it -- a torn line when it is the start of the line
    that was due (`w1:12` where `w1:1234` was), out of order otherwise. Torn pieces can
    glue onto other pieces and look valid, so counts are of distinct NUMs, and a descent
    is counted once, not as a cascade. A line whose prefix names another process is mixed.
    """
    n_of = dict(sc.writers)
    tags = {tag.encode(): tag for tag in n_of}
    seen = {tag: set() for tag in n_of}
    prev = dict.fromkeys(n_of, 0)
    torn = out_of_order = mixed = 0
    with open(path, "rb") as f:
        data = f.read()
    for line in data.split(b"\n"):
        bar = line.find(b"| ")
        content = (line[bar + 2 :] if bar >= 0 else line).strip()
        m = _LINE.match(content)
        if not m or m.group(1) not in tags:
            continue
        tag = tags[m.group(1)]
        if bar >= 0:
            name = line[:bar].split()[-1:] or [b""]
            if name[0].split(b".")[0] != m.group(1):
                mixed += 1
        if m.group(2) == b"END":
            continue
        num = int(m.group(2))
        if not 1 <= num <= n_of[tag]:
            torn += 1  # pieces of torn lines glued together
            continue
        if num < prev[tag]:
            if str(prev[tag] + 1).startswith(str(num)):
                torn += 1
            else:
                out_of_order += 1
        seen[tag].add(num)
        prev[tag] = num
    return Check(sum(len(s) for s in seen.values()), torn, out_of_order, mixed, sc.total)


# ---------------------------------------------------------------- runners


@dataclass
class Runner:
    name: str
    reps: int
    run: object  # callable(app_dir_linger, app_dir_exit, out_path, scenario) -> Trial


def make_runners(args) -> list[Runner]:
    hl = [args.hlocal, "start", "--color", "never", "-p"]

    def port_for(sc: Scenario) -> str:
        return str(procs.free_port_base(procs.foreman_offsets([1] * len(sc.writers))))

    def direct(linger_dir, exit_dir, out, sc):
        # The same writers, started by one `sh` (as the runners do), straight to the file.
        if len(sc.writers) == 1:
            tag, n = sc.writers[0]
            script = f"exec {args.writer} {tag} {n}"
        else:
            script = " & ".join(f"{args.writer} {tag} {n}" for tag, n in sc.writers) + " & wait"
        return run_to_exit(["sh", "-c", script], exit_dir, out, sc, use_rss=False)

    def hlocal_exits(linger_dir, exit_dir, out, sc):
        return run_to_exit(hl + [port_for(sc)], exit_dir, out, sc, use_rss=True)

    def hlocal_linger(linger_dir, exit_dir, out, sc):
        return run_lingering(hl + [port_for(sc)], linger_dir, out, signal.SIGTERM, sc)

    def honcho(linger_dir, exit_dir, out, sc):
        argv = args.honcho.split() + ["start", "--no-colour", "-p", port_for(sc)]
        return run_lingering(argv, linger_dir, out, signal.SIGTERM, sc)

    def nf(linger_dir, exit_dir, out, sc):
        # node-foreman handles only SIGINT, and passes it to each `sh` only: stopped as by
        # Ctrl-C, SIGINT to its whole process group (SIGTERM kills node, orphans the rest).
        argv = args.nf.split() + ["start", "-p", port_for(sc)]
        return run_lingering(argv, linger_dir, out, signal.SIGINT, sc, group=True)

    runners = [
        Runner("direct (no runner)", args.reps, direct),
        Runner("hlocal (writers exit, hlocal exits)", args.reps, hlocal_exits),
        Runner("hlocal (lingering writers)", args.reps, hlocal_linger),
        Runner("honcho", args.peer_reps, honcho),
        Runner("node-foreman (nf)", args.peer_reps, nf),
    ]
    if args.only:
        wanted = args.only.split(",")
        runners = [r for r in runners if any(r.name.startswith(w) for w in wanted)]
    return runners


# ---------------------------------------------------------------- report


def summarize(sc: Scenario, results: dict[str, list[Trial]]) -> str:
    rows = []
    base = results.get("direct (no runner)")
    base_wall = procs.median([t.wall for t in base if t.wall is not None]) if base else None
    peer_best = None
    for name, trials in results.items():
        if name.startswith(("honcho", "node")):
            w = procs.median([t.wall for t in trials if t.wall is not None])
            peer_best = w if peer_best is None or w < peer_best else peer_best
    for name, trials in results.items():
        walls = [t.wall for t in trials if t.wall is not None]
        timeouts = len(trials) - len(walls)
        wall = procs.median(walls)
        rss = [t.rss_kib for t in trials if t.rss_kib is not None]
        intact = min(t.check.intact for t in trials)
        torn = max(t.check.torn for t in trials)
        ooo = max(t.check.out_of_order for t in trials)
        mixed = max(t.check.mixed for t in trials)
        kept = "yes" if all(t.check.order_kept for t in trials) else "no: " + ", ".join(
            x for x in (f"{torn:,} torn" if torn else "", f"{ooo:,} out of order/garbled" if ooo else "") if x)
        vs_direct = f"{wall / base_wall:.1f}x" if base_wall and walls else "n/a"
        vs_peer = f"{peer_best / wall:.0f}x" if peer_best and walls and name.startswith("hlocal") else ""
        notes = sorted({t.note for t in trials if t.note})
        if timeouts:
            notes.append(f"{timeouts} timed out at {DEADLINE:.0f} s")
        if mixed:
            notes.append(f"{mixed} lines under the wrong name")
        rows.append(
            [
                name,
                procs.secs(wall),
                f"{procs.secs(min(walls))} / {procs.secs(max(walls))}" if walls else "n/a",
                vs_direct,
                vs_peer,
                procs.mib(procs.median(rss)) if rss else "—",
                f"{intact:,} / {sc.total:,}",
                kept,
                "; ".join(notes),
                str(len(trials)),
            ]
        )
    headers = [
        "runner",
        "wall (median)",
        "min / max",
        "vs direct",
        "faster than best peer",
        "peak RSS (median)",
        "lines received whole (worst run)",
        "order per process kept (worst run)",
        "notes",
        "runs",
    ]
    return f"#### {sc.title}\n\n" + procs.table(headers, rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", required=True)
    ap.add_argument("--hlocal", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--honcho", default="python3 -m honcho")
    ap.add_argument("--nf", default="nf")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--peer-reps", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--scenarios", default="a,b")
    args = ap.parse_args()

    runners = make_runners(args)
    out = os.path.join(args.work, "out.log")
    for sc in SCENARIOS:
        if sc.key not in args.scenarios.split(","):
            continue
        linger_dir = os.path.join(args.work, sc.key, "linger")
        exit_dir = os.path.join(args.work, sc.key, "exit")
        write_app(linger_dir, sc, args.writer, linger=True)
        write_app(exit_dir, sc, args.writer, linger=False)
        results: dict[str, list[Trial]] = {}
        # Interleave runners rep by rep, so a burst of load elsewhere hits all of them alike.
        for rep in range(max(r.reps for r in runners)):
            for r in runners:
                if rep >= r.reps:
                    continue
                busy = BUSY.sample()
                trial = r.run(linger_dir, exit_dir, out, sc)
                results.setdefault(r.name, []).append(trial)
                wall = procs.secs(trial.wall) if trial.wall is not None else "timeout"
                print(
                    f"  {sc.key} run {rep + 1} {r.name}: {wall}, {trial.check}, "
                    f"CPU busy before {busy * 100:.0f}%, load {procs.loadavg()}",
                    file=sys.stderr,
                )
                os.unlink(out)
        print(summarize(sc, results))
        print()
        sys.stdout.flush()
    print(f"- CPU busy (both cores) in the 0.5 s before each trial: {BUSY.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
