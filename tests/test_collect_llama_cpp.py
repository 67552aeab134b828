"""`autotts collect` against a real inference engine: llama.cpp's server with a tiny generated model.

Collects a small store end to end, kills the collector with SIGKILL midway, resumes,
and validates the store. llama.cpp takes text prompts only (token-id prompts are
refused), so this also exercises the text fallback.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (the test extra)")

from autotts.store import ERR, load_store, validate_store
from autotts.testing.llama_server import LlamaCppServer
from autotts.testing.tiny_gguf import write_tiny_llama

pytestmark = [pytest.mark.slow, pytest.mark.integration]

DELTA = 16
CAP = 64


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    model = write_tiny_llama(tmp_path_factory.mktemp("model") / "tiny.gguf")
    with LlamaCppServer(model, alias="tiny") as srv:
        yield srv


def write_config(tmp: Path, url: str) -> Path:
    with (tmp / "bench.jsonl").open("w") as fh:
        for i, (q, a) in enumerate([("What is 3 + 4?", "7"), ("What is 70 + 7?", "77")]):
            fh.write(json.dumps({"id": f"q{i}", "question": q, "answer": a}) + "\n")
    cfg = tmp / "collect.toml"
    cfg.write_text(
        f"""
[benchmark]
path = "bench.jsonl"

[server]
base_urls = ["{url}"]
model = "tiny"
max_in_flight = 2
timeout_seconds = 60

[collect]
branches = 3
delta = {DELTA}
max_tokens = {CAP}
out = "store.parquet"

[sampling]
temperature = 0.8
seed = 1

[prompt]
preset = "plain"

[probe]
max_tokens = 8
"""
    )
    return cfg


def rows(state: Path) -> dict[str, set[tuple[int, ...]]]:
    with sqlite3.connect(state) as db:
        return {t: {tuple(r) for r in db.execute(f"SELECT rowid, q, b, k FROM {t}")} for t in ("segments", "probes")}


def test_collect_kill_resume_validate(llama: LlamaCppServer, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, llama.base_url)
    cli = [sys.executable, "-m", "autotts.cli.main", "collect", str(cfg)]
    state = tmp_path / "store.parquet.state.sqlite"
    proc = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    killed_at = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            with sqlite3.connect(state) as db:
                killed_at = db.execute("SELECT COUNT(*) FROM probes").fetchone()[0]
        except sqlite3.OperationalError:
            continue
        if killed_at >= 3:
            break
    assert proc.poll() is None, "the collection finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = rows(state)
    assert before["probes"] and not (tmp_path / "store.parquet").exists()

    done = subprocess.run([*cli, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = rows(state)
    # rows committed before the kill were neither re-requested nor rewritten (same rowids)
    assert before["segments"] <= after["segments"] and before["probes"] <= after["probes"]

    check = subprocess.run(
        [sys.executable, "-m", "autotts.cli.main", "store", "validate", str(tmp_path / "store.parquet")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    store = load_store(tmp_path / "store.parquet")
    assert not [f for f in validate_store(store) if f.is_error]
    assert [q.gold for q in store.questions] == ["7", "77"]
    answers = []
    for q in store.questions:
        assert len(q.branches) == 3 and q.delta == DELTA
        for b in q.branches:
            assert 0 < b.tokens <= CAP
            assert len(b.probes) == b.tokens // DELTA
            answers += b.probes
    assert all(a == ERR or a.isdigit() for a in answers), answers
    assert any(a != ERR for a in answers), "the biased tiny model should answer some probes with digits"
    settings = store.meta.settings
    assert settings["token_prompts"] is False  # llama.cpp refuses token-id prompts: text fallback
    assert settings["served_model"] == "tiny" and settings["mode"] == "interval"
