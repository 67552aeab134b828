"""Proposers against a real HTTP server on 127.0.0.1, the agent command, and the offline evolver."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from autotts.discovery.config import ProposerConfig, SelectionConfig
from autotts.discovery.errors import ProposerError
from autotts.discovery.fake_server import FakeLLMServer, Reply
from autotts.discovery.proposers import HistoryItem, ProposalRequest, extract_code, redact
from autotts.discovery.proposers.agent import AgentProposer
from autotts.discovery.proposers.anthropic import AnthropicProposer
from autotts.discovery.proposers.evolve import (
    EvolveProposer,
    crossover,
    genome_of,
    mutate,
    normalize,
    render,
    start_genome,
)
from autotts.discovery.proposers.openai_compat import OpenAICompatProposer
from autotts.discovery.records import CandidateRecord, CurvePoint, Status
from autotts.discovery.validation import validate_source
from autotts.errors import ConfigError
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
    script = [Reply(status=429, headers={"Retry-After": "7"}), Reply(status=503), fenced(GOOD)]
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
AGENT_SCRIPT = '''
import json, pathlib, sys
ws = pathlib.Path.cwd()
task = (ws / "TASK.md").read_text()
assert "session API" in task, "the task file must describe the API"
assert (ws / "seeds").is_dir()
code = {good!r}
(ws / "controller.py").write_text(code)
(ws / "usage.json").write_text(json.dumps({{"input_tokens": 11, "output_tokens": 22, "cost_usd": 0.5}}))
print("edited controller.py in", sys.argv[1])
'''


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
