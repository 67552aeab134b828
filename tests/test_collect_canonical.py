"""Opt-in math-verify canonicalisation: at import (`store import --canonicalize math`) and its metadata."""

from __future__ import annotations

from pathlib import Path

from autotts.cli.main import main
from autotts.collect.canonical import MathCanonicalizer
from autotts.store import Branch, Question, ReplayStore, StoreMeta, load_store, save_store


def test_equivalent_answers_become_the_gold_or_the_first_member() -> None:
    c = MathCanonicalizer(timeout=2)
    m = c.mapping(r"\frac{1}{2}", ["0.5", "1/2", "ERR", "3", r"\frac{6}{2}", "x^2", "x^{2}"])
    assert m["0.5"] == m["1/2"] == r"\frac{1}{2}"
    assert m["ERR"] == "ERR" and m["3"] == "3" and m[r"\frac{6}{2}"] == "3"
    assert m["x^{2}"] == "x^2"


def test_store_import_canonicalize_math(tmp_path: Path) -> None:
    q = Question(
        "q0",
        "what?",
        r"\frac{1}{2}",
        10,
        (
            Branch(("ERR", "0.5"), 25, "1/2"),
            Branch(("3",), 12, r"\frac{1}{2}"),
            Branch((), 5, "3.0"),
        ),
    )
    src = save_store(ReplayStore(StoreMeta("m", "b"), (q,)), tmp_path / "src" / "b.json")
    assert main(["store", "import", str(src), "--out", str(tmp_path / "plain")]) == 0
    assert main(["store", "import", str(src), "--out", str(tmp_path / "canon"), "--canonicalize", "math"]) == 0
    plain = load_store(tmp_path / "plain" / "src" / "b.parquet")
    canon = load_store(tmp_path / "canon" / "src" / "b.parquet")
    assert plain.questions[0].branches[0].final == "1/2"  # never the default
    b0, b1, b2 = canon.questions[0].branches
    assert b0.probes == ("ERR", r"\frac{1}{2}") and b0.final == r"\frac{1}{2}"
    assert b1.probes == ("3",) and b2.final == "3"
    info = canon.meta.settings["canonicalize"]
    assert info["method"] == "math-verify" and info["merged_answers"] == 3 and info["timeout_seconds"] == 5
    assert main(["store", "import", str(src), "--out", str(tmp_path / "x"), "--canonicalize", "maths"]) == 2
