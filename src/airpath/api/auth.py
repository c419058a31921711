"""Partner authentication and per-token rate limits for the ingest endpoint.

Tokens are compared with :func:`hmac.compare_digest` against every known token, without
stopping at a match, so the time an answer takes says nothing about how much of a
guessed token was right, nor which partner it was close to.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class TokenAuth:
    """Bearer tokens → partner names.

    >>> auth = TokenAuth({"0123456789abcdef": "citizen-lab"})
    >>> auth.partner("0123456789abcdef"), auth.partner("nope")
    ('citizen-lab', None)
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = [(t.encode(), p) for t, p in tokens.items()]

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def partner(self, token: str) -> str | None:
        """The partner holding ``token``, or None; constant time in the token's content."""
        given = token.encode("utf-8", "surrogateescape")
        found: str | None = None
        for known, partner in self._tokens:
            if hmac.compare_digest(given, known) and found is None:
                found = partner
        return found


@dataclass
class _Bucket:
    tokens: float
    at_s: float


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``rate_per_s``.

    :meth:`take` returns 0 when the request may go ahead, else the seconds to wait
    (the ``Retry-After`` the client is told).

    >>> t = [0.0]
    >>> limiter = RateLimiter(rate_per_s=1.0, burst=2, clock=lambda: t[0])
    >>> [limiter.take("a") for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> t[0] = 1.0; limiter.take("a")
    0.0
    """

    def __init__(
        self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s, self.burst = rate_per_s, burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = _Bucket(float(self.burst), now)
            b.tokens = min(float(self.burst), b.tokens + (now - b.at_s) * self.rate_per_s)
            b.at_s = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate_per_s


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` takes whole seconds (RFC 9110 §10.2.3): round up, at least 1."""
    return str(max(1, math.ceil(wait_s)))
