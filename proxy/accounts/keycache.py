"""Database keys for the request path: an in-memory table, refreshed when keys change.

Every `refresh_s` it reads one counter (`accounts_version`); only when another process
(the CLI, the admin API) changed users or keys does it reload the table. A revoked or
expired key therefore stops working within about a second, and a lookup never waits on
the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from proxy.accounts.credentials import CredentialStore
from proxy.accounts.ownkeys import OwnKeys
from proxy.accounts.store import AccountStore, KeyRecord, User
from proxy.auth import Principal

log = structlog.get_logger("proxy.keys")


class DatabaseKeyStore:
    def __init__(
        self,
        store: AccountStore,
        credentials: CredentialStore,
        own_keys: OwnKeys,
        refresh_s: float = 0.5,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._own_keys = own_keys
        self._refresh_s = refresh_s
        self._keys: dict[str, tuple[Principal, float | None]] = {}
        self._version = -1
        self._task: asyncio.Task[None] | None = None

    def lookup(self, digest: str) -> Principal | None:
        found = self._keys.get(digest)
        if found is None:
            return None
        principal, expires_at = found
        if expires_at is not None and expires_at <= time.time():
            return None
        return principal

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> None:
        version = await self._store.version()
        if version == self._version:
            return
        keys = await self._store.usable_keys()
        users = {user.name: user for user in await self._store.users()}
        self._keys = {
            key.sha256: (principal(key, users.get(key.user)), key.expires_at) for key in keys
        }
        self._own_keys.update(await self._credentials.secrets())
        self._version = version

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception as exc:  # a locked or busy database: keep the last table
                log.warning("key_refresh_failed", error=str(exc))


def principal(key: KeyRecord, user: User | None) -> Principal:
    return Principal(
        # Key names are unique per user; the log and metrics need them unique overall.
        key_name=f"{key.user}/{key.name}",
        key_sha256=key.sha256,
        allowed_aliases=frozenset(key.models) if key.models else None,
        owner=key.user,
        admin=key.admin,
        key_id=key.id,
        rpm=key.rpm,
        tpm=key.tpm,
        key_budget_nano=key.monthly_budget_nano,
        user_budget_nano=user.monthly_budget_nano if user else None,
        alert_thresholds=user.alert_thresholds if user else None,
    )
