"""The gateway's HTTP protocol under real uvicorn servers and raw sockets: a plain answer
leaves in one write, nothing is held back for long, and a client that leaves cancels its
request (under uvicorn's own protocol too, for an app mounted elsewhere)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from proxy.asgi import DisconnectWatcher, read_body, send_response
from proxy.protocol import ConnectionLimits, bounded_protocol

OURS = bounded_protocol(ConnectionLimits())
ANSWER = b'{"answer": "' + b"x" * 2000 + b'"}'


class Served:
    """An ASGI app under uvicorn, on its own thread and event loop."""

    def __init__(self, app: Any, protocol: type[HttpToolsProtocol]) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, http=protocol, lifespan="off", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def writes(self) -> int:
        """System calls that wrote, made by the server's thread so far."""
        io = Path(f"/proc/self/task/{self.thread.native_id}/io").read_text()
        return int(io.split("syscw:")[1].split()[0])


@contextmanager
def connected(port: int) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        yield sock


def post(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (
        f"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode() + body
    )


def read_answer(sock: socket.socket) -> bytes:
    """One whole response with a content-length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


async def answer_app(scope: Any, receive: Any, send: Any) -> None:
    await read_body(scope, receive, limit=1 << 20, timeout_s=5)
    await send_response(send, 200, ANSWER)


def test_a_plain_answer_leaves_in_one_write() -> None:
    """Head and body in one writev: half the system calls and packets of uvicorn's two."""
    with Served(answer_app, OURS) as served, connected(served.port) as sock:
        sock.sendall(post(b"{}"))
        read_answer(sock)  # the connection is open and warm
        before = served.writes()
        for _ in range(50):
            sock.sendall(post(b"{}"))
            assert read_answer(sock).endswith(ANSWER)
        assert served.writes() - before == 50


def test_uvicorns_own_protocol_writes_twice() -> None:
    """What the test above would see without the gateway's protocol (so it can fail)."""
    with Served(answer_app, HttpToolsProtocol) as served, connected(served.port) as sock:
        sock.sendall(post(b"{}"))
        read_answer(sock)
        before = served.writes()
        for _ in range(20):
            sock.sendall(post(b"{}"))
            read_answer(sock)
        assert served.writes() - before == 40


def test_a_100_continue_is_sent_before_the_body_arrives() -> None:
    """A client that waits for 100 Continue before its body must get it: the first write
    of a response is held back only until the end of the loop's turn."""
    with Served(answer_app, OURS) as served, connected(served.port) as sock:
        request = post(b'{"a": 1}', "expect: 100-continue")
        head, _, body = request.partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        sock.settimeout(2)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        assert read_answer(sock).startswith(b"HTTP/1.1 200 OK")


def test_answers_with_no_body_still_leave() -> None:
    """A 204 writes an empty body; a HEAD answer writes none at all."""

    async def no_body(scope: Any, receive: Any, send: Any) -> None:
        status = 200 if scope["method"] == "HEAD" else 204
        headers = [(b"content-length", b"7")] if status == 200 else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"ignored" if status == 200 else b""})

    with Served(no_body, OURS) as served, connected(served.port) as sock:
        sock.settimeout(2)
        sock.sendall(post(b""))
        assert sock.recv(65536).startswith(b"HTTP/1.1 204 No Content")
        for _ in range(3):  # on the same kept-alive connection
            sock.sendall(b"HEAD /x HTTP/1.1\r\nhost: t\r\n\r\n")
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("late", [False, True], ids=["while_watching", "before_the_watch"])
@pytest.mark.parametrize("protocol", [OURS, HttpToolsProtocol], ids=["ours", "uvicorn"])
def test_a_client_leaving_cancels_its_request(
    protocol: type[HttpToolsProtocol], late: bool
) -> None:
    """Late: a request admitted slowly (a database round trip, say) starts watching after
    its client has left; it must learn so at once, not run its upstream call to the end."""
    cancelled = threading.Event()
    left = threading.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await read_body(scope, receive, limit=1 << 20, timeout_s=5)
        if late:
            await asyncio.get_running_loop().run_in_executor(None, left.wait, 5)
            await asyncio.sleep(0.2)  # the connection is surely lost by now
        async with DisconnectWatcher(scope, receive):
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    with Served(slow, protocol) as served:
        with connected(served.port) as sock:
            sock.sendall(post(b"{}"))
            time.sleep(0.1 if late else 0.2)
        left.set()
        assert cancelled.wait(2)
