"""A deliberately minimal, fast OpenAI-shaped upstream for benchmarks (HTTP/1.1 keep-alive).

Answers POST .../chat/completions with a fixed completion, or with 20 content chunks,
a finish chunk, a usage chunk and [DONE] when the body asks for a stream. It parses only
what it must, so the gateway, not the fake, is what the benchmark measures.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
import uvloop

MODEL = "fake-model"
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "pong"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
)


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(data) + b"\n\n"


USAGE = (
    b"data: "
    + orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": MODEL,
            "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25},
        }
    )
    + b"\n\n"
)
STREAM = b"".join(
    [_chunk({"role": "assistant", "content": ""})]
    + [_chunk({"content": f"tok{i} "}) for i in range(20)]
    + [_chunk({}, "stop"), USAGE, b"data: [DONE]\n\n"]
)


def response(body: bytes, content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


LATENCY_S = 0.0
PLAIN_RESPONSE = response(COMPLETION, b"application/json")
STREAM_RESPONSE = response(STREAM, b"text/event-stream")


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's own class

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            stop = head.find(b"\r\n", start)
            length = int(head[start + 15 : stop if stop >= 0 else None]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            streaming = b'"stream":true' in body.replace(b" ", b"")
            answer = STREAM_RESPONSE if streaming else PLAIN_RESPONSE
            assert self.transport is not None
            if LATENCY_S:
                asyncio.get_running_loop().call_later(LATENCY_S, self._answer, answer)
            else:
                self.transport.write(answer)

    def _answer(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    # Optional second argument: milliseconds before each answer, like a real model's latency.
    LATENCY_S = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
    uvloop.run(main(int(sys.argv[1])))
