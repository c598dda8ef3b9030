"""Users' own provider keys ("bring your own key"), encrypted at rest with Fernet.

The master key comes from the environment variable named in `[credentials]`; the
database holds only ciphertext and a masked form (first 4 and last 4 characters). No
command or endpoint ever returns a stored key in clear.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from proxy.accounts import audit
from proxy.errors import GatewayError, InvalidRequest, NotFound
from proxy.storage.database import Database


class MasterKeyError(Exception):
    """Stored credentials cannot be used: the master key is missing or wrong."""


@dataclass(frozen=True, slots=True)
class Credential:
    id: int
    user: str
    provider: str
    masked: str
    created_at: float
    updated_at: float


# Real provider keys are well under 1 KB; anything longer is not a key.
MAX_SECRET_CHARS = 4096


def check_secret(secret: str) -> None:
    """A key goes into an HTTP header: printable ASCII without spaces, of a sane length."""
    if not secret:
        raise InvalidRequest("the provider key is empty", param="api_key")
    if len(secret) > MAX_SECRET_CHARS:
        raise InvalidRequest(
            f"the provider key is longer than {MAX_SECRET_CHARS} characters", param="api_key"
        )
    if not all("!" <= c <= "~" for c in secret):
        raise InvalidRequest(
            "the provider key may only hold printable ASCII characters, without spaces or "
            "line breaks",
            param="api_key",
        )


def mask(secret: str) -> str:
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:4]}...{secret[-4:]}"


def cipher(master_key: str | None) -> Fernet | None:
    if not master_key:
        return None
    try:
        return Fernet(master_key.encode())
    except ValueError:
        raise MasterKeyError(
            "the credentials master key is not a valid Fernet key (32 url-safe base64 bytes; "
            "make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from None


class CredentialStore:
    def __init__(
        self, db: Database, fernet: Fernet | None, key_env: str, actor: str = "cli"
    ) -> None:
        self._db = db
        self.actor = actor
        self._fernet = fernet
        self._key_env = key_env

    async def verify(self) -> None:
        """Fail clearly at start-up when stored credentials cannot be decrypted."""
        row = await self._db.fetchone("SELECT ciphertext FROM credentials LIMIT 1")
        if row is None:
            return
        if self._fernet is None:
            raise MasterKeyError(
                f"stored provider credentials exist but {self._key_env} is not set"
            )
        try:
            self._fernet.decrypt(row[0])
        except InvalidToken:
            raise MasterKeyError(
                f"{self._key_env} does not decrypt the stored provider credentials "
                "(wrong master key)"
            ) from None

    async def put(self, user: str, provider: str, secret: str) -> Credential:
        """Store (or replace) a user's key for one provider."""
        check_secret(secret)
        ciphertext = self._require().encrypt(secret.encode())
        now = time.time()
        async with self._db.transaction() as db:
            replacing = (
                await db.fetchone(
                    "SELECT 1 FROM credentials WHERE user_name = ? AND provider = ?",
                    (user, provider),
                )
                is not None
            )
            await db.execute(
                "INSERT INTO credentials (user_name, provider, ciphertext, masked, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_name, provider) DO "
                "UPDATE SET ciphertext = excluded.ciphertext, masked = excluded.masked, "
                "updated_at = excluded.updated_at",
                (user, provider, ciphertext, mask(secret), now, now),
            )
            await db.execute("UPDATE accounts_version SET version = version + 1")
            await audit.record(
                db,
                self.actor,
                "credential.updated" if replacing else "credential.stored",
                user=user,
                subject=provider,
                detail={"masked": mask(secret)},
            )
        found = [c for c in await self.list(user) if c.provider == provider]
        return found[0]

    async def list(self, user: str | None = None) -> list[Credential]:
        where, args = ("WHERE user_name = ?", (user,)) if user else ("", ())
        rows = await self._db.fetchall(
            "SELECT id, user_name, provider, masked, created_at, updated_at FROM credentials "
            f"{where} ORDER BY id",
            args,
        )
        return [Credential(*row) for row in rows]

    async def get(self, credential_id: int) -> Credential:
        for credential in await self.list():
            if credential.id == credential_id:
                return credential
        raise NotFound(f"no credential with id {credential_id}", param="id")

    async def delete(self, credential_id: int) -> Credential:
        credential = await self.get(credential_id)
        async with self._db.transaction() as db:
            await db.execute("DELETE FROM credentials WHERE id = ?", (credential_id,))
            await db.execute("UPDATE accounts_version SET version = version + 1")
            await audit.record(
                db,
                self.actor,
                "credential.deleted",
                user=credential.user,
                subject=credential.provider,
            )
        return credential

    async def secrets(self) -> dict[tuple[str, str], str]:
        """Every (user, provider) -> key in clear, for the request path's in-memory table."""
        if self._fernet is None:
            return {}
        rows = await self._db.fetchall("SELECT user_name, provider, ciphertext FROM credentials")
        return {(r[0], r[1]): self._fernet.decrypt(r[2]).decode() for r in rows}

    async def secret(self, credential_id: int) -> tuple[Credential, str]:
        credential = await self.get(credential_id)
        row = await self._db.fetchone(
            "SELECT ciphertext FROM credentials WHERE id = ?", (credential_id,)
        )
        assert row is not None
        return credential, self._require().decrypt(row[0]).decode()

    def _require(self) -> Fernet:
        if self._fernet is None:
            raise GatewayError(
                f"provider credentials need a master key: set {self._key_env}",
                code="credentials_unavailable",
            )
        return self._fernet
