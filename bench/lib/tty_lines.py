"""1,000,000 lines through a pseudo-terminal (`--tty`) against the pipe path, and against
the floor: the same writer on a bare pty whose master a C program only reads
(bench/lib/drain.c), with the terminal's standard modes and with output processing off.

Wall time from start to exit (the writer ends, hlocal stops), median of REPS; every
line of hlocal's output is checked: whole, in order, none lost. Two writers: the C
writer as it is (stdio line-buffers on a terminal: one write per line, what most
programs do on a pty) and the same under `stdbuf -o64K` (block-buffered, as on a pipe),
which separates the kernel's terminal cost from the program's buffering. For the
line-buffered writer the pipe path is also run with the same writes (`stdbuf -oL`): what
a pipe costs for one write per line, against what the pty costs for it.
Driven by bench/pty.sh."""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import procs

LINES = 1_000_000


def hlocal_run(hlocal, command, work, tty):
    app = tempfile.mkdtemp(dir=work)
    with open(os.path.join(app, "Procfile"), "w") as f:
        f.write(f"a: {' '.join(command)}\n")
    out = os.path.join(app, "out.txt")
    port = str(procs.free_port_base([0]))
    args = [hlocal, "start", "--no-timestamp", "-p", port] + (["--tty", "a"] if tty else [])
    with open(out, "wb") as sink:
        started = time.monotonic()
        subprocess.run(args, cwd=app, stdout=sink, stderr=subprocess.DEVNULL, check=True, timeout=300)
        elapsed = time.monotonic() - started
    return elapsed, lost_lines(out)


def lost_lines(path):
    """`a:1` .. `a:N` then `a:END`, in order, under `a.1 | `: how many are missing or damaged."""
    expected, bad = 1, 0
    with open(path, "rb") as f:
        for raw in f:
            who, sep, line = raw.rstrip(b"\n").partition(b" | ")
            if not sep or who.strip() != b"a.1":
                continue
            if line == f"a:{expected}".encode():
                expected += 1
            elif line != b"a:END":
                bad += 1
    return (LINES + 1 - expected) + bad


def floor_run(drain, mode, command):
    """The command under `drain MODE` (bench/lib/drain.c): a reader that only reads, the
    least any runner can cost. The better of reading at once and pausing 5 µs after each
    read (which lets a pty's 4 KiB buffer fill: faster for one write per line)."""
    times = []
    for pause in ([], ["-p", "5"]):
        started = time.monotonic()
        subprocess.run([drain] + pause + [mode] + command, check=True, timeout=300)
        times.append(time.monotonic() - started)
    return min(times), None


def median_of(reps, label, run):
    times, lost = [], 0
    for rep in range(reps):
        elapsed, missing = run()
        print(f"bench: {label} run {rep + 1}: {elapsed * 1000:.0f} ms, lost {missing}", file=sys.stderr)
        times.append(elapsed)
        lost += missing or 0
    return statistics.median(times), lost


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hlocal", required=True)
    p.add_argument("--writer", required=True)
    p.add_argument("--drain", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    line_buffered = [a.writer, "a", str(LINES)]
    block_buffered = ["stdbuf", "-o65536"] + line_buffered
    same_writes = ["stdbuf", "-oL"] + line_buffered
    pipe, _ = median_of(a.reps, "hlocal pipe", lambda: hlocal_run(a.hlocal, line_buffered, a.work, False))
    pipe_lines, _ = median_of(a.reps, "hlocal pipe, a write per line",
                              lambda: hlocal_run(a.hlocal, same_writes, a.work, False))
    print("| writer | hlocal, pipe | hlocal, pipe, the pty's writes | hlocal, pty (`--tty`) "
          "| floor: bare pty | floor: bare pty, `-opost` | lines lost |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, command, pipe_same in (
            ("line-buffered on a terminal (as most programs)", line_buffered, pipe_lines),
            ("block-buffered (`stdbuf -o64K`)", block_buffered, pipe)):
        on_pty, lost = median_of(a.reps, f"hlocal pty {name}", lambda: hlocal_run(a.hlocal, command, a.work, True))
        floors = [median_of(a.reps, f"floor {mode} {name}", lambda: floor_run(a.drain, mode, command))[0]
                  for mode in ("pty", "pty-opost")]
        print(f"| {name} | {ms(pipe)} | {ms(pipe_same)} | {ms(on_pty)} "
              f"({on_pty / pipe:.1f}x pipe, {on_pty / pipe_same:.1f}x the same writes on a pipe) | "
              + " | ".join(f"{ms(floor)} ({floor / pipe:.1f}x hlocal's pipe)" for floor in floors)
              + f" | {lost} |")


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"

if __name__ == "__main__":
    main()
