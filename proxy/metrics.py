"""Prometheus metrics: one registry per app, bounded labels, recorded once per request.

Labels are bounded by construction: aliases and providers come from the config (anything
else is "other"), status is a class ("2xx"), and key names appear only when
`metrics.per_key_labels` is on.

With several workers (`serve --workers N`), prometheus_client's multiprocess mode is on
(`PROMETHEUS_MULTIPROC_DIR`): each worker writes its values to files there and any worker's
scrape adds them up, so one scrape is the whole process group. Gauges say how: requests in
flight add up, a circuit is as open as it is in any worker, the state backend is up only
if it is in every worker.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Container, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from proxy.record import RequestRecord

# LLM calls take from tens of milliseconds to minutes.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
OTHER = "other"


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    def __init__(self, per_key_labels: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess()
        self._log_stats: LogWriterStats | None = None
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # Keyed by what labels a request: api, alias, provider, status class, stream, key.
        self._series: dict[tuple[str, str, str, int, bool, str | None], Series] = {}
        self.per_key_labels = per_key_labels
        r = self.registry
        request_labels = ["api", "alias", "provider", "status_class"]
        if per_key_labels:
            request_labels.append("key")
        self.requests = Counter(
            "gateway_requests", "Client requests answered.", request_labels, registry=r
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to the last byte.",
            ["alias", "provider", "stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time to the first streamed content.",
            ["alias", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "The gateway's own time per request (total minus time waiting on upstreams).",
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.attempt_duration = Histogram(
            "gateway_upstream_attempt_duration_seconds",
            "One upstream call.",
            ["provider", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Failed upstream attempts.",
            ["provider", "reason"],
            registry=r,
        )
        self.fallbacks = Counter(
            "gateway_fallbacks",
            "Requests answered by a route other than the first tried.",
            ["alias"],
            registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens", "Tokens processed.", ["alias", "provider", "type"], registry=r
        )
        self.cost = Counter(
            "gateway_cost_usd",
            "Cost of answered requests, USD.",
            ["alias", "provider"],
            registry=r,
        )
        self.in_flight = Gauge(
            "gateway_in_flight_requests",
            "Requests being processed.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.circuit = Gauge(
            "gateway_circuit_state",
            "Circuit per provider: 0 closed, 1 open, 2 half-open.",
            ["provider"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.cache = Counter(
            "gateway_cache_requests", "Response cache lookups.", ["result"], registry=r
        )
        self.reloads = Counter("gateway_config_reloads", "Config reloads.", ["result"], registry=r)
        self.budget_alerts = Counter(
            "gateway_budget_alerts", "Budget threshold crossings.", ["threshold"], registry=r
        )
        self.state_up = Gauge(
            "gateway_state_backend_up",
            "1 while the shared state (Redis) answers, 0 while it cannot be reached.",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.state_errors = Counter(
            "gateway_state_errors", "Calls to the shared state that failed.", registry=r
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """metric.labels(...) memoised: the label sets are bounded, the lookups per request."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def watch_log_writer(self, read: Callable[[], tuple[int, int, int, int, int]]) -> None:
        """The log writer's own counters: read at scrape time in one process; with
        several workers, copied into shared metrics every second (`sync_forever`)."""
        if self.multiprocess:
            self._log_stats = LogWriterStats(read, self.registry)
        else:
            self.registry.register(StatsCollector(read))

    async def sync_forever(self, every_s: float = 1.0) -> None:
        while self._log_stats is not None:
            self._log_stats.sync()
            await asyncio.sleep(every_s)

    def scrape(self) -> bytes:
        """The exposition text: this process's, or the whole worker group's."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        if self._log_stats is not None:
            self._log_stats.sync()
        group = CollectorRegistry()
        MultiProcessCollector(group)  # type: ignore[no-untyped-call]
        return generate_latest(group)

    def observe(self, record: RequestRecord, aliases: Container[str], duration_s: float) -> None:
        alias = record.alias if record.alias is not None and record.alias in aliases else OTHER
        provider = record.provider or "none"
        key_name = record.key_name if self.per_key_labels else None
        key = (record.api, alias, provider, record.status // 100, record.stream, key_name)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._new_series(*key)
        series.requests.inc()
        series.duration.observe(duration_s)
        self.overhead.observe(max(0.0, duration_s - record.upstream_wait_s))
        # The rest only when there is something to count: a child exists (and is exported,
        # at zero) from the moment it is made.
        if record.first_token_s is not None:
            self.child(self.ttft, alias, provider).observe(record.first_token_s)
        for attempt in record.attempts:
            if attempt.outcome == "ok" and attempt.provider == provider:
                if series.answered is None:
                    series.answered = self.child(self.attempt_duration, provider, "ok")
                series.answered.observe(attempt.duration_s)
                continue
            outcome = "ok" if attempt.outcome == "ok" else "error"
            self.child(self.attempt_duration, attempt.provider, outcome).observe(attempt.duration_s)
            if outcome == "error":
                self.child(self.upstream_errors, attempt.provider, attempt.reason_class).inc()
        if (
            record.provider is not None
            and record.attempts
            and (
                record.attempts[0].provider != record.provider
                or record.attempts[0].model != record.route_model
            )
        ):
            self.child(self.fallbacks, alias).inc()
        tokens = record.tokens
        if tokens is not None:
            counted = series.tokens
            for index, count in enumerate((tokens.prompt, tokens.completion, tokens.cached)):
                if count:
                    if counted[index] is None:
                        kind = TOKEN_KINDS[index]
                        counted[index] = self.child(self.tokens, alias, provider, kind)
                    counted[index].inc(count)
        if record.cache_status is not None:
            self.child(self.cache, "hit" if record.cache_status == "HIT" else "miss").inc()
        if record.cost_nano:
            if series.cost is None:
                series.cost = self.child(self.cost, alias, provider)
            series.cost.inc(record.cost_nano / 1e9)

    def _new_series(
        self,
        api: str,
        alias: str,
        provider: str,
        status: int,
        stream: bool,
        key_name: str | None,
    ) -> Series:
        labels = [api, alias, provider, f"{status}xx"]
        if self.per_key_labels:
            labels.append(key_name or "none")
        return Series(
            self.child(self.requests, *labels),
            self.child(self.duration, alias, provider, "true" if stream else "false"),
        )


TOKEN_KINDS = ("prompt", "completion", "cached")


class Series:
    """The children one kind of answered request updates, kept together so a request
    finds them without a lookup each. The request counter and the duration exist with
    the series; the others are made the first time they count something."""

    __slots__ = ("answered", "cost", "duration", "requests", "tokens")

    def __init__(self, requests: Any, duration: Any) -> None:
        self.requests = requests
        self.duration = duration
        self.answered: Any = None  # the attempt duration, answered by this provider
        self.tokens: list[Any] = [None, None, None]  # TOKEN_KINDS
        self.cost: Any = None


class StatsCollector(Collector):
    """Reads counters owned elsewhere (the log writer) at scrape time."""

    def __init__(self, read: Callable[[], tuple[int, int, int, int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        depth, written, dropped, failed, dead = self._read()
        yield GaugeMetricFamily(
            "gateway_log_queue_depth", "Log rows waiting to be written.", value=depth
        )
        yield CounterMetricFamily("gateway_log_rows_written", "Log rows written.", value=written)
        yield CounterMetricFamily(
            "gateway_log_rows_dropped", "Log rows lost because the queue was full.", value=dropped
        )
        yield CounterMetricFamily(
            "gateway_log_batches_failed", "Log batches that failed and were retried.", value=failed
        )
        yield CounterMetricFamily(
            "gateway_log_rows_dead_lettered",
            "Log rows the database refused, written to the log as dead_lettered lines instead.",
            value=dead,
        )


class LogWriterStats:
    """The log writer's counters as shared metrics, for multiprocess mode."""

    def __init__(
        self, read: Callable[[], tuple[int, int, int, int, int]], registry: CollectorRegistry
    ) -> None:
        self._read = read
        self._last = (0, 0, 0, 0)
        self.depth = Gauge(
            "gateway_log_queue_depth",
            "Log rows waiting to be written.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.counters = [
            Counter(name, text, registry=registry)
            for name, text in (
                ("gateway_log_rows_written", "Log rows written."),
                ("gateway_log_rows_dropped", "Log rows lost because the queue was full."),
                ("gateway_log_batches_failed", "Log batches that failed and were retried."),
                (
                    "gateway_log_rows_dead_lettered",
                    "Log rows the database refused, written to the log as dead_lettered "
                    "lines instead.",
                ),
            )
        ]

    def sync(self) -> None:
        depth, *totals = self._read()
        self.depth.set(depth)
        for counter, total, last in zip(self.counters, totals, self._last, strict=True):
            if total > last:
                counter.inc(total - last)
        self._last = (totals[0], totals[1], totals[2], totals[3])
