"""DeepSeek: OpenAI-shaped, one answer per request, `max_tokens` rather than its newer name.

DeepSeek refuses the `developer` role ("unknown variant `developer`, expected one of
`system`, `user`, `assistant`, `tool`"): it becomes `system`. It reports cache hits as
`prompt_cache_hit_tokens`, which become OpenAI's `prompt_tokens_details.cached_tokens`
so they are priced as cached input (api-docs.deepseek.com: KV cache, error codes).
"""

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
    # DeepSeek's thinking mode needs its reasoning back within a tool loop.
    kept_extensions = frozenset({"reasoning_content"})

    def adjust(self, body: dict[str, Any]) -> tuple[str, ...]:
        if body.get("n", 1) != 1:
            raise InvalidRequest(
                "this model's provider returns one choice only: n must be 1", param="n"
            )
        body.pop("n", None)
        body["messages"] = [
            {**m, "role": "system"} if m.get("role") == "developer" else m
            for m in body.get("messages", ())
        ]
        return tuple(name for name in UNSUPPORTED if body.pop(name, None) is not None)

    def normalize(self, data: dict[str, Any]) -> None:
        usage = data.get("usage")
        if isinstance(usage, dict) and "prompt_cache_hit_tokens" in usage:
            details = usage.setdefault("prompt_tokens_details", {}) or {}
            details.setdefault("cached_tokens", usage["prompt_cache_hit_tokens"])
            usage["prompt_tokens_details"] = details
        super().normalize(data)
