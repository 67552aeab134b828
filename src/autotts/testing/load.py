"""A bounded load generator for an OpenAI-compatible chat endpoint (the proxy's load test and benchmark).

:func:`drive` sends a fixed list of chat requests with at most ``concurrency`` in
flight and returns every outcome (status, body, latency) in request order plus the
latency percentiles and throughput, so a caller can check that no request was lost or
duplicated and that every answer is the expected one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's fate."""

    index: int
    status: int
    """HTTP status, or 0 when the request failed without a response (connection error, client timeout)."""
    body: Any
    seconds: float


@dataclass(frozen=True, slots=True)
class LoadReport:
    """All outcomes in request order, with latency percentiles (seconds) and throughput (requests/s)."""

    outcomes: tuple[Outcome, ...]
    wall_seconds: float

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` in [0, 100] (nearest rank)."""
        xs = sorted(o.seconds for o in self.outcomes)
        if not xs:
            return 0.0
        rank = max(1, min(len(xs), round(q / 100 * len(xs) + 0.5)))
        return xs[rank - 1]

    @property
    def throughput(self) -> float:
        """Completed requests per second of wall time."""
        return len(self.outcomes) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self) -> str:
        """One line of figures."""
        ok = sum(o.status == 200 for o in self.outcomes)
        return (
            f"{len(self.outcomes)} requests ({ok} ok) in {self.wall_seconds:.2f} s: "
            f"{self.throughput:.1f} req/s, latency p50 {self.percentile(50) * 1000:.0f} ms, "
            f"p95 {self.percentile(95) * 1000:.0f} ms, p99 {self.percentile(99) * 1000:.0f} ms"
        )


async def _drive(
    url: str, bodies: Sequence[Mapping[str, Any]], concurrency: int, headers: Mapping[str, str], timeout: float
) -> LoadReport:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=dict(headers), timeout=timeout, limits=limits) as client:

        async def one(i: int, body: Mapping[str, Any]) -> Outcome:
            async with gate:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/chat/completions", json=dict(body))
                except httpx.HTTPError as exc:
                    return Outcome(i, 0, {"error": {"message": repr(exc)}}, time.perf_counter() - t0)
                try:
                    payload = r.json()
                except json.JSONDecodeError:
                    payload = {"raw": r.text}
                return Outcome(i, r.status_code, payload, time.perf_counter() - t0)

        t0 = time.perf_counter()
        outcomes = await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
        return LoadReport(tuple(outcomes), time.perf_counter() - t0)


def drive(
    url: str,
    bodies: Sequence[Mapping[str, Any]],
    *,
    concurrency: int = 32,
    headers: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> LoadReport:
    """POST every body to ``url``/chat/completions with at most ``concurrency`` in flight."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    return asyncio.run(_drive(url, bodies, concurrency, headers or {}, timeout))
