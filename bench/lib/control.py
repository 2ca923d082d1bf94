"""The control socket's costs: `hlocal ps` round trips, 1,000 restarts, a busy subscriber.

Usage: control.py --hlocal PATH --writer PATH --work DIR [--pings N] [--restarts N] [--reps N]

hlocal runs pinned to cpu 0 (`taskset -c 0`); the clients (the `hlocal ps` processes, the
subscriber, this script) run on cpu 1, so a client's own start-up does not share the core
hlocal's work is measured on.

(1) `hlocal ps`: wall time of N whole `hlocal ps` invocations (process start, connect,
    request, answer, print), and of N requests on one open connection (the protocol alone).
(2) N `hlocal restart worker` in a row on an app of two `sleep` workers: hlocal's RSS
    (VmRSS) and open descriptors (/proc/PID/fd) before, at half-way and after.
(3) 1,000,000 lines through hlocal to a tmpfs file, with and without a client subscribed
    to every event (reading as fast as it can), median of REPS runs each, interleaved:
    the time until stdout holds the writer's last line (the writer lingers, so this is
    throughput, not hlocal's exit) and until the subscriber has it too; hlocal on both
    cores (as bench/logs.sh runs it) and pinned to one.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import threading
import time

import logs
import procs

HLOCAL_CPU = "0"
CLIENT_CPU = {1}


def start_app(hlocal: str, root: str, procfile: str, port: int, out_path: str,
              cpus: str = HLOCAL_CPU) -> subprocess.Popen:
    with open(os.path.join(root, "Procfile"), "w") as f:
        f.write(procfile)
    out = open(out_path, "wb")
    return subprocess.Popen(
        ["taskset", "-c", cpus, hlocal, "start", "-p", str(port), "--no-timestamp"],
        cwd=root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )


def wait_for(path: str, text: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with open(path, "rb") as f:
                if text.encode() in f.read():
                    return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"no {text!r} in {path} within {deadline}s")


def request(sock: socket.socket, reader, line: dict) -> dict:
    sock.sendall((json.dumps(line) + "\n").encode())
    return json.loads(reader.readline())


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def bench_ps(args, root: str) -> list[str]:
    port = procs.free_port_base([0, 1, 101])
    log = os.path.join(args.work, "ps.log")
    app = start_app(args.hlocal, root, "clock: sleep 3600\nworker: sleep 3600\n", port, log)
    try:
        wait_for(log, "ready:")
        whole = []
        for _ in range(args.pings):
            t = time.perf_counter()
            subprocess.run([args.hlocal, "ps", "-d", root], check=True, stdout=subprocess.DEVNULL)
            whole.append(time.perf_counter() - t)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(os.path.join(root, ".hlocal.sock"))
        reader = sock.makefile("rb")
        wire = []
        for i in range(args.pings):
            t = time.perf_counter()
            answer = request(sock, reader, {"v": 1, "id": i, "cmd": "ps"})
            wire.append(time.perf_counter() - t)
            assert answer["ok"], answer
        sock.close()
    finally:
        procs.stop(app, group=False)
    return [
        f"| `hlocal ps` (whole command) | {procs.ms(procs.median(whole))} | {procs.ms(procs.percentile(whole, 99))} |",
        f"| `ps` request on an open socket | {procs.ms(procs.median(wire))} | {procs.ms(procs.percentile(wire, 99))} |",
    ]


def bench_restarts(args, root: str) -> list[str]:
    port = procs.free_port_base([0, 1, 101])
    log = os.path.join(args.work, "restarts.log")
    app = start_app(args.hlocal, root, "worker: sleep 3600\nother: sleep 3600\n", port, log)
    rows = []
    try:
        wait_for(log, "ready:")
        sample = lambda label: rows.append(
            f"| {label} | {procs.mib(procs.status_kib(app.pid, 'VmRSS'))} | {fds(app.pid)} |"
        )
        sample("before")
        for i in range(1, args.restarts + 1):
            subprocess.run([args.hlocal, "restart", "worker", "-d", root], check=True,
                           stdout=subprocess.DEVNULL)
            if i == args.restarts // 2:
                sample(f"after {i} restarts")
        # The last restart's new process must be up before the final sample.
        time.sleep(1)
        sample(f"after {args.restarts} restarts")
    finally:
        procs.stop(app, group=False)
    return rows


def drain(sock_path: str, ready: threading.Event, done: list[float]) -> None:
    """Subscribes and reads as fast as it can; notes when the writer's last line came."""
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(sock_path)
    sock.sendall(b'{"v":1,"id":1,"cmd":"subscribe"}\n')
    ready.set()
    tail = b""
    while chunk := sock.recv(1 << 16):
        if b"w1:END" in tail + chunk:
            done.append(time.monotonic())
        tail = chunk[-16:]


def one_log_run(args, root: str, cpus: str, subscribe: bool) -> tuple[float, float | None]:
    """Seconds from the writer's go until hlocal's stdout holds its last line, and until
    the subscriber got it too (None without one). The writer lingers after its last line,
    so the run measures throughput, not hlocal's exit."""
    go = os.path.join(root, "go")
    if os.path.exists(go):
        os.remove(go)
    procfile = f"w1: while [ ! -e go ]; do sleep 0.005; done; exec {args.writer} w1 1000000 60\n"
    port = procs.free_port_base([0])
    out = os.path.join(args.work, "lines.out")
    app = start_app(args.hlocal, root, procfile, port, out, cpus)
    done: list[float] = []
    try:
        wait_for(out, "ready:")
        if subscribe:
            ready = threading.Event()
            sock_path = os.path.join(root, ".hlocal.sock")
            threading.Thread(target=drain, args=(sock_path, ready, done), daemon=True).start()
            ready.wait(10)
            time.sleep(0.2)  # the subscription is registered before the first line
        start = time.monotonic()
        open(go, "w").close()
        stdout_done = logs.wait_for_markers(out, 1, app, start + 120)
        if stdout_done is None:
            raise RuntimeError("the writer's lines did not all reach stdout")
        if subscribe:
            end = time.monotonic() + 60
            while not done and time.monotonic() < end:
                time.sleep(0.001)
        sub_done = done[0] - start if done else None
        return stdout_done - start, sub_done
    finally:
        procs.stop(app, group=False)


def bench_subscriber(args, root: str, cpus: str) -> list[str]:
    plain, subscribed, delivered = [], [], []
    for _ in range(args.reps):
        plain.append(one_log_run(args, root, cpus, False)[0])
        to_stdout, to_subscriber = one_log_run(args, root, cpus, True)
        subscribed.append(to_stdout)
        if to_subscriber is not None:
            delivered.append(to_subscriber)
    base, busy = procs.median(plain), procs.median(subscribed)
    got = procs.secs(procs.median(delivered)) if len(delivered) == args.reps else "cut off"
    return [
        f"| no subscriber | {procs.secs(base)} | — | 1.00x |",
        f"| one subscriber reading every event | {procs.secs(busy)} | {got} | {busy / base:.2f}x |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hlocal", required=True)
    parser.add_argument("--writer", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, CLIENT_CPU)
    root = os.path.join(args.work, "app")
    os.makedirs(root, exist_ok=True)
    print(f"(1) round trips, {args.pings} each, hlocal on cpu 0, clients on cpu 1\n")
    print(procs.table(["what", "median", "p99"], []).rstrip("\n"))
    print("\n".join(bench_ps(args, root)))
    print(f"\n(2) {args.restarts} `hlocal restart worker` in a row\n")
    print(procs.table(["when", "hlocal RSS", "open fds"], []).rstrip("\n"))
    print("\n".join(bench_restarts(args, root)))
    for cpus, where in (("0,1", "hlocal on both cores, as bench/logs.sh runs it"),
                        ("0", "hlocal pinned to cpu 0")):
        print(f"\n(3) 1,000,000 lines to a tmpfs file, {where}; median of {args.reps}\n")
        header = ["run", "all lines on stdout", "all events at the subscriber", "ratio (stdout)"]
        print(procs.table(header, []).rstrip("\n"))
        print("\n".join(bench_subscriber(args, root, cpus)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
