"""The access line: one per answered request, in the configured format and level."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import io
import re
import select
import socket
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from proxy.logs import AccessLog
from tests.support.configs import MOCK, alias, gateway_toml
from tests.support.gateway import KEY
from tests.support.process import GatewayProcess

AUTH = {"Authorization": f"Bearer {KEY}"}
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def config(tmp_path: Path, format: str, level: str = "info") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        gateway_toml(
            MOCK,
            alias("m", ("demo", "echo")),
            f'[storage]\ndatabase = "{tmp_path / "log.db"}"\n',
            f'[logging]\nformat = "{format}"\nlevel = "{level}"\n',
        )
    )
    return path


async def answered(tmp_path: Path, format: str, level: str = "info") -> tuple[list[str], str]:
    """Three requests (two answered, one refused); the request ids and the log text."""
    log = tmp_path / "server.log"
    server = GatewayProcess(config(tmp_path, format, level), log)
    try:
        await server.ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            ids = []
            for model, stream in (("m", False), ("m", True), ("nope", False)):
                body = {
                    "model": model,
                    "stream": stream,
                    "messages": [{"role": "user", "content": "hi"}],
                }
                reply = await http.post("/v1/chat/completions", json=body, headers=AUTH)
                assert reply.status_code == (200 if model == "m" else 404)
                ids.append(reply.headers["x-request-id"])
    finally:
        assert server.stop() == 0
    return ids, log.read_text()


async def test_json_access_line_per_request(tmp_path: Path) -> None:
    started = time.time()
    ids, text = await answered(tmp_path, "json")
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = {line["request_id"]: line for line in lines if line["event"] == "request"}
    assert sorted(access) == sorted(ids)  # one each, the refused one too
    assert sum(line["event"] == "request" for line in lines) == 3
    plain, stream, refused = (access[i] for i in ids)
    for line in (plain, stream, refused):
        assert line["level"] == "info"
        assert ISO_UTC.fullmatch(line["timestamp"])
        stamped = calendar.timegm(time.strptime(line["timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
        assert abs(stamped - started) < 60  # UTC, and now
        assert line["key"] == "dev" and line["api"] == "chat"
    assert plain["status"] == 200 and plain["outcome"] == "ok" and plain["stream"] is False
    assert plain["provider"] == "demo" and plain["route_model"] == "echo"
    assert plain["prompt_tokens"] > 0 and plain["completion_tokens"] > 0
    assert plain["latency_ms"] >= plain["overhead_ms"] >= 0 and plain["error"] is None
    assert stream["stream"] is True and stream["ttft_ms"] is not None
    assert refused["status"] == 404 and refused["outcome"] == "error" and refused["error"]
    assert refused["provider"] is None and refused["attempts"] == 0


async def test_console_access_line(tmp_path: Path) -> None:
    ids, text = await answered(tmp_path, "console")
    for request_id in ids:
        (line,) = [line for line in text.splitlines() if request_id in line]
        assert "request" in line and "status=" in line


@pytest.mark.parametrize("format", ["json", "console"])
async def test_no_access_line_above_info(tmp_path: Path, format: str) -> None:
    ids, text = await answered(tmp_path, format, level="warning")
    assert not any(request_id in text for request_id in ids)


async def test_lines_of_one_loop_turn_leave_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    # A datagram socket pair: each write(2) on one end is one packet on the other, so the
    # packets count the writes.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs, io.TextIOWrapper(open(ours.detach(), "wb")) as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        access = AccessLog("json")
        for n in range(3):
            access.write({"request_id": f"r{n}"})
        theirs.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing written within the turn
            theirs.recv(65536)
        await asyncio.sleep(0)  # the turn ends
        access.write({"request_id": "r3"})
        await asyncio.sleep(0)
        packets = [theirs.recv(65536), theirs.recv(65536)]
        with pytest.raises(BlockingIOError):
            theirs.recv(65536)
    turns = [[orjson.loads(line)["request_id"] for line in p.splitlines()] for p in packets]
    assert turns == [["r0", "r1", "r2"], ["r3"]]
    assert all(p.endswith(b"\n") for p in packets)


async def test_a_turns_lines_leave_in_writes_a_pipe_keeps_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers share one stderr: a write beyond PIPE_BUF could be split by another
    worker's on a pipe, so a busy turn's lines leave in several writes, each of whole
    lines and none larger than PIPE_BUF."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs, io.TextIOWrapper(open(ours.detach(), "wb")) as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        access = AccessLog("json")
        for n in range(60):
            access.write({"request_id": f"r{n}", "error": "x" * (n * 7)})
        await asyncio.sleep(0)
        theirs.setblocking(False)
        packets = []
        with contextlib.suppress(BlockingIOError):
            while True:
                packets.append(theirs.recv(65536))
    assert len(packets) > 1
    assert all(len(p) <= select.PIPE_BUF and p.endswith(b"\n") for p in packets)
    ids = [orjson.loads(line)["request_id"] for p in packets for line in p.splitlines()]
    assert ids == [f"r{n}" for n in range(60)]
