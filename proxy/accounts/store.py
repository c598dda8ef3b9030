"""Users and keys in the gateway's SQLite database: the management side (CLI and API).

The request path never reads this store: it asks `DatabaseKeyStore`, an in-memory copy
refreshed whenever `accounts_version` changes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import structlog

from proxy.accounts import audit
from proxy.accounts.secrets import new_key
from proxy.errors import InvalidRequest, NotFound
from proxy.storage.database import Database, DuplicateRow

log = structlog.get_logger("proxy.accounts")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    monthly_budget_nano: int | None
    alert_thresholds: tuple[float, ...] | None
    created_at: float


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    name: str
    user: str
    sha256: str
    prefix: str
    monthly_budget_nano: int | None
    rpm: int | None
    tpm: int | None
    models: tuple[str, ...] | None
    expires_at: float | None
    active: bool
    admin: bool
    created_at: float
    revoked_at: float | None

    def usable(self, now: float) -> bool:
        return self.active and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as created: the only time its secret exists outside the client."""

    record: KeyRecord
    secret: str


# Large enough for any budget, small enough that nano-dollars fit SQLite's 64-bit integers.
MAX_BUDGET_USD = 10**9


def usd_to_nano(usd: Decimal | float | str | None) -> int | None:
    if usd is None:
        return None
    try:
        value = Decimal(str(usd))
    except ArithmeticError:
        raise InvalidRequest("a budget must be an amount in USD", param="budget_usd") from None
    if not value.is_finite() or not 0 <= value <= MAX_BUDGET_USD:
        raise InvalidRequest(
            f"a budget must be between 0 and {MAX_BUDGET_USD} USD", param="budget_usd"
        )
    return int(value.scaleb(9))


_KEY_COLUMNS = (
    "id, name, user_name, sha256, prefix, monthly_budget_nano, rpm, tpm, models, expires_at, "
    "active, admin, created_at, revoked_at"
)


class AccountStore:
    def __init__(self, db: Database, actor: str = "cli") -> None:
        self._db = db
        self.actor = actor  # who the audit log names for changes made through this store

    async def version(self) -> int:
        row = await self._db.fetchone("SELECT version FROM accounts_version")
        return int(row[0]) if row else 0

    async def create_user(
        self,
        name: str,
        budget_usd: Decimal | None = None,
        thresholds: Sequence[float] | None = None,
    ) -> User:
        if not name:
            raise InvalidRequest("a user needs a name", param="name")
        if await self.user(name, missing_ok=True) is not None:
            raise InvalidRequest(f"user {name!r} already exists", param="name")
        user = User(name, usd_to_nano(budget_usd), _thresholds(thresholds), time.time())
        await self._write(
            "INSERT INTO users (name, monthly_budget_nano, alert_thresholds, created_at) "
            "VALUES (?, ?, ?, ?)",
            (user.name, user.monthly_budget_nano, _json(user.alert_thresholds), user.created_at),
            "user.created",
            name,
            name,
            {"monthly_budget_nano": user.monthly_budget_nano},
        )
        return user

    async def user(self, name: str, *, missing_ok: bool = False) -> User | None:
        row = await self._db.fetchone(
            "SELECT name, monthly_budget_nano, alert_thresholds, created_at FROM users "
            "WHERE name = ?",
            (name,),
        )
        if row is None:
            if missing_ok:
                return None
            raise NotFound(f"no user named {name!r}", param="user")
        return _user(row)

    async def users(self) -> list[User]:
        return [
            _user(row)
            for row in await self._db.fetchall(
                "SELECT name, monthly_budget_nano, alert_thresholds, created_at FROM users "
                "ORDER BY name"
            )
        ]

    async def set_user_budget(
        self, name: str, budget_usd: Decimal | None, thresholds: Sequence[float] | None = None
    ) -> User:
        await self.user(name)
        await self._write(
            "UPDATE users SET monthly_budget_nano = ?, "
            "alert_thresholds = COALESCE(?, alert_thresholds) WHERE name = ?",
            (usd_to_nano(budget_usd), _json(_thresholds(thresholds)), name),
            "user.budget_changed",
            name,
            name,
            {"monthly_budget_nano": usd_to_nano(budget_usd)},
        )
        user = await self.user(name)
        assert user is not None
        return user

    async def create_key(
        self,
        user: str,
        name: str,
        *,
        budget_usd: Decimal | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        models: Sequence[str] | None = None,
        expires_at: float | None = None,
        admin: bool = False,
    ) -> NewKey:
        await self.user(user)
        if not name:
            raise InvalidRequest("a key needs a name", param="name")
        check_key_fields({"rpm": rpm, "tpm": tpm, "models": models, "expires_at": expires_at})
        secret, digest, prefix = new_key()
        try:
            await self._write(
                f"INSERT INTO api_keys ({_KEY_COLUMNS[4:]}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, NULL)",
                (
                    name,
                    user,
                    digest,
                    prefix,
                    usd_to_nano(budget_usd),
                    rpm,
                    tpm,
                    _json(tuple(models) if models else None),
                    expires_at,
                    int(admin),
                    time.time(),
                ),
                "key.created",
                user,
                f"{user}/{name}",
                {
                    "prefix": prefix,
                    "rpm": rpm,
                    "tpm": tpm,
                    "admin": admin,
                    "models": list(models) if models else None,
                },
            )
        except DuplicateRow:
            raise InvalidRequest(f"user {user!r} already has a key named {name!r}") from None
        record = await self.key_by_digest(digest)
        assert record is not None
        return NewKey(record, secret)

    async def keys(self, user: str | None = None) -> list[KeyRecord]:
        where, args = ("WHERE user_name = ?", (user,)) if user else ("", ())
        return [
            _key(row)
            for row in await self._db.fetchall(
                f"SELECT {_KEY_COLUMNS} FROM api_keys {where} ORDER BY id", args
            )
        ]

    async def key(self, key_id: int) -> KeyRecord:
        row = await self._db.fetchone(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
        )
        if row is None:
            raise NotFound(f"no key with id {key_id}", param="id")
        return _key(row)

    async def key_by_digest(self, digest: str) -> KeyRecord | None:
        row = await self._db.fetchone(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE sha256 = ?", (digest,)
        )
        return None if row is None else _key(row)

    async def update_key(self, key_id: int, **changes: Any) -> KeyRecord:
        allowed = {"monthly_budget_nano", "rpm", "tpm", "models", "expires_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
        key = await self.key(key_id)
        check_key_fields(changes)
        detail = dict(changes)
        if "models" in changes:
            changes["models"] = _json(tuple(changes["models"]) if changes["models"] else None)
        if changes:
            columns = ", ".join(f"{name} = ?" for name in changes)
            await self._write(
                f"UPDATE api_keys SET {columns} WHERE id = ?",
                (*changes.values(), key_id),
                "key.updated",
                key.user,
                f"{key.user}/{key.name}",
                detail,
            )
        return await self.key(key_id)

    async def revoke_key(self, key_id: int) -> KeyRecord:
        key = await self.key(key_id)
        await self._write(
            "UPDATE api_keys SET active = 0, revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
            (time.time(), key_id),
            "key.revoked",
            key.user,
            f"{key.user}/{key.name}",
        )
        return await self.key(key_id)

    async def usable_keys(self) -> list[KeyRecord]:
        """Every usable key; a row that cannot be read is skipped (and logged), never fatal."""
        rows = await self._db.fetchall(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE active = 1")
        now = time.time()
        keys = []
        for row in rows:
            try:
                key = _key(row)
            except (ValueError, TypeError) as exc:
                log.error("key_row_unreadable", key_id=row[0], error=str(exc))
                continue
            if key.usable(now):
                keys.append(key)
        return keys

    async def _write(
        self,
        sql: str,
        args: Sequence[Any],
        action: str,
        user: str,
        subject: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self._db.transaction() as db:
            await db.execute(sql, args)
            await db.execute("UPDATE accounts_version SET version = version + 1")
            await audit.record(db, self.actor, action, user=user, subject=subject, detail=detail)


def check_key_fields(fields: dict[str, Any]) -> None:
    """The one validation of a key's settings, for creation and for every later change."""
    for name in ("rpm", "tpm"):
        value = fields.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**53
        ):
            raise InvalidRequest(f"'{name}' must be a whole number of at least 1", param=name)
    models = fields.get("models")
    if models is not None and (
        isinstance(models, str)
        or not isinstance(models, Sequence)
        or not all(isinstance(m, str) and m for m in models)
    ):
        raise InvalidRequest("'models' must be a list of alias names", param="models")
    expires = fields.get("expires_at")
    if expires is not None and (
        isinstance(expires, bool)
        or not isinstance(expires, int | float)
        or not 0 <= expires < 2**53
    ):
        raise InvalidRequest("'expires_at' must be a unix timestamp", param="expires_at")
    budget = fields.get("monthly_budget_nano")
    if budget is not None and (not isinstance(budget, int) or budget < 0):
        raise InvalidRequest("the budget must be a positive amount", param="monthly_budget_usd")


def _thresholds(values: Sequence[float] | None) -> tuple[float, ...] | None:
    if values is None:
        return None
    if not all(0 < v <= 10 for v in values):
        raise InvalidRequest("thresholds are fractions of the budget, e.g. 0.5, 0.8, 1.0")
    return tuple(sorted(values))


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _user(row: Any) -> User:
    thresholds = orjson.loads(row[2]) if row[2] else None
    return User(row[0], row[1], tuple(thresholds) if thresholds else None, row[3])


def _key(row: Any) -> KeyRecord:
    models = orjson.loads(row[8]) if row[8] else None
    if models is not None and not (
        isinstance(models, list) and all(isinstance(m, str) for m in models)
    ):
        raise ValueError(f"key {row[0]} has an invalid models list")
    return KeyRecord(
        id=row[0],
        name=row[1],
        user=row[2],
        sha256=row[3],
        prefix=row[4],
        monthly_budget_nano=row[5],
        rpm=row[6],
        tpm=row[7],
        models=tuple(models) if models else None,
        expires_at=row[9],
        active=bool(row[10]),
        admin=bool(row[11]),
        created_at=row[12],
        revoked_at=row[13],
    )
