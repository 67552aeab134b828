"""The leak test: replay a candidate on data whose *unrevealed* cells were changed at random.

Since the judge redesign the candidate's process never holds replay data, so reading
hidden cells is no longer possible; the leak test remains as the check of determinism and
statelessness. An honest controller decides only from what the session revealed to it, so
replacing everything it was not shown — answers of unopened branches, probes beyond a
branch's depth, finals and lengths of unfinished branches, how many probes an unfinished
branch has — cannot change a single action or its answer. The judge replays the leak
runs' episodes in the reverse of the order the sweep played them, so a controller that
carries state from one question or run to the next (or uses its own randomness) changes
its actions or answers as well. Any difference gives the candidate the status ``leaked``.

The perturbation is drawn from a per-evaluation secret (``os.urandom``) that the candidate
never sees, so nothing about it is predictable or invertible; the secret is written to the
run directory only after the evaluation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np

from autotts.store.schema import ReplayQuestion


def perturb_question(
    q: ReplayQuestion,
    order: Sequence[int],
    revealed: Sequence[tuple[int, bool]],
    *,
    seed: int,
) -> ReplayQuestion:
    """A copy of ``q`` in which every cell the episode did not reveal has a different, random value.

    ``revealed[i] = (depth, finished)`` describes the ``i``-th branch the controller
    opened (branch id ``i`` = store branch ``order[i]``); branches not listed were never
    opened. Revealed cells keep their values, so the controller's view is identical as
    long as it only looks at what it was given.

    Unrevealed answer codes are drawn from the question's own vocabulary, always different
    from the original (no sentinel value); the number of probes after an unfinished branch's
    depth and its length are drawn anew (the length always changes), all from ``seed``.
    The draws are vectorised over every cell of the question: the judge perturbs each
    episode of the leak pass, and a per-cell loop in Python cost it more than replaying
    the episode.
    """
    rng = np.random.default_rng(seed)
    vocab = tuple(q.vocab)
    v = len(vocab)
    n = q.n_branches
    depth = np.zeros(n, dtype=np.int64)
    finished = np.zeros(n, dtype=bool)
    for i, (d, f) in enumerate(revealed):
        if i < len(order):
            depth[order[i]] = int(d)
            finished[order[i]] = bool(f)
    delta = max(1, q.delta)
    lens, offsets, flat, finals_arr, tokens_arr = _columns(q)
    # Finished by advancing: probes, their number, final and length were all shown.
    shown = finished & (depth == lens)
    hidden = np.where(shown, 0, lens - depth)
    n_new = np.where(shown, 0, rng.integers(0, hidden + 3))  # 0 .. hidden + 2 probes after the depth
    # Every new cell: the first ``hidden`` of a branch replace an original code by another
    # one, the rest (probes the branch never had) are drawn from the whole vocabulary.
    total = int(n_new.sum())
    owner = np.repeat(np.arange(n), n_new)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(n_new[:-1], out=starts[1:])
    j = np.arange(total) - starts[owner]
    replaces = j < hidden[owner]
    original = (
        flat[np.where(replaces, offsets[owner] + depth[owner] + j, 0)]
        if total and flat.size
        else np.zeros(total, np.int64)
    )
    drawn = rng.integers(0, max(1, v - 1), total)
    other = drawn + (drawn >= original) if v >= 2 else original
    fresh = rng.integers(0, max(1, v), total)
    cells = np.where(replaces, other, fresh).tolist()

    final_draw = rng.integers(0, max(1, v - 1), n)
    other_finals = (final_draw + (final_draw >= finals_arr)) if v >= 2 else finals_arr
    length = (depth + n_new) * delta + rng.integers(1, delta + 1, n)
    length = np.where(length == tokens_arr, length + rng.integers(1, delta + 1, n), length)

    probes: list[tuple[int, ...]] = []
    tokens: list[int] = []
    finals: list[int] = []
    rows = zip(
        q.probes,
        q.finals,
        q.tokens,
        shown.tolist(),
        finished.tolist(),
        depth.tolist(),
        starts.tolist(),
        n_new.tolist(),
        other_finals.tolist(),
        length.tolist(),
        strict=True,
    )
    for p, final, toks, is_shown, is_finished, d, s, k, new_final, new_length in rows:
        if is_shown:
            probes.append(p)
            finals.append(final)
            tokens.append(toks)
            continue
        probes.append(p[:d] + tuple(cells[s : s + k]))
        if is_finished:  # a full read: final and length were revealed, probes were not
            finals.append(final)
            tokens.append(toks)
        else:
            finals.append(new_final)
            tokens.append(new_length)
    return ReplayQuestion(vocab=vocab, probes=tuple(probes), tokens=tuple(tokens), finals=tuple(finals), delta=q.delta)


_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: Column arrays of recently perturbed questions, by ``id``; the question is kept with them,
#: so an id is never reused while its entry lives. A leak pass perturbs each question once
#: per run and β.
_COLUMNS: dict[int, tuple[ReplayQuestion, _Columns]] = {}
_COLUMNS_MAX = 4096


def _columns(q: ReplayQuestion) -> _Columns:
    """``(probe counts, offsets, flattened probes, finals, tokens)`` of ``q`` as arrays."""
    hit = _COLUMNS.get(id(q))
    if hit is not None and hit[0] is q:
        return hit[1]
    n = q.n_branches
    lens = np.fromiter(map(len, q.probes), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    flat = np.fromiter(chain.from_iterable(q.probes), dtype=np.int64, count=int(offsets[-1]))
    cols = (lens, offsets, flat, np.asarray(q.finals, dtype=np.int64), np.asarray(q.tokens, dtype=np.int64))
    if len(_COLUMNS) >= _COLUMNS_MAX:
        _COLUMNS.clear()
    _COLUMNS[id(q)] = (q, cols)
    return cols


def action_signature(events: Iterable[tuple[str, int]]) -> str:
    """A stable digest of an action sequence (action name and branch id per step)."""
    text = "".join([f"{action}:{branch};" for action, branch in events])
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
