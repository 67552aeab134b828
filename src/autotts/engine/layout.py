"""Array layout of a replay store, branch orders and the beta-confidence table, for the kernels.

The compiled kernels cannot walk Python tuples, so every store is laid out once as
padded integer arrays (built from the interned views that replay sessions read, so the
codes are the same ones a session reveals):

* ``probes[q, b, k]``: code of the ``k``-th probe of store branch ``b`` (padded with -1),
  ``n_probes[q, b]`` how many there are;
* ``finals[q, b]`` and ``tokens[q, b]``: final answer code and full length;
* ``delta[q]``: Δ of the question; ``n_branches[q]``; ``err[q]``: the code of ``"ERR"`` in
  the question's vocabulary (-2 if it never occurs, so it equals no answer);
* ``gold[q]``: the code of the gold answer (-1 if no branch ever gives it), used only by
  grading, never handed to a kernel.

The layout is cached on the store object itself (like its interned views), so a store
loaded before a process pool forks is laid out once and shared by every worker.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import special

from autotts.env.protocols import Protocol
from autotts.store.schema import ERR, ReplayStore

_LAYOUT_KEY = "_engine_layout"
_LOCK = threading.Lock()


class KernelStore(NamedTuple):
    """The store arrays every kernel reads, handed over as one argument (numba accepts named tuples)."""

    probes: NDArray[np.int32]
    n_probes: NDArray[np.int32]
    finals: NDArray[np.int32]
    branch_tokens: NDArray[np.int64]
    question_delta: NDArray[np.int64]
    err_code: NDArray[np.int32]
    max_vocab: int


@dataclass(frozen=True, eq=False)
class StoreLayout:
    """A store as padded arrays (see the module docstring) plus the vocabularies to decode answers."""

    probes: NDArray[np.int32]
    n_probes: NDArray[np.int32]
    finals: NDArray[np.int32]
    tokens: NDArray[np.int64]
    delta: NDArray[np.int64]
    n_branches: NDArray[np.int32]
    err: NDArray[np.int32]
    gold: NDArray[np.int32]
    vocabs: tuple[tuple[str, ...], ...]
    max_vocab: int
    kernel_store: KernelStore = field(init=False, repr=False)
    """The arrays in the one grouped argument the kernels take."""

    def __post_init__(self) -> None:
        arrays = KernelStore(
            self.probes, self.n_probes, self.finals, self.tokens, self.delta, self.err, int(self.max_vocab)
        )
        object.__setattr__(self, "kernel_store", arrays)

    @property
    def n_questions(self) -> int:
        """Number of questions."""
        return int(self.finals.shape[0])

    @property
    def max_probes(self) -> int:
        """Longest probe list of any branch (the padded depth)."""
        return int(self.probes.shape[2])

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return sum(
            a.nbytes
            for a in (self.probes, self.n_probes, self.finals, self.tokens, self.delta, self.n_branches, self.err)
        )


def build_layout(store: ReplayStore) -> StoreLayout:
    """Lay a store out as arrays (no caching; see :func:`layout_of`)."""
    replay = store.replay
    golds = store.golds
    nq = len(replay)
    max_n = max((q.n_branches for q in replay), default=0)
    max_k = max((len(p) for q in replay for p in q.probes), default=0)
    probes = np.full((nq, max_n, max(max_k, 1)), -1, dtype=np.int32)
    n_probes = np.zeros((nq, max_n), dtype=np.int32)
    finals = np.full((nq, max_n), -1, dtype=np.int32)
    tokens = np.zeros((nq, max_n), dtype=np.int64)
    delta = np.zeros(nq, dtype=np.int64)
    n_branches = np.zeros(nq, dtype=np.int32)
    err = np.full(nq, -2, dtype=np.int32)
    gold = np.full(nq, -1, dtype=np.int32)
    for qi, q in enumerate(replay):
        n = q.n_branches
        n_branches[qi] = n
        delta[qi] = q.delta
        if n:
            finals[qi, :n] = q.finals
            tokens[qi, :n] = q.tokens
        for b, codes in enumerate(q.probes):
            k = len(codes)
            n_probes[qi, b] = k
            if k:
                probes[qi, b, :k] = codes
        index = {a: c for c, a in enumerate(q.vocab)}
        err[qi] = index.get(ERR, -2)
        gold[qi] = index.get(golds[qi], -1)
    max_vocab = max((len(q.vocab) for q in replay), default=0)
    return StoreLayout(
        probes=probes,
        n_probes=n_probes,
        finals=finals,
        tokens=tokens,
        delta=delta,
        n_branches=n_branches,
        err=err,
        gold=gold,
        vocabs=tuple(q.vocab for q in replay),
        max_vocab=max(max_vocab, 1),
    )


def layout_of(store: ReplayStore) -> StoreLayout:
    """The store's layout, built on first use and kept on the store object.

    A ``ReplayStore`` is immutable, so the layout can never go stale; keeping it in the
    instance dictionary (as ``ReplayStore`` itself does with its interned views) ties
    its lifetime to the store's and lets forked workers inherit it.
    """
    cached: Any = store.__dict__.get(_LAYOUT_KEY)
    if cached is None:
        with _LOCK:
            cached = store.__dict__.get(_LAYOUT_KEY)
            if cached is None:
                cached = build_layout(store)
                store.__dict__[_LAYOUT_KEY] = cached
    if not isinstance(cached, StoreLayout):  # pragma: no cover - only if something overwrote the slot
        raise TypeError(f"unexpected engine layout object on {store!r}")
    return cached


class Orders(NamedTuple):
    """Branch orders of every (run, question): ``table[kind[q], r, :length[kind[q]]]``.

    Questions with the same number of branches share one order table (the protocols
    depend only on that number and the run). A named tuple, so that kernels take it as
    one argument.
    """

    table: NDArray[np.int32]
    length: NDArray[np.int32]
    kind: NDArray[np.int32]

    @property
    def max_length(self) -> int:
        """Longest order (the most branches any session of the cell can open)."""
        return int(self.length.max()) if self.length.size else 0


_ORDERS: dict[tuple[str, int, int, int], NDArray[np.int32]] = {}


def _order_table(protocol: Protocol, n_branches: int, runs: int) -> NDArray[np.int32]:
    key = (protocol.name, protocol.size, n_branches, runs)
    table = _ORDERS.get(key)
    if table is None:
        rows = [protocol.order(n_branches, r) for r in range(runs)]
        width = len(rows[0]) if rows else 0
        table = np.array(rows, dtype=np.int32).reshape(runs, width)
        table.setflags(write=False)
        if len(_ORDERS) > 256:
            _ORDERS.clear()
        _ORDERS[key] = table
    return table


def orders_for(layout: StoreLayout, protocol: Protocol, runs: int) -> Orders:
    """The branch orders of ``runs`` runs for every question of a laid-out store."""
    sizes = sorted({int(n) for n in layout.n_branches})
    tables = [_order_table(protocol, n, runs) for n in sizes]
    width = max((t.shape[1] for t in tables), default=0)
    table = np.zeros((len(tables), runs, max(width, 1)), dtype=np.int32)
    length = np.zeros(len(tables), dtype=np.int32)
    for i, t in enumerate(tables):
        table[i, :, : t.shape[1]] = t
        length[i] = t.shape[1]
    where = {n: i for i, n in enumerate(sizes)}
    kind = np.array([where[int(n)] for n in layout.n_branches], dtype=np.int32)
    return Orders(table=table, length=length, kind=kind)


_CONFIDENCE: dict[int, NDArray[np.float64]] = {}


def confidence_table(max_count: int) -> NDArray[np.float64]:
    """``table[top1, top2] == beta_confidence(top1, top2)`` for counts ``0 .. max_count``.

    Computed with the same scipy function as :func:`autotts.voting.beta_confidence`, on arrays instead of scalars:
    the ufunc evaluates every element with the same scalar routine, so each entry is
    bit-identical to the cached scalar helper (``tests/test_engine_tables.py`` checks
    every entry). ``top1 == 0`` gives 0, as in the helper.
    """
    size = max(int(max_count), 1) + 1
    for have, table in _CONFIDENCE.items():
        if have >= size:
            return table
    top1, top2 = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    values = 1.0 - special.betainc(top1 + 1, top2 + 1, 0.5)
    table = np.where(top1 <= 0, 0.0, values).astype(np.float64)
    table = np.ascontiguousarray(table)
    table.setflags(write=False)
    _CONFIDENCE.clear()
    _CONFIDENCE[size] = table
    return table
