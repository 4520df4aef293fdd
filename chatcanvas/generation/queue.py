"""Fair scheduling: round-robin across servers, then across users in a server; FIFO per user.

Also the token bucket used for per-user and per-server rate limits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueCounts:
    """Jobs waiting, for the policy's queue caps."""

    total: int  # every backend
    user: int  # this user's
    server: int  # this server's


class FairQueue:
    """Queued job ids, served round-robin so one user's many jobs never starve another's first."""

    def __init__(self) -> None:
        # server -> user -> FIFO of job ids; dict order is the rotation order.
        self._servers: dict[str, dict[str, deque[str]]] = {}

    def __len__(self) -> int:
        return sum(len(q) for users in self._servers.values() for q in users.values())

    def push(self, server: str, user: str, job_id: str) -> None:
        self._servers.setdefault(server, {}).setdefault(user, deque()).append(job_id)

    def remove(self, job_id: str) -> bool:
        for server, users in list(self._servers.items()):
            for user, q in list(users.items()):
                if job_id in q:
                    q.remove(job_id)
                    if not q:
                        del users[user]
                    if not users:
                        del self._servers[server]
                    return True
        return False

    def count(self, server: str | None = None, user: str | None = None) -> int:
        n = 0
        for s, users in self._servers.items():
            if server is not None and s != server:
                continue
            for u, q in users.items():
                if user is None or u == user:
                    n += len(q)
        return n

    def pop(self, match: Callable[[str], bool] | None = None) -> str | None:
        """Take the next job in fair order (the first whose id ``match`` accepts, looking at heads only)."""
        for server in list(self._servers):
            users = self._servers[server]
            for user in list(users):
                q = users[user]
                if match is None or match(q[0]):
                    job_id = q.popleft()
                    # this user goes to the back of the server's line, this server to the back of all
                    del users[user]
                    if q:
                        users[user] = q
                    del self._servers[server]
                    if users:
                        self._servers[server] = users
                    return job_id
        return None

    def order(self) -> list[str]:
        """Every queued id in the order ``pop()`` would hand them out."""
        servers = {s: {u: deque(q) for u, q in users.items()} for s, users in self._servers.items()}
        out: list[str] = []
        while servers:
            server = next(iter(servers))
            users = servers.pop(server)
            user = next(iter(users))
            q = users.pop(user)
            out.append(q.popleft())
            if q:
                users[user] = q
            if users:
                servers[server] = users
        return out


class TokenBucket:
    """``rate`` tokens per minute, at most ``burst`` saved up."""

    def __init__(
        self, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait_time(self, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens are there (0 if now)."""
        self._refill()
        return 0.0 if self.tokens >= n else (n - self.tokens) / self.rate

    def take(self, n: float = 1.0) -> None:
        self._refill()
        self.tokens -= n
