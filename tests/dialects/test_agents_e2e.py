"""openai-agents in its default mode (the Responses API, full history every turn) runs an
agent with one function tool to completion through the gateway, on each kind of route."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, ModelSettings, RunConfig, Runner, function_tool
from agents.models.openai_provider import OpenAIProvider
from openai.types.shared import Reasoning

from tests.conftest import GatewayFactory
from tests.dialects.conftest import ENV, routes_toml, script_tool_call
from tests.support.configs import alias
from tests.support.fake_anthropic import FakeAnthropic, message, tool_use_block
from tests.support.fake_upstream import json_reply
from tests.support.gateway import RunningGateway

# The model an Agent without one asks for (agents.models.default_models).
AGENTS_DEFAULT_MODEL = "gpt-5.6-luna"
calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    calls.append(city)
    return f"18C and sunny in {city}"


@pytest.fixture
async def gw(gateway_factory: GatewayFactory, fakes: dict[str, Any]) -> RunningGateway:
    # A team that lets Agent() pick its model routes that name wherever it likes.
    default = alias(AGENTS_DEFAULT_MODEL, ("anthropic", "claude-sonnet-4-5"))
    return await gateway_factory(routes_toml(fakes, default), env=ENV)


async def run_agent(
    gw: RunningGateway,
    model: str | None,
    *,
    stream: bool = False,
    settings: ModelSettings | None = None,
) -> Any:
    extra: dict[str, Any] = {} if settings is None else {"model_settings": settings}
    agent = Agent(
        name="weather",
        instructions="Answer with the tool.",
        tools=[get_weather],
        model=model,
        **extra,  # else the agents defaults, as a team that sets nothing gets them
    )
    question = "What is the weather in Paris?"
    async with gw.openai() as client:
        provider = OpenAIProvider(openai_client=client)  # the Responses API, as by default
        config = RunConfig(model_provider=provider, tracing_disabled=True)
        if not stream:
            return await Runner.run(agent, question, run_config=config)
        result = Runner.run_streamed(agent, question, run_config=config)
        async for _ in result.stream_events():
            pass
        return result


@pytest.mark.parametrize("stream", [False, True], ids=["run", "run_streamed"])
@pytest.mark.parametrize("model", ["gpt", "claude", "gem"])
async def test_agent_with_a_tool_runs_to_completion(
    gw: RunningGateway, fakes: dict[str, Any], model: str, stream: bool
) -> None:
    calls.clear()
    script_tool_call(model, fakes[model], stream=stream)
    result = await run_agent(gw, model, stream=stream)
    assert calls == ["Paris"]
    assert result.final_output.startswith("echo:")  # the model's last word, after the tool
    sent = fakes[model].requests[-1].body
    assert "18C and sunny in Paris" in str(sent)  # the tool's output went back to the model


async def test_agent_default_model(gw: RunningGateway, fakes: dict[str, Any]) -> None:
    """Agent() without a model asks for the agents default with GPT-5 default settings
    (reasoning effort none, low verbosity); an alias of that name takes it anywhere."""
    calls.clear()
    script_tool_call("claude", fakes["claude"], stream=False)
    result = await run_agent(gw, None)
    assert calls == ["Paris"] and result.final_output.startswith("echo:")
    first = fakes["claude"].requests[-2].body
    assert first["model"] == "claude-sonnet-4-5" and "thinking" not in first


async def test_reasoning_state_rides_the_replayed_history(
    gw: RunningGateway, fakes: dict[str, Any]
) -> None:
    """With reasoning on, Claude thinks; its signed thinking block comes back to the agent
    inside a reasoning item, which the agent replays on the next turn, and the gateway
    hands it back to Claude ahead of the tool call, as Claude requires."""
    calls.clear()
    claude: FakeAnthropic = fakes["claude"]
    thinking = {"type": "thinking", "thinking": "Use the tool.", "signature": "sig-agent"}
    claude.signatures.add("sig-agent")
    blocks = [thinking, tool_use_block("toolu_1", "get_weather", {"city": "Paris"})]
    claude.enqueue(json_reply(message(blocks, stop_reason="tool_use")))
    settings = ModelSettings(reasoning=Reasoning(effort="medium"))
    result = await run_agent(gw, "claude", settings=settings)
    assert calls == ["Paris"] and result.final_output.startswith("echo:")
    first, second = (r.body for r in claude.requests[-2:])
    assert first["thinking"]["type"] == "enabled"
    assert second["messages"][1]["content"][0] == thinking
