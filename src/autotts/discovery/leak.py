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
import random
from collections.abc import Sequence

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
    """
    rng = random.Random(seed)
    vocab = tuple(q.vocab)
    v = len(vocab)

    def other(code: int) -> int:
        if v < 2:
            return code
        c = rng.randrange(v - 1)
        return c if c < code else c + 1

    state: dict[int, tuple[int, bool]] = {}
    for i, (depth, finished) in enumerate(revealed):
        if i < len(order):
            state[order[i]] = (int(depth), bool(finished))
    delta = max(1, q.delta)
    probes: list[tuple[int, ...]] = []
    tokens: list[int] = []
    finals: list[int] = []
    for b in range(q.n_branches):
        depth, finished = state.get(b, (0, False))
        p = q.probes[b]
        if finished and depth == len(p):
            # Finished by advancing: probes, their number, final and length are all known.
            probes.append(p)
            finals.append(q.finals[b])
            tokens.append(q.tokens[b])
            continue
        kept = p[:depth]
        hidden = len(p) - depth
        n_new = rng.randint(0, hidden + 2)
        probes.append(
            kept + tuple(other(p[depth + j]) if j < hidden else rng.randrange(max(1, v)) for j in range(n_new))
        )
        if finished:  # a full read: final and length were revealed, probes were not
            finals.append(q.finals[b])
            tokens.append(q.tokens[b])
        else:
            finals.append(other(q.finals[b]))
            length = (depth + n_new) * delta + rng.randint(1, delta)
            if length == q.tokens[b]:
                length += rng.randint(1, delta)
            tokens.append(length)
    return ReplayQuestion(vocab=vocab, probes=tuple(probes), tokens=tuple(tokens), finals=tuple(finals), delta=q.delta)


def action_signature(events: Sequence[tuple[str, int]]) -> str:
    """A stable digest of an action sequence (action name and branch id per step)."""
    h = hashlib.sha1(usedforsecurity=False)
    for action, branch in events:
        h.update(f"{action}:{branch};".encode())
    return h.hexdigest()
