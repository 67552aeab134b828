"""The replay server speaks /v1/completions and serves a store's branches exactly (protocol-level checks)."""

from __future__ import annotations

import httpx
import pytest

from autotts.env.protocols import shuffle_order
from autotts.testing import tiny_store
from autotts.testing.replay_server import Fault, ReplayLLMServer

SUFFIX = "\n</think>\n\n**Final Answer**\n\\boxed{"


@pytest.fixture(scope="module")
def store():  # type: ignore[no-untyped-def]
    return tiny_store(questions=2, branches=8)


def _post(client: httpx.Client, body: dict) -> httpx.Response:  # type: ignore[type-arg]
    return client.post("/completions", json=body)


def test_branch_walk_matches_the_store(store) -> None:  # type: ignore[no-untyped-def]
    q = store.questions[1]
    with ReplayLLMServer(store, probe_suffix=SUFFIX) as srv, httpx.Client(base_url=srv.openai_base_url) as c:
        assert c.get("/models").json()["data"][0]["id"] == "replay"
        run, pos = 3, 5
        b = shuffle_order(len(q.branches), run)[pos]
        branch = q.branches[b]
        prompt = "<user>" + q.text + "</user>"
        text = ""
        for j, want in enumerate(branch.probes):
            r = _post(c, {"prompt": prompt + text, "max_tokens": q.delta, "seed": srv.seed_for(1, run, pos)}).json()
            assert r["choices"][0]["finish_reason"] == "length"
            assert r["usage"]["completion_tokens"] == q.delta
            text += r["choices"][0]["text"]
            probe = _post(c, {"prompt": prompt + text + SUFFIX, "max_tokens": 32}).json()["choices"][0]["text"]
            assert (probe.split("}")[0] if want != "ERR" else probe) == (want if want != "ERR" else ""), j
        end = _post(c, {"prompt": prompt + text, "max_tokens": q.delta}).json()
        assert end["choices"][0]["finish_reason"] == "stop"
        assert end["usage"]["completion_tokens"] == max(0, branch.tokens - len(branch.probes) * q.delta)
        assert ("\\boxed{" + branch.final + "}") in end["choices"][0]["text"]
        # A full read of the same branch: one reply of the branch's whole length.
        full = _post(c, {"prompt": prompt, "max_tokens": 10**6, "seed": srv.seed_for(1, run, pos)}).json()
        assert full["usage"]["completion_tokens"] == branch.tokens
        assert full["choices"][0]["text"].endswith("\\boxed{" + branch.final + "}.")


def test_bad_requests_get_clear_errors(store) -> None:  # type: ignore[no-untyped-def]
    q = store.questions[0]
    with ReplayLLMServer(store, probe_suffix=SUFFIX) as srv, httpx.Client(base_url=srv.openai_base_url) as c:
        r = _post(c, {"prompt": q.text, "max_tokens": q.delta})
        assert r.status_code == 400 and "seed" in r.json()["error"]["message"]
        r = _post(c, {"prompt": "a question nobody asked", "max_tokens": q.delta, "seed": 0})
        assert r.status_code == 400 and "none of this store's questions" in r.json()["error"]["message"]
        r = _post(c, {"prompt": q.text, "max_tokens": 7, "seed": 0})
        assert r.status_code == 400 and "Δ=" in r.json()["error"]["message"]
        r = c.post("/completions", content=b"{not json")
        assert r.status_code == 400


def test_injected_faults(store) -> None:  # type: ignore[no-untyped-def]
    q = store.questions[0]
    kinds = {1: Fault("error", status=503), 2: Fault("drop"), 3: Fault("hang", seconds=1.0)}
    with ReplayLLMServer(store, probe_suffix=SUFFIX, fault=lambda info: kinds.get(info.number)) as srv:
        with httpx.Client(base_url=srv.openai_base_url, timeout=0.3) as c:
            body = {"prompt": q.text, "max_tokens": q.delta, "seed": 0}
            assert _post(c, body).status_code == 503
            with pytest.raises(httpx.TransportError):
                _post(c, body)
            with pytest.raises(httpx.TimeoutException):
                _post(c, body)
            assert _post(c, body).status_code == 200
