"""Proposers against a real HTTP server on 127.0.0.1, the agent command, and the offline evolver."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autotts.discovery.config import ProposerConfig, SelectionConfig
from autotts.discovery.errors import ProposerError
from autotts.discovery.proposers import HistoryItem, ProposalRequest, extract_code, redact
from autotts.discovery.proposers.agent import AgentProposer
from autotts.discovery.proposers.anthropic import AnthropicProposer
from autotts.discovery.proposers.evolve import (
    FULL_BUDGET,
    EvolveProposer,
    crossover,
    genome_of,
    mutate,
    normalize,
    render,
    start_genome,
    stretch,
)
from autotts.discovery.proposers.openai_compat import OpenAICompatProposer
from autotts.discovery.records import CandidateRecord, CurvePoint, Status
from autotts.discovery.validation import validate_source
from autotts.errors import ConfigError
from autotts.testing.fake_llm import FakeLLMServer, Reply
from tests.discovery_support import GOOD, fenced

KEY = "sk-test-proposer-5ecret"
ENV = {"TEST_LLM_KEY": KEY}


def request(prompt: str = "design a controller", **kw: object) -> ProposalRequest:
    return ProposalRequest("r01c01", 1, 1, "you are an explorer", prompt, **kw)  # type: ignore[arg-type]


def openai_cfg(srv: FakeLLMServer, **kw: object) -> ProposerConfig:
    base: dict[str, object] = {
        "kind": "openai",
        "model": "fake-model",
        "base_url": srv.openai_base_url,
        "api_key_env": "TEST_LLM_KEY",
        "max_retries": 3,
        "backoff_seconds": 1.0,
        "price_input_per_mtok": 2.0,
        "price_output_per_mtok": 8.0,
        "timeout_seconds": 5.0,
    }
    base.update(kw)
    return ProposerConfig(**base)  # type: ignore[arg-type]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# ------------------------------------------------------------------- extraction
def test_extract_code_cases() -> None:
    code, how = extract_code(fenced(GOOD))
    assert code is not None and "class Controller" in code and how == "last python code block"
    two = fenced("class Old:\n    def solve(self, s):\n        return 1") + fenced(GOOD)
    assert "class Controller" in (extract_code(two)[0] or "")
    assert extract_code("no code here")[0] is None
    cut = "text\n```python\nclass C:\n    def solve(self"
    assert "unterminated" in extract_code(cut)[1]
    bare = GOOD.strip()
    assert extract_code(bare)[0] is not None


def test_redact() -> None:
    assert redact(f"bad key {KEY}!", [KEY]) == "bad key [REDACTED]!"
    assert redact("short", ["ab"]) == "short"


# --------------------------------------------------------------------- OpenAI
def test_openai_proposer_parses_reply_and_prices_usage() -> None:
    with FakeLLMServer([fenced(GOOD)], api_key=KEY) as srv:
        p = OpenAICompatProposer(openai_cfg(srv), env=ENV)
        result = p.propose(request())
        p.close()
        req = srv.requests[0]
    assert result.code is not None and "class Controller" in result.code
    assert result.usage.calls == 1 and result.usage.attempts == 1
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    expected = result.usage.input_tokens * 2.0 / 1e6 + result.usage.output_tokens * 8.0 / 1e6
    assert result.usage.money == pytest.approx(expected)
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.body["model"] == "fake-model"
    assert [m["role"] for m in req.body["messages"]] == ["system", "user"]
    assert KEY not in repr(p)


def test_openai_retries_rate_limits_and_server_errors_with_backoff() -> None:
    script: list[Reply | str] = [Reply(status=429, headers={"Retry-After": "7"}), Reply(status=503), fenced(GOOD)]
    sleeps = Sleeps()
    with FakeLLMServer(script, api_key=KEY) as srv:
        p = OpenAICompatProposer(openai_cfg(srv, max_backoff_seconds=30.0), env=ENV, sleep=sleeps)
        result = p.propose(request())
        p.close()
        assert len(srv.requests) == 3
    assert result.code is not None and result.usage.attempts == 3
    assert len(sleeps.calls) == 2
    assert sleeps.calls[0] >= 7.0  # Retry-After honoured
    assert 1.0 <= sleeps.calls[1] <= 2.5  # 1 s × 2^1 with ±25 % jitter


def test_openai_retries_timeouts_then_gives_up() -> None:
    sleeps = Sleeps()
    with FakeLLMServer([Reply(text="late", delay=1.5)], api_key=KEY, cycle=True) as srv:
        p = OpenAICompatProposer(openai_cfg(srv, timeout_seconds=0.3, max_retries=1), env=ENV, sleep=sleeps)
        with pytest.raises(ProposerError) as info:
            p.propose(request())
        p.close()
    assert info.value.retryable
    assert "giving up after 2 attempts" in str(info.value)
    assert "timed out" in str(info.value)
    assert len(sleeps.calls) == 1


def test_bad_key_is_not_retried_and_never_echoed() -> None:
    echo = Reply(status=401, error=f"Incorrect API key provided: {KEY}")
    sleeps = Sleeps()
    with FakeLLMServer([echo]) as srv:
        p = OpenAICompatProposer(openai_cfg(srv), env=ENV, sleep=sleeps)
        with pytest.raises(ProposerError) as info:
            p.propose(request())
        p.close()
    assert info.value.status_code == 401
    assert KEY not in str(info.value) and "[REDACTED]" in str(info.value)
    assert "check the API key" in str(info.value)
    assert sleeps.calls == []


def test_reply_without_code_is_a_normal_result() -> None:
    with FakeLLMServer(["I would rather not write code."]) as srv:
        p = OpenAICompatProposer(openai_cfg(srv, api_key_env=""), env={})
        result = p.propose(request())
        p.close()
        assert "authorization" not in srv.requests[0].headers
    assert result.code is None
    assert "no Python code block" in result.message


def test_missing_key_variable_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TEST_LLM_KEY"):
        OpenAICompatProposer(openai_cfg_stub(), env={})


def openai_cfg_stub() -> ProposerConfig:
    return ProposerConfig(kind="openai", model="m", base_url="http://127.0.0.1:9/v1", api_key_env="TEST_LLM_KEY")


def test_max_cost_bounds_a_call() -> None:
    cfg = ProposerConfig(kind="openai", model="m", base_url="http://x/v1", max_tokens=1000, price_output_per_mtok=10.0)
    p = OpenAICompatProposer(cfg, env={})
    assert p.max_cost(request("x" * 3000)) >= 1000 * 10.0 / 1e6
    p.close()


# ------------------------------------------------------------------ Anthropic
def test_anthropic_proposer() -> None:
    with FakeLLMServer([Reply(status=529), fenced(GOOD)], api_key=KEY) as srv:
        cfg = ProposerConfig(
            kind="anthropic",
            model="claude-fake",
            base_url=srv.anthropic_base_url,
            api_key_env="TEST_LLM_KEY",
            backoff_seconds=0.01,
            price_input_per_mtok=3.0,
            price_output_per_mtok=15.0,
        )
        sleeps = Sleeps()
        p = AnthropicProposer(cfg, env=ENV, sleep=sleeps)
        result = p.propose(request())
        p.close()
        req = srv.requests[-1]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == KEY and req.headers["anthropic-version"]
    assert req.body["system"] == "you are an explorer"
    assert req.body["messages"] == [{"role": "user", "content": "design a controller"}]
    assert result.code is not None and result.usage.attempts == 2
    assert result.usage.money == pytest.approx(result.usage.input_tokens * 3e-6 + result.usage.output_tokens * 15e-6)


# ---------------------------------------------------------------------- agent
AGENT_SCRIPT = """
import json, pathlib, sys
ws = pathlib.Path.cwd()
task = (ws / "TASK.md").read_text()
assert "session API" in task, "the task file must describe the API"
assert (ws / "seeds").is_dir()
code = {good!r}
(ws / "controller.py").write_text(code)
(ws / "usage.json").write_text(json.dumps({{"input_tokens": 11, "output_tokens": 22, "cost_usd": 0.5}}))
print("edited controller.py in", sys.argv[1])
"""


def test_agent_proposer_runs_a_command_that_edits_controller_py(tmp_path: Path) -> None:
    script = tmp_path / "fake_agent.py"
    script.write_text(AGENT_SCRIPT.format(good=GOOD))
    cfg = ProposerConfig(kind="agent", command=(sys.executable, str(script), "{workspace}"), agent_timeout_seconds=30)
    slot = tmp_path / "slot"
    files = {"TASK.md": "# Task\nthe session API ...", "seeds/sc.py": "# seed", "controller.py": "# start\n"}
    result = AgentProposer(cfg).propose(request(workspace_files=files, starting_code="# start\n", slot_dir=slot))
    assert result.code is not None and result.code.strip() == GOOD.strip()
    assert "edited controller.py" in result.response
    assert result.usage.money == 0.5 and result.usage.input_tokens == 11 and result.usage.reported
    assert (slot / "workspace" / "controller.py").read_text().strip() == GOOD.strip()
    assert (slot / "workspace" / "TASK.md").is_file()


def test_agent_that_changes_nothing_or_hangs(tmp_path: Path) -> None:
    lazy = ProposerConfig(kind="agent", command=(sys.executable, "-c", "print('thinking')"))
    files = {"TASK.md": "task", "controller.py": "# start\n"}
    result = AgentProposer(lazy).propose(request(workspace_files=files))
    assert result.code is None and "unchanged" in result.message and not result.usage.reported
    hang = ProposerConfig(
        kind="agent", command=(sys.executable, "-c", "import time; time.sleep(60)"), agent_timeout_seconds=0.5
    )
    result = AgentProposer(hang).propose(request(workspace_files=files))
    assert result.code is None and "timed out" in result.message


def test_agent_command_that_does_not_exist() -> None:
    cfg = ProposerConfig(kind="agent", command=("/nonexistent/agent-binary",))
    with pytest.raises(ProposerError, match="could not be started"):
        AgentProposer(cfg).propose(request(workspace_files={"controller.py": "x"}))


# --------------------------------------------------------------------- evolve
def test_evolved_programs_are_valid_monotone_and_round_trip() -> None:
    rng = random.Random(0)
    g = start_genome()
    for i in range(40):
        g, _ = mutate(g, rng, 1 + i % 3)
        if i % 7 == 0:
            g = crossover(g, start_genome(), rng)
        if i % 5 == 0:
            g, _ = stretch(g, rng)
        code = render(g)
        assert validate_source(code).ok
        assert genome_of(code) == normalize(g)
        ns: dict[str, object] = {}
        exec(compile(code, "evolved", "exec"), ns)
        cls = ns["EvolvedController"]
        settings = [cls.schedule(b / 10) for b in range(11)]  # type: ignore[attr-defined]
        for key in ("n_init", "max_branches", "threshold", "min_votes", "widen_size", "patience", "burst"):
            values = [s[key] for s in settings]
            assert values == sorted(values), (key, values)
        assert settings[-1]["max_branches"] == FULL_BUDGET, g  # β = 1 can always use the whole budget


class _Reads:
    """A stand-in session for read-mode controllers: full reads with scripted answers, counted."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.n = 0

    def read(self) -> object:
        if self.n >= len(self.answers):
            return None
        self.n += 1
        return type("R", (), {"answer": self.answers[self.n - 1]})()


def _start_controller(beta: float) -> object:
    ns: dict[str, object] = {}
    exec(compile(render(start_genome()), "start", "exec"), ns)
    return ns["EvolvedController"](beta)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("answers", "beta", "reads"),
    [
        (["7"] * 128, 0.0, 3),  # β = 0 is cheap: three agreeing reads are confident enough
        (["7", "8"] * 64, 0.0, 4),  # ... and capped at four branches
        (["7"] * 128, 1.0, 24),  # β = 1 is conservative: at least 24 votes even when they all agree
        (["7", "8"] * 64, 1.0, FULL_BUDGET),  # ... and may read the full budget, never more
    ],
)
def test_the_starting_genome_spans_cheap_to_the_full_budget(answers: list[str], beta: float, reads: int) -> None:
    sched = _start_controller(beta).schedule  # type: ignore[attr-defined]
    assert sched(0.0)["max_branches"] <= 4 and sched(1.0)["max_branches"] == FULL_BUDGET
    session = _Reads(answers)
    assert _start_controller(beta).solve(session) in ("7", "8")  # type: ignore[attr-defined]
    assert session.n == reads


def test_normalize_pins_the_full_budget_at_beta_one() -> None:
    for a, b in ((1.0, 0.0), (10.0, 3.0), (64.0, 0.0), (30.0, 64.0)):
        g = normalize(dict(start_genome(), max_branches=(a, b)))
        lo, slope = g["max_branches"]
        assert lo == a and lo + slope >= FULL_BUDGET and slope >= b


def test_evolve_never_proposes_a_genome_twice() -> None:
    prop = EvolveProposer(ProposerConfig(population=3), SelectionConfig())
    history: list[HistoryItem] = []
    seen: list[str] = []
    pending: list[str | None] = []
    for i in range(1, 13):
        rnd, idx = 1 + (i - 1) // 2, 1 + (i - 1) % 2
        cid = f"r{rnd:02d}c{idx:02d}"
        req = ProposalRequest(cid, rnd, idx, "", "", tuple(history), rng_seed=i)
        result = prop.propose(req)
        g = genome_of(result.code)
        assert g is not None
        key = repr(sorted(g.items()))
        assert key not in seen, (cid, result.response)
        seen.append(key)
        if idx == 2:  # the round is over: both candidates join the history
            for j, code in enumerate([*pending, result.code]):
                history.append(HistoryItem(_record(f"r{rnd:02d}c{j + 1:02d}", 50.0 + i + j), code))
            pending = []
        else:
            pending = [result.code]


def test_evolve_proposes_another_variation_when_one_repeats_a_known_genome(monkeypatch: pytest.MonkeyPatch) -> None:
    import autotts.discovery.proposers.evolve as evolve

    calls = {"n": 0}
    real_mutate, real_stretch = evolve.mutate, evolve.stretch

    def no_op_first(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(g: dict[str, Any], rng: random.Random, *args: Any) -> Any:
            calls["n"] += 1
            if calls["n"] <= 3:  # the first variations change nothing: duplicates of the parent
                return dict(g), ("nothing" if real is real_stretch else ["nothing"])
            return real(g, rng, *args)

        return wrapped

    monkeypatch.setattr(evolve, "mutate", no_op_first(real_mutate))
    monkeypatch.setattr(evolve, "stretch", no_op_first(real_stretch))
    history = (HistoryItem(_record("r01c01", 60.0), render(start_genome())),)
    prop = EvolveProposer(ProposerConfig(population=2), SelectionConfig())
    result = prop.propose(ProposalRequest("r02c01", 2, 1, "", "", history, rng_seed=1))
    assert calls["n"] >= 4
    assert genome_of(result.code) not in (None, start_genome())


def _record(cid: str, acc: float) -> CandidateRecord:
    return CandidateRecord(cid, int(cid[1:3]), int(cid[4:6]), Status.OK, search_curve=(CurvePoint(1.0, acc, 100.0),))


def test_evolve_starts_from_its_genome_then_mutates_the_best_deterministically() -> None:
    prop = EvolveProposer(ProposerConfig(population=2), SelectionConfig())
    first = prop.propose(request())
    assert genome_of(first.code) == start_genome()
    assert "starting genome" in first.response
    weak = dict(start_genome(), max_branches=(2.0, 0.0))
    history = [
        HistoryItem(_record("r01c01", 60.0), first.code),
        HistoryItem(_record("r01c02", 40.0), render(weak)),
        HistoryItem(_record("r01c03", 90.0), GOOD),  # not an evolved program: ignored as a parent
    ]
    a = prop.propose(request(history=history, rng_seed=5))
    b = prop.propose(request(history=history, rng_seed=5))
    assert a.code == b.code
    ga = genome_of(a.code)
    assert ga is not None and ga not in (start_genome(), normalize(weak))
    assert a.usage.money == 0.0
