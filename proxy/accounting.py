"""Turning a finished answer's usage into tokens and an exact cost on the request record."""

from __future__ import annotations

from proxy.pricing import Price, TokenCounts
from proxy.record import RequestRecord
from proxy.schema import Usage


def settle(record: RequestRecord, price: Price | None, usage: Usage | None) -> None:
    record.usage = usage
    record.tokens = TokenCounts.from_usage(usage)
    record.cost_nano = None if price is None else price.cost_nano(record.tokens)


def settle_estimated(
    record: RequestRecord,
    price: Price | None,
    prompt_tokens: int,
    completion_tokens: int,
    partial: Usage | None = None,
) -> None:
    """For an answer whose final usage never arrived (the client left, the stream broke):
    what the provider will bill, as far as the gateway can tell. Counts the upstream did
    report (a prompt count at the start of an Anthropic or Gemini stream) win over the
    gateway's estimate; a prompt that was sent is never charged as zero."""
    reported = TokenCounts.from_usage(partial)
    record.usage_estimated = True
    record.tokens = TokenCounts(
        prompt=reported.prompt or prompt_tokens,
        completion=max(reported.completion, completion_tokens),
        cached=reported.cached,
        cache_write=reported.cache_write,
    )
    record.cost_nano = None if price is None else price.cost_nano(record.tokens)
