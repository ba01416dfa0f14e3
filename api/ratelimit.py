"""Per-key rate limits, kept in Redis so every API process behind a load balancer shares them.

The generic cell rate algorithm: each key has a theoretical arrival time (TAT) in Redis; a
request is let through while it would not move the TAT more than `burst` emission
intervals ahead of now, and pushes it one interval on. That is a token bucket of `burst`
tokens refilled at `rate_per_s`, held in one key per API key that expires when the bucket
is full again, and updated atomically by one Lua script that reads Redis's own clock (the
API processes' clocks never matter). A refused request gets the milliseconds until it
would pass, which becomes Retry-After.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["RateLimiter"]

_GCRA = """
local now_us = redis.call('TIME')
local now = tonumber(now_us[1]) * 1000 + math.floor(tonumber(now_us[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
return 0
"""


class RateLimiter:
    """`rate_per_s` requests per second per key on average, `burst` at once."""

    def __init__(self, redis_url: str, rate_per_s: float, burst: int) -> None:
        import redis

        self._client: Any = redis.Redis.from_url(redis_url, socket_timeout=5)
        self._script = self._client.register_script(_GCRA)
        self._interval_ms = 1000.0 / rate_per_s
        self._tolerance_ms = self._interval_ms * burst

    def wait_s(self, key_id: int) -> float:
        """0 if the key may make a request now (and counts it), else seconds to wait.

        Raises redis.RedisError when Redis cannot be asked."""
        wait_ms = self._script(
            keys=[f"messplus:api:rate:{key_id}"], args=[self._interval_ms, self._tolerance_ms]
        )
        return max(0.0, float(wait_ms)) / 1000.0

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """Retry-After in whole seconds, never 0 (clients would retry at once)."""
        return str(max(1, math.ceil(wait_s)))

    def ping(self) -> bool:
        import redis

        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._client.close()
