"""Removing secrets from upstream text before it is shown, logged or stored.

An upstream may echo what it received (a key in an error message, a header in a stream
error event). Every piece of upstream text the gateway passes on goes through one
`Scrubber`, which knows every secret the gateway holds (provider keys, users' own keys,
the credentials master key, static gateway keys) and also removes anything shaped like
a key: `sk-...`, `llmg_...`, Google `AIza...` keys, `Bearer ...` and `name: value`
pairs for the usual key headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
# Shorter "secrets" would match ordinary words; no real key is this short.
MIN_SECRET_LENGTH = 8

_SHAPES = re.compile(
    r"sk-[A-Za-z0-9_\-]{8,}"  # OpenAI, Anthropic (sk-ant-...), DeepSeek and most others
    r"|llmg_[A-Za-z0-9_\-]{6,}"  # gateway keys
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google API keys
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;}\]]+")
_HEADER_VALUE = re.compile(
    r"(?i)\b(x-goog-api-key|x-api-key|api[-_]key|authorization|proxy-authorization)"
    r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)(?!\[redacted\])[^\s\"',;}\]\\]+"
)


class Scrubber:
    """Holds the known secrets, grouped by where they come from, as one compiled pattern."""

    def __init__(self) -> None:
        self._sources: dict[str, frozenset[str]] = {}
        self._known: re.Pattern[str] | None = None

    def set_source(self, name: str, secrets: Iterable[str | None]) -> None:
        """Replace the secrets of one source ("config", "own_keys", ...)."""
        kept = frozenset(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)
        if self._sources.get(name) == kept:
            return
        self._sources[name] = kept
        everything = sorted(set().union(*self._sources.values()), key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, everything))) if everything else None

    def scrub(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        return scrub_shapes(text)


def scrub_shapes(text: str) -> str:
    """Only the generic key shapes, for text where no Scrubber is at hand."""
    text = _SHAPES.sub(REDACTED, text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    return _HEADER_VALUE.sub(rf"\1\2{REDACTED}", text)
