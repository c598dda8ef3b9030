"""A real PostgreSQL server on a loopback port, started and stopped by the tests that need
it (Debian's `postgresql` package: `make tools` installs it).

The cluster lives in a directory of its own, listens on 127.0.0.1 only (no Unix socket),
trusts loopback connections, and trades durability for speed (fsync off): it is thrown
away with the test session. PostgreSQL refuses to run as root, so as root the server runs
as the `postgres` user the package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.process import free_port


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    assert found, f"{name} is not installed: run `make tools` (Debian's postgresql package)"
    return found


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        # Not under pytest's own temporary directory: the server's user must reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="llmg-pg-"))
        self.data = self.directory / "data"
        # Started with the user's ids set (not through runuser), so the PID is the server's.
        self._as_owner: dict[str, Any] = {}
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            self._as_owner = {"user": "postgres", "group": "postgres", "extra_groups": []}
        self.process: subprocess.Popen[bytes] | None = None
        self._databases = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        if not self.data.exists():
            subprocess.run(
                [
                    _binary("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                **self._as_owner,
            )
        self.process = subprocess.Popen(
            [
                _binary("postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self._as_owner,
        )
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [_binary("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            if ready.returncode == 0:
                return self
            assert self.process.poll() is None, "postgres exited at start-up"
            assert time.monotonic() < deadline, "postgres did not accept connections in 30 s"
            time.sleep(0.05)

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        self._databases += 1
        name = f"test_{self._databases}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [_binary("psql"), self.url(database), "-tAc", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    def stop(self) -> None:
        """Stop the server this object started, by its own PID. SIGINT is PostgreSQL's fast
        shutdown: it ends client sessions (SIGTERM would wait for every client to leave)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
