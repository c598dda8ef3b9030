"""The scrubber removes known secrets and anything shaped like a key."""

from __future__ import annotations

import pytest

from proxy.errors import Fault, UpstreamErrorDetail, UpstreamHTTPError
from proxy.scrubber import Scrubber, scrub_shapes


@pytest.mark.parametrize(
    "text",
    [
        "Incorrect API key provided: sk-proj-abcdefgh12345678",
        "bad key sk-ant-api03-AAAAbbbbCCCC",
        "got Authorization: Bearer abc.def-ghi",
        'headers {"authorization": "Bearer zzz"}',
        "x-goog-api-key: AIzaSyD-abcdefghijklmnopqrstuvwx",
        "API key not valid: AIzaSyD-abcdefghijklmnopqrstuvwx",
        "x-api-key=topsecretvalue",
        "your key llmg_AbCdEf123456",
        "api_key: 'hunter2hunter2'",
    ],
)
def test_key_shapes_are_removed(text: str) -> None:
    scrubbed = scrub_shapes(text)
    assert "[redacted]" in scrubbed
    for secret in (
        "abcdefgh12345678",
        "AAAAbbbbCCCC",
        "abc.def-ghi",
        "zzz",
        "AIzaSyD",
        "topsecretvalue",
        "AbCdEf123456",
        "hunter2",
    ):
        assert secret not in scrubbed


def test_known_secrets_of_any_shape_are_removed_and_sources_replace() -> None:
    scrubber = Scrubber()
    scrubber.set_source("config", ["plain-secret-value", None, "short"])
    scrubber.set_source("own_keys", ["another one with spaces"])
    text = "x plain-secret-value y another one with spaces z short"
    assert scrubber.scrub(text) == "x [redacted] y [redacted] z short"
    scrubber.set_source("own_keys", [])
    assert "another one with spaces" in scrubber.scrub(text)


def test_ordinary_text_is_untouched() -> None:
    text = "The model's maximum context length is 128000 tokens; task-based keys are fine."
    assert scrub_shapes(text) == text


def test_upstream_failures_are_redacted_in_place() -> None:
    failure = UpstreamHTTPError(
        UpstreamErrorDetail(401, "bad key sk-live-0123456789abcdef"), Fault.ROUTE
    )
    failure.redact(Scrubber().scrub)
    assert "0123456789" not in failure.reason and "0123456789" not in failure.detail.message
