"""The proxy as clients see it: the official openai client, streaming, metrics, upstream faults, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from autotts.controllers import ControllerSpec
from autotts.llm import RetryPolicy
from autotts.online import LiveLimits
from autotts.online.proxy import ProxyConfig
from autotts.testing import tiny_store
from autotts.testing.replay_server import Fault
from tests.online_support import offline, proxy, replay_server

STORE = tiny_store(seed=11, questions=3, branches=16, delta=2000)
DELTA = STORE.questions[0].delta


def _config(**kw: Any) -> ProxyConfig:
    base: dict[str, Any] = dict(
        controller="cmc",
        model="replay",
        delta=DELTA,
        beta=0.5,
        allowed_controllers=("sc", "wide-commit"),
        limits=LiveLimits(deadline=60, max_branches=16),
        max_concurrency=8,
    )
    base.update(kw)
    return ProxyConfig(**base)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Any]:
    with replay_server(STORE) as srv:
        yield srv


@pytest.fixture(scope="module")
def url(upstream: Any) -> Iterator[str]:
    with proxy(_config(), upstream.openai_base_url) as u:
        yield u


def _ask(client: openai.OpenAI, qi: int, run: int, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="replay",
        messages=[{"role": "user", "content": STORE.questions[qi].text}],
        seed=run * len(STORE.questions[qi].branches),
        extra_body=extra or None,
    )


@pytest.mark.integration
def test_openai_client_gets_the_replay_answer_and_cost(url: str) -> None:
    client = openai.OpenAI(base_url=url, api_key="unused")
    assert [m.id for m in client.models.list().data] == ["replay"]
    cases: list[tuple[str, dict[str, Any]]] = [
        ("cmc:beta=0.5", {}),
        ("wide-commit:beta=0.3", {"controller": "wide-commit", "beta": 0.3}),
    ]
    for spec_text, extra in cases:
        spec = ControllerSpec.parse(spec_text)
        for qi in range(len(STORE.questions)):
            answer, ref = offline(STORE, spec, qi, run=4)
            r = _ask(client, qi, 4, **extra)
            assert r.object == "chat.completion"
            assert r.choices[0].message.role == "assistant"
            assert r.choices[0].message.content == answer
            info = r.model_extra["autotts"]  # type: ignore[index]
            assert info["controller"] == spec.label and info["beta"] == spec.params["beta"]
            assert info["stop_reason"] in ("answered", "max_branches")
            assert info["branches"] == ref.n_opened
            assert info["trace"]["tokens"] == ref.cost
            assert sum(info["trace"]["actions"].values()) == len(ref.trace)
            assert r.usage is not None
            assert r.usage.completion_tokens == ref.cost + info["trace"]["probe_tokens"]
            assert r.usage.prompt_tokens == info["trace"]["prompt_tokens"] > 0
            assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@pytest.mark.integration
def test_streaming_sends_the_final_message(url: str) -> None:
    client = openai.OpenAI(base_url=url, api_key="unused")
    answer, ref = offline(STORE, ControllerSpec.parse("cmc:beta=0.5"), 1, run=2)
    stream = client.chat.completions.create(
        model="replay",
        messages=[{"role": "user", "content": STORE.questions[1].text}],
        seed=2 * 16,
        stream=True,
        extra_body={"include_reasoning": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.completion_tokens >= ref.cost
    assert last.model_extra["autotts"]["trace"]["tokens"] == ref.cost  # type: ignore[index]
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks)
    assert "[replay q1 b" in reasoning  # one branch's own text (the replay server's markers)


def test_health_and_metrics(url: str) -> None:
    root = url.removesuffix("/v1")
    assert httpx.get(root + "/health").json()["status"] == "ok"
    openai.OpenAI(base_url=url, api_key="unused").chat.completions.create(
        model="replay", messages=[{"role": "user", "content": STORE.questions[0].text}], seed=0
    )
    text = httpx.get(root + "/metrics").text
    for name in (
        'autotts_requests_total{status="200"}',
        'autotts_tokens_total{kind="completion"}',
        "autotts_branches_total",
        "autotts_request_seconds_bucket",
        "autotts_branch_upstream_seconds_bucket",
        "autotts_upstream_errors_total",
    ):
        assert name in text, name


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["error", "drop", "hang"])
def test_upstream_faults_become_error_objects(kind: str) -> None:
    # Every upstream call after the 3rd fails the same way; the client's retries then give up.
    fault = Fault(kind, status=500, seconds=3.0)
    with replay_server(STORE, fault=lambda info: fault if info.number > 3 else None) as srv:
        connect = {"timeout_seconds": 0.5, "policy": RetryPolicy(max_retries=2, backoff_seconds=0.05)}
        with proxy(_config(), srv.openai_base_url, **connect) as url:
            client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
            t0 = time.monotonic()
            with pytest.raises(openai.APIStatusError) as got:
                _ask(client, 0, 0)
            assert got.value.status_code == 502
            body = got.value.body
            assert isinstance(body, dict) and body["type"] == "upstream_error", body
            assert time.monotonic() - t0 < 20
            assert httpx.get(url.removesuffix("/v1") + "/health").json()["in_flight"] == 0
            assert "autotts_upstream_errors_total 1.0" in httpx.get(url.removesuffix("/v1") + "/metrics").text


def _serve(upstream_url: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autotts.cli.main", "serve", "--controller", "cmc", "--beta", "0.5",
         "--upstream", upstream_url, "--model", "replay", "--port", "0", "--delta", str(DELTA),
         "--max-branches", "16", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if " on http://" not in line:
        proc.kill()
        raise AssertionError(f"serve did not start: {line}{proc.stderr.read()}")
    return proc, line.split(" on ")[1].split()[0]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@pytest.mark.slow
@pytest.mark.integration
def test_sigterm_finishes_in_flight_requests_then_exits_cleanly() -> None:
    with replay_server(STORE, latency=0.02) as srv:
        proc, url = _serve(srv.openai_base_url, "--shutdown-grace", "30")
        try:
            got: list[Any] = []

            def ask() -> None:
                client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
                got.append(_ask(client, 0, 1))

            t = threading.Thread(target=ask)
            t.start()
            deadline = time.monotonic() + 30
            while srv.completions < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            t.join(timeout=120)
            assert proc.wait(timeout=60) == 0
            answer, _ = offline(STORE, ControllerSpec.parse("cmc:beta=0.5"), 0, run=1)
            assert got and got[0].choices[0].message.content == answer
        finally:
            _stop(proc)


@pytest.mark.slow
@pytest.mark.integration
def test_sigterm_past_the_grace_cancels_cleanly() -> None:
    with replay_server(STORE, latency=0.2) as srv:
        proc, url = _serve(srv.openai_base_url, "--shutdown-grace", "1")
        try:
            errors: list[BaseException] = []

            def ask() -> None:
                client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
                try:
                    _ask(client, 0, 1)
                except BaseException as exc:  # the request may be cut: that is the point
                    errors.append(exc)

            t = threading.Thread(target=ask)
            t.start()
            deadline = time.monotonic() + 30
            while srv.completions < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert time.monotonic() - t0 < 15
            t.join(timeout=30)
            assert not t.is_alive()
            assert errors, "a request longer than the grace should have been cut"
            calls = srv.completions
            time.sleep(1.0)
            assert srv.completions == calls, "the cancelled episode kept calling the upstream"
        finally:
            _stop(proc)


@pytest.mark.integration
def test_a_controller_that_thinks_past_its_deadline_gets_504(tmp_path: Any) -> None:
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import time\n\n\nclass Slow:\n    def solve(self, session):\n"
        "        session.open()\n        time.sleep(7)  # computes without acting: the session cannot stop it\n"
        "        session.open()\n        return 'late'\n"
    )
    cfg = _config(controller=f"{slow}:Slow", beta=None, allowed_controllers=(), limits=LiveLimits(deadline=0.5))
    with replay_server(STORE) as srv, proxy(cfg, srv.openai_base_url) as url:
        t0 = time.monotonic()
        r = httpx.post(
            url + "/chat/completions",
            json={"messages": [{"role": "user", "content": STORE.questions[0].text}]},
            timeout=60,
        )
        assert r.status_code == 504 and r.json()["error"]["type"] == "timeout"
        assert time.monotonic() - t0 < 6.5
        assert httpx.get(url.removesuffix("/v1") + "/health").json()["in_flight"] == 0


def test_serve_with_an_unreachable_upstream_exits_1_without_traceback() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "autotts.cli.main", "serve", "--controller", "cmc", "--upstream",
         "http://127.0.0.1:9/v1", "--model", "m", "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 1 and "error:" in p.stderr and "Traceback" not in p.stderr, p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "autotts.cli.main", "serve", "--controller", "cmc", "--beta", "2",
         "--upstream", "http://127.0.0.1:9/v1", "--model", "m"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2 and "beta" in p.stderr and "Traceback" not in p.stderr, p.stderr
