"""An OpenAI-shaped upstream that bills the most a real provider could for each request.

Budget tests need an upstream whose usage is as large as the real provider's could be,
not a polite constant: otherwise a reservation that undercounts still "passes". So this
fake bills
- every prompt token a tokenizer could make of the request: one per UTF-8 byte of every
  message text, tool call, tool definition and response format, plus OpenAI's documented
  framing (3 per message, 3 for the reply);
- each image by OpenAI's documented rule (vision guide, "Calculating costs"): fit in
  2048 x 2048, shortest side to 768, 512-px tiles; gpt-4o-mini bills 2,833 + 5,667 per
  tile, gpt-4o 85 + 170. An image whose size the fake cannot read (a URL) bills the
  most: 8 tiles (48,169 on gpt-4o-mini);
- output: the whole cap the request sent, in whichever field (max_completion_tokens,
  max_tokens), times `n`; with no cap, the model's own limit (16,384 for gpt-4o-mini),
  as a model that writes until it is stopped would.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import orjson
from aiohttp import web

from tests.support.fake_openai import chunk
from tests.support.fake_upstream import FakeUpstream, sse_reply

MODEL_LIMIT = 16_384


def billed_prompt(body: dict[str, Any]) -> int:
    tokens = 3
    for message in body.get("messages", ()):
        tokens += 3
        content = message.get("content")
        if isinstance(content, str):
            tokens += len(content.encode())
        for part in content if isinstance(content, list) else ():
            if part.get("type") == "text":
                tokens += len(part["text"].encode())
            elif part.get("type") == "image_url":
                tokens += image_tokens(body["model"], part["image_url"]["url"])
        if message.get("tool_calls"):
            tokens += len(orjson.dumps(message["tool_calls"]))
    for name in ("tools", "response_format"):
        if body.get(name):
            tokens += len(orjson.dumps(body[name]))
    return tokens


def image_tokens(model: str, url: str) -> int:
    base, per_tile = (2_833, 5_667) if model.startswith("gpt-4o-mini") else (85, 170)
    tiles = 8
    if url.startswith("data:image/png;base64,"):
        head = base64.b64decode(url.split(",", 1)[1][:64])
        width, height = struct.unpack(">II", head[16:24])
        scale = min(1.0, 2048 / max(width, height))
        width, height = width * scale, height * scale
        if min(width, height) > 768:
            shrink = 768 / min(width, height)
            width, height = width * shrink, height * shrink
        tiles = math.ceil(width / 512) * math.ceil(height / 512)
    return base + per_tile * tiles


def billed_completion(body: dict[str, Any]) -> int:
    caps = [
        body[f] for f in ("max_completion_tokens", "max_tokens") if isinstance(body.get(f), int)
    ]
    cap = min(caps) if caps else MODEL_LIMIT
    return cap * (body.get("n") or 1)


class BillingUpstream(FakeUpstream):
    def __init__(self) -> None:
        super().__init__(self._answer)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        prompt, completion = billed_prompt(body), billed_completion(body)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        choices = body.get("n") or 1
        if body.get("stream"):
            events: list[Any] = [chunk({"role": "assistant", "content": "x"})]
            events += [chunk({}, "stop"), {**chunk({}), "choices": [], "usage": usage}, b"[DONE]"]
            return await sse_reply(self, events)(request)
        answer = {
            "id": "chatcmpl-billing",
            "object": "chat.completion",
            "created": 1700000000,
            "model": body["model"],
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "x"},
                    "finish_reason": "length",
                }
                for i in range(choices)
            ],
            "usage": usage,
        }
        return web.json_response(answer)
