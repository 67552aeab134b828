"""Summary statistics of a replay store (what ``autotts store info`` shows).

They answer the questions one asks before trusting numbers computed on a store: how
big is it, how deep do branches go, how long are they, how often did answer extraction
fail (``ERR``), and what do the two simplest strategies score on it — a single branch
(pass@1) and a majority vote over all N branches (majority@N, first-seen wins ties,
the reference rule). pass@N (some branch ends right) bounds every controller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from autotts.store.schema import ERR, ReplayStore
from autotts.voting import majority


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Summary of one store. Rates and accuracies are fractions in [0, 1]."""

    store: str
    model: str
    benchmark: str
    questions: int
    branches: int
    """Total branches over all questions."""
    branches_min: int
    """Fewest branches of any question."""
    branches_max: int
    deltas: tuple[int, ...]
    """Distinct probe intervals Δ (tokens), ascending; one value in a well-formed store."""
    depth_mean: float
    """Probes per branch (K_b), i.e. completed intervals."""
    depth_median: float
    depth_max: int
    tokens_mean: float
    """Branch length in tokens."""
    tokens_median: float
    tokens_max: int
    tokens_per_question: float
    """Mean over questions of the summed length of all branches (the cost of reading all)."""
    err_rate_probes: float
    """Fraction of probe answers that are ``ERR`` (0 when there are no probes)."""
    err_rate_finals: float
    pass_at_1: float
    """Mean over questions of the fraction of branches whose final answer is the gold one."""
    majority_at_n: float
    """Fraction of questions where the majority vote over all N final answers is right."""
    pass_at_n: float
    """Fraction of questions where at least one branch's final answer is right."""
    distinct_answers_mean: float
    """Distinct final answers per question, mean over questions."""
    distinct_answers_max: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dictionary (``deltas`` as a list)."""
        out = asdict(self)
        out["deltas"] = list(self.deltas)
        return out


def store_stats(store: ReplayStore) -> StoreStats:
    """Compute :class:`StoreStats` for ``store`` (a valid store with at least one question).

    Works on the interned views, so it costs about one pass over the answer codes.
    """
    replay = store.replay
    golds = store.golds
    depths = np.fromiter((len(p) for r in replay for p in r.probes), dtype=np.int64)
    tokens = np.fromiter((t for r in replay for t in r.tokens), dtype=np.int64)
    widths = [r.n_branches for r in replay]
    n_probes = int(depths.sum())
    err_probes = 0
    err_finals = 0
    pass1: list[float] = []
    maj_right = 0
    any_right = 0
    distinct: list[int] = []
    for r, gold in zip(replay, golds, strict=True):
        finals = [r.vocab[c] for c in r.finals]
        if ERR in r.vocab:
            err = r.vocab.index(ERR)
            err_probes += sum(p.count(err) for p in r.probes)
            err_finals += r.finals.count(err)
        right = sum(1 for f in finals if f == gold)
        pass1.append(right / len(finals))
        any_right += right > 0
        maj_right += majority(finals) == gold
        distinct.append(len(set(r.finals)))
    nq = len(replay)
    per_question = np.fromiter((sum(r.tokens) for r in replay), dtype=np.int64, count=nq)
    return StoreStats(
        store=store.name,
        model=store.meta.model,
        benchmark=store.meta.benchmark,
        questions=nq,
        branches=int(tokens.size),
        branches_min=min(widths, default=0),
        branches_max=max(widths, default=0),
        deltas=tuple(sorted({r.delta for r in replay})),
        depth_mean=_mean(depths),
        depth_median=_median(depths),
        depth_max=int(depths.max()) if depths.size else 0,
        tokens_mean=_mean(tokens),
        tokens_median=_median(tokens),
        tokens_max=int(tokens.max()) if tokens.size else 0,
        tokens_per_question=_mean(per_question),
        err_rate_probes=err_probes / n_probes if n_probes else 0.0,
        err_rate_finals=err_finals / tokens.size if tokens.size else 0.0,
        pass_at_1=float(np.mean(pass1)) if pass1 else 0.0,
        majority_at_n=maj_right / nq if nq else 0.0,
        pass_at_n=any_right / nq if nq else 0.0,
        distinct_answers_mean=float(np.mean(distinct)) if distinct else 0.0,
        distinct_answers_max=max(distinct, default=0),
    )


def _mean(values: npt.NDArray[np.int64]) -> float:
    return float(np.mean(values)) if values.size else 0.0


def _median(values: npt.NDArray[np.int64]) -> float:
    return float(np.median(values)) if values.size else 0.0
