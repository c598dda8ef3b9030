"""Turning a finished answer's usage into tokens and an exact cost on the request record."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from proxy.pricing import Price, TokenCounts
from proxy.record import RequestRecord
from proxy.schema import ChatRequest, Usage

# Without a tokenizer for every provider, ~4 characters per token is the usual estimate;
# rows built on it are marked usage_estimated.
CHARS_PER_TOKEN = 4


def settle(record: RequestRecord, price: Price | None, usage: Usage | None) -> None:
    record.usage = usage
    record.tokens = TokenCounts.from_usage(usage)
    record.cost_nano = None if price is None else price.cost_nano(record.tokens)


def settle_estimated(
    record: RequestRecord, price: Price | None, request: ChatRequest, completion_chars: int
) -> None:
    """For a stream that ended without the upstream's usage (or a client that left)."""
    record.usage_estimated = True
    record.tokens = TokenCounts(
        prompt=estimate_prompt_tokens(request), completion=_tokens(completion_chars)
    )
    record.cost_nano = None if price is None else price.cost_nano(record.tokens)


def estimate_prompt_tokens(request: Mapping[str, Any]) -> int:
    chars = sum(_content_chars(m.get("content")) for m in request.get("messages", ()))
    return _tokens(chars)


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return 0


def _tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)
