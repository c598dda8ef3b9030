"""Provider registry: a `type` from gateway.toml names an adapter and a transport."""

from __future__ import annotations

from collections.abc import Callable

from proxy.config import ProviderConfig
from proxy.providers.anthropic import AnthropicAdapter
from proxy.providers.base import Adapter, Provider
from proxy.providers.deepseek import DeepSeekAdapter
from proxy.providers.gemini import GeminiAdapter
from proxy.providers.mistral import MistralAdapter
from proxy.providers.mock import MockTransport
from proxy.providers.openai import OpenAIAdapter, OpenAICompatibleAdapter
from proxy.transport import HTTPTransport, Transport

__all__ = ["ADAPTERS", "TRANSPORTS", "Provider", "build_provider"]

ADAPTERS: dict[str, Callable[[ProviderConfig], Adapter]] = {
    "openai": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "openai_compatible": OpenAICompatibleAdapter,
    "deepseek": DeepSeekAdapter,
    "mistral": MistralAdapter,
    "mock": OpenAIAdapter,
    "gemini": GeminiAdapter,
}

TRANSPORTS: dict[str, Callable[[ProviderConfig], Transport]] = {
    "mock": MockTransport,
}


def build_provider(config: ProviderConfig) -> Provider:
    """Must run inside the event loop: HTTP transports open their session here."""
    adapter = ADAPTERS[config.type](config)
    transport = TRANSPORTS.get(config.type, HTTPTransport)(config)
    return Provider(name=config.name, config=config, adapter=adapter, transport=transport)
