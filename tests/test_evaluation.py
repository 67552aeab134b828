"""Evaluation: protocols, determinism, summaries, the SC@64 self-check, the eval CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from autotts.cli.main import main
from autotts.controllers.spec import ControllerSpec
from autotts.errors import ControllerError, ControllerSpecError
from autotts.evaluation import Protocol, evaluate, run_cell, shuffle_order, subsample_order
from autotts.store import save_store
from autotts.store.schema import ReplayStore, StoreMeta
from tests.test_session import BRANCHES, make_question


def tiny_store(n_questions: int = 4) -> ReplayStore:
    questions = []
    for i in range(n_questions):
        q = make_question(BRANCHES * 3, gold="7" if i % 2 == 0 else "9")
        questions.append(type(q)(id=f"q{i}", text=f"question {i}", gold=q.gold, delta=q.delta, branches=q.branches))
    return ReplayStore(StoreMeta("tiny-model", "tiny-bench"), tuple(questions))


def test_shuffle_order_is_the_reference_permutation() -> None:
    for run in (0, 1, 99):
        expected = list(range(128))
        random.Random(run).shuffle(expected)
        assert shuffle_order(128, run) == tuple(expected)


def test_subsample_order_draws_distinct_branches() -> None:
    order = subsample_order(128, 5, 64)
    assert len(order) == 64 == len(set(order))
    assert order == subsample_order(128, 5, 64)


def test_same_inputs_give_identical_arrays_and_recording_changes_nothing() -> None:
    store = tiny_store()
    a = run_cell(store, ControllerSpec.parse("sc:n=3"), runs=7)
    b = run_cell(store, ControllerSpec.parse("sc:n=3"), runs=7, record=True)
    assert np.array_equal(a.correct, b.correct) and np.array_equal(a.cost, b.cost)
    assert a.answers == b.answers
    assert not a.traces and len(b.traces) == 7 * 4
    assert b.traces[0].events[0].action == "read"


def test_summaries_from_arrays() -> None:
    store = tiny_store()
    r = evaluate(store, "sc:n=1", runs=20)[0]
    assert r.correct.shape == (20, 4) and r.cost.shape == (20, 4)
    assert r.accuracy == pytest.approx(100 * r.correct.mean())
    assert r.tokens == pytest.approx(r.cost.sum(axis=1).mean() / 4)
    lo, hi = r.accuracy_ci
    assert lo <= r.accuracy <= hi
    rec = r.to_record()
    for key in ("store", "model", "benchmark", "controller", "params", "runs", "accuracy", "tokens"):
        assert key in rec
    assert rec["params"] == {"n": 1} and rec["controller"] == "sc"


def test_subsample_protocol_limits_the_pool() -> None:
    store = tiny_store()
    r = evaluate(store, "sc:n=64", runs=5, protocol=Protocol("subsample", 2))[0]
    assert r.protocol == "subsample:2"
    assert r.cost.max() <= 2 * 1800


def test_failing_controller_becomes_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "bad.py"
    f.write_text("class Bad:\n    def solve(self, q):\n        return 1 / 0\n")
    with pytest.raises(ControllerError, match=r"ZeroDivisionError.*question 0 \(run 0\)"):
        evaluate(tiny_store(), f"{f}:Bad", runs=1)


def test_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(ControllerSpecError, match="unknown controller"):
        ControllerSpec.parse("nope")
    with pytest.raises(ControllerSpecError, match="not key=value"):
        ControllerSpec.parse("sc:64")
    with pytest.raises(ControllerSpecError, match="parameters are: n"):
        ControllerSpec.parse("sc:m=3").build()
    with pytest.raises(ControllerSpecError, match="does not exist"):
        ControllerSpec.parse(f"{tmp_path}/missing.py:X").build()
    f = tmp_path / "syntax.py"
    f.write_text("class X(:\n")
    with pytest.raises(ControllerSpecError, match="syntax error"):
        ControllerSpec.parse(f"{f}:X").build()
    g = tmp_path / "ok.py"
    g.write_text("class Y:\n    def solve(self, q):\n        return None\n")
    with pytest.raises(ControllerSpecError, match="no class 'X'; classes found: Y"):
        ControllerSpec.parse(f"{g}:X").build()


def test_beta_expands_only_controllers_that_take_beta(tmp_path: Path) -> None:
    f = tmp_path / "b.py"
    f.write_text(
        "class B:\n"
        "    def __init__(self, beta=1.0):\n        self.n = 1 + round(4 * beta)\n"
        "    def solve(self, s):\n"
        "        answers = [s.read().answer for _ in range(self.n)]\n"
        "        return max(answers, key=answers.count)\n"
    )
    results = evaluate(tiny_store(), [f"{f}:B", "sc:n=2"], betas=[0.0, 0.5, 1.0], runs=3)
    assert [r.params for r in results] == [{"beta": 0.0}, {"beta": 0.5}, {"beta": 1.0}, {"n": 2}]
    assert results[0].tokens < results[2].tokens


def test_eval_cli_writes_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_store(tiny_store(), tmp_path / "tiny.json")
    out = tmp_path / "res.json"
    code = main(["eval", "--store", str(path), "-c", "sc:n=1", "-c", "sc:n=3", "--runs", "5", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "sc(n=3)" in printed and "accuracy" in printed
    recs = json.loads(out.read_text())
    assert [r["params"]["n"] for r in recs] == [1, 3]
    assert {(r["runs"], r["model"], r["benchmark"]) for r in recs} == {(5, tmp_path.name, "tiny")}


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--store", "missing.json"], 2, "no such file"),  # a wrong path is a usage error
        (["-c", "unknown"], 2, "unknown controller"),
        (["--beta", "x"], 2, "not a number"),
        (["--beta", "2"], 2, "outside [0, 1]"),
        (["--protocol", "bogus"], 2, "unknown protocol"),
    ],
)
def test_eval_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args, code, fragment) -> None:  # type: ignore[no-untyped-def]
    path = save_store(tiny_store(), tmp_path / "tiny.json")
    argv = ["eval", *args] if "--store" in args else ["eval", "--store", str(path), *args]
    assert main(argv) == code
    captured = capsys.readouterr()
    assert fragment in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.shared_data
def test_sc64_self_check(qwen4b_aime24) -> None:  # type: ignore[no-untyped-def]
    r = evaluate(qwen4b_aime24, "sc:n=64")[0]
    assert f"{r.accuracy:.2f}" == "80.00"
    assert round(r.tokens) == 886_830
    again = evaluate(qwen4b_aime24, "sc:n=64")[0]
    assert np.array_equal(r.correct, again.correct) and np.array_equal(r.cost, again.cost)


class FirstAgreement:
    """The README's example: read until two final answers agree."""

    def solve(self, session):  # type: ignore[no-untyped-def]
        seen = set()
        while (r := session.read()) is not None:
            if r.answer in seen:
                return r.answer
            seen.add(r.answer)
        return None


def test_evaluate_accepts_controller_classes_and_instances(tmp_path: Path) -> None:
    store = tiny_store()
    by_instance = evaluate(store, FirstAgreement(), runs=3)[0]
    by_class = evaluate(store, [FirstAgreement, "sc:n=2"], runs=3, backend="processes", workers=2)
    assert by_instance.controller == "FirstAgreement" and by_instance.params == {}
    assert np.array_equal(by_instance.cost, by_class[0].cost)
    assert by_class[1].label == "sc(n=2)"
    with pytest.raises(ControllerSpecError, match="not a controller"):
        evaluate(store, 42, runs=1)
