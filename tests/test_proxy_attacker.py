"""A misbehaving client against the proxy: every abuse gets a clean OpenAI-style error, and the server lives on.

Written before the happy-path tests on purpose: malformed JSON, huge bodies (declared
and chunked), wrong auth, abrupt disconnects (mid-body and mid-episode), overrides
beyond the operator's limits, and more requests than the concurrency limit.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from autotts.online import LiveLimits
from autotts.online.proxy import ProxyConfig
from autotts.testing import tiny_store
from tests.online_support import proxy, replay_server

KEY = "sk-attacker-test-0123456789"
STORE = tiny_store(seed=5, questions=2, branches=16, delta=2000)
Q = STORE.questions[0].text


def _config(**kw: Any) -> ProxyConfig:
    base: dict[str, Any] = dict(
        controller="cmc",
        model="replay",
        delta=STORE.questions[0].delta,
        beta=0.5,
        allowed_controllers=("sc", "parallel-probe"),
        beta_range=(0.2, 0.8),
        limits=LiveLimits(deadline=60, max_branches=16, token_budget=10**6),
        max_concurrency=2,
        max_body_bytes=64 * 1024,
        api_keys=frozenset({KEY}),
    )
    base.update(kw)
    return ProxyConfig(**base)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Any]:
    # A little latency per upstream call, so that an episode lasts long enough to be interrupted.
    with replay_server(STORE, latency=0.01) as srv:
        yield srv


@pytest.fixture(scope="module")
def url(upstream: Any) -> Iterator[str]:
    with proxy(_config(), upstream.openai_base_url) as u:
        yield u


def _auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "replay", "messages": [{"role": "user", "content": Q}], "seed": 0, **extra}


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str) and body["error"]["type"]
    return body["error"]  # type: ignore[no-any-return]


def test_malformed_bodies(url: str) -> None:
    with httpx.Client(base_url=url, headers=_auth(), timeout=30) as c:
        _error(c.post("/chat/completions", content=b'{"model": "replay", "messages": ['), 400)
        _error(c.post("/chat/completions", content=b"\xff\xfe not utf8"), 400)
        _error(c.post("/chat/completions", json=[1, 2, 3]), 400)
        assert _error(c.post("/chat/completions", json={"model": "replay"}), 400)["param"] == "messages"
        _error(c.post("/chat/completions", json={"messages": "hello"}), 400)
        _error(c.post("/chat/completions", json={"messages": [{"role": "system", "content": "x"}]}), 400)
        _error(c.post("/chat/completions", json={"messages": [{"role": "user", "content": 5}]}), 400)
        _error(c.post("/chat/completions", json={"messages": [7]}), 400)


def test_huge_bodies(url: str) -> None:
    big = json.dumps(_chat(padding="x" * 200_000)).encode()
    with httpx.Client(base_url=url, headers=_auth(), timeout=30) as c:
        assert "limit" in _error(c.post("/chat/completions", content=big), 413)["message"]

        def chunked() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        _error(c.post("/chat/completions", content=chunked()), 413)


def test_wrong_auth_and_the_key_never_echoes(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=url, timeout=30) as c:
        for headers in ({}, _auth("sk-wrong"), {"Authorization": f"Basic {KEY}"}, {"Authorization": "Bearer"}):
            err = _error(c.post("/chat/completions", json=_chat(), headers=headers), 401)
            assert err["type"] == "authentication_error"
        _error(c.get("/models", headers=_auth("nope")), 401)
        assert c.get("/models", headers=_auth()).json()["data"][0]["id"] == "replay"
        # The wrong key a client sent, and the right one, appear in no reply and no log line.
        r = c.post("/chat/completions", json=_chat(beta=5), headers=_auth())
        assert KEY not in r.text
    assert KEY not in caplog.text and "sk-wrong" not in caplog.text


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"beta": 0.9}, "beta"),
        ({"beta": 0.1}, "beta"),
        ({"beta": "high"}, "beta"),
        ({"beta": True}, "beta"),
        ({"controller": "asc"}, "controller"),
        ({"controller": "../../etc/evil.py:Evil"}, "controller"),
        ({"controller": 3}, "controller"),
        ({"controller": "sc", "beta": 0.5}, "beta"),
        ({"timeout": 3600}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"max_branches": 17}, "max_branches"),
        ({"max_branches": 2.5}, "max_branches"),
        ({"token_budget": 10**7}, "token_budget"),
        ({"n": 2}, "n"),
        ({"stream": "yes"}, "stream"),
        ({"seed": -1}, "seed"),
        ({"include_reasoning": "please"}, "include_reasoning"),
    ],
)
def test_overrides_beyond_limits(url: str, extra: dict[str, Any], param: str) -> None:
    with httpx.Client(base_url=url, headers=_auth(), timeout=30) as c:
        assert _error(c.post("/chat/completions", json=_chat(**extra)), 400)["param"] == param


def _raw(url: str) -> socket.socket:
    host, port = url.split("//")[1].split("/")[0].split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _in_flight(url: str) -> int:
    return int(httpx.get(url.removesuffix("/v1") + "/health", timeout=10).json()["in_flight"])


def _upstream_calls_settle(upstream: Any) -> int:
    last = -1
    while upstream.completions != last:
        last = upstream.completions
        time.sleep(0.3)
    return last


@pytest.mark.integration
def test_abrupt_disconnects(url: str, upstream: Any) -> None:
    # 1. A client that promises a body and hangs up half-way.
    s = _raw(url)
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
        b'Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"model": "re'
    )
    s.close()
    # 2. A client that sends a whole request, then vanishes while the controller works.
    body = json.dumps(_chat(controller="parallel-probe")).encode()
    before = upstream.completions
    s = _raw(url)
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    deadline = time.monotonic() + 20
    while upstream.completions < before + 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.close()
    # The episode is aborted: nothing stays in flight and the upstream calls stop.
    deadline = time.monotonic() + 20
    while _in_flight(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _in_flight(url) == 0
    settled = _upstream_calls_settle(upstream)
    full = 0
    with httpx.Client(base_url=url, headers=_auth(), timeout=60) as c:
        r = c.post("/chat/completions", json=_chat(controller="parallel-probe"))
        assert r.status_code == 200, r.text
        full = r.json()["autotts"]["trace"]["requests"]
    assert settled - before < full, "the abandoned episode ran to its end"
    # 3. A streaming client that reads the first bytes and hangs up.
    with httpx.Client(base_url=url, headers=_auth(), timeout=60) as c:
        with c.stream("POST", "/chat/completions", json=_chat(stream=True, controller="parallel-probe")) as r:
            assert r.status_code == 200
    deadline = time.monotonic() + 20
    while _in_flight(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _in_flight(url) == 0


@pytest.mark.integration
def test_over_the_concurrency_limit_is_429_with_retry_after(url: str) -> None:
    results: list[int] = []

    def slow() -> None:
        with httpx.Client(base_url=url, headers=_auth(), timeout=120) as c:
            results.append(c.post("/chat/completions", json=_chat(controller="parallel-probe")).status_code)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while _in_flight(url) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with httpx.Client(base_url=url, headers=_auth(), timeout=30) as c:
        r = c.post("/chat/completions", json=_chat())
        assert _error(r, 429)["type"] == "rate_limit_exceeded"
        assert int(r.headers["retry-after"]) >= 1
    for t in threads:
        t.join(timeout=120)
    assert results == [200, 200]
    metrics = httpx.get(url.removesuffix("/v1") + "/metrics", timeout=10).text
    assert 'autotts_requests_total{status="429"}' in metrics


def test_server_is_healthy_after_the_abuse(url: str) -> None:
    assert httpx.get(url.removesuffix("/v1") + "/health", timeout=10).json()["status"] == "ok"
    with httpx.Client(base_url=url, headers=_auth(), timeout=60) as c:
        r = c.post("/chat/completions", json=_chat())
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
