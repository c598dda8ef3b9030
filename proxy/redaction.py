"""What the debug log may keep: headers without credentials, bodies cut to a size."""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "proxy-authorization",
    }
)


def redact_headers(
    headers: Iterable[tuple[bytes, bytes]] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    redacted: dict[str, str] = {}
    for name, value in headers:
        key = (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        redacted[key] = REDACTED if key in SECRET_HEADERS else text
    return redacted


def truncate(body: bytes, limit: int) -> tuple[str, bool]:
    """The body as text, at most `limit` bytes of it, and whether it was cut."""
    cut = len(body) > limit
    return body[:limit].decode("utf-8", "replace"), cut
