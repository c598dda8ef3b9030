"""A fake Gemini API (v1beta): generateContent, streamGenerateContent?alt=sse, batchEmbedContents.

Strict where the real API is (tests/support/gemini_rules.py): the key must come in
`x-goog-api-key` (never `key=` in the URL) and a bad one gets the 400 API_KEY_INVALID the
real API sends; unknown fields, schema fields the OpenAPI subset rejects, penalties on
models without them, thinking settings a model does not take, media types Gemini does
not read and unsigned function calls on Gemini 3 all get its 400. By default it echoes
the last user text; tests enqueue other replies.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from tests.support.fake_upstream import FakeUpstream, Recorded, json_reply, sse_reply
from tests.support.gemini_rules import body_problem


def error(
    status: int, message: str, code: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "message": message, "status": code}
    if details:
        body["details"] = details
    return {"error": body}


def api_key_invalid() -> dict[str, Any]:
    """What Gemini answers for a bad, expired or unknown key: 400, not 401 (observed bodies
    in public issues, e.g. continuedev/continue#10290; google.rpc.ErrorInfo)."""
    return error(
        400,
        "API key not valid. Please pass a valid API key.",
        "INVALID_ARGUMENT",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    )


def resource_exhausted(
    retry_delay: str | None = "38s", quota_id: str = "PerMinute"
) -> dict[str, Any]:
    """A 429 as Gemini sends it: QuotaFailure, Help and RetryInfo details, no Retry-After
    header (ai.google.dev/gemini-api/docs/rate-limits; google.rpc.RetryInfo)."""
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                    "quotaId": f"GenerateRequests{quota_id}PerProjectPerModel",
                    "quotaValue": "15",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    return error(429, "You exceeded your current quota.", "RESOURCE_EXHAUSTED", details)


def response(
    parts: list[dict[str, Any]],
    finish: str | None = "STOP",
    usage: dict[str, int] | None = None,
    index: int = 0,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": index}
    if finish:
        candidate["finishReason"] = finish
    data: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-test",
        "responseId": "resp-1",
    }
    if usage is not None:
        data["usageMetadata"] = usage
    return data


def usage(prompt: int = 6, output: int = 2) -> dict[str, int]:
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output,
    }


def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}}


class FakeGemini(FakeUpstream):
    def __init__(self, accepted_keys: set[str] | None = None) -> None:
        super().__init__(self._echo)
        # None: any key is accepted; else only these (others get API_KEY_INVALID).
        self.accepted_keys = accepted_keys
        # Thought signatures this fake handed out (tests add those of scripted replies).
        self.signatures: set[str] = set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        problem = self._validate(request, await request.read())
        if problem is not None:
            status, body = problem
            self.requests.append(self._record(request, await request.read()))
            return await json_reply(body, status=status)(request)
        return await super()._handle(request)

    def _record(self, request: web.Request, raw: bytes) -> Recorded:
        body = orjson.loads(raw) if raw else None
        return Recorded(
            request.method, request.path, dict(request.query), CIMultiDict(request.headers), body
        )

    def _validate(self, request: web.Request, raw: bytes) -> tuple[int, Any] | None:
        if "key" in request.query:
            return 400, error(
                400, "API key in the URL is not accepted by this fake", "INVALID_ARGUMENT"
            )
        key = request.headers.get("x-goog-api-key")
        if not key:
            return 403, error(403, "Method doesn't allow unregistered callers", "PERMISSION_DENIED")
        if self.accepted_keys is not None and key not in self.accepted_keys:
            return 400, api_key_invalid()
        body = orjson.loads(raw)
        if request.path.endswith(":batchEmbedContents"):
            return None
        model = request.path.rsplit("/", 1)[-1].split(":")[0]
        problem = body_problem(body, model, self.signatures)
        return None if problem is None else (400, error(400, problem, "INVALID_ARGUMENT"))

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        if request.path.endswith(":batchEmbedContents"):
            vectors = [{"values": [float(i), 0.25]} for i in range(len(body["requests"]))]
            return await json_reply({"embeddings": vectors})(request)
        user = [c for c in body["contents"] if c["role"] == "user"]
        text = "".join(p.get("text", "") for p in user[-1]["parts"]) if user else ""
        if request.path.endswith(":streamGenerateContent"):
            words = f"echo: {text}".split(" ")
            events: list[Any] = [response([{"text": w + " "}], finish=None) for w in words[:-1]]
            events.append(response([{"text": words[-1]}], usage=usage()))
            return await sse_reply(self, events)(request)
        return await json_reply(response([{"text": f"echo: {text}"}], usage=usage()))(request)
