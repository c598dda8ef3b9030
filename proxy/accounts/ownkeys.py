"""Adapters that call a provider with a user's own key instead of the gateway's."""

from __future__ import annotations

import dataclasses

from proxy.providers import ADAPTERS, Provider
from proxy.providers.base import Adapter
from proxy.scrubber import Scrubber


class OwnKeys:
    """(user, provider name) -> the user's key, as adapters built once and reused."""

    def __init__(self, scrubber: Scrubber | None = None) -> None:
        self._secrets: dict[tuple[str, str], str] = {}
        self._adapters: dict[tuple[str, str], Adapter] = {}
        self._scrubber = scrubber

    def update(self, secrets: dict[tuple[str, str], str]) -> None:
        self._secrets = secrets
        self._adapters = {}
        if self._scrubber is not None:
            self._scrubber.set_source("own_keys", secrets.values())

    def adapter(self, user: str | None, provider: Provider) -> Adapter:
        if user is None:
            return provider.adapter
        key = (user, provider.name)
        adapter = self._adapters.get(key)
        if adapter is None:
            secret = self._secrets.get(key)
            if secret is None:
                return provider.adapter
            config = dataclasses.replace(provider.config, api_key=secret)
            adapter = self._adapters[key] = ADAPTERS[config.type](config)
        return adapter
