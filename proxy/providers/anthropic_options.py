"""OpenAI request options -> Messages API options, per Claude model generation.

What each Claude model accepts differs, and the API refuses what it does not:
- `temperature` is 0-1 (OpenAI's is 0-2): values above 1 become 1, the maximum.
- `temperature` and `top_p` together are refused from Opus 4.1 and the 4.5 models on
  ("cannot both be specified for this model"): only `temperature` is sent.
- Opus 4.7 and later, and the 5 generation, refuse any sampling parameter.
- `reasoning_effort` becomes extended thinking: `thinking: {type: enabled,
  budget_tokens}` (at least 1,024 and below `max_tokens`) up to the 4.5 models,
  `thinking: {type: adaptive}` with `output_config.effort` from 4.6 on. While thinking,
  temperature must be 1 (others are dropped), `top_k` is refused, `top_p` only 0.95-1,
  and a forced tool choice is refused (then thinking is the one left out).
- `response_format` json_schema becomes structured outputs, `output_config.format`,
  from the 4.5 models on; json_object, and json_schema before 4.5, a forced call of one
  tool whose input schema is the format's, turned back into the message content. A
  request that also has tools of its own cannot force that tool: there the format is
  left out (and named in x-gateway-dropped-params).
Sources: the Messages API reference, "Extended thinking", "Structured outputs" and the
models' migration guides (platform.claude.com/docs), and the anthropic SDK's types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from proxy.errors import InvalidRequest

# The tool a structured answer is forced through on models without structured outputs.
JSON_TOOL = "gateway_json_answer"
THINKING_BUDGETS = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 32768,
}
ADAPTIVE_EFFORT = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "max",
}
_NEW_STYLE = re.compile(r"claude-(opus|sonnet|haiku|fable|mythos)-(\d+)(?:-(\d{1,2}))?(?:-|$)")
_OLD_STYLE = re.compile(r"claude-(\d+)(?:-(\d+))?-(opus|sonnet|haiku)")


def claude_version(model: str) -> tuple[str, int, int]:
    """(family, major, minor) of a Claude model id; ('', 0, 0) when it is not one."""
    match = _NEW_STYLE.search(model)
    if match:
        return match.group(1), int(match.group(2)), int(match.group(3) or 0)
    match = _OLD_STYLE.search(model)
    if match:
        return match.group(3), int(match.group(1)), int(match.group(2) or 0)
    return "", 0, 0


def structured_outputs(model: str) -> bool:
    return claude_version(model)[1:] >= (4, 5)


def rejects_sampling(model: str) -> bool:
    family, major, minor = claude_version(model)
    return major >= 5 or (family == "opus" and (major, minor) >= (4, 7))


def adaptive_thinking(model: str) -> bool:
    return claude_version(model)[1:] >= (4, 6)


def apply_options(fields: Mapping[str, Any], body: dict[str, Any], model: str) -> list[str]:
    """Set sampling, thinking and output format on `body`; return what was left out."""
    dropped: list[str] = []
    forced_tool = body.get("tool_choice", {}).get("type") in ("any", "tool")
    if _format(fields, body, model, dropped):
        forced_tool = True
    thinking = _thinking(fields, body, model, forced_tool, dropped)
    _sampling(fields, body, model, thinking, dropped)
    return dropped


def _sampling(
    fields: Mapping[str, Any], body: dict[str, Any], model: str, thinking: bool, dropped: list[str]
) -> None:
    given = [name for name in ("temperature", "top_p", "top_k") if fields.get(name) is not None]
    if rejects_sampling(model):
        dropped += given
        return
    temperature = fields.get("temperature")
    if temperature is not None:
        if thinking and temperature != 1:
            dropped.append("temperature")
        else:
            body["temperature"] = min(float(temperature), 1.0)
    top_p = fields.get("top_p")
    if top_p is not None:
        if "temperature" in body or (thinking and top_p < 0.95):
            dropped.append("top_p")  # never both; and thinking takes only 0.95-1
        else:
            body["top_p"] = top_p
    if fields.get("top_k") is not None:
        if thinking:
            dropped.append("top_k")
        else:
            body["top_k"] = fields["top_k"]


def _thinking(
    fields: Mapping[str, Any],
    body: dict[str, Any],
    model: str,
    forced_tool: bool,
    dropped: list[str],
) -> bool:
    effort = fields.get("reasoning_effort")
    if effort is None or effort == "none":
        return False
    if effort not in THINKING_BUDGETS:
        raise InvalidRequest(
            f"reasoning_effort must be one of none, {', '.join(THINKING_BUDGETS)}",
            param="reasoning_effort",
        )
    if forced_tool:
        dropped.append("reasoning_effort")  # thinking refuses a forced tool choice
        return False
    if adaptive_thinking(model):
        body["thinking"] = {"type": "adaptive"}
        body.setdefault("output_config", {})["effort"] = ADAPTIVE_EFFORT[effort]
        return True
    budget = min(THINKING_BUDGETS[effort], body["max_tokens"] - 1)
    if budget < 1024:
        dropped.append("reasoning_effort")  # no room to think within max_tokens
        return False
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return True


def _format(
    fields: Mapping[str, Any], body: dict[str, Any], model: str, dropped: list[str]
) -> bool:
    """Structured output; True when it is forced through a tool call."""
    response_format = fields.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("json_schema", "json_object"):
        return False
    assert isinstance(response_format, dict)
    spec = response_format.get("json_schema") or {}
    schema = spec.get("schema") or {"type": "object"}
    if structured_outputs(model) and kind == "json_schema":
        body.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": schema}
        return False
    if body.get("tools"):
        dropped.append("response_format")  # its tool would take the place of the client's
        return False
    tool: dict[str, Any] = {"name": JSON_TOOL, "input_schema": schema}
    description = spec.get("description")
    tool["description"] = description or "Answer with the JSON object the user asked for."
    body["tools"] = [tool]
    body["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    return True
