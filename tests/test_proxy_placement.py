"""Where controllers run: built-ins on the event loop (greenlets), other code in worker threads.

The misbehaving controller here computes for seconds between two actions. In a worker
thread (the default for a controller file) it must not stall other requests; forced onto
the event loop it does stall them while it computes, and the proxy must notice, answer
the request as soon as the loop is free (its deadline has passed by then) and run that
controller in worker threads from the next request on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from autotts.controllers import ControllerSpec
from autotts.online import LiveLimits, Placement
from autotts.online.proxy import ProxyConfig
from autotts.testing import tiny_store
from tests.online_support import offline, proxy, replay_server, wait_for

STORE = tiny_store(seed=11, questions=3, branches=16, delta=2000)
DELTA = STORE.questions[0].delta

BUSY = '''
import time


class Busy:
    """Opens a branch, then computes for `seconds` (pure Python, no action) before it opens another."""

    def __init__(self, seconds=1.0):
        self.seconds = seconds

    def solve(self, session):
        session.open()
        end = time.monotonic() + self.seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        session.open()
        return session.answer(1)
'''


@pytest.fixture
def busy(tmp_path: Path) -> str:
    path = tmp_path / "busy.py"
    path.write_text(BUSY)
    return str(path)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Any]:
    with replay_server(STORE) as srv:
        yield srv


def _config(controller: str, **kw: Any) -> ProxyConfig:
    base: dict[str, Any] = dict(
        controller=controller,
        model="replay",
        delta=DELTA,
        allowed_controllers=("sc:n=4",),
        limits=LiveLimits(deadline=30, max_branches=16),
        max_concurrency=8,
    )
    base.update(kw)
    return ProxyConfig(**base)


def _post(url: str, qi: int, run: int = 0, **extra: Any) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": STORE.questions[qi].text}], "seed": run * 16, **extra}
    return httpx.post(url + "/chat/completions", json=body, timeout=60)


def _in_thread(fn: Any, *args: Any, **kw: Any) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(fn(*args, **kw)), daemon=True)
    t.start()
    return t, got


def _counter(url: str, name: str) -> dict[str, float]:
    """``{label value: count}`` of a one-label counter on ``/metrics``."""
    text = httpx.get(url.removesuffix("/v1") + "/metrics").text
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            label, value = line.split("} ")
            out[label.split('"')[1]] = float(value)
    return out


def _episodes(url: str) -> dict[str, float]:
    return _counter(url, "autotts_episodes_total")


@pytest.mark.slow
@pytest.mark.integration
def test_a_controller_file_computing_between_actions_does_not_stall_other_requests(busy: str, upstream: Any) -> None:
    with proxy(_config(f"{busy}:Busy:seconds=5"), upstream.openai_base_url) as url:
        answer, _ = offline(STORE, ControllerSpec.parse("sc:n=4"), 1, run=2)
        r = _post(url, 1, 2, controller="sc")  # warm-up, and the built-in's placement
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == answer
        calls = upstream.completions
        t0 = time.monotonic()
        t, got = _in_thread(_post, url, 0, timeout=1.0)
        wait_for(lambda: upstream.completions >= calls + 2)  # it opened its first branch and computes now
        t1 = time.monotonic()
        r = _post(url, 1, 2, controller="sc")
        took = time.monotonic() - t1
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == answer
        assert took < 2.5, f"a request took {took:.2f} s while another controller computed (stalled)"
        assert t.is_alive(), "the busy controller should still be computing"
        t.join(timeout=30)
        busy_reply = got[0]
        # Its deadline (1 s) passed while it computed: the next action stops the episode with the
        # best answer so far, or the watchdog answers 504 at deadline + grace.
        assert time.monotonic() - t0 < 6.5
        if busy_reply.status_code == 200:
            assert busy_reply.json()["autotts"]["stop_reason"] == "deadline"
        else:
            assert busy_reply.status_code == 504, busy_reply.text
        assert _episodes(url) == {"loop": 2.0, "thread": 1.0}


@pytest.mark.slow
@pytest.mark.integration
def test_a_controller_holding_the_loop_is_answered_when_it_lets_go_and_then_moved_to_a_thread(
    busy: str, upstream: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _config(f"{busy}:Busy:seconds=2.0", placement=Placement.LOOP)
    with proxy(cfg, upstream.openai_base_url) as url, caplog.at_level(logging.WARNING, "autotts.online.proxy"):
        t0 = time.monotonic()
        r = _post(url, 0, timeout=0.3)
        took = time.monotonic() - t0
        # On the loop nothing can interrupt the computation; the request is answered at its
        # next action, when its deadline has long passed.
        assert r.status_code == 200 and r.json()["autotts"]["stop_reason"] == "deadline", r.text
        assert 2.0 <= took < 4.0
        assert any("held the event loop" in rec.getMessage() for rec in caplog.records), caplog.text
        # From now on that controller runs in a worker thread: the loop stays responsive while it computes.
        calls = upstream.completions
        t, got = _in_thread(_post, url, 0, timeout=0.3)
        wait_for(lambda: upstream.completions >= calls + 2)
        h0 = time.monotonic()
        assert httpx.get(url.removesuffix("/v1") + "/health", timeout=10).status_code == 200
        # On the loop /health would wait for the whole 2 s computation; 1 s leaves room for a loaded machine.
        assert time.monotonic() - h0 < 1.0, "the event loop was held by a controller moved to threads"
        t.join(timeout=30)
        assert got[0].status_code == 200 and got[0].json()["autotts"]["stop_reason"] == "deadline"
        assert _episodes(url) == {"loop": 1.0, "thread": 1.0}


@pytest.mark.integration
def test_threads_placement_runs_builtins_in_threads_and_gives_the_same_answers(upstream: Any) -> None:
    cfg = _config("cmc", beta=0.5, placement=Placement.THREADS)
    with proxy(cfg, upstream.openai_base_url) as url:
        actions: dict[str, float] = {}
        for qi in range(len(STORE.questions)):
            answer, ref = offline(STORE, ControllerSpec.parse("cmc:beta=0.5"), qi, run=3)
            r = _post(url, qi, 3)
            assert r.status_code == 200
            assert r.json()["choices"][0]["message"]["content"] == answer
            assert r.json()["autotts"]["trace"]["tokens"] == ref.cost
            for e in ref.trace:
                actions[e.action] = actions.get(e.action, 0) + 1
        assert _episodes(url) == {"loop": 0.0, "thread": 3.0}
        assert _counter(url, "autotts_actions_total") == actions
