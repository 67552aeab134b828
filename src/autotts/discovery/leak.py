"""The leak test: replay a candidate on data whose *unrevealed* cells were changed.

An honest controller decides only from what the session revealed to it, so replacing
everything it was not shown — answers of unopened branches, probes beyond a branch's
depth, finals and lengths of unfinished branches, even how many probes an unfinished
branch has — cannot change a single action or its answer. The second replay also runs
the episodes in reverse order, so a controller that carries state from one question or
run to the next (or uses its own unseeded randomness) changes its actions as well.
Any difference gives the candidate the status ``leaked``.

This module is imported by the sandbox child, so it stays free of heavy imports.
"""

from __future__ import annotations

from collections.abc import Sequence

from autotts.store.schema import ReplayQuestion

#: Added to the length of every unfinished branch.
_TOKEN_SHIFT = 7


def perturb_question(
    q: ReplayQuestion,
    order: Sequence[int],
    revealed: Sequence[tuple[int, bool]],
) -> ReplayQuestion:
    """A copy of ``q`` in which every cell the episode did not reveal has a different value.

    ``revealed[i] = (depth, finished)`` describes the ``i``-th branch the controller
    opened (branch id ``i`` = store branch ``order[i]``); branches not listed were never
    opened. Revealed cells keep their values, so the controller's view is identical
    as long as it only looks at what it was given.

    Unrevealed answer codes are rotated to a *different existing* code of the question's
    vocabulary (no sentinel value), so the perturbed store cannot be told apart from a
    real one by what it contains.
    """
    vocab = tuple(q.vocab)
    v = max(1, len(vocab))

    def other(code: int) -> int:
        return (code + 1) % v

    state: dict[int, tuple[int, bool]] = {}
    for i, (depth, finished) in enumerate(revealed):
        if i < len(order):
            state[order[i]] = (int(depth), bool(finished))
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
        changed = tuple(other(c) for c in p[depth:])
        # One extra probe changes the branch's (unrevealed) number of intervals too.
        extra = (other(q.finals[b]),)
        probes.append(kept + changed + extra)
        if finished:  # a full read: final and length were revealed, probes were not
            finals.append(q.finals[b])
            tokens.append(q.tokens[b])
        else:
            finals.append(other(q.finals[b]))
            tokens.append(q.tokens[b] + _TOKEN_SHIFT * q.delta + 1)
    return ReplayQuestion(vocab=vocab, probes=tuple(probes), tokens=tuple(tokens), finals=tuple(finals), delta=q.delta)


def action_signature(events: Sequence[tuple[str, int]]) -> str:
    """A stable digest of an action sequence (action name and branch id per step)."""
    import hashlib

    h = hashlib.sha1(usedforsecurity=False)
    for action, branch in events:
        h.update(f"{action}:{branch};".encode())
    return h.hexdigest()
