"""`serve --workers N`: N gateway processes on one listening socket, and their supervisor.

The supervisor binds the socket and forks the workers, which accept from it in turn, so
every core serves and nothing is proxied in between. It forwards SIGTERM and SIGINT (each
worker drains as a single gateway does, then the supervisor exits 0) and SIGHUP (each
reloads its config), and restarts a worker that dies on its own, unless workers keep
dying right after they start (then it stops them all and exits 1).

Metrics are prometheus_client's multiprocess mode (`proxy.metrics`): a scrape of any worker
is the group's. State that must hold across workers (limits, budgets, cache) needs
`[state] backend = "redis"`; with the in-process backend every worker would enforce each
limit on its own, which `serve` refuses unless told that is acceptable.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog

from proxy.middleware import reseed

log = structlog.get_logger("proxy.workers")

# A worker that dies this soon after starting, this many times running, is not restarted.
CRASH_WINDOW_S = 5.0
CRASH_LIMIT = 3
PR_SET_PDEATHSIG = 1


def worker_count(value: str) -> int:
    """`--workers`: a positive number, or `auto` for one per core."""
    if value == "auto":
        return os.cpu_count() or 1
    count = int(value)
    if count < 1:
        raise ValueError("--workers must be at least 1")
    return count


def metrics_directory() -> str:
    """A fresh directory for the workers' metric files (set before any metric exists)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        directory = tempfile.mkdtemp(prefix="llm-gateway-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, count: int, sock: socket.socket, run_worker: Callable[[], int]) -> None:
        self._count = count
        self._sock = sock
        self._run_worker = run_worker
        self._workers: dict[int, float] = {}  # pid -> started at
        self._stopping = False
        self._crashes = 0

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        signal.signal(signal.SIGHUP, self._forward)
        for _ in range(self._count):
            self._spawn()
        log.info("workers_started", workers=self._count, pids=sorted(self._workers))
        failed = False
        while self._workers:
            pid, status = os.wait()
            started = self._workers.pop(pid, None)
            if started is None:
                continue
            self._mark_dead(pid)
            code = os.waitstatus_to_exitcode(status)
            if self._stopping:
                continue
            log.warning("worker_died", pid=pid, exit_code=code)
            quick = time.monotonic() - started < CRASH_WINDOW_S
            self._crashes = self._crashes + 1 if quick else 0
            if self._crashes >= CRASH_LIMIT:
                log.error("workers_keep_dying", crashes=self._crashes)
                failed = True
                self._stop(signal.SIGTERM, None)
                continue
            self._spawn()
        self._sock.close()
        return 1 if failed else 0

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                _die_with_parent()
                reseed()
                code = self._run_worker()
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self._workers[pid] = time.monotonic()

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        self._stopping = True
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _forward(self, sig: int, frame: FrameType | None) -> None:
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    @staticmethod
    def _mark_dead(pid: int) -> None:
        """Its live gauges (requests in flight) leave the group's sums."""
        from prometheus_client import multiprocess

        with contextlib.suppress(Exception):
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _die_with_parent() -> None:
    """A worker outlives no supervisor, however that one ends (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the supervisor is already gone
            sys.exit(1)


def remove_metrics_directory(directory: str) -> None:
    if directory.startswith(tempfile.gettempdir()):
        shutil.rmtree(directory, ignore_errors=True)
