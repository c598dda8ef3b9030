"""A real redis-server on a loopback port, started and stopped by the test that needs it
(Debian's package: `make tools` installs it)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from redis import Redis

from tests.support.process import free_port


class RedisServer:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: run `make tools` (Debian's package)"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._directory),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        for _ in range(200):
            try:
                if client.ping():
                    break
            except Exception:
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        """Stop the server this object started (by its own PID), and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        client = Redis.from_url(self.url)
        client.flushall()
        client.close()
