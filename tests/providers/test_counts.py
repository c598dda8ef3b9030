"""Upstream token counts are clamped to what the request log can hold, on every path."""

from __future__ import annotations

import math

import pytest

from proxy.pricing import MAX_COUNT
from proxy.providers.base import clean_usage, count


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (7, 7),
        (MAX_COUNT, MAX_COUNT),
        (MAX_COUNT + 1, MAX_COUNT),
        (2**63, MAX_COUNT),
        (-5, 0),
        (True, 0),
        (12.9, 12),
        (math.nan, 0),
        (math.inf, MAX_COUNT),
        ("9", 0),
        (None, 0),
    ],
)
def test_a_count_is_clamped_or_zero(value: object, expected: int) -> None:
    assert count(value) == expected


def test_usage_is_cleaned_at_every_depth_and_keeps_what_is_not_a_count() -> None:
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": -1,
        "total_tokens": 2**64,
        "service_tier": "flex",
        "flag": False,
        "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 1e30, "note": "x"},
    }
    assert clean_usage(usage) == {
        "prompt_tokens": 9,
        "completion_tokens": 0,
        "total_tokens": MAX_COUNT,
        "service_tier": "flex",
        "flag": False,
        "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": MAX_COUNT, "note": "x"},
    }
    assert clean_usage([1, 2]) is None
