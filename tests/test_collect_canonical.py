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


def test_an_answer_whose_braces_do_not_nest_stays_itself() -> None:
    c = MathCanonicalizer(timeout=2)
    m = c.mapping("1", ["1}^{25}(1+2k)", "1.0", "{1", r"\{1\}"])
    assert m["1}^{25}(1+2k)"] == "1}^{25}(1+2k)" and m["{1"] == "{1"  # would parse as ``1``
    assert m["1.0"] == "1" and c.unbalanced == 2


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


# Pairs that math-verify judges equal, one per comparison path it has (structure, value,
# simplify, sets, percentages, text vs symbols, relations, intervals, float rounding).
EQUAL_PAIRS = [
    ("x^2-1", "(x-1)(x+1)"),
    (r"\{1,2\}", "2,1"),
    (r"9\%", "9"),
    (r"\text{answer}", "answer"),
    ("x=5", "5"),
    (r"\sin^2x+\cos^2x", "1"),
    ("(1,2)", "1,2"),
    (r"\sqrt{x^2}", "|x|"),
    (r"2^{11+10\log_23}", r"2^{11}\cdot3^{10}"),
    (r"\frac{1}{3}", "0.333333"),
    ("e", r"\exp(1)"),
    (r"\{x,1\}", r"\{1,x\}"),
    (r"t+\frac{1}{2}", r"\frac{2t+1}{2}"),
    ("1+i", "i+1"),
    ("f(x)", "f(x)+0"),
    (r"\frac{1}{2}x", r"x\div2"),
]

# Answers as small models write them: text parsed as products of symbols, sets of
# garbage, expressions in the problem's variables, and some equivalent spellings.
MESSY = [
    "4hours+tminutes",
    "Thewalktakes\\frac{9}{s+\\frac{1}{2}}minutes,includingtminutes",
    "Thewalktakesher\\frac{9}{s}minutes,includingtminutes",
    "240-t",
    "t+240",
    "240+t",
    "\\frac{1020+2t}{240+t}",
    "\\frac{2(510+t)}{t+240}",
    "48s-144",
    "48(s-3)",
    "\\frac{9}{s+\\frac{1}{2}}",
    "\\frac{18}{2s+1}",
    "answer",
    "\\text{answer}",
    "x=5",
    "x,5",
    "5,x",
    "(1,2)",
    "1,2",
    "9\\%",
    "204",
    "204.0",
    "\\frac{408}{2}",
    "ERR",
    "(4hours)",
    "4hours",
]


def test_value_filter_never_skips_a_pair_math_verify_finds_equal() -> None:
    reference = MathCanonicalizer(timeout=2)
    reference.use_filter = False
    filtered = MathCanonicalizer(timeout=2)
    for a, b in EQUAL_PAIRS:
        assert reference.equivalent(a, b), (a, b)
        assert not filtered._surely_different(a, b), (a, b)
    assert filtered._surely_different("240-t", "240+t")  # the filter does skip unequal pairs


def test_filtered_mapping_is_the_reference_mapping() -> None:
    reference = MathCanonicalizer(timeout=2)
    reference.use_filter = False
    filtered = MathCanonicalizer(timeout=2)
    assert filtered.mapping("204", MESSY) == reference.mapping("204", MESSY)
    assert filtered.filtered > 0 and filtered.verify_calls < reference.verify_calls
    m = filtered.mapping("204", MESSY)
    assert m["204.0"] == m[r"\frac{408}{2}"] == "204" and m["t+240"] == m["240+t"] == "t+240"
    assert m["48(s-3)"] == "48s-144" and m[r"\frac{18}{2s+1}"] == r"\frac{9}{s+\frac{1}{2}}"
