"""Monthly budgets that cannot be overspent, even by many requests at once.

Before a request is sent, its worst-case cost is reserved against its key's and its
user's budget for the current calendar month (UTC); when it ends the reservation is
settled to the real cost, or released if it failed. A reservation that does not fit is
refused (402). Spend is loaded at start-up from the request log's hourly roll-ups, so it
survives restarts. This ledger is exact within one process; `proxy.state.redis` keeps the
same books in Redis for a fleet.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from proxy.errors import BudgetExceeded
from proxy.frozen import frozen
from proxy.pricing import usd


def month_of(timestamp: float) -> str:
    return _month_of_hour(int(timestamp // 3600))


@functools.lru_cache(maxsize=4)
def _month_of_hour(hour: int) -> str:
    # Months change on hour boundaries, so one computation serves an hour of requests.
    return dt.datetime.fromtimestamp(hour * 3600, dt.UTC).strftime("%Y-%m")


def month_start(timestamp: float) -> float:
    day = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC).timestamp()


@frozen
class Account:
    """One budget: a user's or a key's."""

    kind: str  # "user" | "key"
    name: str  # the user's name, or the key's key_ref
    limit_nano: int | None
    thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)
    owner: str | None = None  # a key's user
    display: str | None = None  # a key's name, for people


@dataclass(slots=True)
class _Balance:
    spent: int = 0
    reserved: int = 0


@dataclass(slots=True)
class Reservation:
    period: str
    amount: int
    accounts: tuple[Account, ...]
    done: bool = False


@frozen
class Crossing:
    account: Account
    period: str
    threshold: float
    spent_nano: int


@dataclass(slots=True)
class BudgetLedger:
    clock: Callable[[], float]
    _balances: dict[tuple[str, str, str], _Balance] = field(default_factory=dict)

    def load(self, period: str, spent: Mapping[tuple[str, str], int]) -> None:
        """Spend so far this month, per (kind, name), from the durable log."""
        for (kind, name), nano in spent.items():
            self._balance(period, kind, name).spent = nano

    def spent(self, account: Account) -> int:
        balance = self._balances.get((month_of(self.clock()), account.kind, account.name))
        return 0 if balance is None else balance.spent

    def remaining(self, accounts: Iterable[Account]) -> int | None:
        """What the tightest of these budgets has left now; None when none is limited."""
        period = month_of(self.clock())
        left = [
            account.limit_nano - balance.spent - balance.reserved
            for account in accounts
            if account.limit_nano is not None
            for balance in (self._balance(period, account.kind, account.name),)
        ]
        return max(0, min(left)) if left else None

    def reserve(self, accounts: Iterable[Account], amount: int) -> Reservation:
        period = month_of(self.clock())
        accounts = tuple(accounts)
        for account in accounts:
            if account.limit_nano is None:
                continue
            balance = self._balance(period, account.kind, account.name)
            # Even a request whose worst case is free needs something left.
            if balance.spent + balance.reserved + max(amount, 1) > account.limit_nano:
                left = max(0, account.limit_nano - balance.spent - balance.reserved)
                raise BudgetExceeded(
                    f"the {account.kind} {account.name!r} has {usd(left)} USD left of its "
                    f"monthly budget of {usd(account.limit_nano)} USD; this request may cost "
                    f"up to {usd(amount)} USD"
                )
        for account in accounts:
            self._balance(period, account.kind, account.name).reserved += amount
        return Reservation(period, amount, accounts)

    def settle(self, reservation: Reservation, cost: int) -> list[Crossing]:
        """Turn the reservation into real spend; return the thresholds this crossed."""
        self.release(reservation)
        crossings = []
        for account in reservation.accounts:
            balance = self._balance(reservation.period, account.kind, account.name)
            before = balance.spent
            balance.spent += cost
            if account.limit_nano:
                crossings += [
                    Crossing(account, reservation.period, t, balance.spent)
                    for t in account.thresholds
                    if before < t * account.limit_nano <= balance.spent
                ]
        return crossings

    def release(self, reservation: Reservation) -> None:
        if reservation.done:
            return
        reservation.done = True
        for account in reservation.accounts:
            self._balance(
                reservation.period, account.kind, account.name
            ).reserved -= reservation.amount

    def _balance(self, period: str, kind: str, name: str) -> _Balance:
        return self._balances.setdefault((period, kind, name), _Balance())
