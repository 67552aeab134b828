"""JSON text of many short integer lists, written with NumPy instead of ``json.dumps``.

Why: the trace viewer's run chunks hold every recorded action code of a cell (a demo
report has ~16 M of them) as one list per episode. ``json.dumps`` turns each code into a
Python ``int`` and then into text, ~60 ns apiece, which made that encoding the largest
single cost of ``autotts report``.

How: every number is followed by one of three separators: ``,`` inside a list, ``],[``
after a list's last number, ``]]`` after the very last one. A table holds, for each
value and separator, the text as 8 bytes padded with NUL (five digits and three
separator characters at most). Gathering one table row per number and dropping the NUL
bytes gives the whole text in a few array operations (~10 ns per number).

The text is exactly what ``json.dumps(lists, separators=(",", ":"))`` gives, so chunks
(and the report) are byte for byte the same; inputs outside the table (negative numbers,
numbers of six digits or more, empty lists) take ``json.dumps``.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

#: Numbers the table covers: ``0 <= x < LIMIT`` (five digits; a row has 8 bytes).
LIMIT = 100_000
_SEPARATORS = (b",", b"],[", b"]]")


@functools.lru_cache(maxsize=4)
def _table(size: int) -> NDArray[np.uint64]:
    """Row ``3 * x + s``: the text of ``x`` and separator ``s``, NUL-padded to 8 bytes."""
    padded = b"".join((f"{x}".encode("ascii") + sep).ljust(8, b"\0") for x in range(size) for sep in _SEPARATORS)
    return np.frombuffer(padded, dtype=np.uint64)


def _fallback(values: NDArray[np.integer], edges: NDArray[np.int64]) -> str:
    return json.dumps([values[a:b].tolist() for a, b in itertools.pairwise(edges.tolist())], separators=(",", ":"))


def int_lists_json(values: NDArray[np.integer], bounds: Sequence[int] | NDArray[np.integer]) -> str:
    """``json.dumps([values[b0:b1].tolist(), values[b1:b2].tolist(), ...], separators=(",", ":"))``.

    ``bounds`` are the ``k + 1`` non-decreasing offsets of ``k`` consecutive lists in ``values``.
    """
    edges = np.asarray(bounds, dtype=np.int64)
    lengths = np.diff(edges)
    if len(lengths) == 0 or not lengths.all():
        return _fallback(values, edges)
    v = np.asarray(values[int(edges[0]) : int(edges[-1])], dtype=np.int64)
    low, high = int(v.min()), int(v.max())
    if low < 0 or high >= LIMIT:
        return _fallback(values, edges)
    key = 3 * v
    ends = np.cumsum(lengths) - 1
    key[ends[:-1]] += 1
    key[-1] += 2
    # A power of two, so that a few cached tables serve every run of a report.
    size = 1 << max(high, 1).bit_length()
    text = _table(min(size, LIMIT))[key].view(np.uint8)
    body: bytes = text[text != 0].tobytes()
    return "[[" + body.decode("ascii")
