"""Engine tables and layout: the beta-confidence table, store arrays and branch orders."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts import engine
from autotts.controllers.voting import beta_confidence
from autotts.engine.layout import build_layout, confidence_table, layout_of, orders_for
from autotts.evaluation.protocols import Protocol
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta


def test_confidence_table_is_bit_identical_to_the_scalar_helper() -> None:
    table = confidence_table(130)
    assert table.shape[0] >= 131 and table.dtype == np.float64
    for top1 in range(131):
        for top2 in range(131):
            # Exact float equality, not approx: the kernels must reproduce every comparison.
            assert table[top1, top2] == beta_confidence(top1, top2), (top1, top2)


def test_the_helper_equals_the_published_beta_cdf_bit_for_bit() -> None:
    # The reference computes 1 - scipy.stats.beta.cdf(0.5, top1 + 1, top2 + 1); the helper
    # calls the incomplete beta function directly (scipy.stats is slow to import).
    from scipy import stats

    top1, top2 = np.meshgrid(np.arange(1, 131), np.arange(0, 131), indexing="ij")
    reference = 1.0 - stats.beta.cdf(0.5, top1 + 1, top2 + 1)
    for i in range(top1.shape[0]):
        for j in range(top1.shape[1]):
            assert beta_confidence(int(top1[i, j]), int(top2[i, j])) == reference[i, j]


def test_confidence_table_grows_and_is_read_only() -> None:
    small = confidence_table(3)
    big = confidence_table(200)
    assert big.shape == (201, 201)
    assert confidence_table(5) is big  # a larger table serves smaller requests
    assert np.array_equal(small, big[: small.shape[0], : small.shape[1]])
    assert not big.flags.writeable


def _store() -> ReplayStore:
    q0 = Question(
        "a",
        "t",
        "7",
        500,
        (Branch(("ERR", "5", "7"), 1200, "7"), Branch((), 300, "9"), Branch(("1",), 800, "7")),
    )
    q1 = Question("b", "t", "missing", 250, (Branch(("x",), 100, "y"),))
    return ReplayStore(StoreMeta("m", "b"), (q0, q1))


def test_layout_holds_the_interned_codes_the_session_reveals() -> None:
    store = _store()
    lay = build_layout(store)
    q0 = store.replay[0]
    assert lay.probes.shape == (2, 3, 3)
    for b in range(3):
        k = len(q0.probes[b])
        assert lay.n_probes[0, b] == k
        assert tuple(lay.probes[0, b, :k]) == q0.probes[b]
        assert lay.finals[0, b] == q0.finals[b] and lay.tokens[0, b] == q0.tokens[b]
    assert list(lay.n_branches) == [3, 1]
    assert list(lay.delta) == [500, 250]
    assert q0.vocab[lay.err[0]] == "ERR" and lay.err[1] == -2
    assert q0.vocab[lay.gold[0]] == "7" and lay.gold[1] == -1
    assert lay.vocabs == (q0.vocab, store.replay[1].vocab)


def test_layout_is_cached_on_the_store() -> None:
    store = _store()
    assert layout_of(store) is layout_of(store)


def test_orders_follow_the_protocol_per_branch_count() -> None:
    store = _store()
    lay = layout_of(store)
    for protocol in (Protocol(), Protocol("subsample", 2)):
        orders = orders_for(lay, protocol, 5)
        for q, n in enumerate(lay.n_branches):
            kind = orders.kind[q]
            length = orders.length[kind]
            for r in range(5):
                assert tuple(orders.table[kind, r, :length]) == protocol.order(int(n), r)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 1, allow_nan=False),
    st.floats(0, 1, allow_nan=False),
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=20),
)
def test_compiled_ema_step_is_bit_identical_to_python(ema: float, alpha: float, confs: list[float]) -> None:
    if not engine.available():
        pytest.skip("numba is not installed")
    from autotts.engine.kernels import ema_step

    py = ema
    nb = ema
    for conf in confs:
        py = (1 - alpha) * py + alpha * conf  # the expression in autotts.controllers.cmc
        nb = ema_step(nb, alpha, conf)
        assert nb == py
