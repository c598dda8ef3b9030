"""The response cache: an in-memory LRU of answers to identical requests, and in-flight sharing.

A request's key is a hash of its alias, its scope (the user, the key, or nothing for a
global cache) and its canonical JSON body without the fields that do not change the
answer (`stream`, `stream_options`, `user`). The cache is bounded by entries and bytes,
and entries expire after a TTL. Identical requests that arrive while the first one is
still waiting on its upstream share that one call.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson

from proxy.frozen import frozen

T = TypeVar("T")
IGNORED_FIELDS = frozenset({"stream", "stream_options", "user"})


@frozen
class CachedAnswer:
    completion: dict[str, Any]  # OpenAI's chat.completion, model already the alias
    body: bytes
    provider: str
    route_model: str
    cost_nano: int | None
    expires_at: float
    stored_at: float = 0.0

    @property
    def size(self) -> int:
        return len(self.body) * 2  # the body, and the parsed completion kept for replay


def cache_key(alias: str, scope: str, request: Mapping[str, Any]) -> str:
    canonical = {k: v for k, v in request.items() if k not in IGNORED_FIELDS}
    payload = orjson.dumps([alias, scope, canonical], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


class ResponseCache:
    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._clock = clock
        self._in_flight: dict[str, asyncio.Future[Any]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def age_s(self, answer: CachedAnswer) -> float:
        """How long ago the answer was stored (HTTP's Age header)."""
        return max(0.0, self._clock() - answer.stored_at)

    def get(self, key: str) -> CachedAnswer | None:
        answer = self._entries.get(key)
        if answer is None:
            return None
        if answer.expires_at <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return answer

    def put(
        self,
        key: str,
        completion: dict[str, Any],
        body: bytes,
        provider: str,
        route_model: str,
        cost_nano: int | None,
    ) -> None:
        now = self._clock()
        answer = CachedAnswer(
            completion, body, provider, route_model, cost_nano, now + self._ttl_s, now
        )
        if answer.size > self._max_bytes:
            return
        if key in self._entries:
            self._remove(key)
        self._entries[key] = answer
        self.bytes += answer.size
        while len(self._entries) > self._max_entries or self.bytes > self._max_bytes:
            self._remove(next(iter(self._entries)))

    def _remove(self, key: str) -> None:
        self.bytes -= self._entries.pop(key).size

    async def share(self, key: str, produce: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run `produce` once for concurrent callers with the same key.

        Returns (result, shared). A follower whose leader failed runs `produce` itself, so
        one client's error or disconnect never becomes another's.
        """
        leader = self._in_flight.get(key)
        if leader is not None:
            try:
                return await asyncio.shield(leader), True
            except Exception:
                pass
            except asyncio.CancelledError:
                if not leader.cancelled():
                    raise  # this caller was cancelled, not its leader
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result = await produce()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: followers may not exist
            raise
        else:
            future.set_result(result)
            return result, False
        finally:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]
