"""The gateway's request ids: unique, 24 hex digits, and in the order requests arrived
(which keeps the request log's unique index append-only)."""

from __future__ import annotations

import itertools
import re
import time

from proxy.middleware import new_request_id

HEX24 = re.compile(rb"[0-9a-f]{24}")


def test_ids_are_unique_and_24_hex_digits() -> None:
    ids = [new_request_id() for _ in range(200_000)]
    assert len(set(ids)) == len(ids)
    assert all(HEX24.fullmatch(i) for i in ids)


def test_ids_sort_in_the_order_requests_arrived() -> None:
    batches = []
    for _ in range(5):
        batches.append([new_request_id() for _ in range(100)])
        time.sleep(0.002)
    for earlier, later in itertools.pairwise(batches):
        assert max(earlier) < min(later)
    # The leading digits are the arrival, in microseconds.
    arrival = int(new_request_id()[:13], 16) / 1e6
    assert abs(arrival - time.time()) < 1
