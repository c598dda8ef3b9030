"""Provider state the gateway carries between turns of a Responses conversation.

Reasoning items the gateway issues carry, in `encrypted_content`, what other providers
need back on the next turn (Claude's signed thinking blocks, Gemini's thought signatures):
`gw1:` and base64 JSON. OpenAI's own reasoning items carry content without the prefix;
only those go back to OpenAI routes.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

STATE_PREFIX = "gw1:"


def encode_state(state: Mapping[str, Any]) -> str:
    """Provider state for the next turn, as a reasoning item's `encrypted_content`."""
    return STATE_PREFIX + base64.b64encode(orjson.dumps(state)).decode()


def decode_state(content: Any) -> dict[str, Any] | None:
    if not isinstance(content, str) or not content.startswith(STATE_PREFIX):
        return None
    try:
        state = orjson.loads(base64.b64decode(content[len(STATE_PREFIX) :], validate=True))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return state if isinstance(state, dict) else None
