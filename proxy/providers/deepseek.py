"""DeepSeek: OpenAI-shaped, one answer per request, `max_tokens` rather than its newer name."""

from __future__ import annotations

from typing import Any

from proxy.errors import InvalidRequest
from proxy.providers.openai import OpenAIAdapter

# OpenAI parameters DeepSeek's chat endpoint does not document; sending them invites a 400.
UNSUPPORTED = (
    "seed",
    "logit_bias",
    "store",
    "metadata",
    "service_tier",
    "modalities",
    "audio",
    "reasoning_effort",
    "web_search_options",
    "parallel_tool_calls",
    "user",
)


class DeepSeekAdapter(OpenAIAdapter):
    output_field = "max_tokens"

    def adjust(self, body: dict[str, Any]) -> tuple[str, ...]:
        if body.get("n", 1) != 1:
            raise InvalidRequest(
                "this model's provider returns one choice only: n must be 1", param="n"
            )
        body.pop("n", None)
        return tuple(name for name in UNSUPPORTED if body.pop(name, None) is not None)
