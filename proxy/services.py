"""The stateful services behind access control, opened once at start-up, closed at exit."""

from __future__ import annotations

import time
from dataclasses import dataclass

from proxy.access import AccessControl
from proxy.accounts.credentials import CredentialStore, cipher
from proxy.accounts.keycache import DatabaseKeyStore
from proxy.accounts.ownkeys import OwnKeys
from proxy.accounts.store import AccountStore
from proxy.alerts import Alerter
from proxy.budgets import BudgetLedger, month_of, month_spend
from proxy.cache import ResponseCache
from proxy.config import GatewayConfig
from proxy.metrics import Metrics
from proxy.ratelimit import RateLimiter
from proxy.scrubber import Scrubber
from proxy.storage.database import Database
from proxy.storage.responses import ResponseStore


@dataclass(slots=True)
class Services:
    db: Database
    accounts: AccountStore
    credentials: CredentialStore
    own_keys: OwnKeys
    keys: DatabaseKeyStore
    access: AccessControl
    alerter: Alerter
    cache: ResponseCache | None
    responses: ResponseStore

    @classmethod
    async def open(
        cls, config: GatewayConfig, metrics: Metrics, scrubber: Scrubber | None = None
    ) -> Services:
        db = await Database.open(config.storage.database)
        try:
            return await cls._build(db, config, metrics, scrubber)
        except BaseException:
            await db.close()
            raise

    @classmethod
    async def _build(
        cls, db: Database, config: GatewayConfig, metrics: Metrics, scrubber: Scrubber | None
    ) -> Services:
        accounts = AccountStore(db)
        credentials = CredentialStore(
            db, cipher(config.credentials.master_key), config.credentials.master_key_env
        )
        await credentials.verify()  # MasterKeyError: refuse to start, clearly
        own_keys = OwnKeys(scrubber)
        keys = DatabaseKeyStore(accounts, credentials, own_keys)
        await keys.start()
        now = time.time()
        ledger = BudgetLedger(clock=time.time)
        ledger.load(month_of(now), await month_spend(db.conn, now))
        alerter = Alerter(db, metrics, config.alerts.webhook_url)
        await alerter.start()
        access = AccessControl(config.budgets, RateLimiter(), ledger, alerter.crossed)
        cache_config = config.cache
        cache = (
            ResponseCache(cache_config.max_entries, cache_config.max_bytes, cache_config.ttl_s)
            if cache_config.enabled
            else None
        )
        responses = ResponseStore(
            db, config.responses.retention_days, config.responses.flush_interval_ms / 1000
        )
        await responses.start()
        return cls(db, accounts, credentials, own_keys, keys, access, alerter, cache, responses)

    async def close(self) -> None:
        await self.responses.close()
        await self.keys.close()
        await self.alerter.close()
        await self.db.close()
