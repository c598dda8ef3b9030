"""Gateway key secrets: made once, shown once, stored only as a sha256 and a short prefix."""

from __future__ import annotations

import secrets

from proxy.auth import key_digest

PREFIX = "llmg_"
# 32 random bytes, URL-safe base64: 43 characters after the prefix.
SECRET_BYTES = 32


def new_key() -> tuple[str, str, str]:
    """(secret, sha256 hex, display prefix)."""
    secret = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    return secret, key_digest(secret), display_prefix(secret)


def display_prefix(secret: str) -> str:
    return secret[: len(PREFIX) + 6]
