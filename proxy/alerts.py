"""Budget threshold alerts: a log line, a metric, and an optional webhook, once each.

Each (period, account, threshold) fires once: the fact is kept in the database, so a
restart does not repeat it, and claimed in the shared state, so of all the workers and
instances that see the crossing only one fires it. Webhooks are POSTed in the background
with retries; a slow or failing receiver never delays a request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import aiohttp
import structlog

from proxy.budgets import Crossing
from proxy.metrics import Metrics
from proxy.pricing import usd
from proxy.state.base import Once
from proxy.storage.alerts import fired_alerts, remember_alert
from proxy.storage.database import Database

log = structlog.get_logger("proxy.alerts")

WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT_S = 5.0


class Alerter:
    def __init__(self, db: Database, metrics: Metrics, webhook_url: str, once: Once) -> None:
        self._db = db
        self._once = once
        self._metrics = metrics
        self._url = webhook_url
        self._fired: set[tuple[str, str, str, float]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._fired = await fired_alerts(self._db)
        if self._url:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
            )

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=WEBHOOK_TIMEOUT_S)
        for task in self._tasks:
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def crossed(self, crossing: Crossing) -> None:
        account = crossing.account
        fact = (crossing.period, account.kind, account.name, crossing.threshold)
        if fact in self._fired:
            return
        self._fired.add(fact)
        self._spawn(self._fire(crossing, fact))

    async def _fire(self, crossing: Crossing, fact: tuple[str, str, str, float]) -> None:
        """Once across the fleet: every process that sees the crossing asks, one fires."""
        account = crossing.account
        if not await self._once.first("alert:" + ":".join(str(part) for part in fact)):
            return
        payload = {
            "event": "budget_threshold_crossed",
            "period": crossing.period,
            "account_type": account.kind,
            "account": account.display or account.name,
            "account_id": account.name,
            "threshold": crossing.threshold,
            "spent_usd": usd(crossing.spent_nano),
            "budget_usd": usd(account.limit_nano or 0),
        }
        log.warning(
            "budget_threshold_crossed", **{k: v for k, v in payload.items() if k != "event"}
        )
        self._metrics.budget_alerts.labels(f"{crossing.threshold:g}").inc()
        await self._remember(fact, account.owner)
        if self._session is not None:
            await self._post(payload)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _remember(self, fact: tuple[str, str, str, float], owner: str | None) -> None:
        # Worst case the alert repeats after a restart; it never fails a request.
        with contextlib.suppress(Exception):
            await remember_alert(self._db, fact, owner)

    async def _post(self, payload: dict[str, object]) -> None:
        assert self._session is not None
        for attempt in range(WEBHOOK_ATTEMPTS):
            try:
                async with self._session.post(self._url, json=payload) as response:
                    if response.status < 300:
                        return
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
            log.warning("alert_webhook_failed", attempt=attempt + 1, reason=reason)
            await asyncio.sleep(0.5 * 2**attempt)
        log.error("alert_webhook_gave_up", account=payload["account"])
