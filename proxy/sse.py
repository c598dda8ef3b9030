"""Server-sent events from raw bytes, with a bound on the size of one event.

The parser is fed whatever the socket delivered and hands back whole events. Lines may end
in LF, CRLF or CR (the spec allows all three; Gemini sends CRLF, the others LF); a blank
line ends an event; `data:` lines are joined with LF, `event:` names it, comments and the
`id`/`retry` fields carry nothing the gateway needs.
"""

from __future__ import annotations

import re

from proxy.frozen import frozen

# Two line terminators in a row. A lone CR counts only when no LF follows it, so the CR
# and LF of one CRLF are never taken for two lines.
_BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINE_END = re.compile(rb"\r\n|\r|\n")
# The longest blank-line match is 4 bytes, so 3 of them may sit at the end of a chunk.
_STRADDLE = 3


@frozen
class SSEEvent:
    data: bytes
    event: str | None = None


class SSEParser:
    __slots__ = ("_buffer", "_scan", "max_event")

    def __init__(self, max_event: int) -> None:
        self._buffer = bytearray()
        self._scan = 0  # where the next blank-line search starts: the rest was searched
        self.max_event = max_event

    def feed(self, chunk: bytes) -> bool:
        """Add received bytes; False when the event being received is over the bound."""
        self._buffer += chunk
        return len(self._buffer) <= self.max_event

    def next_event(self) -> SSEEvent | None:
        """The next complete event, or None until more bytes arrive."""
        buffer = self._buffer
        while True:
            end = _BLANK_LINE.search(buffer, self._scan)
            if end is None:
                self._scan = max(0, len(buffer) - _STRADDLE)
                return None
            block = bytes(buffer[: end.start()])
            del buffer[: end.end()]  # O(1) from the front of a bytearray
            self._scan = 0
            event = parse_block(block)
            if event is not None:
                return event


def parse_block(block: bytes) -> SSEEvent | None:
    """One event's lines; None for a block without data (comments, keep-alives)."""
    if block.startswith(b"data: ") and b"\n" not in block and b"\r" not in block:
        return SSEEvent(block[6:])  # the usual shape: one data line, no name
    data: list[bytes] = []
    name: str | None = None
    for line in _LINE_END.split(block):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    if not data:
        return None
    return SSEEvent(data[0] if len(data) == 1 else b"\n".join(data), name)
