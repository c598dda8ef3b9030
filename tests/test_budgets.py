from __future__ import annotations

import datetime as dt

import pytest

from proxy.budgets import Account, BudgetLedger, month_of, month_start
from proxy.errors import BudgetExceeded

NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC).timestamp()


def ledger(clock: list[float] | None = None) -> BudgetLedger:
    times = clock or [NOW]
    return BudgetLedger(clock=lambda: times[0])


def test_reservations_never_exceed_the_limit() -> None:
    book = ledger()
    user = Account("user", "team", limit_nano=1000)
    book.load("2026-11", {("user", "team"): 900})
    granted = []
    for _ in range(200):
        try:
            granted.append(book.reserve([user], 7))
        except BudgetExceeded as refused:
            assert refused.status == 402 and refused.type == "budget_exceeded"
    assert len(granted) == 14  # 900 + 14 * 7 = 998 <= 1000 < 1005
    for reservation in granted:
        book.settle(reservation, 7)
    assert book.spent(user) == 998 <= 1000


def test_settle_to_actual_and_release_on_failure() -> None:
    book = ledger()
    key = Account("key", "k", limit_nano=100)
    first = book.reserve([key], 80)
    with pytest.raises(BudgetExceeded):
        book.reserve([key], 30)
    book.settle(first, 10)  # it cost far less than its worst case
    second = book.reserve([key], 30)
    book.release(second)  # the upstream failed: nothing spent
    book.release(second)  # releasing twice is harmless
    assert book.spent(key) == 10
    book.reserve([key], 90)


def test_thresholds_fire_once_each_when_crossed() -> None:
    book = ledger()
    user = Account("user", "u", limit_nano=100)
    fired = []
    for cost in (40, 20, 30, 10):
        fired += [c.threshold for c in book.settle(book.reserve([user], 0), cost)]
    assert fired == [0.5, 0.8, 1.0]
    with pytest.raises(BudgetExceeded):
        book.reserve([user], 0)  # spent in full: nothing more, not even a free request


def test_a_new_month_starts_from_zero() -> None:
    times = [NOW]
    book = ledger(times)
    user = Account("user", "u", limit_nano=100)
    book.settle(book.reserve([user], 100), 100)
    with pytest.raises(BudgetExceeded):
        book.reserve([user], 1)
    times[0] = dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()
    book.reserve([user], 1)
    assert month_of(times[0]) == "2026-12" and month_start(NOW) < NOW
