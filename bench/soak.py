"""make soak: mixed traffic against the gateway for a long time; RSS and open files stay flat.

Plain and streaming requests from several wrk processes at once, sampled every
SOAK_SAMPLE_SECONDS for SOAK_SECONDS (default 30 minutes). Not part of CI.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.main import (
    ROOT,
    free_port,
    gateway_config,
    memory_mb,
    start_fake,
    start_gateway,
    stop,
)

SECONDS = int(os.environ.get("SOAK_SECONDS", "1800"))
SAMPLE_EVERY = int(os.environ.get("SOAK_SAMPLE_SECONDS", "30"))
LATENCY_MS = float(os.environ.get("SOAK_UPSTREAM_LATENCY_MS", "20"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        upstream_port, gateway_port = free_port(), free_port()
        # 20 ms per answer: a steady, realistic load rather than a CPU-saturating one
        # (saturation is what `make bench` measures).
        fake = start_fake(upstream_port, latency_ms=LATENCY_MS)
        gateway, _ = start_gateway(
            gateway_config(directory, upstream_port), gateway_port, directory / "gateway.log"
        )
        url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
        loads = []
        try:
            for stream, connections in (("0", 8), ("1", 8)):
                env = {
                    **os.environ,
                    "BENCH_KEY": "llmg_dev_only_insecure_local_key",
                    "BENCH_STREAM": stream,
                }
                loads.append(
                    subprocess.Popen(
                        [
                            "wrk",
                            "-t",
                            "1",
                            "-c",
                            str(connections),
                            "-d",
                            f"{SECONDS}s",
                            "-s",
                            str(ROOT / "bench/wrk_post.lua"),
                            url,
                        ],
                        env=env,
                        stdout=subprocess.DEVNULL,
                    )
                )
            samples = []
            started = time.monotonic()
            while time.monotonic() - started < SECONDS:
                time.sleep(SAMPLE_EVERY)
                rss = memory_mb(gateway.pid)[0]
                fds = len(os.listdir(f"/proc/{gateway.pid}/fd"))
                samples.append((rss, fds))
                print(
                    f"{time.monotonic() - started:7.0f}s  rss {rss:6.1f} MB  fds {fds}", flush=True
                )
        finally:
            for load in loads:
                load.terminate()
                load.wait()
            stop(gateway)
            stop(fake)
        if len(samples) >= 4:
            quarter = len(samples) // 4
            early = max(r for r, _ in samples[:quarter])
            late = max(r for r, _ in samples[-quarter:])
            print(
                f"RSS first quarter max {early:.1f} MB, last quarter max {late:.1f} MB "
                f"({late - early:+.1f} MB); fds {samples[0][1]} -> {samples[-1][1]}"
            )


if __name__ == "__main__":
    main()
