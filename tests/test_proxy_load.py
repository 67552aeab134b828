"""Bounded load through the proxy against the replay server: nothing lost, duplicated or wrong; faults stay clean."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from autotts.controllers import ControllerSpec
from autotts.llm import RetryPolicy
from autotts.online import LiveLimits
from autotts.online.proxy import ProxyConfig
from autotts.testing import tiny_store
from autotts.testing.load import drive
from autotts.testing.replay_server import Fault
from tests.online_support import offline, proxy, replay_server

STORE = tiny_store(seed=21, questions=4, branches=16, delta=2000)
N = 16
# (spec the proxy runs, request fields that select it); kept light: the load is in the requests, not the episodes.
CONTROLLERS = [
    ("sc:n=4", {"controller": "sc"}),
    ("wide-commit:beta=0.3", {}),
    ("wide-commit:beta=0.7", {"beta": 0.7}),
    ("parallel-probe:chains=4,T=6,warm_up=2", {"controller": "parallel-probe"}),
]


def _config(**kw: Any) -> ProxyConfig:
    base: dict[str, Any] = dict(
        controller="wide-commit",
        model="replay",
        delta=STORE.questions[0].delta,
        beta=0.3,
        allowed_controllers=("sc:n=4", "parallel-probe:chains=4,T=6,warm_up=2"),
        limits=LiveLimits(deadline=120, max_branches=N),
        max_concurrency=32,
    )
    base.update(kw)
    return ProxyConfig(**base)


def _requests(n: int) -> list[tuple[dict[str, Any], int, int, int]]:
    """``(body, question, run, controller index)`` of request ``k``: every request a different episode."""
    out = []
    for k in range(n):
        qi, run, ci = k % len(STORE.questions), k // len(STORE.questions), k % len(CONTROLLERS)
        body = {
            "model": "replay",
            "messages": [{"role": "user", "content": STORE.questions[qi].text}],
            "seed": run * N,
            **CONTROLLERS[ci][1],
        }
        out.append((body, qi, run, ci))
    return out


@pytest.mark.slow
@pytest.mark.integration
def test_200_requests_32_concurrent_equal_offline_replay(capsys: pytest.CaptureFixture[str]) -> None:
    reqs = _requests(200)
    specs = [ControllerSpec.parse(t) for t, _ in CONTROLLERS]
    with replay_server(STORE) as srv, proxy(_config(), srv.openai_base_url) as url:
        report = drive(url, [b for b, *_ in reqs], concurrency=32)
        assert httpx.get(url.removesuffix("/v1") + "/health").json()["in_flight"] == 0
    assert len(report.outcomes) == 200
    assert [o.index for o in report.outcomes] == list(range(200))
    ids = [o.body.get("id") for o in report.outcomes]
    assert len(set(ids)) == 200, "a response was duplicated"
    for o, (_, qi, run, ci) in zip(report.outcomes, reqs, strict=True):
        assert o.status == 200, o.body
        answer, ref = offline(STORE, specs[ci], qi, run)
        where = f"request {o.index}: {specs[ci].label} q{qi} run {run}"
        assert o.body["choices"][0]["message"]["content"] == (answer or ""), where
        assert o.body["autotts"]["trace"]["tokens"] == ref.cost, where
        assert o.body["autotts"]["branches"] == ref.n_opened, where
    with capsys.disabled():
        print(f"\nproxy load (200 requests, 32 concurrent, 4 controllers): {report.summary()}")


@pytest.mark.slow
@pytest.mark.integration
def test_injected_faults_give_clean_errors_and_nothing_sticks() -> None:
    # Question 0 healthy, except one dropped connection early on (retried by the client);
    # question 1's upstream calls hang past the client's timeout; question 2's fail with 500.
    dropped: list[int] = []

    def fault(info: Any) -> Fault | None:
        if info.question == 1:
            return Fault("hang", seconds=2.0)
        if info.question == 2:
            return Fault("error", status=500)
        if info.question == 0 and not dropped and info.number >= 5:
            dropped.append(info.number)
            return Fault("drop")
        return None

    reqs = [r for r in _requests(48) if r[1] in (0, 1, 2)]
    specs = [ControllerSpec.parse(t) for t, _ in CONTROLLERS]
    policy = RetryPolicy(max_retries=1, backoff_seconds=0.05)
    with (
        replay_server(STORE, fault=fault) as srv,
        proxy(_config(), srv.openai_base_url, timeout_seconds=0.5, policy=policy) as url,
    ):
        report = drive(url, [b for b, *_ in reqs], concurrency=16, timeout=60)
        assert httpx.get(url.removesuffix("/v1") + "/health").json()["in_flight"] == 0
        metrics = httpx.get(url.removesuffix("/v1") + "/metrics").text
    assert dropped, "the drop fault never fired"
    assert len(report.outcomes) == len(reqs)
    for o, (_, qi, run, ci) in zip(report.outcomes, reqs, strict=True):
        if qi == 0:
            answer, _ = offline(STORE, specs[ci], qi, run)
            assert o.status == 200 and o.body["choices"][0]["message"]["content"] == (answer or ""), o.body
        else:
            assert o.status == 502, o.body
            assert o.body["error"]["type"] == "upstream_error"
    failed = sum(r[1] != 0 for r in reqs)
    assert f"autotts_upstream_errors_total {float(failed)}" in metrics
    assert report.percentile(100) < 30, "a faulty request got stuck"
