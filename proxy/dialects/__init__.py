"""Inbound dialects: the APIs clients speak to the gateway, each a pure translator to and
from the gateway's internal model (OpenAI chat completions).

    chat       POST /v1/chat/completions   the internal model itself
    responses  POST /v1/responses          OpenAI's Responses API
    messages   POST /v1/messages           Anthropic's Messages API

Everything around a request (keys, limits, budgets, failover, relay, cost, log, metrics)
is shared; a dialect only parses, renders and names its errors. Where a route's provider
speaks the client's own API (Responses to OpenAI, Messages to Anthropic) the request goes
through natively, so nothing is lost in translation (`proxy.dialects.native`).
"""
