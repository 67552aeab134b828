"""The one evaluation record: grading, summaries, JSON round trip, identity (key, fingerprints, label)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.controllers.spec import ControllerSpec, label
from autotts.errors import ConfigError
from autotts.evaluation import CellResult, evaluate, grade, grade_cell, summarize
from autotts.evaluation.metrics import bootstrap_ci
from autotts.store import load_store, save_store
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta
from autotts.testing import tiny_store


def test_record_round_trips_exactly_through_json() -> None:
    r = evaluate(tiny_store(3), "parallel-probe:chains=4", runs=5, backend="serial")[0]
    record = json.loads(json.dumps(r.to_dict()))
    back = CellResult.from_dict(record)
    assert back.to_dict() == record
    assert np.array_equal(back.correct, r.correct) and np.array_equal(back.cost, r.cost)
    assert np.array_equal(back.sequential, r.sequential)
    assert back.key == r.key
    per_run = record["per_run"]
    assert len(per_run["correct"]) == 5 and {len(s) for s in per_run["correct"]} == {6}
    assert per_run["correct"][0] == "".join("1" if c else "0" for c in r.correct[0])
    assert record["label"] == "parallel-probe(chains=4)"
    assert record["store_fingerprint"] == tiny_store(3).fingerprint
    assert record["controller_fingerprint"] == ControllerSpec.parse("parallel-probe:chains=4").fingerprint


def test_summaries_are_computed_from_the_arrays() -> None:
    correct = np.array([[True, False, True], [False, False, True]])
    cost = np.array([[10, 20, 30], [40, 50, 60]], dtype=np.int64)
    seq = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    s = summarize(correct, cost, seq)
    assert s.accuracy == 100.0 * 3 / 6
    assert s.tokens == 210 / 6 and s.sequential_tokens == 21 / 6
    lo, hi = bootstrap_ci(np.array([0.5, 0.0, 1.0]))
    assert s.accuracy_ci == (100 * lo, 100 * hi)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda q: st.lists(
            st.lists(st.sampled_from([None, "1", "2", "ERR"]), min_size=q, max_size=q), min_size=1, max_size=5
        )
    )
)
def test_grading_is_exact_string_equality_and_none_is_never_right(answers: list[list[str | None]]) -> None:
    nq = len(answers[0])
    golds = ["1", "2", "ERR", "1"][:nq]
    correct = grade(answers, golds)
    for r, row in enumerate(answers):
        for q, a in enumerate(row):
            assert bool(correct[r, q]) == (a is not None and a == golds[q])


def test_grade_cell_builds_the_same_record_as_the_runner() -> None:
    store = tiny_store(1)
    r = evaluate(store, "sc:n=4", runs=3, backend="serial")[0]
    again = grade_cell(
        store,
        controller="sc",
        params={"n": 4},
        protocol="shuffle",
        answers=r.answers,
        cost=r.cost.tolist(),
        sequential=r.sequential.tolist(),
        seconds=r.seconds,
        controller_fingerprint=r.controller_fingerprint,
    )
    assert again.to_dict() == r.to_dict()


def test_wrongly_shaped_arrays_are_refused() -> None:
    store = tiny_store(1)
    with pytest.raises(ConfigError, match="cost must be a 1 × 6 table"):
        grade_cell(
            store, controller="x", params={}, protocol="shuffle", answers=[["1"] * 6], cost=[[1] * 5], sequential=[[1]]
        )
    with pytest.raises(ConfigError, match="5 answers for 6 questions"):
        grade([["1"] * 5], store.golds)


def test_a_record_without_per_run_arrays_is_refused_clearly() -> None:
    record = evaluate(tiny_store(2), "sc:n=2", runs=2, backend="serial")[0].to_dict()
    del record["per_run"]
    with pytest.raises(ConfigError, match=r"has no 'per_run'.*evaluate the cell again"):
        CellResult.from_dict(record)
    record = evaluate(tiny_store(2), "sc:n=2", runs=2, backend="serial")[0].to_dict()
    record["per_run"]["correct"][0] = "01x"
    with pytest.raises(ConfigError, match="'0'/'1'"):
        CellResult.from_dict(record)


def _renamed_copy(store: ReplayStore, gold: str) -> ReplayStore:
    q = store.questions[0]
    changed = Question(q.id, q.text, gold, q.delta, q.branches)
    return ReplayStore(store.meta, (changed, *store.questions[1:]))


def test_store_fingerprint_follows_content_not_name_or_format(tmp_path: Path) -> None:
    store = tiny_store(4)
    other = _renamed_copy(store, "not-the-gold")
    assert other.name == store.name and other.fingerprint != store.fingerprint
    as_json = load_store(save_store(store, tmp_path / "s.json"))
    as_parquet = load_store(save_store(store, tmp_path / "s.parquet"))
    assert as_json.fingerprint == as_parquet.fingerprint == store.fingerprint
    a = evaluate(store, "sc:n=2", runs=2, backend="serial")[0]
    b = evaluate(other, "sc:n=2", runs=2, backend="serial")[0]
    assert a.store == b.store and a.key != b.key


def test_controller_fingerprint_covers_parameters_and_file_source(tmp_path: Path) -> None:
    assert ControllerSpec.parse("sc:n=4").fingerprint != ControllerSpec.parse("sc:n=8").fingerprint
    assert ControllerSpec.parse("sc:n=4").fingerprint == ControllerSpec.parse("sc:n=4").fingerprint
    f = tmp_path / "mine.py"
    f.write_text("class Mine:\n    def solve(self, s):\n        return None\n")
    first = ControllerSpec.parse(f"{f}:Mine").fingerprint
    f.write_text("class Mine:\n    def solve(self, s):\n        return '1'\n")
    assert ControllerSpec.parse(f"{f}:Mine").fingerprint != first


def test_one_label_function() -> None:
    assert label("sc", {"n": 64}) == "sc(n=64)" == ControllerSpec.parse("sc:n=64").label
    assert label("cmc", {}) == "cmc"
    r = evaluate(tiny_store(1), "cmc:beta=0.5", runs=1, backend="serial")[0]
    assert r.label == "cmc(beta=0.5)" == r.to_dict()["label"]


def test_results_are_frozen_and_slotted() -> None:
    r = evaluate(tiny_store(1), "sc:n=2", runs=1, backend="serial")[0]
    with pytest.raises(AttributeError):
        r.store = "x"  # type: ignore[misc]
    assert not hasattr(r, "__dict__")


def test_a_one_branch_store_fingerprints() -> None:
    q = Question("q", "t", "1", 100, (Branch(("1",), 50, "1"),))
    s = ReplayStore(StoreMeta("m", "b"), (q,))
    assert len(s.fingerprint) == 64
