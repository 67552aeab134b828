"""The proxy as clients see it: the official openai client, streaming, metrics, upstream faults, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from autotts.cli.serve_cmd import listen_socket
from autotts.controllers import ControllerSpec
from autotts.llm import RetryPolicy
from autotts.online import LiveLimits
from autotts.online.proxy import ProxyConfig
from autotts.testing import tiny_store
from autotts.testing.replay_server import Fault
from tests.online_support import offline, proxy, replay_server, wait_for

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


def _chat_in_thread(url: str, qi: int, run: int, got: list[Any]) -> threading.Thread:
    """POST one chat request from a thread; ``got`` receives the response or the exception."""

    def ask() -> None:
        body = {"messages": [{"role": "user", "content": STORE.questions[qi].text}], "seed": run * 16}
        try:
            got.append(httpx.post(url + "/chat/completions", json=body, timeout=120))
        except BaseException as exc:  # a dropped connection is what the tests rule out
            got.append(exc)

    t = threading.Thread(target=ask)
    t.start()
    return t


@pytest.mark.slow
@pytest.mark.integration
def test_sigterm_drains_says_so_on_health_refuses_new_requests_and_exits_143() -> None:
    with replay_server(STORE, latency=0.1) as srv:
        proc, url = _serve(srv.openai_base_url, "--shutdown-grace", "60")
        root = url.removesuffix("/v1")
        try:
            assert httpx.get(root + "/health").status_code == 200
            got: list[Any] = []
            t = _chat_in_thread(url, 0, 1, got)
            wait_for(lambda: srv.completions >= 3)
            proc.send_signal(signal.SIGTERM)
            # Draining shows at once, while the in-flight request still runs (it takes seconds).
            health = httpx.get(root + "/health", timeout=10)
            assert health.status_code == 503, health.text
            assert health.json()["status"] == "draining" and health.json()["in_flight"] == 1
            assert "shutting down" in health.json()["message"]
            late = httpx.post(
                url + "/chat/completions",
                json={"messages": [{"role": "user", "content": STORE.questions[1].text}]},
                timeout=10,
            )
            assert late.status_code == 503 and late.json()["error"]["type"] == "server_shutting_down"
            assert t.is_alive(), "the in-flight request should still be running"
            t.join(timeout=120)
            assert proc.wait(timeout=60) == 143
            answer, _ = offline(STORE, ControllerSpec.parse("cmc:beta=0.5"), 0, run=1)
            assert isinstance(got[0], httpx.Response) and got[0].status_code == 200, got
            assert got[0].json()["choices"][0]["message"]["content"] == answer
            assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
        finally:
            _stop(proc)


@pytest.mark.slow
@pytest.mark.integration
def test_sigterm_past_the_grace_stops_the_episode_and_still_answers() -> None:
    with replay_server(STORE, latency=0.2) as srv:
        proc, url = _serve(srv.openai_base_url, "--shutdown-grace", "1")
        try:
            got: list[Any] = []
            t = _chat_in_thread(url, 0, 1, got)
            wait_for(lambda: srv.completions >= 3)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 143
            assert time.monotonic() - t0 < 10
            t.join(timeout=30)
            # Cut cleanly: an answer (the best so far, stop reason "shutdown") or a 503 error object,
            # never a dropped connection.
            r = got[0]
            assert isinstance(r, httpx.Response), r
            if r.status_code == 200:
                assert r.json()["autotts"]["stop_reason"] == "shutdown"
            else:
                assert r.status_code == 503 and r.json()["error"]["type"] == "server_shutting_down", r.text
            calls = srv.completions
            time.sleep(1.0)
            assert srv.completions == calls, "the stopped episode kept calling the upstream"
        finally:
            _stop(proc)


@pytest.mark.integration
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_idle_server_stops_at_once_with_the_cli_exit_code(sig: signal.Signals, code: int) -> None:
    with replay_server(STORE) as srv:
        proc, url = _serve(srv.openai_base_url)
        try:
            assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == code
            assert proc.stderr is not None
            err = proc.stderr.read()
            assert "stopped" in err and "Traceback" not in err, err
        finally:
            _stop(proc)


def test_the_listening_socket_gives_connections_tcp_nodelay() -> None:
    """Without TCP_NODELAY each reply's body waits ~40 ms behind its headers (Nagle vs delayed ACK)."""
    sock = listen_socket("127.0.0.1", 0)
    seen: list[int] = []

    async def go() -> None:
        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        _, w = await asyncio.open_connection(*sock.getsockname())
        while not seen:
            await asyncio.sleep(0.01)
        w.close()
        server.close()
        await server.wait_closed()

    asyncio.run(go())
    assert seen and seen[0] != 0


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
