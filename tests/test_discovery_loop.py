"""The whole discovery loop against a real HTTP server on 127.0.0.1 with scripted explorer replies."""

from __future__ import annotations

import gzip
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from autotts.discovery.config import load_config
from autotts.discovery.errors import ProposerError
from autotts.discovery.loop import DiscoveryLoop
from autotts.discovery.records import Status
from autotts.testing.fake_llm import FakeLLMServer, Reply
from tests.discovery_support import (
    FORBIDDEN_IMPORT,
    GOOD,
    INFINITE_LOOP,
    MEMORY_HOG,
    NON_MONOTONE,
    PEEKER,
    SYNTAX_ERROR,
    fast_tables,
    fenced,
    tiny_setup,
    write_config,
)

KEY = "sk-test-LOOP-7c1d2e3f"
KEY_ENV = "AUTOTTS_TEST_EXPLORER_KEY"

SCRIPT = [GOOD, SYNTAX_ERROR, INFINITE_LOOP, MEMORY_HOG, FORBIDDEN_IMPORT, PEEKER, NON_MONOTONE]
EXPECTED = [
    Status.OK,
    Status.INVALID,
    Status.TIMEOUT,
    Status.CRASHED,
    Status.INVALID,
    Status.LEAKED,
    Status.OK,
    Status.INVALID,  # the eighth reply has no code at all
]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **data: Any) -> None:
        self.events.append((kind, data))


def all_text(root: Path) -> str:
    parts = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            raw = p.read_bytes()
            if p.suffix == ".gz":
                raw = gzip.decompress(raw)
            parts.append(raw.decode("utf-8", "replace"))
    return "\n".join(parts)


def run_config(tmp_path: Path, srv: FakeLLMServer, *, kind: str = "openai", **tables: dict[str, object]) -> Path:
    search, heldout = tiny_setup(tmp_path)
    base_url = srv.openai_base_url if kind == "openai" else srv.anthropic_base_url
    proposer = {
        "kind": kind,
        "model": "fake-explorer",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "backoff_seconds": 0.01,
        "price_input_per_mtok": 1.0,
        "price_output_per_mtok": 4.0,
        **tables.pop("proposer", {}),
    }
    top = tables.pop("top", {"name": "loop-test", "rounds": 2, "candidates_per_round": 4, "parallel": 2})
    return write_config(tmp_path / "discover.toml", top, fast_tables(search, heldout, proposer=proposer, **tables))


def test_whole_loop_gives_each_candidate_its_status(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    replies = [fenced(c, f"Attempt {i}.") for i, c in enumerate(SCRIPT)] + ["Sorry, no code this time."]
    with FakeLLMServer(replies, api_key=KEY) as srv:
        cfg_path = run_config(tmp_path, srv)
        cfg = load_config(cfg_path)
        rec = Recorder()
        loop = DiscoveryLoop.start(cfg, run_dir=tmp_path / "run", reporter=rec, env={KEY_ENV: KEY})
        outcome = loop.run()
        requests = list(srv.requests)
    run = tmp_path / "run"
    records = loop.run_dir.candidates()
    assert [r.id for r in records] == [f"r{r:02d}c{c:02d}" for r in (1, 2) for c in (1, 2, 3, 4)]
    assert [r.status for r in records] == EXPECTED, [(r.id, r.status, r.message[:80]) for r in records]
    by_id = {r.id: r for r in records}
    assert "syntax error" in by_id["r01c02"].message
    assert "limit" in by_id["r01c03"].message
    assert "memory" in by_id["r01c04"].message
    assert "import of 'os'" in by_id["r02c01"].message
    assert "never shown" in by_id["r02c02"].message
    assert "non-monotone" in {f.code for f in by_id["r02c03"].findings}
    assert "no controller program" in by_id["r02c04"].message
    # Usage and money of every call are recorded.
    assert all(r.usage.calls == 1 and r.usage.money > 0 for r in records)
    assert len(requests) == 8

    # Round 2 was shown round 1's code, statuses, messages, curves and trace digests.
    prompt2 = requests[4].text()
    assert "r01c01 — status: ok" in prompt2 and "r01c02 — status: invalid" in prompt2
    assert "syntax error" in prompt2 and "Trace digest" in prompt2 and "session.open()" in prompt2
    assert (run / "rounds/r02/c01/prompt.txt").read_text() == requests[4].body["messages"][1]["content"]

    # Selection, final evaluation and summary.
    assert outcome.selection is not None and outcome.selection.candidate in ("r01c01", "r02c03")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status_counts"] == {"crashed": 1, "invalid": 3, "leaked": 1, "ok": 2, "timeout": 1}
    assert summary["heldout_stores"] == ["secret-model/secret-bench"]
    roles = {(r["store"], r["controller"]) for r in summary["final"]["rows"]}
    assert ("secret-model/secret-bench", "discovered") in roles and ("secret-model/secret-bench", "sc") in roles
    assert summary["money"] == pytest.approx(sum(r.usage.money for r in records))
    assert set(summary["wall_clock_seconds"]) == {"seeds", "search", "final"}
    assert (run / "summary.md").read_text().startswith("# Discovery run `loop-test`")
    assert (run / "discovered_controller.py").read_text().count("class Controller") == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["state"] == "done"
    assert any(kind == "candidate" for kind, _ in rec.events)

    # Held-out stores never reached the explorer: neither their questions nor their names.
    for req in requests:
        text = json.dumps(req.body)
        assert "HELDOUT-SECRET" not in text and "secret-model" not in text
    assert "HELDOUT-SECRET" not in all_text(run)
    for p in run.glob("rounds/**/*"):
        if p.is_file() and p.suffix != ".gz":
            assert "secret-model" not in p.read_text(errors="replace"), p

    # The key appears nowhere but in the request header it was meant for.
    assert KEY not in all_text(run)
    assert KEY not in caplog.text
    assert all(KEY not in json.dumps(r.body) for r in requests)


def test_loop_over_anthropic_messages(tmp_path: Path) -> None:
    replies = [fenced(GOOD), Reply(status=529), "```python\nclass Broken(\n```"]
    with FakeLLMServer(replies, api_key=KEY) as srv:
        top = {"name": "anthropic", "rounds": 1, "candidates_per_round": 2}
        cfg = load_config(run_config(tmp_path, srv, kind="anthropic", top=top))
        outcome = DiscoveryLoop.start(cfg, run_dir=tmp_path / "run", env={KEY_ENV: KEY}).run()
        assert all(r.path == "/v1/messages" for r in srv.requests)
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "run").glob("rounds/*/*/candidate.json"))]
    assert [r["status"] for r in records] == ["ok", "invalid"]
    assert records[1]["usage"]["attempts"] == 2  # the 529 was retried
    assert outcome.selection is not None and outcome.selection.candidate == "r01c01"


def test_money_cap_stops_the_search_before_a_call_could_exceed_it(tmp_path: Path) -> None:
    # A reply of ~825 output tokens costs ~0.09 with input; a call may cost up to 2000 × 100/M = 0.2 plus
    # ~0.01 input. Spent before call k is ~0.09·(k-1): calls 1-3 fit under 0.45, call 4 could exceed it.
    reply = fenced(GOOD, "x" * 2000)
    with FakeLLMServer([reply], api_key=KEY, cycle=True) as srv:
        cfg = load_config(
            run_config(
                tmp_path,
                srv,
                top={"name": "capped", "rounds": 5, "candidates_per_round": 1},
                proposer={"max_tokens": 2000, "price_output_per_mtok": 100.0},
                budget={"max_money": 0.45},
            )
        )
        outcome = DiscoveryLoop.start(cfg, run_dir=tmp_path / "run", env={KEY_ENV: KEY}).run()
        assert len(srv.requests) == 3
    assert "money cap" in str(outcome.summary["stop_reason"])
    assert outcome.summary["money"] <= 0.45
    assert (tmp_path / "run" / "summary.md").is_file()


def test_explorer_failure_keeps_the_run_resumable(tmp_path: Path) -> None:
    with FakeLLMServer([fenced(GOOD), Reply(status=400, error="bad request")], api_key=KEY) as srv:
        cfg = load_config(run_config(tmp_path, srv, top={"name": "fails", "rounds": 2, "candidates_per_round": 1}))
        loop = DiscoveryLoop.start(cfg, run_dir=tmp_path / "run", env={KEY_ENV: KEY})
        with pytest.raises(ProposerError, match="--resume"):
            loop.run()
    run = tmp_path / "run"
    assert json.loads((run / "manifest.json").read_text())["state"] == "failed"
    assert (run / "rounds/r01/c01/candidate.json").is_file()
    assert not (run / "rounds/r02/c01/proposal.json").exists()
    # A healthy explorer later: resume finishes the run without redoing round 1.
    with FakeLLMServer([fenced(GOOD)], api_key=KEY) as srv2:
        cfg_path = run / "config.json"
        data = json.loads(cfg_path.read_text())
        data["proposer"]["base_url"] = srv2.openai_base_url
        cfg_path.write_text(json.dumps(data))
        outcome = DiscoveryLoop.resume(run, env={KEY_ENV: KEY}).run()
        assert len(srv2.requests) == 1
    assert json.loads((run / "manifest.json").read_text())["state"] == "done"
    assert outcome.selection is not None


def test_traces_ablation_hides_digests(tmp_path: Path) -> None:
    with FakeLLMServer([fenced(GOOD)], api_key=KEY, cycle=True) as srv:
        cfg = load_config(
            run_config(
                tmp_path,
                srv,
                top={"name": "no-traces", "rounds": 2, "candidates_per_round": 1},
                ablation={"traces": False},
            )
        )
        DiscoveryLoop.start(cfg, run_dir=tmp_path / "run", env={KEY_ENV: KEY}).run()
        second = srv.requests[1].text()
    assert "r01c01 — status: ok" in second
    assert "Trace digest" not in second


AGENT = """
import json, pathlib, sys
ws = pathlib.Path.cwd()
task = (ws / "TASK.md").read_text()
start = (ws / "controller.py").read_text()
history = sorted(p.name for p in (ws / "history").iterdir()) if (ws / "history").is_dir() else []
log = pathlib.Path(sys.argv[1])
with log.open("a") as fh:
    fh.write(json.dumps({"history": history, "heldout": "secret" in task.lower(), "files": sorted(
        str(p.relative_to(ws)) for p in ws.rglob("*") if p.is_file())}) + "\\n")
(ws / "controller.py").write_text(GOOD_CODE + f"\\n# revision {len(history) + 1}\\n")
"""


def test_loop_with_an_agent_command(tmp_path: Path) -> None:
    search, heldout = tiny_setup(tmp_path)
    script = tmp_path / "agent.py"
    script.write_text(AGENT.replace("GOOD_CODE", repr(GOOD)))
    calls = tmp_path / "calls.jsonl"
    cfg_path = write_config(
        tmp_path / "agent.toml",
        {"name": "agent", "rounds": 2, "candidates_per_round": 1},
        fast_tables(search, heldout, proposer={"kind": "agent", "command": [sys.executable, str(script), str(calls)]}),
    )
    outcome = DiscoveryLoop.start(load_config(cfg_path), run_dir=tmp_path / "run").run()
    seen = [json.loads(line) for line in calls.read_text().splitlines()]
    assert [s["history"] for s in seen] == [[], ["r01c01"]]
    assert not any(s["heldout"] for s in seen)
    assert {"TASK.md", "controller.py", "seeds/sc.py", "seeds/cmc.py"} <= set(seen[0]["files"])
    assert "history/r01c01/result.json" in seen[1]["files"]
    run = tmp_path / "run"
    assert (run / "rounds/r02/c01/workspace/controller.py").read_text().endswith("# revision 2\n")
    assert [r.status for r in DiscoveryLoop.resume(run).run_dir.candidates()] == [Status.OK, Status.OK]
    assert outcome.summary["usage"]["reported"] is False
    assert "secret-model" not in all_text(run / "rounds")


def test_wall_clock_cap_and_no_qualified_candidate(tmp_path: Path) -> None:
    search, heldout = tiny_setup(tmp_path)
    cfg_path = write_config(
        tmp_path / "cap.toml",
        {"name": "capped", "rounds": 3},
        fast_tables(search, heldout, budget={"max_wall_seconds": 1e-6}),
    )
    outcome = DiscoveryLoop.start(load_config(cfg_path), run_dir=tmp_path / "run").run()
    assert outcome.selection is None
    assert "wall-clock cap" in str(outcome.summary["stop_reason"])
    assert outcome.summary["candidates"] == []
    md = (tmp_path / "run" / "summary.md").read_text()
    assert "No candidate qualified" in md and "| secret-model/secret-bench | heldout | sc |" in md
