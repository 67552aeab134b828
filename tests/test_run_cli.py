"""``autotts run`` as a user runs it: a real subprocess against the replay server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autotts.controllers import ControllerSpec
from autotts.testing import tiny_store
from tests.online_support import offline, replay_server

STORE = tiny_store(seed=13, questions=2, branches=16, delta=2000)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autotts.cli.main", "run", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.integration
def test_run_prints_answer_tokens_and_the_replay_trace(tmp_path: Path) -> None:
    spec = ControllerSpec.parse("wide-commit:beta=0.4")
    with replay_server(STORE) as srv:
        common = ["--controller", "wide-commit", "--beta", "0.4", "--base-url", srv.openai_base_url]
        common += ["--model", "replay", "--delta", "2000", "--max-branches", "16"]
        p = _run(*common, "--trace", "--json", "--seed", str(2 * 16), STORE.questions[0].text)
        assert p.returncode == 0, p.stderr
        record = json.loads(p.stdout.splitlines()[0])
        answer, ref = offline(STORE, spec, 0, run=2)
        assert record["answer"] == answer and record["tokens"] == ref.cost
        assert record["controller"] == spec.label and record["branches"] == ref.n_opened
        assert record["trace"] == [e._asdict() for e in ref.trace]

        qfile = tmp_path / "questions.jsonl"
        qfile.write_text("".join(json.dumps({"question": q.text}) + "\n" for q in STORE.questions))
        p = _run(*common, "--questions", str(qfile))
        assert p.returncode == 0, p.stderr
        for qi in range(2):
            answer, ref = offline(STORE, spec, qi, run=0)
            assert f"answer: {answer}" in p.stdout
            assert f"tokens: {ref.cost} " in p.stdout
        assert "wall time:" in p.stdout and "branches:" in p.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "q"], "--controller is required"),
        (["--controller", "sc", "--model", "m", "q"], "--base-url is required"),
        (["--controller", "nope", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "q"], "unknown controller"),
        (["--controller", "sc", "--beta", "0.5", "--base-url", "http://x/v1", "--model", "m", "q"], "takes no beta"),
        (["--controller", "sc", "--base-url", "http://x/v1", "--model", "m"], "exactly one of"),
        (["--controller", "sc", "--base-url", "http://x/v1", "--model", "m", "--preset", "nope", "q"], "preset"),
    ],
)
def test_usage_errors_exit_2(args: list[str], needle: str) -> None:
    p = _run(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert needle in p.stderr and "Traceback" not in p.stderr


def test_unreachable_server_is_a_clear_runtime_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = _run("--controller", "sc:n=2", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m", "question?")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "error:" in p.stderr and "Traceback" not in p.stderr
