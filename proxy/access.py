"""Admission and settlement: rate limits and budgets around every proxied request.

admit():  the key's RPM/TPM window takes the request (429 otherwise), then the key's and
          its user's monthly budgets reserve the request's worst-case cost (402 otherwise).
settle(): the real tokens and cost replace the reservations; crossed budget thresholds
          are handed to the alerter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.accounting import estimate_prompt_tokens
from proxy.auth import Principal
from proxy.budgets import Account, BudgetLedger, Crossing
from proxy.budgets import Reservation as BudgetReservation
from proxy.config import BudgetsConfig
from proxy.pricing import TokenCounts
from proxy.ratelimit import Limits, RateLimiter
from proxy.ratelimit import Reservation as RateReservation
from proxy.record import RequestRecord
from proxy.router import Alias
from proxy.schema import max_output_tokens


@dataclass(slots=True)
class Admission:
    rate: RateReservation | None = None
    budget: BudgetReservation | None = None
    headers: dict[str, str] = field(default_factory=dict)


class AccessControl:
    def __init__(
        self,
        config: BudgetsConfig,
        limiter: RateLimiter,
        ledger: BudgetLedger,
        on_crossing: Callable[[Crossing], None],
    ) -> None:
        self._config = config
        self._default_reserve = int(config.default_reserve_usd.scaleb(9))
        self.limiter = limiter
        self.ledger = ledger
        self._on_crossing = on_crossing

    @property
    def thresholds(self) -> tuple[float, ...]:
        return self._config.alert_thresholds

    def admit(self, principal: Principal, alias: Alias, request: Mapping[str, Any]) -> Admission:
        admission = Admission()
        prompt = estimate_prompt_tokens(request)
        completion = max_output_tokens(request)
        limits = Limits(rpm=principal.rpm, tpm=principal.tpm)
        if limits.any:
            tokens = prompt + (completion or 0)
            admission.rate = self.limiter.reserve(principal.key_ref, limits, tokens)
            admission.headers = admission.rate.headers
        accounts = budget_accounts(principal, self._config.alert_thresholds)
        if accounts:
            worst = self.worst_case_nano(alias, prompt, completion)
            admission.budget = self.ledger.reserve(accounts, worst)
        return admission

    def worst_case_nano(self, alias: Alias, prompt: int, completion: int | None) -> int:
        """The most the request can cost on its most expensive route."""
        if completion is None:
            return self._default_reserve
        costs = [
            route.price.cost_nano(TokenCounts(prompt=prompt, completion=completion))
            for route in alias.routes
            if route.price is not None
        ]
        if len(costs) < len(alias.routes):
            costs.append(self._default_reserve)  # a route with no known price
        return max(costs, default=self._default_reserve)

    def settle(self, admission: Admission, record: RequestRecord) -> None:
        tokens = record.tokens
        if admission.rate is not None:
            used = tokens.prompt + tokens.completion if tokens else 0
            self.limiter.settle(admission.rate, used)
        budget = admission.budget
        if budget is None:
            return
        if tokens is None:
            self.ledger.release(budget)  # nothing answered, nothing spent
            return
        # An unknown price is charged at the reservation: never less than it could cost.
        cost = budget.amount if record.cost_nano is None else record.cost_nano
        for crossing in self.ledger.settle(budget, cost):
            self._on_crossing(crossing)


def budget_accounts(principal: Principal, default: tuple[float, ...]) -> tuple[Account, ...]:
    thresholds = principal.alert_thresholds or default
    accounts = [
        Account(
            "key",
            principal.key_ref,
            principal.key_budget_nano,
            thresholds,
            owner=principal.owner,
            display=principal.key_name,
        )
    ]
    if principal.owner is not None:
        accounts.append(Account("user", principal.owner, principal.user_budget_nano, thresholds))
    return tuple(accounts)
