"""The trace chunks' fast integer-list JSON must be byte for byte ``json.dumps``."""

from __future__ import annotations

import itertools
import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from autotts.report._jsonints import LIMIT, int_lists_json


def _expected(lists: list[list[int]]) -> str:
    return json.dumps(lists, separators=(",", ":"))


def _flat(lists: list[list[int]], pad: int) -> tuple[np.ndarray, list[int]]:
    """The lists laid out after ``pad`` unrelated numbers, as the kernels' code array is."""
    values = [7] * pad + [x for lst in lists for x in lst]
    bounds = [pad]
    for lst in lists:
        bounds.append(bounds[-1] + len(lst))
    return np.array(values, dtype=np.int32), bounds


@given(
    lists=st.lists(st.lists(st.integers(0, 2 * LIMIT), max_size=12), max_size=8),
    pad=st.integers(0, 3),
    small=st.booleans(),
)
def test_same_text_as_json_dumps(lists: list[list[int]], pad: int, small: bool) -> None:
    if small:  # mostly the table's range, where the fast path applies
        lists = [[x % 600 for x in lst] for lst in lists]
    values, bounds = _flat(lists, pad)
    assert int_lists_json(values, bounds) == _expected(lists)
    assert int_lists_json(values, np.array(bounds, dtype=np.int64)) == _expected(lists)


def test_edges_of_the_table_and_the_fallbacks() -> None:
    cases = [
        [[0]],
        [[9, 10, 99, 100, 999, 1000, 9999, 10000, LIMIT - 1]],
        [[LIMIT - 1], [0, 1], [5]],
        [[LIMIT]],  # six digits: json.dumps
        [[3, -1]],  # negative: json.dumps
        [[1], [], [2]],  # an empty list: json.dumps
        [],
    ]
    for lists in cases:
        values, bounds = _flat(lists, 2)
        assert int_lists_json(values, bounds) == _expected(lists), lists
    many = np.random.default_rng(0).integers(0, 4 * 128, 50_000)
    bounds = [0, 1, 17_000, 17_001, 50_000]
    assert int_lists_json(many, bounds) == _expected([many[a:b].tolist() for a, b in itertools.pairwise(bounds)])
