"""Who is calling: gateway keys, looked up by their sha256, never stored in clear."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Scope

from proxy.config import StaticKey
from proxy.errors import AuthenticationFailed, PermissionDenied


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a key stands for."""

    key_name: str  # for display: a static key's name, or "user/key" for database keys
    key_sha256: str
    allowed_aliases: frozenset[str] | None = None  # None: every alias
    owner: str | None = None  # the user a database key belongs to
    debug_log: bool = False
    admin: bool = False
    key_id: int | None = None  # database keys only
    rpm: int | None = None
    tpm: int | None = None
    key_budget_nano: int | None = None
    user_budget_nano: int | None = None
    alert_thresholds: tuple[float, ...] | None = None
    dev_only: bool = False

    @property
    def key_ref(self) -> str:
        """The key's identity inside the gateway (limits, budgets, cache, log roll-ups).

        Names are for display only: "user/key" names of two users can coincide
        (user "t" with key "x/k", user "t/x" with key "k"); ids cannot.
        """
        return f"static:{self.key_name}" if self.key_id is None else f"key:{self.key_id}"

    def may_use(self, alias: str) -> bool:
        return self.allowed_aliases is None or alias in self.allowed_aliases

    def check_alias(self, alias: str) -> None:
        if not self.may_use(alias):
            raise PermissionDenied(
                f"this key may not use the model {alias!r}",
                param="model",
                code="model_not_allowed",
            )


class KeyStore(Protocol):
    def lookup(self, digest: str) -> Principal | None: ...


class ChainedKeyStore:
    """Static keys first, then database keys."""

    def __init__(self, *stores: KeyStore) -> None:
        self._stores = stores

    def lookup(self, digest: str) -> Principal | None:
        for store in self._stores:
            principal = store.lookup(digest)
            if principal is not None:
                return principal
        return None


class StaticKeyStore:
    """The `[[keys]]` of gateway.toml."""

    def __init__(self, keys: Iterable[StaticKey]) -> None:
        self._keys = {
            key.sha256: Principal(
                key.name,
                key.sha256,
                debug_log=key.debug_log,
                admin=key.admin,
                dev_only=key.dev_only,
            )
            for key in keys
        }

    def lookup(self, digest: str) -> Principal | None:
        principal = self._keys.get(digest)
        # The dict lookup already matched on the digest; compare_digest keeps the final
        # check constant-time should the lookup ever become a prefix or index search.
        if principal is not None and hmac.compare_digest(principal.key_sha256, digest):
            return principal
        return None


def bearer_token(authorization: str | None, api_key: str | None = None) -> str:
    """The key of `Authorization: Bearer <key>`, or of `x-api-key: <key>` (the anthropic
    SDK's way, and so of every tool built on it)."""
    if not authorization and api_key:
        return api_key.strip()
    if not authorization:
        raise AuthenticationFailed(
            "missing API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("the Authorization header must be 'Bearer <key>'")
    return token


def key_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


# Headers a reverse proxy adds: a request carrying one did not come from this machine.
_PROXY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})


def authenticate(store: KeyStore, scope: Scope) -> Principal:
    """The caller of an ASGI request, from its Authorization (or x-api-key) header."""
    authorization: str | None = None
    api_key: str | None = None
    proxied = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            api_key = value.decode("latin-1")
        elif name in _PROXY_HEADERS:
            proxied = True
    principal = store.lookup(key_digest(bearer_token(authorization, api_key)))
    if principal is None:
        raise AuthenticationFailed("invalid API key")
    if principal.dev_only and proxied:
        # The published dev key is meant for this machine only; behind nginx the gateway
        # still listens on loopback, so the forwarding headers are what tell them apart.
        raise AuthenticationFailed(
            "the development key is not accepted on requests that came through a proxy",
            code="dev_key_refused",
        )
    return principal
