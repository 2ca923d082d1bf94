"""Shared helpers for the hlocal benchmarks: processes, /proc, ports, statistics, tables.

Everything a benchmark starts is tracked by PID (and its start time, so a recycled PID is
never signalled) and killed by PID at the end: no pkill, no killall.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the `(comm)` field, or None if the PID is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The PID's start time in clock ticks since boot (field 22), identifying one process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def children(pid: int) -> list[int]:
    """Direct children of PID, from every thread's `children` file (threads fork too)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of PID, parents before children."""
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def status_kib(pid: int, key: str) -> int | None:
    """A `VmRSS` / `VmHWM`-style value from /proc/PID/status, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "?"


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


# ---------------------------------------------------------------- tracking and killing


@dataclass
class Tracker:
    """Every process a benchmark started, by (pid, start time), killed by PID at the end."""

    known: dict[int, int] = field(default_factory=dict)

    def add(self, pid: int) -> None:
        st = start_time(pid)
        if st is not None:
            self.known.setdefault(pid, st)

    def add_tree(self, root: int) -> list[int]:
        """Tracks ROOT and its descendants as they are now; returns the descendants."""
        self.add(root)
        desc = descendants(root)
        for pid in desc:
            self.add(pid)
        return desc

    def alive(self) -> list[int]:
        """Tracked processes that still exist (not zombies) and are still the same process."""
        return [
            pid
            for pid, st in self.known.items()
            if start_time(pid) == st and not is_zombie(pid)
        ]

    def kill_all(self) -> list[int]:
        """SIGKILL whatever is left, by PID; returns what was left."""
        left = self.alive()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0, group: bool = False) -> None:
    """Signals one process we started, waits for it, SIGKILLs it after `timeout`.

    group=True sends the signal to the process group the runner leads (we start every
    runner with `process_group=0`), as a terminal's Ctrl-C does: node-foreman relies on it.
    """
    if proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        proc.wait(timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- ports


def free_port_base(offsets: list[int], tries: int = 200) -> int:
    """A base port P such that P + each offset is free on loopback right now.

    Runners assign ports foreman-style (P + 100*type + instance) and refuse ports in use,
    so the whole block must be free. Chosen below the ephemeral range (32768+).
    """
    for _ in range(tries):
        base = random.randrange(10000, 32000 - max(offsets))
        socks = []
        try:
            for off in offsets:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block found")


def foreman_offsets(counts: list[int]) -> list[int]:
    """Port offsets foreman gives `counts[i]` instances of type i (`P + 100*i + n`)."""
    return [100 * i + n for i, c in enumerate(counts) for n in range(c)]


# ---------------------------------------------------------------- statistics and tables


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): an observed value, no interpolation."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    rank = max(1, -(-len(s) * p // 100))  # ceil
    return s[int(rank) - 1]


def ms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "n/a"
    v = seconds * 1000
    return f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms"


def secs(seconds: float) -> str:
    if seconds != seconds:
        return "n/a"
    return f"{seconds:.2f} s" if seconds >= 1 else ms(seconds)


def mib(kib: float | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def now() -> float:
    return time.monotonic()


def _cpu_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v[:8]) - idle, sum(v[:8])


def cpu_busy(interval: float = 0.5) -> float:
    """Fraction of all CPUs' time spent busy over the next INTERVAL seconds (0..1).

    Taken just before a trial, with nothing of ours running: it is the other users'
    load, which the 1-minute load average shows only with a long lag (and inflated by
    our own previous trials: honcho keeps a core busy for half a minute).
    """
    b0, t0 = _cpu_ticks()
    time.sleep(interval)
    b1, t1 = _cpu_ticks()
    return (b1 - b0) / max(1, t1 - t0)


class BusyLog:
    """CPU busy fractions seen before each trial, for the report's footer."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def sample(self) -> float:
        """Waits (up to 30 s) for a quiet half-second before a trial; records the last one.

        Other people's builds come in bursts: a trial started in the middle of one
        measures them, not us. BENCH_MAX_BUSY (percent, default 15) sets "quiet".
        """
        limit = float(os.environ.get("BENCH_MAX_BUSY", "15")) / 100
        deadline = time.monotonic() + 30
        b = cpu_busy()
        while b >= limit and time.monotonic() < deadline:
            b = cpu_busy()
        self.samples.append(b)
        return b

    def summary(self) -> str:
        if not self.samples:
            return "n/a"
        return (f"median {median(self.samples) * 100:.0f}%, max {max(self.samples) * 100:.0f}% "
                f"over {len(self.samples)} trials")


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
