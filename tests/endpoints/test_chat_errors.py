"""Bad input gets OpenAI's error envelope with the right status, and the SDK's matching class."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from proxy.providers.openai import OpenAIAdapter
from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, alias, gateway_toml
from tests.support.gateway import KEY, RunningGateway

AUTH = {"Authorization": f"Bearer {KEY}"}
GOOD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _user(content: list[Any]) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}]}


def _assistant_calls(calls: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": None, "tool_calls": calls},
        ],
    }


@pytest.fixture
async def gw(gateway_factory: GatewayFactory) -> RunningGateway:
    return await gateway_factory(gateway_toml(MOCK, alias("m", ("demo", "echo")), body_mb=0.01))


async def post(
    gw: RunningGateway, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> httpx.Response:
    async with gw.http() as http:
        if raw is not None:
            return await http.post("/v1/chat/completions", content=raw, headers=headers or AUTH)
        return await http.post("/v1/chat/completions", json=body, headers=headers or AUTH)


def assert_envelope(
    response: httpx.Response, status: int, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["param"] == param
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({**GOOD, "stream": "yes"}, "stream"),
        ({**GOOD, "temperature": "hot"}, "temperature"),
        ({**GOOD, "max_tokens": 0}, "max_tokens"),
        ({**GOOD, "max_tokens": 1.5}, "max_tokens"),
        ({**GOOD, "n": True}, "n"),
        ({**GOOD, "stop": [1]}, "stop"),
        ({**GOOD, "tools": {}}, "tools"),
        # Shapes that gave 500s: each is refused at the schema boundary, naming the field.
        (_user([{"type": "text", "text": 5}]), "messages[0].content[0].text"),
        (_user([{"type": "text", "text": None}]), "messages[0].content[0].text"),
        (_user([{"type": "text"}]), "messages[0].content[0].text"),
        (_user([{"type": "image_url", "image_url": 5}]), "messages[0].content[0].image_url"),
        (
            _user([{"type": "image_url", "image_url": {"url": 5}}]),
            "messages[0].content[0].image_url.url",
        ),
        (
            _user([{"type": "input_audio", "input_audio": "x"}]),
            "messages[0].content[0].input_audio",
        ),
        (_user([{"type": "file", "file": {}}]), "messages[0].content[0].file"),
        (_assistant_calls("x"), "messages[1].tool_calls"),
        (_assistant_calls([5]), "messages[1].tool_calls[0]"),
        (_assistant_calls([{"id": "a", "function": 5}]), "messages[1].tool_calls[0].function"),
        (
            _assistant_calls([{"id": "a", "function": {"name": 5}}]),
            "messages[1].tool_calls[0].function.name",
        ),
        (
            _assistant_calls([{"id": "a", "function": {"name": "f", "arguments": {}}}]),
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({**GOOD, "tools": [{"type": "function", "function": 5}]}, "tools[0].function"),
        ({**GOOD, "tools": [5]}, "tools[0]"),
        (
            {**GOOD, "tools": [{"type": "function", "function": {"name": "f", "parameters": 5}}]},
            "tools[0].function.parameters",
        ),
        (
            {**GOOD, "response_format": {"type": "json_schema", "json_schema": 5}},
            "response_format.json_schema",
        ),
        (
            {
                **GOOD,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": 5},
                },
            },
            "response_format.json_schema.schema",
        ),
        ({**GOOD, "response_format": "json"}, "response_format"),
        ({**GOOD, "tool_choice": 5}, "tool_choice"),
        ({**GOOD, "tool_choice": {"type": "function", "function": 5}}, "tool_choice.function"),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": None}]},
                    {"role": "user", "content": "x"},
                ],
            },
            "messages[0].content[0].text",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        ({**GOOD, "max_tokens": 2**63}, "max_tokens"),
    ],
)
async def test_invalid_fields_are_400_with_param(gw: RunningGateway, body: Any, param: str) -> None:
    error = assert_envelope(await post(gw, body), 400, param)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
async def test_malformed_bodies_are_400(gw: RunningGateway, raw: bytes) -> None:
    assert_envelope(await post(gw, None, raw=raw), 400)


async def test_body_over_the_limit_is_413(gw: RunningGateway) -> None:
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 20_000}]}
    error = assert_envelope(await post(gw, big), 413)
    assert "max_request_body_mb" in error["message"]


async def test_missing_and_malformed_authorization_are_401(gw: RunningGateway) -> None:
    assert_envelope(await post(gw, GOOD, headers={"X-Other": "1"}), 401)
    assert_envelope(await post(gw, GOOD, headers={"Authorization": "Basic abc"}), 401)
    error = assert_envelope(await post(gw, GOOD, headers={"Authorization": "Bearer nope"}), 401)
    assert "nope" not in error["message"]


async def test_unknown_alias_is_404_model_not_found(gw: RunningGateway) -> None:
    error = assert_envelope(await post(gw, {**GOOD, "model": "gpt-9"}), 404, "model")
    assert error["code"] == "model_not_found"


async def test_unknown_path_and_wrong_method_use_the_envelope(gw: RunningGateway) -> None:
    async with gw.http() as http:
        assert_envelope(await http.get("/v1/nothing"), 404)
        assert_envelope(await http.get("/v1/chat/completions"), 405)


async def test_the_request_id_is_the_gateways_and_a_client_id_is_kept_apart(
    gw: RunningGateway,
) -> None:
    first = await post(gw, GOOD, headers={**AUTH, "X-Request-Id": "client-id_1.2"})
    again = await post(gw, GOOD, headers={**AUTH, "X-Client-Request-Id": "client-id_1.2"})
    ids = {first.headers["x-request-id"], again.headers["x-request-id"]}
    assert len(ids) == 2 and all(len(i) == 24 for i in ids)
    assert first.headers["x-request-id"] < again.headers["x-request-id"]  # arrival order
    assert first.headers["x-client-request-id"] == again.headers["x-client-request-id"]
    odd = await post(gw, GOOD, headers={**AUTH, "X-Request-Id": "bad id;" + "x" * 80})
    assert "x-client-request-id" not in odd.headers
    assert len(odd.headers["x-request-id"]) == 24


async def test_every_answer_carries_its_ids_once(gw: RunningGateway) -> None:
    """The proxied endpoints give their requests ids themselves, everything else gets
    them from the middleware: either way once, on answers, streams and errors alike."""
    client = {**AUTH, "X-Client-Request-Id": "mine-1"}
    messages = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with gw.http() as http:
        answers = [
            await http.post("/v1/chat/completions", json=GOOD, headers=client),
            await http.post("/v1/chat/completions", json={**GOOD, "stream": True}, headers=client),
            await http.post("/v1/chat/completions", json=GOOD, headers={"X-Request-Id": "mine-1"}),
            await http.post("/v1/chat/completions", json={"model": "m"}, headers=client),
            await http.post("/v1/messages", json=messages, headers=client),
            await http.post("/v1/messages/count_tokens", json=messages, headers=client),
            await http.post("/v1/responses", json={"model": "m", "input": "hi"}, headers=client),
            await http.get("/v1/chat/completions", headers=client),
            await http.get("/v1/models", headers=client),
        ]
    assert [a.status_code for a in answers] == [200, 200, 401, 400, 200, 200, 200, 405, 200]
    ids = [a.headers.get_list("x-request-id") for a in answers]
    assert all(len(i) == 1 and len(i[0]) == 24 for i in ids), ids
    assert len({i[0] for i in ids}) == len(answers)
    assert all(a.headers.get_list("x-client-request-id") == ["mine-1"] for a in answers)


async def test_unexpected_exception_is_500_with_request_id_and_no_traceback(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No real input triggers a bug (that is the point), so inject one into the adapter.
    def broken(self: OpenAIAdapter, body: bytes) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(OpenAIAdapter, "chat_response", broken)
    response = await post(gw, GOOD)
    error = assert_envelope(response, 500)
    assert response.headers["x-request-id"] in error["message"]
    assert "secret internals" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("body", "headers", "exception"),
    [
        ({**GOOD, "model": 7}, AUTH, openai.BadRequestError),
        (GOOD, {"Authorization": "Bearer wrong"}, openai.AuthenticationError),
        ({**GOOD, "model": "nope"}, AUTH, openai.NotFoundError),
    ],
)
async def test_sdk_raises_the_matching_exception_class(
    gw: RunningGateway, body: Any, headers: dict[str, str], exception: type[Exception]
) -> None:
    key = headers["Authorization"].removeprefix("Bearer ")
    async with gw.openai(key=key) as client:
        with pytest.raises(exception):
            await client.chat.completions.create(**body)


async def test_health_and_readiness(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(gateway_toml(MOCK, alias("m", ("demo", "echo"))))
    async with gw.http() as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
    unusable = gateway_toml(
        '[providers.p]\ntype = "openai"\napi_key_env = "UNSET_KEY_FOR_TEST"\n',
        alias("m", ("p", "gpt")),
    )
    gw2 = await gateway_factory(unusable)
    async with gw2.http() as http:
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
        assert response.status_code == 503


@pytest.mark.parametrize("forwarded", ["X-Forwarded-For", "X-Real-IP", "Forwarded"])
async def test_the_dev_key_is_refused_through_a_proxy(gw: RunningGateway, forwarded: str) -> None:
    """Behind nginx the gateway still listens on loopback; the proxy's headers tell."""
    response = await post(gw, GOOD, headers={**AUTH, forwarded: "203.0.113.7"})
    error = assert_envelope(response, 401)
    assert error["code"] == "dev_key_refused"
    assert (await post(gw, GOOD)).status_code == 200
