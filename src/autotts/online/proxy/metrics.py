"""Prometheus metrics of the proxy, in a registry of their own (one per app, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class ProxyMetrics:
    """Requests, tokens, branches, latencies and upstream errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("autotts_requests", "Chat completion requests by HTTP status", ["status"], registry=r)
        self.in_flight = Gauge("autotts_requests_in_flight", "Requests being answered now", registry=r)
        self.tokens = Counter(
            "autotts_tokens",
            "Tokens spent upstream (completion, probe, prompt)",
            ["kind"],
            registry=r,
        )
        self.branches = Counter("autotts_branches", "Branches opened", registry=r)
        self.actions = Counter("autotts_actions", "Controller actions by kind", ["action"], registry=r)
        self.request_seconds = Histogram(
            "autotts_request_seconds",
            "Wall time of a whole request",
            ["controller"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.branch_seconds = Histogram(
            "autotts_branch_upstream_seconds",
            "Time one branch spent waiting on the upstream server",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "autotts_upstream_errors", "Requests that failed because the upstream server failed", registry=r
        )
        self.rejected = Counter("autotts_rejected", "Requests refused before running (reason)", ["reason"], registry=r)
        self.episodes = Counter(
            "autotts_episodes",
            "Episodes started, by where the controller ran (loop, thread)",
            ["placement"],
            registry=r,
        )
        for where in ("loop", "thread"):
            self.episodes.labels(where)
