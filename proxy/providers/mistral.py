"""Mistral: OpenAI-shaped, but strict about fields it does not know (422 on extras).

Mistral names a few parameters differently (`random_seed`, `tool_choice: "any"`) and
always reports usage on the last stream chunk, so `stream_options` is never sent.
"""

from __future__ import annotations

from typing import Any

from proxy.providers.openai import OpenAIAdapter

# OpenAI parameters Mistral's chat endpoint does not accept.
UNSUPPORTED = (
    "user",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "store",
    "metadata",
    "service_tier",
    "modalities",
    "audio",
    "reasoning_effort",
    "web_search_options",
    "functions",
    "function_call",
)


class MistralAdapter(OpenAIAdapter):
    embeddings_base64 = False

    def adjust_embeddings(self, body: dict[str, Any]) -> tuple[str, ...]:
        return tuple(name for name in ("user", "dimensions") if body.pop(name, None) is not None)

    def adjust(self, body: dict[str, Any]) -> tuple[str, ...]:
        body.pop("stream_options", None)
        if "max_completion_tokens" in body:
            body.setdefault("max_tokens", body.pop("max_completion_tokens"))
        if "seed" in body:
            body["random_seed"] = body.pop("seed")
        if body.get("tool_choice") == "required":
            body["tool_choice"] = "any"
        return tuple(name for name in UNSUPPORTED if body.pop(name, None) is not None)
