"""What the real Gemini API refuses, for the fake Gemini upstream.

Sources: the API reference for generateContent (ai.google.dev/api/generate-content), the
guides on thinking, thought signatures, structured output, function calling, audio and
document understanding (ai.google.dev/gemini-api/docs), google-genai's types
(googleapis/python-genai, google/genai/types.py), and errors the API returned in public
issues (cited per rule).
"""

from __future__ import annotations

import re
from typing import Any

TOP_LEVEL = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
}
GENERATION_CONFIG = {
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "responseLogprobs",
    "logprobs",
    "mediaResolution",
}
# Keywords of JSON Schema the OpenAPI-subset `Schema` (parameters, responseSchema) refuses.
REJECTED_SCHEMA = {
    "additionalProperties",
    "$schema",
    "const",
    "exclusiveMinimum",
    "propertyNames",
    "$ref",
    "$defs",
    "default",
}
# Audio guide and document guide: the media types Gemini reads inline.
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
    "audio/wav",
    "audio/mp3",
    "audio/aiff",
    "audio/aac",
    "audio/ogg",
    "audio/flac",
    "application/pdf",
}
SKIP_SIGNATURE = "skip_thought_signature_validator"
_VERSION = re.compile(r"gemini-(\d+)(?:\.(\d+))?")


def version(model: str) -> tuple[int, int]:
    match = _VERSION.search(model)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)


def body_problem(body: dict[str, Any], model: str, signatures: set[str]) -> str | None:
    unknown = set(body) - TOP_LEVEL
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}"'
    for content in body.get("contents", ()):
        if content.get("role") not in ("user", "model"):
            return "Please use a valid role: user, model."
        for part in content.get("parts", ()):
            inline = part.get("inlineData")
            if inline is not None and inline.get("mimeType") not in INLINE_TYPES:
                return f"Unsupported MIME type: {inline.get('mimeType')}"
    return (
        _config_problem(body.get("generationConfig") or {}, model)
        or _tools_problem(body.get("tools") or ())
        or _signature_problem(body.get("contents", ()), model, signatures)
    )


def _config_problem(config: dict[str, Any], model: str) -> str | None:
    unknown = set(config) - GENERATION_CONFIG
    if unknown:
        return f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\" at 'generation_config'"
    # "Penalty is not enabled for models/gemini-2.5-flash" (vercel/ai#8943): only 2.0 has them.
    for name in ("presencePenalty", "frequencyPenalty"):
        if config.get(name) and version(model) != (2, 0):
            return f"Penalty is not enabled for models/{model}"
    if "responseSchema" in config and "responseJsonSchema" in config:
        return "responseSchema and responseJsonSchema cannot both be set"
    if "responseJsonSchema" in config and config.get("responseMimeType") != "application/json":
        return "responseJsonSchema requires responseMimeType application/json"
    bad = _rejected(config.get("responseSchema"))
    if bad:
        return f"Invalid JSON payload received. Unknown name \"{bad}\" at 'generation_config.response_schema'"
    return _thinking_problem(config.get("thinkingConfig"), model)


def _thinking_problem(thinking: Any, model: str) -> str | None:
    """Thinking guide: levels on Gemini 3, budgets on 2.5, never both, none on 2.0."""
    if thinking is None:
        return None
    major_minor = version(model)
    if major_minor < (2, 5):
        return "Thinking is not supported for this model."
    if "thinkingLevel" in thinking and "thinkingBudget" in thinking:
        return "thinking_level and thinking_budget cannot both be set"
    if "thinkingLevel" in thinking and major_minor < (3, 0):
        return "thinking_level is not supported for this model"
    if thinking.get("thinkingBudget") == 0 and "pro" in model:
        return "Budget 0 is invalid. This model only works in thinking mode."
    return None


def _tools_problem(tools: Any) -> str | None:
    for tool in tools:
        for declaration in tool.get("functionDeclarations", ()):
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                return "parameters and parametersJsonSchema cannot both be set"
            bad = _rejected(declaration.get("parameters"))
            if bad:
                return f'Invalid JSON payload received. Unknown name "{bad}"'
    return None


def _signature_problem(contents: Any, model: str, signatures: set[str]) -> str | None:
    """Thought signatures guide: on Gemini 3, the first function call of each model turn
    of the current turn (since the user's last text) must carry its signature back."""
    if version(model) < (3, 0):
        return None
    current = 0
    for i, content in enumerate(contents):
        if content["role"] == "user" and any("text" in p for p in content["parts"]):
            current = i
    for content in contents[current:]:
        calls = [p for p in content["parts"] if "functionCall" in p]
        if content["role"] != "model" or not calls:
            continue
        signature = calls[0].get("thoughtSignature")
        if signature is None:
            name = calls[0]["functionCall"].get("name")
            return (
                "Function call is missing a thought_signature in functionCall parts. This is "
                f"required for tools to work correctly, and missing thought_signature may lead "
                f"to degraded model performance. Additional data, function call `default_api:{name}`"
            )
        if signature != SKIP_SIGNATURE and signature not in signatures:
            return "Corrupted thought signature."
    return None


def _rejected(schema: Any) -> str | None:
    if isinstance(schema, list):
        return next(filter(None, map(_rejected, schema)), None)
    if not isinstance(schema, dict):
        return None
    for key, value in schema.items():
        if key in REJECTED_SCHEMA or (key == "type" and isinstance(value, list)):
            return key
        if key == "properties" and isinstance(value, dict):
            found = next(filter(None, map(_rejected, value.values())), None)
            if found:
                return found
        if key in ("items", "anyOf"):
            found = _rejected(value)
            if found:
                return found
    return None
