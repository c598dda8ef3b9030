"""Mistral: OpenAI-shaped, but strict about fields it does not know (422 on extras).

Mistral names a few parameters differently (`random_seed`, `tool_choice: "any"`) and
always reports usage on the last stream chunk, so `stream_options` is never sent.
"""

from __future__ import annotations

import hashlib
import re
import string
from typing import Any

from proxy.providers.openai import OpenAIAdapter

_MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")
_ALPHABET = string.ascii_letters + string.digits

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
    output_field = "max_tokens"

    def adjust_embeddings(self, body: dict[str, Any]) -> tuple[str, ...]:
        return tuple(name for name in ("user", "dimensions") if body.pop(name, None) is not None)

    def adjust(self, body: dict[str, Any]) -> tuple[str, ...]:
        body.pop("stream_options", None)
        if "seed" in body:
            body["random_seed"] = body.pop("seed")
        if body.get("tool_choice") == "required":
            body["tool_choice"] = "any"
        body["messages"] = [_mistral_ids(m) for m in body.get("messages", ())]
        return tuple(name for name in UNSUPPORTED if body.pop(name, None) is not None)


def tool_call_id(original: str) -> str:
    """Mistral accepts only 9-character alphanumeric tool-call ids; others (say, from an
    earlier turn answered by another provider) are mapped to a stable one."""
    if _MISTRAL_ID.fullmatch(original):
        return original
    digest = hashlib.sha256(original.encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:9])


def _mistral_ids(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    if message.get("tool_call_id"):
        message = {**message, "tool_call_id": tool_call_id(str(message["tool_call_id"]))}
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        message = {
            **message,
            "tool_calls": [
                {**c, "id": tool_call_id(str(c.get("id", "")))} if isinstance(c, dict) else c
                for c in calls
            ],
        }
    return message
