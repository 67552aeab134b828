"""Controller files written for the original AutoTTS code base run unchanged and match the built-ins."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from autotts.cli.main import main
from autotts.controllers import ControllerSpec
from autotts.evaluation import run_cell
from autotts.store import save_store
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta

DATA = Path(__file__).parent / "data"
FILE = DATA / "published_style_controllers.py"
PP_SMALL = "chains=8,T=3,warm_up=2,prune_patience=2,burst=1,max_steps=30"
PP_TINY = "chains=3,T=2,warm_up=0,prune_patience=1"


def tiny_store(seed: int = 7, questions: int = 6, branches: int = 24) -> ReplayStore:
    """A random but fixed store with enough disagreement to exercise votes, pruning and ties."""
    rnd = random.Random(seed)
    qs = []
    for qi in range(questions):
        options = ["1", "2", "3", "ERR"]
        bs = []
        for _ in range(branches):
            k = rnd.randint(0, 12)
            settle = rnd.choice(options[:3])
            probes = tuple(rnd.choice(options) if i < k // 2 else settle for i in range(k))
            bs.append(Branch(probes, rnd.randint(200, 500 * (k + 2)), settle if rnd.random() < 0.8 else "2"))
        qs.append(Question(str(qi), f"q{qi}", rnd.choice(["1", "2"]), 500, tuple(bs)))
    return ReplayStore(StoreMeta("tiny-model", "tiny"), tuple(qs))


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert np.array_equal(a.correct, b.correct)
    assert np.array_equal(a.cost, b.cost)
    assert a.answers == b.answers


def test_fixture_file_is_self_contained() -> None:
    source = FILE.read_text()
    imports = [line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert {m.split(".")[0] for m in imports} <= {"collections", "numpy", "scipy"}
    assert "autotts" not in source.replace("does not import autotts", "").replace("autotts runs it", "")
    assert "class BaseController" in source


@pytest.mark.parametrize(
    ("file_spec", "builtin_spec"),
    [
        ("AdaptiveConsistency", "asc"),
        ("AdaptiveConsistency:max_samples=5,threshold=0.8", "asc:max_samples=5,threshold=0.8"),
        (f"ParallelProbe:{PP_SMALL}", f"parallel-probe:{PP_SMALL}"),
        (f"ParallelProbe:{PP_TINY}", f"parallel-probe:{PP_TINY}"),
        ("ParallelProbe:chains=64", "parallel-probe"),
    ],
)
def test_file_controllers_match_builtins_on_a_tiny_store(file_spec: str, builtin_spec: str) -> None:
    store = tiny_store()
    from_file = run_cell(store, ControllerSpec.parse(f"{FILE}:{file_spec}"), runs=20)
    builtin = run_cell(store, ControllerSpec.parse(builtin_spec), runs=20)
    _same(from_file, builtin)
    assert from_file.controller == file_spec.split(":")[0]


def test_file_controller_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = save_store(tiny_store(), tmp_path / "tiny.json")
    out = tmp_path / "out.json"
    code = main(
        [
            "eval",
            "--store",
            str(store_path),
            "-c",
            f"{FILE}:ParallelProbe:{PP_SMALL}",
            "-c",
            f"parallel-probe:{PP_SMALL}",
            "--runs",
            "10",
            "--json",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    records = json.loads(out.read_text())
    assert [r["controller"] for r in records] == ["ParallelProbe", "parallel-probe"]
    assert records[0]["accuracy"] == records[1]["accuracy"]
    assert records[0]["tokens"] == records[1]["tokens"]
    assert records[0]["per_question_tokens"] == records[1]["per_question_tokens"]


@pytest.mark.shared_data
def test_file_controllers_reproduce_the_self_check(qwen4b_aime24) -> None:  # type: ignore[no-untyped-def]
    asc = run_cell(qwen4b_aime24, ControllerSpec.parse(f"{FILE}:AdaptiveConsistency"), runs=100)
    assert (f"{asc.accuracy:.2f}", round(asc.tokens)) == ("80.00", 214189)
    _same(asc, run_cell(qwen4b_aime24, ControllerSpec.parse("asc"), runs=100))
    pp = run_cell(qwen4b_aime24, ControllerSpec.parse(f"{FILE}:ParallelProbe"), runs=100)
    assert (f"{pp.accuracy:.2f}", round(pp.tokens)) == ("79.73", 688873)
