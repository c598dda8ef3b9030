"""Google Gemini (generateContent, streamGenerateContent with alt=sse, batchEmbedContents).

The API key travels in the `x-goog-api-key` header, never in the URL: URLs end up in logs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.config import ProviderConfig
from proxy.errors import InvalidRequest, UpstreamHTTPError, UpstreamProtocolError
from proxy.providers.base import load_object
from proxy.providers.errors import gemini_error
from proxy.providers.gemini_request import to_gemini_request
from proxy.providers.gemini_response import GeminiStreamTranslator, from_gemini_response
from proxy.providers.openai import encode_base64
from proxy.schema import ChatCompletion, ChatRequest, EmbeddingsRequest
from proxy.transport import UpstreamRequest


class GeminiAdapter:
    def __init__(self, config: ProviderConfig) -> None:
        self._base = config.base_url
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            headers["x-goog-api-key"] = config.api_key
        self._headers = headers

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, request_id: str
    ) -> UpstreamRequest:
        body, dropped = to_gemini_request(dict(request), model)
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{self._base}/models/{model}:{method}"
        headers = {**self._headers, "X-Request-Id": request_id}
        return UpstreamRequest(url, headers, orjson.dumps(body), dropped)

    def chat_response(self, body: bytes) -> ChatCompletion:
        return from_gemini_response(load_object(body))

    def stream_translator(self) -> GeminiStreamTranslator:
        return GeminiStreamTranslator()

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        return gemini_error(status, body, headers)

    def embeddings_request(
        self, request: EmbeddingsRequest, model: str, *, request_id: str
    ) -> UpstreamRequest:
        inputs = request["input"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequest("this model takes text input, not token arrays", param="input")
        one: dict[str, Any] = {"model": f"models/{model}"}
        if request.get("dimensions"):
            one["outputDimensionality"] = request["dimensions"]
        body = {"requests": [{**one, "content": {"parts": [{"text": t}]}} for t in texts]}
        dropped = ("user",) if request.get("user") else ()
        headers = {**self._headers, "X-Request-Id": request_id}
        return UpstreamRequest(
            f"{self._base}/models/{model}:batchEmbedContents",
            headers,
            orjson.dumps(body),
            dropped,
        )

    def embeddings_response(self, body: bytes, request: EmbeddingsRequest) -> dict[str, Any]:
        data = load_object(body)
        vectors = data.get("embeddings")
        if not isinstance(vectors, list):
            raise UpstreamProtocolError("upstream embeddings response has no 'embeddings'")
        inputs = request["input"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        # Gemini reports no token counts for embeddings: estimated, ~4 characters a token.
        tokens = sum(math.ceil(len(str(t)) / 4) for t in texts)
        answer: dict[str, Any] = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v.get("values", [])}
                for i, v in enumerate(vectors)
            ],
            "model": "",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        if request.get("encoding_format") == "base64":
            encode_base64(answer)
        return answer
