"""Abuse checks for hlocal's router and supervisor; prints a markdown pass/fail table.

Loopback only; each check is bounded (at most ~30 s); everything started is tracked and
killed by PID. Every process hlocal starts carries a marker in its environment, so the
kill -9 check can find anything left behind, grandchildren included.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from procs import free_port_base, mib, status_kib, table  # noqa: E402

MARK = "HLOCAL_ABUSE_MARK"
# The most hlocal's RSS may grow per idle client connection (measured: ~11 KiB).
PARKED_CONN_KIB = 20

# A backend that says which requests reach it, one line each, and answers `ok`.
BACKEND = r'''
import os, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    return
        self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self):
        print(f"BACKEND {self.command} {self.path}", flush=True)
        self.read_body()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = answer

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


@dataclass
class Row:
    check: str
    verdict: str
    detail: str


class Hlocal:
    """One hlocal run in APP_DIR, its output in a file, stopped by PID."""

    def __init__(self, binary: str, app: Path, args: list[str], marker: str) -> None:
        self.out_path = app / "out.log"
        env = dict(os.environ, **{MARK: marker})
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [binary, "start", "-d", str(app), "--no-timestamp", *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, process_group=0,
            )

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def fds(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return -1

    def rss_kib(self) -> int | None:
        return status_kib(self.proc.pid, "VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def marked_pids(marker: str) -> list[int]:
    """Live processes (not zombies) whose environment carries MARKER."""
    needle = f"{MARK}={marker}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            found.append(int(name))
    return found


def kill_marked(marker: str) -> None:
    for pid in marked_pids(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate, timeout: float, step: float = 0.05):
    """Polls PREDICATE until it returns something truthy or TIMEOUT passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


# ---------------------------------------------------------------- raw HTTP


def exchange(port: int, data: bytes, timeout: float = 3.0) -> list[int]:
    """Sends DATA on a fresh connection; the status codes of the responses that come back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3})", received)]


def get_ok(port: int, timeout: float = 5.0) -> bool:
    try:
        return 200 in exchange(port, b"GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout)
    except OSError:
        return False


def seen_paths(output: str) -> tuple[list[str], list[str]]:
    """Paths the backend saw, and paths the router logged."""
    backend = re.findall(r"BACKEND \S+ (\S+)", output)
    router = re.findall(r'router.*? path="([^"]*)"', output)
    return backend, router


# ---------------------------------------------------------------- router checks


SMUGGLING = {
    "CL+TE": "POST /{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\n\r\nGET /{id}-smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    "TE+CL": "POST /{id} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n"
             "0\r\n\r\nGET /{id}-smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    "TE with obs-fold": "POST /{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
                        "0\r\n\r\nGET /{id}-smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    "TE: xchunked + CL": "POST /{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n"
                         "0\r\n\r\nGET /{id}-smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    "duplicate CL": "POST /{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\n"
                    "hello GET /{id}-smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
}


def smuggling_rows(hl: Hlocal, port: int) -> list[Row]:
    """A request is smuggled when the backend sees one the router did not log as its own."""
    rows = []
    for n, (name, template) in enumerate(SMUGGLING.items()):
        rid = f"smuggle{n}"
        codes = exchange(port, template.format(id=rid).encode(), timeout=2.0)
        get_ok(port)  # a follow-up request, to flush any desync into view
        time.sleep(0.3)  # router lines reach the printer in batches of up to 2 ms
        backend, router = seen_paths(hl.output())
        mine_backend = sorted(p for p in backend if p.startswith(f"/{rid}"))
        mine_router = sorted(p for p in router if p.startswith(f"/{rid}"))
        desync = [p for p in mine_backend if mine_backend.count(p) > mine_router.count(p)]
        verdict = "fail" if desync else "pass"
        detail = f"client got {codes or 'no response'}; backend saw {mine_backend or 'nothing'}"
        rows.append(Row(f"router: smuggling, {name}", verdict, detail))
    return rows


def header_limit_rows(hl: Hlocal, port: int) -> list[Row]:
    cases = {
        "header line > 8 KiB": "GET /{id} HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 9000 + "\r\n\r\n",
        "1,001 headers": "GET /{id} HTTP/1.1\r\nHost: x\r\n"
                         + "".join(f"X-H{i}: v\r\n" for i in range(1000)) + "\r\n",
        "3,000 headers": "GET /{id} HTTP/1.1\r\nHost: x\r\n"
                         + "".join(f"X-H{i}: v\r\n" for i in range(3000)) + "\r\n",
        "request line > 8 KiB": "GET /{id}?" + "q" * 9000 + " HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    rows = []
    for n, (name, template) in enumerate(cases.items()):
        rid = f"limit{n}"
        codes = exchange(port, template.format(id=rid).encode(), timeout=2.0)
        time.sleep(0.2)
        backend, _ = seen_paths(hl.output())
        reached = any(p.startswith(f"/{rid}") for p in backend)
        refused = bool(codes) and codes[0] in (400, 414, 431)
        verdict = "pass" if refused and not reached else "fail"
        rows.append(Row(f"router: {name}", verdict, f"client got {codes or 'no response'}; reached backend: {reached}"))
    return rows


def idle_connections_row(hl: Hlocal, port: int, count: int) -> Row:
    base_fds, base_rss = hl.fds(), hl.rss_kib()
    socks = []
    started = time.monotonic()
    try:
        for _ in range(count):
            if time.monotonic() - started > 20:
                break
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        # Wait for hlocal to have accepted them all (its fd count stops growing).
        wait_for(lambda: hl.fds() >= base_fds + len(socks), 5)
        open_fds, open_rss = hl.fds(), hl.rss_kib()
        served = get_ok(port)
    finally:
        for s in socks:
            s.close()
    back = wait_for(lambda: hl.fds() <= base_fds + 5, 5)
    end_fds = hl.fds()
    per_conn = (open_rss - base_rss) / max(1, len(socks)) if open_rss and base_rss else float("inf")
    bounded = per_conn <= PARKED_CONN_KIB
    ok = len(socks) == count and served and bounded and back
    detail = (f"{len(socks)} open; hlocal fds {base_fds} → {open_fds} → {end_fds} after close; "
              f"RSS {mib(base_rss)} → {mib(open_rss)} ({per_conn:.1f} KiB each, bound {PARKED_CONN_KIB}); a new request meanwhile: {'200' if served else 'FAILED'}")
    return Row(f"router: {count:,} idle connections", "pass" if ok else "fail", detail)


# Short enough for a bounded check; the default (30 s) behaves the same, later.
SLOW_HEAD_TIMEOUT = "10s"


def slowloris_row(port: int, count: int = 200, seconds: float = 20.0) -> Row:
    """Connections that send a header line every 2 s and never finish the head: hlocal
    runs with `--header-timeout SLOW_HEAD_TIMEOUT`, so every one must be closed in time."""
    socks = {}
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        socks[s.fileno()] = s
    started = time.monotonic()
    closed_after: list[float] = []
    next_drip = started + 2
    served = None
    try:
        while time.monotonic() - started < seconds and socks:
            readable, _, _ = select.select(list(socks.values()), [], [], 0.2)
            for s in readable:  # EOF or a 408: the router gave up on it
                closed_after.append(time.monotonic() - started)
                del socks[s.fileno()]
                s.close()
            if time.monotonic() >= next_drip:
                next_drip += 2
                for s in list(socks.values()):
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        closed_after.append(time.monotonic() - started)
                        del socks[s.fileno()]
                        s.close()
            if served is None and time.monotonic() - started > seconds / 2:
                served = get_ok(port)
    finally:
        for s in socks.values():
            s.close()
    if served is None:  # every slow connection was closed before the halfway probe
        served = get_ok(port)
    still = count - len(closed_after)
    if closed_after:
        closed_after.sort()
        what = f"{len(closed_after)}/{count} closed by hlocal (median after {closed_after[len(closed_after) // 2]:.1f} s)"
    else:
        what = "none closed by hlocal: NOT defended"
    detail = f"{what}; {still}/{count} still open after {seconds:.0f} s; a new request meanwhile: {'200' if served else 'FAILED'}"
    ok = served and still == 0
    return Row(f"router: slowloris, --header-timeout {SLOW_HEAD_TIMEOUT}", "pass" if ok else "fail", detail)


# ---------------------------------------------------------------- supervisor checks


def crash_loop_row(binary: str, work: Path, instances: int, seconds: float) -> Row:
    app = work / "crash"
    app.mkdir()
    (app / "Procfile").write_text("crash: sleep 0.1; exit 1\n")
    marker = uuid.uuid4().hex
    port = free_port_base(list(range(instances)))
    hl = Hlocal(binary, app, ["-p", str(port), "--restart", "always", f"crash={instances}"], marker)
    try:
        time.sleep(min(5.0, seconds / 4))  # let every instance crash once; the allocator warms up
        fds0, rss0, crashes0 = hl.fds(), hl.rss_kib(), hl.output().count("Process exited")
        time.sleep(seconds - min(5.0, seconds / 4))
        fds1, rss1, crashes1 = hl.fds(), hl.rss_kib(), hl.output().count("Process exited")
        alive = hl.proc.poll() is None
    finally:
        hl.stop()
        kill_marked(marker)
    flat = alive and fds1 - fds0 <= 4 and rss0 is not None and rss1 is not None and rss1 - rss0 <= 2048
    detail = (f"{crashes1} crashes in {seconds:.0f} s ({crashes1 - crashes0} while sampled); "
              f"hlocal fds {fds0} → {fds1}, RSS {mib(rss0)} → {mib(rss1)}")
    return Row(f"supervisor: crash loop, {instances} instances", "pass" if flat else "fail", detail)


def kill9_row(binary: str, work: Path, rounds: int) -> Row:
    app = work / "kill9"
    app.mkdir()
    (app / "backend.py").write_text(BACKEND)
    # A web server, a plain sleeper, and a shell with a background grandchild.
    (app / "Procfile").write_text(
        "web: python3 backend.py\nworker: sleep 300\nfamily: sleep 300 & sleep 300; wait\n"
    )
    left_total, details = 0, []
    for _ in range(rounds):
        marker = uuid.uuid4().hex
        port = free_port_base([0, 1, 100, 200])
        hl = Hlocal(binary, app, ["-p", str(port), "--header-timeout", SLOW_HEAD_TIMEOUT], marker)
        delay = random.uniform(0.02, 1.5)
        time.sleep(delay)
        hl.proc.send_signal(signal.SIGKILL)
        hl.proc.wait()
        # The watchdog SIGTERMs at once and SIGKILLs after 3 s.
        wait_for(lambda: not marked_pids(marker), 6, 0.1)
        leftover = marked_pids(marker)
        left_total += len(leftover)
        details.append(f"{delay:.2f} s: {len(leftover)} left")
        kill_marked(marker)
    verdict = "pass" if left_total == 0 else "fail"
    return Row(f"supervisor: kill -9 of hlocal, {rounds} random moments", verdict, "; ".join(details))


# ---------------------------------------------------------------- main


def router_rows(binary: str, work: Path, idle: int) -> list[Row]:
    app = work / "router"
    app.mkdir()
    (app / "backend.py").write_text(BACKEND)
    (app / "Procfile").write_text("web: python3 backend.py\n")
    marker = uuid.uuid4().hex
    port = free_port_base([0, 1])
    hl = Hlocal(binary, app, ["-p", str(port), "--header-timeout", SLOW_HEAD_TIMEOUT], marker)
    try:
        if not wait_for(lambda: get_ok(port, 1.0), 20, 0.2):
            return [Row("router: start", "fail", "no 200 from the router within 20 s")]
        rows = smuggling_rows(hl, port) + header_limit_rows(hl, port)
        rows.append(idle_connections_row(hl, port, idle))
        rows.append(slowloris_row(port))
        if hl.proc.poll() is not None:
            rows.append(Row("router: hlocal still running", "fail", f"exited {hl.proc.returncode}"))
        return rows
    finally:
        hl.stop()
        kill_marked(marker)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hlocal", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--idle", type=int, default=5000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.idle + 1000)), hard))
    work = Path(args.work)
    rows = router_rows(args.hlocal, work, args.idle)
    rows.append(crash_loop_row(args.hlocal, work, 50, 25))
    rows.append(kill9_row(args.hlocal, work, 5))
    print(table(["check", "result", "what was seen"], [[r.check, r.verdict, r.detail] for r in rows]))
    failed = [r for r in rows if r.verdict == "fail"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
