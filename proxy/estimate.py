"""Token counts the gateway works out itself, without a provider's tokenizer.

Two different questions, two different answers:

- `PromptBound`: the most a request's input can bill, before it is sent. A reservation
  built on it must never be exceeded, whatever the script or shape of the request, so
  text is counted at one token per UTF-8 byte (every byte-level BPE token and every
  SentencePiece byte-fallback token covers at least one byte; the dummy prefix some
  tokenizers add per segment is covered by a token per part), plus the framing around
  messages and tool definitions, plus each image, audio clip and PDF at its provider's
  rule (`proxy.media`).
- `estimate_tokens()`: a best guess of what was billed, for a stream whose usage never
  arrived: a token per four ASCII characters and a token per other character (CJK and
  most other scripts run close to one token a character). Rows built on it are marked
  `usage_estimated`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.media import audio_tokens, file_tokens, image_tokens

# Role markers and separators around each message (OpenAI counts 3, plus 1 per name;
# Claude about 7), and the reply priming and framing of a request.
PER_MESSAGE = 8
PER_REQUEST = 16
# The tool-use system prompt a provider adds when tools are present (Anthropic documents
# up to 804 tokens), and the framing of each function definition (OpenAI: about 20).
TOOLS_PREAMBLE = 1_000
PER_TOOL = 24


@dataclass(slots=True)
class PromptBound:
    """A request's input, measured once; `tokens()` prices the media per provider."""

    text: int = 0  # tokens, at one per byte, with all framing
    images: list[str] = field(default_factory=list)  # their URLs
    audio: int = 0  # tokens
    files: list[dict[str, Any]] = field(default_factory=list)

    def tokens(self, provider_type: str, model: str, image_override: int | None = None) -> int:
        images = sum(image_tokens(provider_type, model, url, image_override) for url in self.images)
        files = sum(file_tokens(provider_type, f) for f in self.files)
        return self.text + images + self.audio + files


def prompt_bound(request: Mapping[str, Any]) -> PromptBound:
    """Every billed input of a chat or embeddings request (validated already)."""
    bound = PromptBound(text=PER_REQUEST)
    for message in request.get("messages") or ():
        bound.text += PER_MESSAGE
        for name in ("name", "tool_call_id"):
            bound.text += _bytes(message.get(name))
        content = message.get("content")
        if isinstance(content, str):
            bound.text += _bytes(content) + 1
        elif isinstance(content, list):
            for part in content:
                _add_part(bound, part)
        if message.get("tool_calls"):
            bound.text += len(orjson.dumps(message["tool_calls"]))
    for name in ("tools", "functions"):
        definitions = request.get(name)
        if definitions:
            bound.text += TOOLS_PREAMBLE + PER_TOOL * len(definitions)
            bound.text += len(orjson.dumps(definitions))
    if request.get("response_format"):
        bound.text += len(orjson.dumps(request["response_format"]))
    _add_embedding_input(bound, request.get("input"))
    return bound


def output_bound(request: Mapping[str, Any], cap: int) -> int:
    """The completion tokens `cap` allows over every choice; rejected predicted-output
    tokens are billed as completion tokens too."""
    n = request.get("n")
    choices = n if isinstance(n, int) and n > 1 else 1
    prediction = request.get("prediction")
    predicted = len(orjson.dumps(prediction)) if prediction else 0
    return cap * choices + predicted


def estimate_tokens(text: str) -> int:
    if text.isascii():
        return math.ceil(len(text) / 4)
    ascii_chars = sum(1 for c in text if c < "\x80")
    return math.ceil(ascii_chars / 4) + len(text) - ascii_chars


def estimate_prompt_tokens(request: Mapping[str, Any]) -> int:
    """A best guess of what the provider bills for the request's text and tools."""
    tokens = 0
    for message in request.get("messages") or ():
        tokens += 4 + estimate_tokens(_text(message.get("content")))
        if message.get("tool_calls"):
            tokens += estimate_tokens(orjson.dumps(message["tool_calls"]).decode())
    if request.get("tools"):
        tokens += estimate_tokens(orjson.dumps(request["tools"]).decode())
    inputs = request.get("input")
    if isinstance(inputs, str):
        tokens += estimate_tokens(inputs)
    elif isinstance(inputs, list):
        tokens += sum(estimate_tokens(i) if isinstance(i, str) else 1 for i in inputs)
    return tokens


def _add_part(bound: PromptBound, part: Mapping[str, Any]) -> None:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        bound.text += _bytes(part.get(kind)) + 1
    elif kind == "image_url":
        bound.images.append(str(part["image_url"]["url"]))
    elif kind == "input_audio":
        bound.audio += audio_tokens(str(part["input_audio"]["data"]))
    elif kind == "file":
        bound.files.append(part["file"])
    else:  # a part the gateway does not know: at least its bytes
        bound.text += len(orjson.dumps(part))


def _add_embedding_input(bound: PromptBound, inputs: Any) -> None:
    if isinstance(inputs, str):
        bound.text += _bytes(inputs) + 1
    elif isinstance(inputs, list):
        for item in inputs:
            if isinstance(item, str):
                bound.text += _bytes(item) + 1
            elif isinstance(item, list):
                bound.text += len(item)  # already tokens
            else:
                bound.text += 1


def _bytes(text: Any) -> int:
    if not isinstance(text, str):
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""
