"""The SSE parser: every line ending the spec allows, events split anywhere, a size bound."""

from __future__ import annotations

import pytest

from proxy.sse import SSEEvent, SSEParser

STREAM = (
    b": keep-alive comment\n\n"
    b"data: one\n\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"data: part 1\rdata: part 2\r\r"
    b"id: 7\nretry: 10\n\n"
    b"data:no-space\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent(b"one"),
    SSEEvent(b'{"a": 1}', "message_start"),
    SSEEvent(b"part 1\npart 2"),
    SSEEvent(b"no-space"),
    SSEEvent(b"[DONE]"),
]


def drain(parser: SSEParser) -> list[SSEEvent]:
    events = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    return events


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(STREAM)])
def test_events_split_at_any_byte_come_out_whole(size: int) -> None:
    parser = SSEParser(max_event=1024)
    events = []
    for start in range(0, len(STREAM), size):
        assert parser.feed(STREAM[start : start + size])
        events += drain(parser)
    assert events == EXPECTED


def test_an_event_over_the_bound_is_refused_however_it_arrives() -> None:
    parser = SSEParser(max_event=1000)
    fed = True
    for _ in range(100):  # data lines, but never the blank line that would end the event
        fed = parser.feed(b"data: " + b"x" * 50 + b"\n")
        assert parser.next_event() is None
        if not fed:
            break
    assert not fed


def test_an_unterminated_event_is_not_delivered() -> None:
    parser = SSEParser(max_event=100)
    parser.feed(b"data: half")
    assert parser.next_event() is None
