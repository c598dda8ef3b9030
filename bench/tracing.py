"""What traces cost: the gateway's CPU per request with `[tracing]` off and on.

`python -m bench.tracing` starts the fake upstream and, in turn, the gateway as
`make bench` runs it (tracing off), then with `[tracing] enabled = true` at
`sample_ratio = 1.0` (every request traced: the worst case) and at 0.1, exporting over
OTLP/HTTP to a sink on loopback that answers 200 and counts the spans it receives. Each
variant runs `ROUNDS` times, in turn, to spread the machine's drift over all; medians
are reported. The sink runs in this process, so its CPU is not the gateway's.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.main import (
    DURATION_S,
    ROOT,
    cpu_costs,
    free_port,
    gateway_config,
    start_fake,
    start_gateway,
    stop,
)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


class Sink(BaseHTTPRequestHandler):
    """POST /v1/traces: read, count the spans, answer 200."""

    spans = 0
    exports = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        count = sum(
            len(scope.spans) for spans in message.resource_spans for scope in spans.scope_spans
        )
        with Sink.lock:
            Sink.spans += count
            Sink.exports += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


def traced_config(plain: Path, sink_port: int, ratio: float) -> Path:
    path = plain.with_name(f"gateway-traced-{ratio:g}.toml")
    path.write_text(
        plain.read_text()
        + f'\n[tracing]\nenabled = true\nendpoint = "http://127.0.0.1:{sink_port}/v1/traces"\n'
        + f"sample_ratio = {ratio}\n"
    )
    return path


def measure(config: Path, port: int, log: Path) -> dict[str, float]:
    gateway, _ = start_gateway(config, port, log)
    try:
        return cpu_costs(f"http://127.0.0.1:{port}/v1/chat/completions", gateway.pid)
    finally:
        stop(gateway)  # its lifespan flushes the last spans


def main() -> None:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": [], "on, 10%": []}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        upstream_port, gateway_port = free_port(), free_port()
        fake = start_fake(upstream_port)
        plain = gateway_config(directory, upstream_port)
        sink_port = sink.server_address[1]
        configs = {
            "off": plain,
            "on": traced_config(plain, sink_port, 1.0),
            "on, 10%": traced_config(plain, sink_port, 0.1),
        }
        try:
            for _ in range(ROUNDS):
                for variant, config in configs.items():
                    runs[variant].append(measure(config, gateway_port, directory / "gw.log"))
        finally:
            stop(fake)
            sink.shutdown()
    report(runs)


def report(runs: dict[str, list[dict[str, float]]]) -> None:
    def median(variant: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[variant])

    print(f"\nTracing off / on (all sampled) / on (10% sampled), c=16, {DURATION_S}s x {ROUNDS}:")
    result: dict[str, float] = {}
    for key, label in (
        ("cpu_ms_per_request", "CPU ms per plain request"),
        ("cpu_ms_per_stream", "CPU ms per 20-chunk stream"),
        ("requests_per_s", "plain requests/s"),
        ("streams_per_s", "streams/s"),
    ):
        values = {variant: median(variant, key) for variant in runs}
        result.update({f"{key} ({variant})": value for variant, value in values.items()})
        off, on, tenth = values["off"], values["on"], values["on, 10%"]
        print(
            f"  {label:<27} {off:9.3f} / {on:9.3f} / {tenth:9.3f}  "
            f"({on / off:.2f}x, {tenth / off:.2f}x)"
        )
    # Two spans a sampled request (the request's and its attempt's): the exports kept up.
    print(f"  spans the sink received: {Sink.spans}, in {Sink.exports} exports")
    result["spans_received"] = Sink.spans
    out = ROOT / "bench/results"
    out.mkdir(exist_ok=True)
    (out / "tracing.json").write_text(json.dumps({"runs": runs, "medians": result}, indent=2))
    print(f"\nwritten to {out / 'tracing.json'}")


if __name__ == "__main__":
    main()
