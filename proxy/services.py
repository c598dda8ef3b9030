"""The stateful services behind access control, opened once at start-up, closed at exit."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.access import AccessControl
from proxy.accounts.credentials import CredentialStore, cipher
from proxy.accounts.keycache import DatabaseKeyStore
from proxy.accounts.ownkeys import OwnKeys
from proxy.accounts.store import AccountStore
from proxy.alerts import Alerter
from proxy.config import GatewayConfig
from proxy.metrics import Metrics
from proxy.scrubber import Scrubber
from proxy.state.base import Answers, State
from proxy.state.build import open_state
from proxy.storage.connect import open_database
from proxy.storage.database import Database
from proxy.storage.responses import ResponseStore
from proxy.storage.usage import UsageReader


@dataclass(slots=True)
class Services:
    db: Database
    accounts: AccountStore
    credentials: CredentialStore
    own_keys: OwnKeys
    keys: DatabaseKeyStore
    access: AccessControl
    alerter: Alerter
    state: State
    responses: ResponseStore
    usage: UsageReader

    @property
    def cache(self) -> Answers | None:
        return self.state.answers

    @classmethod
    async def open(
        cls, config: GatewayConfig, metrics: Metrics, scrubber: Scrubber | None = None
    ) -> Services:
        db = await open_database(config.storage)
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
        state = await open_state(config, db, metrics)
        alerter = Alerter(db, metrics, config.alerts.webhook_url, state.once)
        await alerter.start()
        access = AccessControl(config.budgets, state.rates, state.budgets, alerter.crossed)
        responses = ResponseStore(
            db, config.responses.retention_days, config.responses.flush_interval_ms / 1000
        )
        await responses.start()
        usage = UsageReader(db)
        return cls(
            db, accounts, credentials, own_keys, keys, access, alerter, state, responses, usage
        )

    async def close(self) -> None:
        await self.responses.close()
        await self.keys.close()
        await self.alerter.close()
        await self.state.close()
        await self.db.close()
