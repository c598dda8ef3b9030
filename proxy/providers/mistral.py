"""Mistral: OpenAI-shaped, but strict about fields it does not know (422 on extras).

Mistral names a few parameters differently (`random_seed`, `tool_choice: "any"`) and
always reports usage on the last stream chunk, so `stream_options` is never sent. Its
reasoning models answer with `content` as a list of chunks, `thinking` ones and `text`
ones (mistralai client: ThinkChunk, TextChunk); OpenAI clients expect a string, so the
text chunks become `content` and the thinking ones `reasoning_content`, in answers and
in stream deltas alike. `reasoning_effort` is Mistral's too, and is passed.
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

    def normalize(self, data: dict[str, Any]) -> None:
        for choice in data.get("choices") or ():
            for field in ("message", "delta"):
                part = choice.get(field) if isinstance(choice, dict) else None
                if isinstance(part, dict) and isinstance(part.get("content"), list):
                    part["content"], reasoning = _flatten(part["content"])
                    if reasoning:
                        part["reasoning_content"] = reasoning
        super().normalize(data)


def _flatten(chunks: list[Any]) -> tuple[str, str]:
    """(text, thinking) of a list of content chunks."""
    texts: list[str] = []
    thoughts: list[str] = []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("type") == "text":
            texts.append(str(chunk.get("text") or ""))
        elif chunk.get("type") == "thinking":
            inner = chunk.get("thinking")
            parts = inner if isinstance(inner, list) else [inner]
            thoughts += [
                str(p.get("text") or "") if isinstance(p, dict) else str(p or "") for p in parts
            ]
    return "".join(texts), "".join(thoughts)


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
