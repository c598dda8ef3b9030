"""make bench: the gateway against a direct call to the same fake upstream, and against
the floor (`bench/floor.py`: the least a Starlette+aiohttp proxy does), in one run.

Three processes share this 2-core machine: the fake upstream, the proxy under test and
the load generator (wrk, or the streaming client below). Absolute figures move with
whatever else the machine is doing; the ratios and differences measured back to back
are what to compare. Throughput is also measured with `--workers 2`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "llmg_dev_only_insecure_local_key"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DURATION_S = int(os.environ.get("BENCH_SECONDS", "5"))
FLOOR_ROUNDS = max(1, int(os.environ.get("BENCH_FLOOR_ROUNDS", "3")))
STREAM_SAMPLES = 200
# A benchmark stream: the first chunk, then 20 content chunks, the finish, usage, [DONE].
CHUNKS_AFTER_FIRST = 23


@dataclass
class LoadResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB, resident now and the peak so far, of a process and all its
    descendants (the request log's writing process included). Summed, so pages they
    share count twice and peaks that came at different times are added: an upper bound."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {k: int(re.search(rf"{k}:\s+(\d+)", status).group(1)) for k in ("VmRSS", "VmHWM")}  # type: ignore[union-attr]
    rss, peak = values["VmRSS"] / 1024, values["VmHWM"] / 1024
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        child_rss, child_peak = memory_mb(int(child))
        rss, peak = rss + child_rss, peak + child_peak
    return rss, peak


def wait_ready(url: str, timeout_s: float = 10) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"{url} never became ready")


def start_fake(port: int, latency_ms: float = 0) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_upstream", str(port), str(latency_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def gateway_config(directory: Path, upstream_port: int) -> Path:
    path = directory / "gateway.toml"
    path.write_text(f"""
[server]
host = "127.0.0.1"
[[keys]]
name = "dev"
dev_only = true
[providers.fake]
type = "openai_compatible"
base_url = "http://127.0.0.1:{upstream_port}/v1"
[[models]]
alias = "bench"
routes = [{{ provider = "fake", model = "fake-model", input_price = 0.15, output_price = 0.6 }}]
[storage]
database = "{directory / "bench.db"}"
[logging]
format = "json"
[cache]
enabled = false   # identical requests would otherwise measure the cache, not the proxy
""")
    return path


def start_gateway(
    config: Path, port: int, log: Path, workers: int = 1
) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    extra = ["--workers", str(workers), "--allow-per-process-state"] if workers > 1 else []
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/llm-gateway"),
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    wait_ready(f"http://127.0.0.1:{port}/readyz")
    return process, time.perf_counter() - started


def start_floor(port: int, upstream_port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.floor", str(port), str(upstream_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/readyz")
    return process


def group_cpu_seconds(pid: int) -> float:
    """A process and all its descendants: a supervisor, its workers, and each one's
    request-log writing process."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(group_cpu_seconds(int(child)) for child in children)


def cpu_costs(url: str, pid: int) -> dict[str, float]:
    """CPU per plain request and per streamed chunk (beyond a plain request's), at c=16."""
    cpu = group_cpu_seconds(pid)
    plain = wrk(url, 16)
    per_request = (group_cpu_seconds(pid) - cpu) * 1000 / plain.requests
    cpu = group_cpu_seconds(pid)
    streams = wrk(url, 16, stream=True)
    per_stream = (group_cpu_seconds(pid) - cpu) * 1000 / streams.requests
    return {
        "cpu_ms_per_request": per_request,
        "cpu_ms_per_stream": per_stream,
        "cpu_ms_per_chunk": (per_stream - per_request) / CHUNKS_AFTER_FIRST,
        "requests_per_s": plain.requests_per_s,
        "streams_per_s": streams.requests_per_s,
    }


def against_floor(gateway_url: str, gateway_pid: int, floor_url: str, floor_pid: int) -> dict:  # type: ignore[type-arg]
    """The gateway and the floor measured in turns, FLOOR_ROUNDS times: on a shared
    machine a single run of each moves by 10-25 %, so each figure is the median of its
    rounds, and the spread of the per-round ratios is reported beside it."""
    rounds = [
        (cpu_costs(gateway_url, gateway_pid), cpu_costs(floor_url, floor_pid))
        for _ in range(FLOOR_ROUNDS)
    ]
    return {
        "gateway_costs": _median([g for g, _ in rounds]),
        "floor_costs": _median([f for _, f in rounds]),
        "ratio_rounds": [g["cpu_ms_per_request"] / f["cpu_ms_per_request"] for g, f in rounds],
    }


def _median(costs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(c[name] for c in costs) for name in costs[0]}


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(url: str, connections: int, stream: bool = False) -> LoadResult:
    env = {**os.environ, "BENCH_KEY": KEY, "BENCH_STREAM": "1" if stream else "0"}
    output = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{DURATION_S}s",
            "--latency",
            "-s",
            str(ROOT / "bench/wrk_post.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests against {url}")
    return LoadResult(
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=requests,
    )


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def stream_timings(port: int, path: str, samples: int) -> tuple[list[float], list[float]]:
    """Time to first body byte and to the end of the stream, one keep-alive connection."""
    body = json.dumps(
        {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "ping"}]}
    ).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    first, total = [], []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(samples):
            started = time.perf_counter()
            sock.sendall(request)
            received = b""
            first_at = None
            while b"data: [DONE]" not in received or not _complete(received):
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed mid-stream")
                received += chunk
                if first_at is None and b"data:" in received:
                    first_at = time.perf_counter()
            done = time.perf_counter()
            assert first_at is not None
            first.append((first_at - started) * 1000)
            total.append((done - started) * 1000)
    return first, total


def _complete(received: bytes) -> bool:
    # Chunked responses end with a zero-length chunk; content-length ones with [DONE]\n\n.
    return received.endswith(b"0\r\n\r\n") or received.endswith(b"[DONE]\n\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        upstream_port, gateway_port = free_port(), free_port()
        fake = start_fake(upstream_port)
        config = gateway_config(directory, upstream_port)
        log = directory / "gateway.log"
        try:
            startups = []
            for _ in range(3):
                gateway, seconds = start_gateway(config, gateway_port, log)
                startups.append(seconds)
                stop(gateway)
            gateway, seconds = start_gateway(config, gateway_port, log)
            startups.append(seconds)
            results["startup_s"] = statistics.median(startups)
            time.sleep(0.5)
            results["rss_idle_mb"] = memory_mb(gateway.pid)[0]
            results.update(measure(upstream_port, gateway_port, gateway.pid))
            results["rss_peak_mb"] = memory_mb(gateway.pid)[1]
            floor_port = free_port()
            floor = start_floor(floor_port, upstream_port)
            try:
                results.update(
                    against_floor(
                        f"http://127.0.0.1:{gateway_port}/v1/chat/completions",
                        gateway.pid,
                        f"http://127.0.0.1:{floor_port}/v1/chat/completions",
                        floor.pid,
                    )
                )
            finally:
                stop(floor)
            stop(gateway)
            workers, _ = start_gateway(config, gateway_port, log, workers=2)
            try:
                results["two_workers"] = cpu_costs(
                    f"http://127.0.0.1:{gateway_port}/v1/chat/completions", workers.pid
                )
            finally:
                stop(workers)
        finally:
            if "gateway" in locals():
                stop(gateway)
            stop(fake)
    report(results)


def measure(upstream_port: int, gateway_port: int, pid: int) -> dict[str, object]:
    direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
    through = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
    out: dict[str, object] = {}
    for connections in (1, 16, 64):
        out[f"direct_c{connections}"] = asdict(wrk(direct, connections))
        cpu = cpu_seconds(pid)
        load = wrk(through, connections)
        out[f"gateway_c{connections}"] = asdict(load)
        out[f"cpu_ms_per_request_c{connections}"] = (cpu_seconds(pid) - cpu) * 1000 / load.requests
    cpu = cpu_seconds(pid)
    streams = wrk(through, 16, stream=True)
    out["cpu_ms_per_stream"] = (cpu_seconds(pid) - cpu) * 1000 / streams.requests
    out["gateway_streams"] = asdict(streams)
    direct_first, direct_total = stream_timings(
        upstream_port, "/v1/chat/completions", STREAM_SAMPLES
    )
    gateway_first, gateway_total = stream_timings(
        gateway_port, "/v1/chat/completions", STREAM_SAMPLES
    )
    out["ttfb_ms"] = {
        "direct_p50": percentile(direct_first, 0.5),
        "direct_p99": percentile(direct_first, 0.99),
        "gateway_p50": percentile(gateway_first, 0.5),
        "gateway_p99": percentile(gateway_first, 0.99),
        "direct_total_p50": percentile(direct_total, 0.5),
        "gateway_total_p50": percentile(gateway_total, 0.5),
    }
    return out


def report(r: dict[str, object]) -> None:
    rows = []
    for c in (1, 16, 64):
        d, g = r[f"direct_c{c}"], r[f"gateway_c{c}"]
        assert isinstance(d, dict) and isinstance(g, dict)
        rows.append(
            f"  c={c:<3} direct {d['requests_per_s']:>8.0f} req/s  p50 {d['p50_ms']:6.2f} ms  "
            f"p99 {d['p99_ms']:6.2f} ms | gateway {g['requests_per_s']:>8.0f} req/s  "
            f"p50 {g['p50_ms']:6.2f} ms  p99 {g['p99_ms']:6.2f} ms  "
            f"({g['requests_per_s'] / d['requests_per_s']:.2f}x throughput)"
        )
    ttfb = r["ttfb_ms"]
    assert isinstance(ttfb, dict)
    d1, g1 = r["direct_c1"], r["gateway_c1"]
    assert isinstance(d1, dict) and isinstance(g1, dict)
    added_p50 = g1["p50_ms"] - d1["p50_ms"]
    added_ttfb = ttfb["gateway_p50"] - ttfb["direct_p50"]
    checks = [
        ("gateway CPU per request (c=16)", r["cpu_ms_per_request_c16"], 0.5, "ms"),
        ("added p50 latency at c=1", added_p50, 1.0, "ms"),
        ("added streaming TTFB (p50)", added_ttfb, 1.5, "ms"),
        ("CPU per 20-chunk stream", r["cpu_ms_per_stream"], 5.0, "ms"),
        ("ready after start (median of 4)", r["startup_s"], 1.0, "s"),
        ("resident memory, peak", r["rss_peak_mb"], 100.0, "MB"),
    ]
    print(f"\nNon-streaming POST /v1/chat/completions (wrk, {DURATION_S}s each):")
    print("\n".join(rows))
    print(
        f"\nStreaming (20 chunks, {STREAM_SAMPLES} sequential): TTFB p50 direct "
        f"{ttfb['direct_p50']:.3f} ms, gateway {ttfb['gateway_p50']:.3f} ms; p99 direct "
        f"{ttfb['direct_p99']:.3f} ms, gateway {ttfb['gateway_p99']:.3f} ms; whole stream "
        f"p50 direct {ttfb['direct_total_p50']:.3f} ms, gateway {ttfb['gateway_total_p50']:.3f} ms"
    )
    print(
        f"CPU per request at c=1/16/64: {r['cpu_ms_per_request_c1']:.3f} / "
        f"{r['cpu_ms_per_request_c16']:.3f} / {r['cpu_ms_per_request_c64']:.3f} ms"
    )
    print(f"Resident memory: idle {r['rss_idle_mb']:.1f} MB, peak {r['rss_peak_mb']:.1f} MB")
    gateway, floor, two = r["gateway_costs"], r["floor_costs"], r["two_workers"]
    assert isinstance(gateway, dict) and isinstance(floor, dict) and isinstance(two, dict)
    print(
        f"\nAgainst the floor (bench/floor.py), c=16, CPU of the proxy process(es), "
        f"medians of {FLOOR_ROUNDS} alternating rounds (2 workers: one run):"
    )
    for name, costs in (("floor", floor), ("gateway", gateway), ("gateway x2", two)):
        print(
            f"  {name:<11} {costs['cpu_ms_per_request']:.3f} ms/request  "
            f"{costs['cpu_ms_per_chunk'] * 1000:.1f} us/chunk  "
            f"{costs['requests_per_s']:>6.0f} req/s  {costs['streams_per_s']:>6.0f} streams/s"
        )
    request_ratio = gateway["cpu_ms_per_request"] / floor["cpu_ms_per_request"]
    chunk_ratio = gateway["cpu_ms_per_chunk"] / floor["cpu_ms_per_chunk"]
    r["ratio_cpu_per_request"], r["ratio_cpu_per_chunk"] = request_ratio, chunk_ratio
    spread = r["ratio_rounds"]
    assert isinstance(spread, list)
    print(
        f"  gateway / floor: {request_ratio:.2f}x per request (rounds {min(spread):.2f}-"
        f"{max(spread):.2f}x), {chunk_ratio:.2f}x per chunk; "
        f"2 workers / 1: {two['requests_per_s'] / gateway['requests_per_s']:.2f}x req/s, "
        f"{two['streams_per_s'] / gateway['streams_per_s']:.2f}x streams/s\n"
    )
    checks += [
        ("gateway / floor CPU per request", request_ratio, 2.0, "x"),
        ("gateway / floor CPU per streamed chunk", chunk_ratio, 1.1, "x"),
    ]
    for label, value, target, unit in checks:
        assert isinstance(value, float)
        verdict = "PASS" if value <= target else "FAIL"
        print(f"  {verdict}  {label}: {value:.3f} {unit} (target <= {target:g} {unit})")
    out = ROOT / "bench/results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(r, indent=2))
    print(f"\nwritten to {out / 'latest.json'}")


if __name__ == "__main__":
    main()
