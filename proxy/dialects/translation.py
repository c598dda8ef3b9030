"""What translating a foreign dialect's request produces: the internal chat request, and
what only the dialect's own provider can serve. Shared by the Messages and Responses
translators."""

from __future__ import annotations

from typing import Any

from proxy.validation import check_chat_request


class Translated:
    """A request in the internal chat shape, and why (if at all) only a route of the
    provider whose API the client speaks (`native`: "Claude", "OpenAI") can serve it."""

    __slots__ = ("chat", "dropped", "native", "native_only")

    def __init__(self, native: str) -> None:
        self.chat: dict[str, Any] = {}
        self.native = native
        self.native_only: str | None = None
        self.dropped: list[str] = []  # what only the native provider reads; others go without

    def needs_native(self, reason: str) -> None:
        if self.native_only is None:
            self.native_only = f"{reason}: only {self.native} routes can serve it"


def check_translation(out: Translated) -> None:
    """What the translation produced is a request the adapters (and the gateway's own
    estimates) accept. A request only native routes can serve may translate to no
    message at all: its chat shape still has to be sound for the estimates."""
    chat = out.chat
    if out.native_only is not None and not chat.get("messages"):
        check_chat_request({**chat, "messages": [{"role": "user", "content": ""}]})
    else:
        check_chat_request(chat)
