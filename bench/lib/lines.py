"""Reading a child's output line by line, each line stamped with when it arrived."""

from __future__ import annotations

import os
import re
import select

import procs


class LineReader:
    """Lines from a pipe, each with the monotonic time its last byte was read.

    One thread, one poll(): the stamp is taken right after the read that completed the
    line, so it is as close to the moment the runner wrote it as we can see.
    """

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)
        self.buf = b""
        self.ready: list[tuple[float, str]] = []
        self.eof = False
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN | select.POLLHUP)
        self.history: list[tuple[float, str]] = []

    def _fill(self, timeout: float) -> None:
        if self.eof:
            return
        if not self.poller.poll(max(0, int(timeout * 1000))):
            return
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        t = procs.now()
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        *whole, self.buf = self.buf.split(b"\n")
        for raw in whole:
            self.ready.append((t, raw.decode(errors="replace")))

    def next_line(self, deadline: float) -> tuple[float, str] | None:
        """The next line, or None at end of file or past the deadline."""
        while not self.ready:
            left = deadline - procs.now()
            if left <= 0 or self.eof:
                return None
            self._fill(min(left, 0.5))
        item = self.ready.pop(0)
        self.history.append(item)
        return item

    def wait_for(self, pattern: str, deadline: float) -> float | None:
        """Time of the next line matching PATTERN (a regex), or None."""
        rx = re.compile(pattern)
        while (item := self.next_line(deadline)) is not None:
            if rx.search(item[1]):
                return item[0]
        return None

    def drain(self) -> None:
        """Consumes whatever is already there, without waiting."""
        while True:
            self._fill(0)
            if not self.ready:
                return
            while self.ready:
                self.history.append(self.ready.pop(0))
