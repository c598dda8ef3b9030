"""Costs, usage and attribution as the request log records them, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI, chunk, completion, stream_events
from tests.support.fake_upstream import Reset, hang, json_reply, sse_reply
from tests.support.gateway import KEY, RunningGateway

AUTH = {"Authorization": f"Bearer {KEY}"}


def priced(fake: FakeOpenAI, db: Path, **extra: str) -> str:
    sections = [
        # type openai, so the built-in price table applies
        provider("up", fake.url, kind="openai", api_key_env="UP_KEY", idle_timeout_s=0.5),
        '[[models]]\nalias = "m"\nroutes = [{ provider = "up", model = "gpt-4o-mini" }]\n',
        '[[models]]\nalias = "custom"\nroutes = [{ provider = "up", model = "llama", '
        "input_price = 1.5, output_price = 2 }]\n",
        '[[models]]\nalias = "unpriced"\nroutes = [{ provider = "up", model = "llama" }]\n',
        f'[storage]\ndatabase = "{db}"\nflush_interval_ms = 10\n',
        *extra.values(),
    ]
    return gateway_toml(*sections)


def rows(db: Path, where: str = "1") -> list[dict[str, Any]]:
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in connection.execute(f"SELECT * FROM requests WHERE {where}")]
    finally:
        connection.close()


async def wait_rows(db: Path, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        found = rows(db) if db.exists() else []
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} rows, found {len(rows(db))}")


async def post(gw: RunningGateway, body: dict[str, Any], **headers: str) -> httpx.Response:
    async with gw.http() as http:
        return await http.post("/v1/chat/completions", json=body, headers={**AUTH, **headers})


async def test_cost_header_and_row_with_cached_tokens(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 200},
    }
    fake_openai.enqueue(json_reply(completion("hi", usage=usage)))
    db = tmp_path / "log.db"
    gw = await gateway_factory(priced(fake_openai, db), env={"UP_KEY": "sk-up"})
    response = await post(
        gw,
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "user": "body-user"},
        **{"x-gateway-tenant": "acme", "x-gateway-agent": "planner", "user-agent": "tests/1"},
    )
    assert response.headers["x-gateway-cost-usd"] == "0.000435"
    (row,) = await wait_rows(db, 1)
    assert row["cost_nano"] == 435_000
    assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) == (
        1000,
        500,
        200,
    )
    assert (row["tenant"], row["end_user"], row["agent"]) == ("acme", "body-user", "planner")
    assert row["user_agent"] == "tests/1" and row["client_ip"] == "127.0.0.1"
    assert row["key_name"] == "dev" and row["alias"] == "m" and row["provider"] == "up"
    assert row["route_model"] == "gpt-4o-mini" and row["http_status"] == 200
    assert row["request_id"] == response.headers["x-request-id"]
    assert row["usage_estimated"] == 0 and row["streamed"] == 0


async def test_route_override_and_unknown_price(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "log.db"
    gw = await gateway_factory(priced(fake_openai, db), env={"UP_KEY": "sk-up"})
    custom = await post(gw, {"model": "custom", "messages": [{"role": "user", "content": "x"}]})
    # 7 prompt x $1.5 + 3 completion x $2 per 1M = 16.5e-6 USD
    assert custom.headers["x-gateway-cost-usd"] == "0.0000165"
    unknown = await post(gw, {"model": "unpriced", "messages": [{"role": "user", "content": "x"}]})
    assert unknown.headers["x-gateway-cost-usd"] == "unknown"
    found = {r["alias"]: r for r in await wait_rows(db, 2)}
    assert found["custom"]["cost_nano"] == 16_500
    assert found["unpriced"]["cost_nano"] is None
    assert found["unpriced"]["prompt_tokens"] == 7


async def test_streaming_cost_comes_from_final_usage(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "log.db"
    gw = await gateway_factory(priced(fake_openai, db), env={"UP_KEY": "sk-up"})
    async with gw.http() as http:
        response = await http.post(
            "/v1/chat/completions",
            headers=AUTH,
            json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b"}]},
        )
    assert response.status_code == 200
    (row,) = await wait_rows(db, 1)
    assert row["streamed"] == 1 and row["usage_estimated"] == 0
    assert (row["prompt_tokens"], row["completion_tokens"]) == (7, 3)
    assert row["cost_nano"] == 7 * 150 + 3 * 600
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


async def test_stream_without_usage_is_estimated_and_marked(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    events = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "12345678"}),
        chunk({}, "stop"),
        b"[DONE]",
    ]
    fake_openai.enqueue(sse_reply(fake_openai, events))
    fake_openai.enqueue(sse_reply(fake_openai, [chunk({"content": "1234"}), Reset()]))
    db = tmp_path / "log.db"
    gw = await gateway_factory(priced(fake_openai, db), env={"UP_KEY": "sk-up"})
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x" * 40}]}
    for _ in range(2):
        async with gw.http() as http:
            await http.post("/v1/chat/completions", headers=AUTH, json=body)
    first, second = sorted(await wait_rows(db, 2), key=lambda r: r["ts"])
    assert first["usage_estimated"] == 1
    # 40 characters at 4 a token, plus 4 for the message's framing; 8 characters out.
    assert (first["prompt_tokens"], first["completion_tokens"]) == (14, 2)
    assert first["cost_nano"] == 14 * 150 + 2 * 600
    assert second["usage_estimated"] == 1 and second["outcome"] == "error"
    assert second["completion_tokens"] == 1


async def test_every_answered_request_has_a_row_errors_included(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "log.db"
    gw = await gateway_factory(priced(fake_openai, db), env={"UP_KEY": "sk-up"})
    fake_openai.enqueue(*[json_reply({"error": {"message": "down"}}, status=503)] * 2)
    statuses = [
        (
            await post(gw, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
        ).status_code,
        (
            await post(gw, {"model": "nope", "messages": [{"role": "user", "content": "x"}]})
        ).status_code,
        (await post(gw, {"model": "m"})).status_code,
    ]
    async with gw.http() as http:
        statuses.append((await http.post("/v1/chat/completions", json={})).status_code)
    assert statuses == [502, 404, 400, 401]
    found = await wait_rows(db, 4)
    assert sorted(r["http_status"] for r in found) == [400, 401, 404, 502]
    failed = next(r for r in found if r["http_status"] == 502)
    assert failed["attempts"] == 2 and "HTTP 503: down" in failed["failed_attempts"]
    assert all(r["outcome"] == "error" and r["cost_nano"] == 0 for r in found)


async def test_debug_log_redacts_secrets(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    toml = gateway_toml(
        MOCK,
        alias("m", ("demo", "echo")),
        f'[storage]\ndatabase = "{db}"\nflush_interval_ms = 10\n',
        "[debug_log]\nenabled = true\nmax_body_bytes = 60\n",
    )
    gw = await gateway_factory(toml)
    await post(
        gw,
        {"model": "m", "messages": [{"role": "user", "content": "y" * 100}]},
        cookie="session=abc",
        **{"x-api-key": "sk-live-123"},
    )
    await wait_rows(db, 1)
    connection = sqlite3.connect(db)
    (headers, request_body, response_body, truncated) = connection.execute(
        "SELECT request_headers, request_body, response_body, truncated FROM debug_bodies"
    ).fetchone()
    connection.close()
    assert KEY not in headers and "sk-live-123" not in headers and "abc" not in headers
    assert "[redacted]" in headers
    assert len(request_body.encode()) <= 60 and truncated == 1
    assert response_body.startswith('{"id"')
    await gw.stop()  # read raw files only after SQLite let go of them
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("log.db*"))
    assert KEY.encode() not in raw and b"sk-live-123" not in raw


async def test_absurd_upstream_counts_are_clamped_and_the_log_keeps_writing(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "gw.db"
    gw = await gateway_factory(priced(fake_openai, db), env={"UP_KEY": "sk-x"})
    huge = {"prompt_tokens": 2**63, "completion_tokens": -5, "total_tokens": "many"}
    fake_openai.enqueue(json_reply(completion("x", usage=huge)))
    first = await post(gw, {"model": "m", "messages": [{"role": "user", "content": "a"}]})
    assert first.status_code == 200
    assert first.json()["usage"]["prompt_tokens"] == 10**9
    assert first.json()["usage"]["completion_tokens"] == 0
    second = await post(gw, {"model": "m", "messages": [{"role": "user", "content": "b"}]})
    assert second.status_code == 200
    logged = await wait_rows(db, 2)
    assert sorted(r["prompt_tokens"] for r in logged) == [7, 10**9]


async def leave_after(gw: RunningGateway, seconds: float, stream: bool = True) -> None:
    """A client that sends a request and goes away after `seconds`, answered or not."""
    body = {"model": "m", "stream": stream, "messages": [{"role": "user", "content": "x" * 40}]}
    async with gw.http() as http:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async with http.stream(
                    "POST", "/v1/chat/completions", headers=AUTH, json=body
                ) as r:
                    async for _ in r.aiter_bytes():
                        pass


@pytest.mark.parametrize("stream", [True, False])
async def test_a_client_leaving_before_the_first_byte_still_pays_for_the_prompt(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path, stream: bool
) -> None:
    db = tmp_path / "log.db"
    gw = await gateway_factory(priced(fake_openai, db), env={"UP_KEY": "sk-up"})
    fake_openai.enqueue(hang(5))
    await leave_after(gw, 0.3, stream)
    (row,) = await wait_rows(db, 1)
    assert row["outcome"] == "client_disconnected" and row["usage_estimated"] == 1
    assert row["prompt_tokens"] == 14 and row["completion_tokens"] == 0
    assert row["cost_nano"] == 14 * 150


async def test_a_client_leaving_mid_stream_is_charged_the_upstreams_own_usage(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """The upstream is read on after the client left, for its final usage."""
    db = tmp_path / "log.db"
    gw = await gateway_factory(priced(fake_openai, db), env={"UP_KEY": "sk-up"})
    words = [f"w{i} " for i in range(12)]
    fake_openai.enqueue(sse_reply(fake_openai, stream_events(words, pause=0.1)))
    await leave_after(gw, 0.35)
    (row,) = await wait_rows(db, 1)
    assert row["outcome"] == "client_disconnected" and row["usage_estimated"] == 0
    assert (row["prompt_tokens"], row["completion_tokens"]) == (7, 12)  # the upstream's
    assert fake_openai.streams[0].finished


async def test_a_stream_too_long_to_drain_is_estimated_from_what_arrived(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "log.db"
    config = priced(fake_openai, db) + "\n[budgets]\nusage_drain_s = 0.5\n"
    gw = await gateway_factory(config, env={"UP_KEY": "sk-up"})
    words = [f"w{i:02d} " for i in range(100)]  # 4 characters each: one token
    fake_openai.enqueue(sse_reply(fake_openai, stream_events(words, pause=0.05)))
    await leave_after(gw, 0.3)
    (row,) = await wait_rows(db, 1)
    assert row["outcome"] == "client_disconnected" and row["usage_estimated"] == 1
    assert row["prompt_tokens"] == 14
    # About 6 words went out before the client left and 10 more arrived while draining.
    assert 10 <= row["completion_tokens"] <= 25
    assert not fake_openai.streams[0].finished


async def test_a_flex_answer_is_billed_at_flex_rates(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config = gateway_toml(
        provider("up", fake_openai.url, kind="openai", api_key_env="UP_KEY"),
        alias("m", ("up", "o3")),
    )
    gw = await gateway_factory(config, env={"UP_KEY": "sk-up"})
    reply = completion(
        "x",
        model="o3",
        usage={"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000},
    )
    fake_openai.enqueue(json_reply({**reply, "service_tier": "flex"}))
    response = await post(
        gw, {"model": "m", "service_tier": "flex", "messages": [{"role": "user", "content": "x"}]}
    )
    # o3 flex: 1000 x $1.00 + 1000 x $4.00 per 1M (standard would be $2 and $8).
    assert response.headers["x-gateway-cost-usd"] == "0.005"
