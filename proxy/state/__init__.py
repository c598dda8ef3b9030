"""Shared state: rate limits, budget reservations, the answer cache, in-flight sharing and
alert de-duplication, behind async interfaces (`proxy.state.base`).

`[state] backend = "memory"` keeps them in the process (exact within it); `"redis"` keeps
them in one Redis, so every worker and instance sees the same windows, budgets and
answers (`proxy.state.redis`). `proxy.state.fallback` decides what happens while Redis
cannot be reached.
"""
