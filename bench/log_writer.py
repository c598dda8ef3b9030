"""The request-log writer alone: CPU per row for the SQLite writer (a batch of rows with
their roll-ups, as the gateway writes them), without the gateway around it. The CPU is
this process's (the queue, the pickles) and the writing process's (SQLite), apart.

    .venv/bin/python -m bench.log_writer [rows]
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench.usage_queries import row
from proxy.storage.sqlite import SQLiteLogWriter


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(path: Path, count: int) -> tuple[float, float, float]:
    """(us of this process's CPU per row, us of the writing process's, seconds)"""
    writer = SQLiteLogWriter(str(path), batch_size=200, flush_interval_ms=500)
    await writer.start()
    rng = random.Random(7)
    start = time.time() - 86400
    rows = [row(i, start, rng) for i in range(count)]
    pid = writer.process_id
    assert pid is not None
    began, child_began, wall = cpu_s(), process_cpu_s(pid), time.perf_counter()
    for i, item in enumerate(rows):
        writer.enqueue(item)
        if i % 16 == 0:
            await asyncio.sleep(0)  # as requests would: the writer runs between them
    while writer.rows_written < count:
        await asyncio.sleep(0.01)
    own, child = cpu_s() - began, process_cpu_s(pid) - child_began
    wall = time.perf_counter() - wall
    await writer.close()
    return own / count * 1e6, child / count * 1e6, wall


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        own, child, wall = asyncio.run(measure(Path(tmp) / "log.db", count))
    print(
        f"{count:,} rows: {own + child:.1f} us of CPU per row: {own:.1f} queueing and "
        f"sending, {child:.1f} in the writing process ({wall:.2f} s)"
    )


if __name__ == "__main__":
    main()
