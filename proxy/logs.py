"""Structured logging: JSON lines in production, a readable console in development."""

from __future__ import annotations

import asyncio
import logging
import select
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog


def configure_logging(format: str = "console", level: str = "info") -> None:
    renderer: structlog.types.Processor
    logger_factory: Callable[..., Any]
    if format == "json":
        # orjson straight to bytes: the access line is on every request's path.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        logger_factory = structlog.BytesLoggerFactory(sys.stderr.buffer)
    else:
        # Plain tracebacks: rich ones print local variables, which can hold request headers.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        logger_factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_number(level)),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )


def level_number(level: str) -> int:
    """A configured level name ("info") as the logging module's number."""
    return logging.getLevelNamesMapping()[level.upper()]


class AccessLog:
    """The one line every answered request leaves, written without structlog's processor
    chain in JSON mode: the same fields (`event`, `level`, `timestamp` and the request's),
    at about a fifth of the cost, which every request pays. The console format, for
    development, goes through structlog as every other line does.

    JSON lines leave in one write per turn of the event loop: under load several requests
    end in the same turn, and a system call per line was a measurable share of a request's
    CPU. A line waits at most until the end of the turn its request ended in. No write is
    larger than PIPE_BUF: workers share their stderr, and a pipe (journald, docker) keeps
    only writes up to that size whole, so a larger one could be interleaved mid-line with
    another worker's."""

    def __init__(self, format: str = "console", level: str = "info") -> None:
        self.enabled = level_number(level) <= logging.INFO
        # structlog's own writer to the same stream: it shares that stream's lock, so an
        # access line never interleaves with another line.
        self._out = structlog.BytesLogger(sys.stderr.buffer) if format == "json" else None
        self._console = structlog.get_logger("proxy.access")
        self._second = -1
        self._stamp = ""
        self._pending: list[bytes] = []

    def write(self, fields: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self._out is None:
            self._console.info("request", **fields)
            return
        fields["event"] = "request"
        fields["level"] = "info"
        fields["timestamp"] = self._timestamp()
        # repr for anything orjson cannot encode, as structlog's renderer did: the line
        # must never turn into the request's error.
        self._pending.append(orjson.dumps(fields, default=repr))
        if len(self._pending) > 1:
            return  # the turn's write is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop (a caller outside the server): write it now
            self.flush()

    def flush(self) -> None:
        """Write the lines waiting for the end of the loop's turn, if any."""
        if not self._pending or self._out is None:
            return
        lines, self._pending = self._pending, []
        start, size = 0, 0
        for end, line in enumerate(lines):
            if size and size + len(line) + 1 > select.PIPE_BUF:
                self._out.msg(b"\n".join(lines[start:end]))
                start, size = end, 0
            size += len(line) + 1
        self._out.msg(b"\n".join(lines[start:]))

    def _timestamp(self) -> str:
        """ISO 8601 in UTC with microseconds, as structlog's TimeStamper writes it; the
        date and time of day are formatted once per second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1e6):06d}Z"
