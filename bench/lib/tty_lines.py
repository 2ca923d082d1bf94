"""1,000,000 lines through a pseudo-terminal (`--tty`) against the pipe path, and against
a bare pty with a reader that does nothing but read (what the terminal itself costs).

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
import pty
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


def bare_pty_run(command):
    """The command on a pty whose master is only read: the least a terminal costs."""
    started = time.monotonic()
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    while True:
        try:
            if not os.read(master, 65536):
                break
        except OSError:  # EIO: the child's side is closed
            break
    os.waitpid(pid, 0)
    os.close(master)
    return time.monotonic() - started, None


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
          "| bare pty, reader only | lines lost |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, command, pipe_same in (
            ("line-buffered on a terminal (as most programs)", line_buffered, pipe_lines),
            ("block-buffered (`stdbuf -o64K`)", block_buffered, pipe)):
        on_pty, lost = median_of(a.reps, f"hlocal pty {name}", lambda: hlocal_run(a.hlocal, command, a.work, True))
        bare, _ = median_of(a.reps, f"bare pty {name}", lambda: bare_pty_run(command))
        print(f"| {name} | {pipe * 1000:.0f} ms | {pipe_same * 1000:.0f} ms | {on_pty * 1000:.0f} ms "
              f"({on_pty / pipe:.1f}x pipe, {on_pty / pipe_same:.1f}x the same writes on a pipe, "
              f"{on_pty / bare:.2f}x bare pty) | {bare * 1000:.0f} ms ({bare / pipe:.1f}x pipe) | {lost} |")


if __name__ == "__main__":
    main()
