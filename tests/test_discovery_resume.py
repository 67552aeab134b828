"""A resumed discovery run leaves finished work alone: no re-scoring, no repeated events, same files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autotts.discovery.config import load_config
from autotts.discovery.errors import ProposerError
from autotts.discovery.loop import DiscoveryLoop
from autotts.testing.fake_llm import FakeLLMServer, Reply
from tests.discovery_support import GOOD, fast_tables, fenced, tiny_setup, write_config

KEY = "sk-test-RESUME-1a2b3c"
KEY_ENV = "AUTOTTS_TEST_RESUME_KEY"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **data: Any) -> None:
        self.events.append((kind, data))

    def ids(self, kind: str) -> list[str]:
        out = []
        for k, data in self.events:
            if k == kind:
                out.append(data["record"].id if kind == "candidate" else data["id"])
        return out

    def rounds(self) -> list[int]:
        return [data["round"] for k, data in self.events if k == "round"]


def snapshot(slot: Path) -> dict[str, tuple[bytes, int]]:
    """Content and modification time of every file of a slot."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(slot.iterdir()) if p.is_file()}


def point_at(run: Path, srv: FakeLLMServer) -> None:
    cfg_path = run / "config.json"
    data = json.loads(cfg_path.read_text())
    data["proposer"]["base_url"] = srv.openai_base_url
    cfg_path.write_text(json.dumps(data))


def test_resume_does_not_rescore_reemit_or_rewrite_finished_candidates(tmp_path: Path) -> None:
    search, heldout = tiny_setup(tmp_path)
    proposer = {
        "kind": "openai",
        "model": "fake-explorer",
        "api_key_env": KEY_ENV,
        "backoff_seconds": 0.01,
    }
    replies: list[str | Reply] = [fenced(GOOD)] * 3 + [Reply(status=400, error="bad request")]
    with FakeLLMServer(replies, api_key=KEY) as srv:
        proposer["base_url"] = srv.openai_base_url
        cfg_path = write_config(
            tmp_path / "resume.toml",
            {"name": "resume", "rounds": 2, "candidates_per_round": 2, "parallel": 1},
            fast_tables(search, heldout, proposer=proposer),
        )
        first = Recorder()
        loop = DiscoveryLoop.start(load_config(cfg_path), run_dir=tmp_path / "run", reporter=first, env={KEY_ENV: KEY})
        try:
            loop.run()
        except ProposerError:
            pass
        else:  # pragma: no cover - the fourth reply is an error
            raise AssertionError("the explorer failure did not stop the run")
    run = tmp_path / "run"
    assert first.ids("candidate") == ["r01c01", "r01c02", "r02c01"]

    # As if killed after r02c01's proposal was stored but before its score was: it must be
    # scored on resume without asking the explorer again.
    (run / "rounds/r02/c01/candidate.json").unlink()
    finished = {cid: run / f"rounds/r0{cid[2]}/c0{cid[5]}" for cid in ("r01c01", "r01c02")}
    before = {cid: snapshot(slot) for cid, slot in finished.items()}
    seeds_before = (run / "seeds.json").stat().st_mtime_ns
    seed_seconds = json.loads((run / "manifest.json").read_text())["phase_seconds"]["seeds"]
    records_before = {r.id: r for r in loop.run_dir.candidates()}

    second = Recorder()
    with FakeLLMServer([fenced(GOOD)], api_key=KEY) as srv2:
        point_at(run, srv2)
        resumed = DiscoveryLoop.resume(run, reporter=second, env={KEY_ENV: KEY})
        resumed.run()
        assert len(srv2.requests) == 1  # only r02c02 was proposed

    # Finished candidates: not evaluated, not announced, not rewritten.
    assert second.ids("propose") == ["r02c02"]
    assert sorted(set(second.ids("stage"))) == ["r02c01", "r02c02"]
    assert second.ids("candidate") == ["r02c01", "r02c02"]
    assert second.rounds() == [2]  # round 1 was complete: not even announced
    for cid, slot in finished.items():
        assert snapshot(slot) == before[cid], cid
    records = {r.id: r for r in resumed.run_dir.candidates()}
    for cid in finished:
        assert records[cid] == records_before[cid]
        assert records[cid].eval_seconds == records_before[cid].eval_seconds
    assert sorted(records) == ["r01c01", "r01c02", "r02c01", "r02c02"]
    # The seed controllers were not evaluated again either.
    assert (run / "seeds.json").stat().st_mtime_ns == seeds_before
    assert json.loads((run / "manifest.json").read_text())["phase_seconds"]["seeds"] == seed_seconds
    assert not any(k == "phase" and d.get("name") == "seeds" for k, d in second.events)

    # A finished run resumed again does nothing but rewrite its summary.
    third = Recorder()
    DiscoveryLoop.resume(run, reporter=third, env={KEY_ENV: KEY}).run()
    assert [k for k, _ in third.events] == ["phase"]
    assert third.events[0][1]["name"] == "done"
