"""Admission and settlement: rate limits and budgets around every proxied request.

admit():  the request's worst case is bounded first: every billed input at its upper
          bound (`proxy.estimate`), and an output cap. With no cap from the client, and a
          budget or TPM limit to respect, the gateway sets one: what the remaining
          budget and the key's TPM allow, capped by the model's own limit; the adapters
          send it upstream, so the reservation is a true ceiling. Then the key's
          RPM/TPM window takes the request (429 otherwise), and the key's and its
          user's monthly budgets reserve the worst cost over every route (402).
settle(): the real tokens and cost replace the reservations; crossed budget thresholds
          are handed to the alerter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxy.auth import Principal
from proxy.budgets import Account, Crossing
from proxy.config import BudgetsConfig
from proxy.estimate import output_bound, prompt_bound
from proxy.frozen import frozen
from proxy.ratelimit import Limits
from proxy.record import RequestRecord
from proxy.router import Alias, Route
from proxy.schema import max_output_tokens
from proxy.state.base import BudgetReservation, Budgets, RateReservation, Rates


@dataclass(slots=True)
class Admission:
    rate: RateReservation | None = None
    budget: BudgetReservation | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # The output cap the gateway set for each route (empty when the client set one).
    caps: dict[Route, int] = field(default_factory=dict)


@frozen
class WorstCase:
    """A request's bound on each route: prompt tokens and completion tokens."""

    prompts: Mapping[Route, int]
    completions: Mapping[Route, int]
    tier: str | None = None  # the service tier the request asked for

    def tokens(self) -> int:
        return max((self.prompts[r] + self.completions[r] for r in self.prompts), default=0)


class AccessControl:
    def __init__(
        self,
        config: BudgetsConfig,
        rates: Rates,
        budgets: Budgets,
        on_crossing: Callable[[Crossing], None],
    ) -> None:
        self._config = config
        self._default_reserve = int(config.default_reserve_usd.scaleb(9))
        self.rates = rates
        self.budgets = budgets
        self._on_crossing = on_crossing

    @property
    def thresholds(self) -> tuple[float, ...]:
        return self._config.alert_thresholds

    async def admit_free(self, principal: Principal) -> Admission:
        """A request no provider bills (counting tokens): it counts against the key's
        requests per minute, and nothing else."""
        admission = Admission()
        limits = Limits(rpm=principal.rpm, tpm=None)
        if limits.any:
            admission.rate = await self.rates.reserve(principal.key_ref, limits, 0)
            admission.headers = admission.rate.headers
        return admission

    async def admit(
        self, principal: Principal, alias: Alias, request: Mapping[str, Any]
    ) -> Admission:
        admission = Admission()
        limits = Limits(rpm=principal.rpm, tpm=principal.tpm)
        accounts = budget_accounts(principal, self._config.alert_thresholds)
        limited = any(a.limit_nano is not None for a in accounts)
        if limits.tpm is None and not limited:
            # Nothing to bound: no token limit, no budget. Spend is still recorded.
            if limits.any:
                admission.rate = await self.rates.reserve(principal.key_ref, limits, 0)
                admission.headers = admission.rate.headers
            admission.budget = await self.budgets.reserve(accounts, 0)
            return admission
        routes = alias.routes
        shape = prompt_bound(request)
        prompts = {
            r: shape.tokens(r.provider.config.type, r.model, r.provider.config.image_tokens)
            for r in routes
        }
        cap = max_output_tokens(request)
        if cap is None:
            admission.caps = await self._caps(principal, limits, accounts, routes, prompts, request)
        completions = {
            r: output_bound(request, admission.caps.get(r, cap or _model_limit(r))) for r in routes
        }
        worst = WorstCase(prompts, completions, _tier(request))
        if limits.any:
            admission.rate = await self.rates.reserve(principal.key_ref, limits, worst.tokens())
            admission.headers = admission.rate.headers
        if accounts:
            admission.budget = await self.budgets.reserve(accounts, self.worst_case_nano(worst))
        return admission

    async def _caps(
        self,
        principal: Principal,
        limits: Limits,
        accounts: Sequence[Account],
        routes: Sequence[Route],
        prompts: Mapping[Route, int],
        request: Mapping[str, Any],
    ) -> dict[Route, int]:
        """The largest output cap per choice that the budget and the TPM window allow on
        every route, then each route's own model limit. At least 1: when even that does
        not fit, the reservation refuses the request with the right error."""
        choices = max(1, request.get("n") or 1)
        predicted = output_bound(request, 0)
        allowed: list[int] = []
        available = await self.rates.available_tokens(principal.key_ref, limits)
        if available is not None:
            worst_prompt = max(prompts.values(), default=0)
            allowed.append((available - worst_prompt - predicted) // choices)
        remaining = await self.budgets.remaining(accounts)
        if remaining is not None:
            for route in routes:
                if route.price is not None:
                    tokens = route.price.affordable_output(
                        remaining, prompts[route] + predicted, choices, _tier(request)
                    )
                    if tokens is not None:
                        allowed.append(tokens)
        cap = max(1, min(allowed)) if allowed else None
        return {r: _model_limit(r) if cap is None else min(cap, _model_limit(r)) for r in routes}

    def worst_case_nano(self, worst: WorstCase) -> int:
        """The most the request can cost on its most expensive route."""
        costs = [
            self._default_reserve  # a route with no known price
            if route.price is None
            else route.price.worst_cost_nano(prompt, worst.completions[route], worst.tier)
            for route, prompt in worst.prompts.items()
        ]
        return max(costs, default=self._default_reserve)

    async def settle(self, admission: Admission, record: RequestRecord) -> None:
        tokens = record.tokens
        if admission.rate is not None:
            used = tokens.prompt + tokens.completion if tokens else 0
            await self.rates.settle(admission.rate, used)
        budget = admission.budget
        if budget is None:
            return
        if tokens is None:
            await self.budgets.release(budget)  # nothing reached a provider, nothing spent
            return
        # An unknown price is charged at the reservation: never less than it could cost.
        cost = budget.amount if record.cost_nano is None else record.cost_nano
        for crossing in await self.budgets.settle(budget, cost):
            self._on_crossing(crossing)


def _tier(request: Mapping[str, Any]) -> str | None:
    """The service tier a request asks for. Without one a provider serves its default
    (standard) tier; a project set to default to another tier should price its routes
    accordingly in gateway.toml."""
    tier = request.get("service_tier")
    return tier if isinstance(tier, str) else None


def _model_limit(route: Route) -> int:
    """The model's own output limit, or the provider's default when the table lacks it."""
    return route.max_output or route.provider.config.default_max_tokens


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
