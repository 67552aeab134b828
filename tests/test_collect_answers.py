r"""Answer extraction (\boxed{} with nested braces) and normalisation, shared by gold, probes and finals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotts.collect.answers import (
    Normalization,
    boxed_answers,
    extract_final,
    extract_probe,
    last_boxed,
    normalize_answer,
    normalize_gold,
    take_braced,
)
from autotts.store import ERR


def test_boxed_with_nested_braces_and_the_last_one_wins() -> None:
    text = r"first \boxed{1} then \boxed{\frac{9\sqrt{23}}{23}} and \boxed{2"
    assert boxed_answers(text) == ["1", r"\frac{9\sqrt{23}}{23}"]
    assert last_boxed(text) == r"\frac{9\sqrt{23}}{23}"
    assert last_boxed("no box") is None
    assert last_boxed(r"\fbox{5}") == "5"


def test_probe_answer_runs_to_the_matching_brace() -> None:
    assert extract_probe(r"\frac{1}{2}} so that is it") == r"\frac{1}{2}"
    assert extract_probe(r"\{1,2\}} done") == r"\{1,2\}"
    assert extract_probe("42 and I never close") == ERR
    assert extract_probe("} nothing inside") == ERR


@pytest.mark.parametrize(
    ("raw", "light"),
    [
        (r"\frac{9 \sqrt{23}}{23}", r"\frac{9\sqrt{23}}{23}"),
        (r"\dfrac{3}{4}", r"\frac{3}{4}"),
        (r"\left( 1, 2 \right)", "(1,2)"),
        (r"30^\circ", "30"),
        (r"30^{\circ}", "30"),
        ("$42$.", "42"),
        (r"\(x\)", "x"),
        (r"10\,000", "10000"),
    ],
)
def test_light_normalisation(raw: str, light: str) -> None:
    assert normalize_answer(raw) == light
    assert normalize_answer(raw, "exact") == raw.strip()


def test_same_recipe_for_gold_probe_and_final() -> None:
    gold = normalize_gold(r"\boxed{\dfrac{3}{4}}")
    assert gold == extract_probe(r"\dfrac{3}{4}}") == extract_final(r"so \boxed{ \frac{3}{4} }.") == r"\frac{3}{4}"
    assert normalize_gold("  ") == ERR
    assert normalize_answer(" a  b ", Normalization.BASIC) == "a b"


@given(st.text(alphabet="ab{}\\ ", max_size=40))
def test_take_braced_returns_a_balanced_prefix(text: str) -> None:
    inner = take_braced(text)
    if inner is not None:
        assert text.startswith(inner + "}")
        # re-wrapping gives back a complete box with the same content
        assert last_boxed(r"\boxed{" + inner + "}") == inner


@given(st.text(max_size=30))
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_answer(text)
    assert normalize_answer(once) == once


@given(st.text(alphabet=st.sampled_from(list("ab1.,;:!{}()$\\^~° \t\u00a0\x1cdfrac circ left quad text")), max_size=24))
def test_the_plain_text_shortcut_changes_no_result(text: str) -> None:
    from autotts.collect.answers import Normalization, _normalize

    for style in (Normalization.BASIC, Normalization.LIGHT):
        assert normalize_answer(text, style) == _normalize(text.strip(), style)
