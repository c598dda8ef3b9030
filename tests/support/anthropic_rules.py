"""What the real Messages API refuses, for the fake Anthropic upstream.

Each rule cites where the real API states it: the Messages API reference and its error
messages (platform.claude.com/docs/en/api/messages), the guides on extended thinking,
structured outputs, vision and PDF support, the models' migration guides, and the
anthropic SDK's request types (anthropics/anthropic-sdk-python, src/anthropic/types).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

# Top-level request fields the Messages API documents; anything else is a 400 there.
API_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "output_config",
    }
)
BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
)
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})


def request_problem(request: web.Request, body: Any) -> tuple[int, str, str] | None:
    """(status, error type, message) where the real API would refuse the request."""
    if not request.headers.get("x-api-key"):
        return 401, "authentication_error", "x-api-key header is required"
    if not request.headers.get("anthropic-version"):
        return 400, "invalid_request_error", "anthropic-version: header is required"
    if request.path != "/v1/messages":
        return 404, "not_found_error", f"Not found: {request.path}"
    if not isinstance(body, dict):
        return 400, "invalid_request_error", "body must be a JSON object"
    problem = _body_problem(body)
    return None if problem is None else (400, "invalid_request_error", problem)


def _body_problem(body: dict[str, Any]) -> str | None:
    extra = sorted(set(body) - API_FIELDS)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    limit = MAX_OUTPUT.get(_family(body["model"]))
    if limit is not None and body["max_tokens"] > limit:
        return f"max_tokens: {body['max_tokens']} > {limit}, which is the maximum allowed number of output tokens for {body['model']}"
    problem = _sampling_problem(body) or _thinking_problem(body) or _format_problem(body)
    if problem:
        return problem
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        problem = _blocks_problem("system", system, allowed={"text"})
        if problem:
            return problem
    for i, turn in enumerate(messages):
        problem = _turn_problem(i, turn, messages[i - 1] if i else None)
        if problem:
            return problem
    return _tools_problem(body)


def _turn_problem(i: int, turn: Any, previous: Any) -> str | None:
    where = f"messages.{i}"
    if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
        return f"{where}.role: Input should be 'user' or 'assistant'"
    content: Any = turn.get("content")
    if isinstance(content, str):
        if not content:
            return f"{where}: all messages must have non-empty content"
        content = [{"type": "text", "text": content}]
    else:
        problem = _blocks_problem(where, content, allowed=BLOCK_TYPES)
        if problem:
            return problem
    return _pairing_problem(where, turn["role"], content, previous)


def _pairing_problem(
    where: str, role: str, content: list[dict[str, Any]], previous: Any
) -> str | None:
    """tool_use ids must be answered by tool_result blocks at the start of the next turn."""
    asked = _tool_use_ids(previous) if isinstance(previous, dict) else []
    results = [str(b.get("tool_use_id")) for b in content if b["type"] == "tool_result"]
    leading = [str(b.get("tool_use_id")) for b in content[: len(results)]]
    if results and (role != "user" or sorted(leading) != sorted(asked)):
        return f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {results}"
    if asked and sorted(results) != sorted(asked):
        return f"{where}: `tool_use` ids were found without `tool_result` blocks: {asked}"
    return None


def _tool_use_ids(turn: dict[str, Any]) -> list[str]:
    content = turn.get("content")
    if turn.get("role") != "assistant" or not isinstance(content, list):
        return []
    return [
        str(b.get("id")) for b in content if isinstance(b, dict) and b.get("type") == "tool_use"
    ]


def _blocks_problem(where: str, blocks: Any, *, allowed: set[str] | frozenset[str]) -> str | None:
    if not isinstance(blocks, list) or not blocks:
        return f"{where}: content must be a string or a non-empty list of blocks"
    for j, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in allowed:
            return f"{where}.content.{j}.type: unexpected block type {kind!r}"
        if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
            return f"{where}.content.{j}: text content blocks must be non-empty"
        if kind == "image" and not _valid_image(block.get("source")):
            return f"{where}.content.{j}.source: invalid image source"
        if kind == "tool_use" and not isinstance(block.get("input"), dict):
            return f"{where}.content.{j}.input: Input should be a valid dictionary"
        if kind == "thinking" and not (block.get("signature") and "thinking" in block):
            return f"{where}.content.{j}.signature: Field required"
        if kind == "document" and not _valid_document(block.get("source")):
            return f"{where}.content.{j}.source: invalid document source"
    return None


def _valid_document(source: Any) -> bool:
    """PDF support guide: base64 with media_type application/pdf, or a url source."""
    if not isinstance(source, dict):
        return False
    if source.get("type") == "base64":
        return source.get("media_type") == "application/pdf" and isinstance(source.get("data"), str)
    return source.get("type") == "url" and str(source.get("url", "")).startswith("http")


def _valid_image(source: Any) -> bool:
    if not isinstance(source, dict):
        return False
    if source.get("type") == "base64":
        return source.get("media_type") in IMAGE_TYPES and isinstance(source.get("data"), str)
    return source.get("type") == "url" and str(source.get("url", "")).startswith("http")


# Server tools are versioned types with a fixed name (anthropic-sdk-python
# types/web_search_tool_20250305_param.py and siblings); custom tools have no type or
# type "custom", and need a name and an input_schema.
SERVER_TOOL = re.compile(r"[a-z_]+_\d{8}$")


def _tools_problem(body: dict[str, Any]) -> str | None:
    for k, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type")
        if kind not in (None, "custom"):
            if not SERVER_TOOL.match(str(kind)) or not isinstance(tool.get("name"), str):
                return f"tools.{k}: Input tag '{kind}' does not match any of the expected tags"
            continue
        if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
            return f"tools.{k}: name and input_schema are required"
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES
    ):
        return "tool_choice: Input tag does not match any of the expected tags"
    return None


# Output ceilings per model generation (models overview; the API's own error text).
MAX_OUTPUT = {
    ("opus", 4, 0): 32_000,
    ("opus", 4, 1): 32_000,
    ("sonnet", 4, 0): 64_000,
    ("sonnet", 4, 5): 64_000,
    ("haiku", 4, 5): 64_000,
    ("opus", 4, 5): 64_000,
    ("opus", 4, 6): 128_000,
    ("sonnet", 4, 6): 64_000,
}
_MODEL = re.compile(r"claude-(opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?:-|$)")


def _family(model: str) -> tuple[str, int, int]:
    match = _MODEL.search(model)
    if match is None:
        return ("", 0, 0)
    return (match.group(1), int(match.group(2)), int(match.group(3) or 0))


def _sampling_problem(body: dict[str, Any]) -> str | None:
    family, major, minor = _family(body["model"])
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: Input should be less than or equal to 1"
    rejects_sampling = (family == "opus" and (major, minor) >= (4, 7)) or major >= 5
    if rejects_sampling and temperature is not None:
        return "`temperature` is deprecated for this model."
    if (
        temperature is not None
        and body.get("top_p") is not None
        and ((major, minor) >= (4, 5) or (family == "opus" and (major, minor) >= (4, 1)))
    ):
        # Migration guide for the 4.5 models: "use only temperature OR top_p, not both".
        return "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    return None


def _thinking_problem(body: dict[str, Any]) -> str | None:
    """Extended thinking guide: budget and sampling rules, and history with tool use."""
    thinking = body.get("thinking")
    if thinking is None:
        return None
    family, major, minor = _family(body["model"])
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "enabled":
        if (family == "opus" and (major, minor) >= (4, 7)) or major >= 5:
            return (
                '"thinking.type.enabled" is not supported for this model. Use '
                '"thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
            )
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= body["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
    elif kind == "adaptive":
        if (major, minor) < (4, 6):
            return "thinking.type: adaptive thinking is not supported for this model"
    else:
        return "thinking.type: Input tag does not match any of the expected tags"
    if body.get("temperature", 1) != 1:
        return "`temperature` may only be set to 1 when thinking is enabled."
    if body.get("top_k") is not None:
        return "`top_k` is not supported when thinking is enabled."
    if body.get("top_p", 1) < 0.95:
        return "`top_p` must be between 0.95 and 1 when thinking is enabled."
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return _thinking_history_problem(body["messages"])


def _thinking_history_problem(messages: list[dict[str, Any]]) -> str | None:
    """With thinking on, the assistant turn that used tools (answered by the last turn's
    tool results) must start with its thinking block."""
    if len(messages) < 2:
        return None
    last, previous = messages[-1], messages[-2]
    last_content = last.get("content")
    answers_tools = isinstance(last_content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last_content
    )
    content = previous.get("content")
    if not answers_tools or not isinstance(content, list) or not content:
        return None
    if content[0].get("type") not in ("thinking", "redacted_thinking"):
        return (
            f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or "
            f"`redacted_thinking`, but found `{content[0].get('type')}`. When `thinking` is "
            "enabled, a final `assistant` message must start with a thinking block."
        )
    return None


def _format_problem(body: dict[str, Any]) -> str | None:
    """Structured outputs guide: output_config.format on Claude 4.5 models and later."""
    config = body.get("output_config")
    if config is None:
        return None
    if not isinstance(config, dict) or set(config) - {"format", "effort"}:
        return "output_config: Extra inputs are not permitted"
    _, major, minor = _family(body["model"])
    if "format" in config:
        fmt = config["format"]
        if (major, minor) < (4, 5):
            return f"output_config.format: structured outputs are not supported by {body['model']}"
        if not (
            isinstance(fmt, dict)
            and fmt.get("type") == "json_schema"
            and isinstance(fmt.get("schema"), dict)
        ):
            return "output_config.format: type json_schema with a schema is required"
    if "effort" in config and (major, minor) < (4, 5):
        return f"output_config.effort: not supported by {body['model']}"
    return None
