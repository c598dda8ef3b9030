"""The request-log writer alone: CPU per row for the SQLite writer (a batch of rows with
their roll-ups, as the gateway writes them), without the gateway around it.

    .venv/bin/python -m bench.log_writer [rows]
"""

from __future__ import annotations

import asyncio
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


async def measure(path: Path, count: int) -> tuple[float, float]:
    writer = SQLiteLogWriter(str(path), batch_size=200, flush_interval_ms=500)
    await writer.start()
    rng = random.Random(7)
    start = time.time() - 86400
    rows = [row(i, start, rng) for i in range(count)]
    began, wall = cpu_s(), time.perf_counter()
    for i, item in enumerate(rows):
        writer.enqueue(item)
        if i % 16 == 0:
            await asyncio.sleep(0)  # as requests would: the writer runs between them
    await writer.close()
    assert writer.rows_written == count
    return (cpu_s() - began) / count * 1e6, time.perf_counter() - wall


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        per_row, wall = asyncio.run(measure(Path(tmp) / "log.db", count))
    print(f"{count:,} rows: {per_row:.1f} us of CPU per row ({wall:.2f} s)")


if __name__ == "__main__":
    main()
