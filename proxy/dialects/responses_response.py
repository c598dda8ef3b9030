"""The internal chat answer -> an OpenAI `Response`, plain or as Responses stream events.

Shapes follow openai-python's `types/responses` models and the SDK's stream accumulator
(`lib/streaming/responses`), which fails on anything else: every field a `Response`
requires is present, `response.created` comes first with an empty output, items are
added with output_index 0, 1, 2, ... in order, a message's content part is added
before its first text delta, a function call's arguments are never "" once done, and the
stream ends with exactly one `response.completed`, `.incomplete` or `.failed` (the
Responses API sends no `[DONE]`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from proxy.dialects.base import DeltaEncoder, ResponsesInbound
from proxy.dialects.reasoning_state import encode_state
from proxy.errors import UpstreamFailure, UpstreamProtocolError
from proxy.providers.base import count
from proxy.schema import ChatCompletion, Usage

# chat finish_reason -> why a response is incomplete (the others complete it).
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def responses_usage(usage: Usage | None) -> dict[str, Any] | None:
    if not usage:
        return None
    prompt = count(usage.get("prompt_tokens"))
    output = count(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details") or {}
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": count(details.get("cached_tokens")),
            "cache_write_tokens": count(details.get("cache_creation_tokens")),
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": count(reasoning)},
        "total_tokens": prompt + output,
    }


def response_object(
    inbound: ResponsesInbound,
    alias: str,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    finish: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `Response`: the answer, and the request's settings echoed as the API does."""
    body = inbound.body
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        reasoning = {}
    incomplete = INCOMPLETE.get(finish or "")
    if status == "completed" and incomplete:
        status = "incomplete"
    return {
        "id": inbound.response_id,
        "object": "response",
        "created_at": inbound.created_at,
        "status": status,
        "background": False,
        "completed_at": None if status == "in_progress" else int(time.time()),
        "error": error,
        "incomplete_details": {"reason": incomplete} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": alias,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [text_part(text)] if text else []
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def call_item(item_id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "arguments": arguments or "{}",  # the SDK parses strict tools' arguments as JSON
        "call_id": call_id,
        "name": name,
    }


def reasoning_item(item_id: str, summary: str, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}] if summary else [],
        "encrypted_content": encode_state(state) if state else None,
    }


def signature_of(call: dict[str, Any]) -> str | None:
    signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
    return signature if isinstance(signature, str) else None


def to_response(
    completion: ChatCompletion, inbound: ResponsesInbound, alias: str
) -> dict[str, Any]:
    choice = completion["choices"][0] if completion.get("choices") else None
    message: dict[str, Any] = dict(choice["message"]) if choice is not None else {}
    finish = choice.get("finish_reason") if choice is not None else None
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or ""
    calls = message.get("tool_calls") or []
    state: dict[str, Any] = {}
    if message.get("thinking_blocks"):
        state["thinking_blocks"] = message["thinking_blocks"]
    signatures = {c.get("id"): signature_of(c) for c in calls if signature_of(c)}
    if signatures:
        state["signatures"] = signatures
    if state and reasoning:
        state["reasoning_content"] = reasoning
    if reasoning or state:
        output.append(reasoning_item(new_id("rs"), reasoning, state))
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    text = (content or "") + (message.get("refusal") or "")
    if text or not calls:
        status = "incomplete" if finish in INCOMPLETE else "completed"
        output.append(message_item(new_id("msg"), text, status))
    for call in calls:
        function = call.get("function") or {}
        output.append(
            call_item(
                new_id("fc"),
                str(call.get("id") or new_id("call")),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
            )
        )
    usage = responses_usage(completion.get("usage"))
    return response_object(
        inbound, alias, status="completed", output=output, usage=usage, finish=finish
    )


class ResponsesEncoder(DeltaEncoder):
    """Chat chunks -> Responses stream events, one output item open at a time."""

    def __init__(self, inbound: ResponsesInbound, alias: str) -> None:
        super().__init__()
        self._inbound = inbound
        self._alias = alias
        self._sequence = 0
        self._started = False
        self._output: list[dict[str, Any]] = []  # finished items, in output_index order
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._text = ""  # the open item's text (message text, reasoning summary, arguments)
        self._call_index: int | None = None  # the chat index of the open function call
        self._calls_seen: set[int] = set()
        self._thinking: list[Any] = []
        self._signatures: dict[str, str] = {}
        self._reasoning = ""

    def finish(self) -> bytes:
        out = self._start() + self._close()
        state: dict[str, Any] = {}
        if self._thinking:
            state["thinking_blocks"] = self._thinking
        if self._signatures:
            state["signatures"] = self._signatures
        if state:  # what the provider needs back next turn, as a reasoning item
            if self._reasoning:
                state["reasoning_content"] = self._reasoning
            item = reasoning_item(new_id("rs"), "", state)
            out += self._event(
                "response.output_item.added", output_index=len(self._output), item=item
            )
            out += self._done_item(item)
        usage = responses_usage(self._usage) or responses_usage(
            {"completion_tokens": self.completion_tokens}
        )
        response = response_object(
            self._inbound,
            self._alias,
            status="completed",
            output=self._output,
            usage=usage,
            finish=self._finish,
        )
        self._inbound.answer = response
        return out + self._event(f"response.{response['status']}", response=response)

    def fail(self, failure: UpstreamFailure) -> bytes:
        error = {"code": "server_error", "message": f"the upstream failed: {failure.reason}"}
        response = response_object(
            self._inbound, self._alias, status="failed", output=self._output, error=error
        )
        return self._start() + self._event("response.failed", response=response)

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        response = response_object(self._inbound, self._alias, status="in_progress", output=[])
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out = b""
        if delta.get("thinking_blocks"):
            self._thinking += delta["thinking_blocks"]
        reasoning = delta.get("reasoning_content")
        if reasoning:
            self._reasoning += reasoning
            out += self._ensure("reasoning")
            out += self._event(
                "response.reasoning_summary_text.delta",
                item_id=self._item_id,
                output_index=len(self._output),
                summary_index=0,
                delta=reasoning,
            )
            self._text += reasoning
        text = (delta.get("content") or "") + (delta.get("refusal") or "")
        if text:
            out += self._ensure("message")
            out += self._event(
                "response.output_text.delta",
                item_id=self._item_id,
                output_index=len(self._output),
                content_index=0,
                delta=text,
                logprobs=[],
            )
            self._text += text
        for call in delta.get("tool_calls") or ():
            out += self._call_delta(call)
        return out

    @property
    def _item_id(self) -> str:
        assert self._open is not None
        return str(self._open["id"])

    def _ensure(self, kind: str) -> bytes:
        """Open an item of this kind (closing another first), unless one is open."""
        if self._open is not None and self._open["type"] == kind:
            return b""
        out = self._close()
        index = len(self._output)
        if kind == "reasoning":
            self._open = {"id": new_id("rs"), "type": "reasoning", "summary": []}
            out += self._event("response.output_item.added", output_index=index, item=self._open)
            part = {"type": "summary_text", "text": ""}
            return out + self._event(
                "response.reasoning_summary_part.added",
                item_id=self._item_id,
                output_index=index,
                summary_index=0,
                part=part,
            )
        self._open = message_item(new_id("msg"), "", "in_progress")
        out += self._event("response.output_item.added", output_index=index, item=self._open)
        return out + self._event(
            "response.content_part.added",
            item_id=self._item_id,
            output_index=index,
            content_index=0,
            part=text_part(""),
        )

    def _call_delta(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index != self._call_index:
            if index in self._calls_seen:
                raise UpstreamProtocolError("the upstream interleaved tool-call arguments")
            self._calls_seen.add(index)
            out += self._close()
            self._call_index = index
            call_id = str(call.get("id") or new_id("call"))
            self._open = {
                **call_item(new_id("fc"), call_id, str(function.get("name") or ""), ""),
                "status": "in_progress",
                "arguments": "",
            }
            out += self._event(
                "response.output_item.added", output_index=len(self._output), item=self._open
            )
        signature = signature_of(call)
        if signature is not None and self._open is not None:
            self._signatures[str(self._open["call_id"])] = signature
        arguments = function.get("arguments")
        if arguments:
            self._text += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=self._item_id,
                output_index=len(self._output),
                delta=arguments,
            )
        return out

    def _close(self) -> bytes:
        item, text = self._open, self._text
        if item is None:
            return b""
        self._open, self._text, self._call_index = None, "", None
        index = len(self._output)
        fields = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            part = {"type": "summary_text", "text": text}
            out = self._event(
                "response.reasoning_summary_text.done", **fields, summary_index=0, text=text
            )
            out += self._event(
                "response.reasoning_summary_part.done", **fields, summary_index=0, part=part
            )
            done = reasoning_item(item["id"], text, {})
        elif item["type"] == "message":
            out = self._event(
                "response.output_text.done", **fields, content_index=0, text=text, logprobs=[]
            )
            out += self._event(
                "response.content_part.done", **fields, content_index=0, part=text_part(text)
            )
            status = "incomplete" if self._finish in INCOMPLETE else "completed"
            done = message_item(item["id"], text, status)
        else:
            done = call_item(item["id"], item["call_id"], item["name"], text)
            out = self._event(
                "response.function_call_arguments.done",
                **fields,
                arguments=done["arguments"],
                name=done["name"],
            )
        return out + self._done_item(done)

    def _done_item(self, item: dict[str, Any]) -> bytes:
        out = self._event("response.output_item.done", output_index=len(self._output), item=item)
        self._output.append(item)
        return out
