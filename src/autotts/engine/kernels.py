"""Compiled (numba) replay kernels: every built-in controller over all episodes of a cell.

Each kernel replays one controller on every (run, question) episode of a cell in one
call and writes the answer code, cost and sequential tokens of each episode. The
session rules (``autotts.env.session``) and the controllers' algorithms
(``autotts.controllers``) are re-stated here statement by statement, in the same order,
so results are bit-identical: same integer costs, same first-seen tie-breaking, the same
float operations in the same order for CMC's moving average (numba does not reassociate
or fuse float operations unless ``fastmath`` is asked for, and it is not), and the beta
confidence read from a table computed by the same scipy routine.

The session rule "advance" is written out inline at every place a kernel advances a
branch (marked ``# advance``), and so are event writes: numba does not inline a helper
that takes several arrays, and such a call costs ~40 ns, six times a whole inlined
advance. Helpers remain for what runs once per step or episode (votes, sorting).

With ``record`` set, every session action is written to ``events`` as one int32,
``branch * 4 + action``; ``event_start[e]`` is where episode ``e = run * Q + question``
starts. :mod:`autotts.engine.traces` turns these into ``TraceEvent`` tuples by replaying
them through a recording session.

All kernels live in this one module on purpose: numba's on-disk cache is invalidated by
the modification time of the file that defines a function, not of the functions it
calls, so splitting the helpers into another module could let a stale cached kernel
survive an upgrade. (It is longer than the house limit for that reason.)

Every kernel takes the same leading and trailing arguments (``Q`` questions, ``R`` runs,
``L`` the longest branch order): ``store`` is the store's :class:`~autotts.engine.layout.KernelStore`
(probes ``[Q, N, K]``, probe counts, final codes and branch tokens ``[Q, N]``, Δ and the
code of ``"ERR"`` per question, the largest vocabulary), ``orders`` its
:class:`~autotts.engine.layout.Orders` (order tables ``[kinds, R, L]``, their lengths, the
kind of each question), ``confidence`` the beta-confidence table; the controller's
parameters follow, then ``record`` and the outputs ``answer_out`` ``[R, Q]`` (-1 = no
answer), ``cost_out`` and ``sequential_out`` ``[R, Q]``, ``events`` and ``event_start``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

# Action codes: the same small ints the session records (autotts.env.session).
OPEN, ADVANCE, READ, PRUNE = 0, 1, 2, 3

# Rows of the per-episode state array ``st`` (one column per opened branch): the cursor,
# the tokens charged beyond ``cursor * Δ`` (final remainder or full read), finished,
# latest answer code, pruned. Tokens spent inside the probes are always ``cursor * Δ``.
CUR, EXTRA, FIN, LATEST, PRUNED = 0, 1, 2, 3, 4


def _jit(fn: Callable[..., Any]) -> Any:
    """``numba.njit`` with the on-disk cache when a cache directory is writable."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no cache locator (read-only install without a user cache dir)
        return numba.njit(nogil=True)(fn)


# ------------------------------------------------------------------ bookkeeping
@_jit
def _reserve(events, n, need):  # type: ignore[no-untyped-def]
    """Grow the event buffer so that ``need`` more events fit after event ``n``."""
    if n + need <= events.shape[0]:
        return events
    grown = np.empty(max(2 * events.shape[0], n + need, 1024), dtype=np.int32)
    grown[:n] = events[:n]
    return grown


@_jit
def _finish(st, n_open, dl):  # type: ignore[no-untyped-def]
    """Sequential tokens (largest charge of an opened branch, 0 if none) and reset of the state."""
    seq = 0
    for i in range(n_open):
        charged = st[CUR, i] * dl + st[EXTRA, i]
        if i == 0 or charged > seq:
            seq = charged
    for row in range(st.shape[0]):
        for i in range(n_open):
            st[row, i] = 0
    return seq


# ------------------------------------------------------------------------ votes
@_jit
def _majority(vals, m, vote_count, seen_order):  # type: ignore[no-untyped-def]
    """First-seen majority of ``vals[:m]`` (-1 if empty); leaves ``vote_count`` zeroed."""
    ns = 0
    for j in range(m):
        a = vals[j]
        if vote_count[a] == 0:
            seen_order[ns] = a
            ns += 1
        vote_count[a] += 1
    best = -1
    best_count = 0
    for j in range(ns):
        a = seen_order[j]
        c = vote_count[a]
        if c > best_count:
            best = a
            best_count = c
        vote_count[a] = 0
    return best


@_jit
def _leader(vote_count, seen_order, ns):  # type: ignore[no-untyped-def]
    """(majority, top1, top2) of incremental first-seen counts (majority -1 if none)."""
    winner = -1
    top1 = 0
    top2 = 0
    for j in range(ns):
        a = seen_order[j]
        c = vote_count[a]
        if c > top1:
            winner = a
            top2 = top1
            top1 = c
        elif c > top2:
            top2 = c
    return winner, top1, top2


@_jit
def _clear(vote_count, seen_order, ns):  # type: ignore[no-untyped-def]
    for j in range(ns):
        vote_count[seen_order[j]] = 0


@_jit
def _sort_desc(items, n, key):  # type: ignore[no-untyped-def]
    """Stable insertion sort of ``items[:n]`` by ``key[item]`` descending (Python's stable sort)."""
    for j in range(1, n):
        x = items[j]
        kx = key[x]
        i = j - 1
        while i >= 0 and key[items[i]] < kx:
            items[i + 1] = items[i]
            i -= 1
        items[i + 1] = x


# ---------------------------------------------------------------------- kernels
@_jit
def sc_kernel(  # type: ignore[no-untyped-def]
    store,
    orders,
    confidence,
    n,
    record,
    answer_out,
    cost_out,
    sequential_out,
    events,
    event_start,
):
    """SC@n: full-read up to ``n`` branches, first-seen majority."""
    finals = store.finals
    branch_tokens = store.branch_tokens
    question_delta = store.question_delta
    max_vocab = store.max_vocab
    order_table = orders.table
    order_length = orders.length
    order_kind = orders.kind
    R, Q = answer_out.shape
    L = order_table.shape[2]
    st = np.zeros((5, L), dtype=np.int64)
    vote_count = np.zeros(max_vocab, dtype=np.int32)
    seen_order = np.zeros(L + 1, dtype=np.int32)
    vote_buffer = np.zeros(L + 1, dtype=np.int32)
    ne = 0
    for r in range(R):
        for q in range(Q):
            event_start[r * Q + q] = ne
            u = order_kind[q]
            order = order_table[u, r]
            m = min(n, order_length[u])
            if record:
                events = _reserve(events, ne, m + 1)
            cost = 0
            for i in range(m):
                # full read of fresh branch i: its final answer at its whole length
                b = order[i]
                charge = branch_tokens[q, b]
                code = finals[q, b]
                st[EXTRA, i] = charge
                st[FIN, i] = 1
                st[LATEST, i] = code
                cost += charge
                vote_buffer[i] = code
                if record:
                    events[ne] = i * 4 + READ
                    ne += 1
            answer_out[r, q] = _majority(vote_buffer, m, vote_count, seen_order)
            cost_out[r, q] = cost
            sequential_out[r, q] = _finish(st, m, question_delta[q])
    event_start[R * Q] = ne
    return events


@_jit
def asc_kernel(  # type: ignore[no-untyped-def]
    store,
    orders,
    confidence,
    max_samples,
    threshold,
    record,
    answer_out,
    cost_out,
    sequential_out,
    events,
    event_start,
):
    """ASC: full-read until ``beta_confidence(top1, top2) > threshold`` (from the second read)."""
    finals = store.finals
    branch_tokens = store.branch_tokens
    question_delta = store.question_delta
    max_vocab = store.max_vocab
    order_table = orders.table
    order_length = orders.length
    order_kind = orders.kind
    R, Q = answer_out.shape
    L = order_table.shape[2]
    st = np.zeros((5, L), dtype=np.int64)
    vote_count = np.zeros(max_vocab, dtype=np.int32)
    seen_order = np.zeros(L + 1, dtype=np.int32)
    ne = 0
    for r in range(R):
        for q in range(Q):
            event_start[r * Q + q] = ne
            u = order_kind[q]
            order = order_table[u, r]
            m = min(max_samples, order_length[u])
            if record:
                events = _reserve(events, ne, m + 1)
            cost = 0
            ns = 0
            answer = -1
            stopped = False
            n_read = 0
            for i in range(m):
                # full read of fresh branch i: its final answer at its whole length
                b = order[i]
                charge = branch_tokens[q, b]
                code = finals[q, b]
                st[EXTRA, i] = charge
                st[FIN, i] = 1
                st[LATEST, i] = code
                n_read += 1
                cost += charge
                if record:
                    events[ne] = i * 4 + READ
                    ne += 1
                if vote_count[code] == 0:
                    seen_order[ns] = code
                    ns += 1
                vote_count[code] += 1
                if n_read >= 2:
                    winner, top1, top2 = _leader(vote_count, seen_order, ns)
                    if confidence[top1, top2] > threshold:
                        answer = winner
                        stopped = True
                        break
            if not stopped:
                answer = _leader(vote_count, seen_order, ns)[0]
            _clear(vote_count, seen_order, ns)
            answer_out[r, q] = answer
            cost_out[r, q] = cost
            sequential_out[r, q] = _finish(st, n_read, question_delta[q])
    event_start[R * Q] = ne
    return events


@_jit
def esc_kernel(  # type: ignore[no-untyped-def]
    store,
    orders,
    confidence,
    max_samples,
    window,
    record,
    answer_out,
    cost_out,
    sequential_out,
    events,
    event_start,
):
    """ESC: windows of full reads; stop on a unanimous window, else the pool's majority."""
    finals = store.finals
    branch_tokens = store.branch_tokens
    question_delta = store.question_delta
    max_vocab = store.max_vocab
    order_table = orders.table
    order_length = orders.length
    order_kind = orders.kind
    R, Q = answer_out.shape
    L = order_table.shape[2]
    st = np.zeros((5, L), dtype=np.int64)
    vote_count = np.zeros(max_vocab, dtype=np.int32)
    seen_order = np.zeros(L + 1, dtype=np.int32)
    vote_buffer = np.zeros(L + 1, dtype=np.int32)
    n_windows = max_samples // window
    ne = 0
    for r in range(R):
        for q in range(Q):
            event_start[r * Q + q] = ne
            u = order_kind[q]
            order = order_table[u, r]
            avail = order_length[u]
            if record:
                events = _reserve(events, ne, min(n_windows * window, avail) + 1)
            cost = 0
            n_read = 0
            answer = -1
            stopped = False
            for _w in range(n_windows):
                start = n_read
                for _j in range(window):
                    if n_read >= avail:
                        break
                    # full read of fresh branch n_read: its final answer at its whole length
                    b = order[n_read]
                    charge = branch_tokens[q, b]
                    code = finals[q, b]
                    st[EXTRA, n_read] = charge
                    st[FIN, n_read] = 1
                    st[LATEST, n_read] = code
                    cost += charge
                    vote_buffer[n_read] = code
                    if record:
                        events[ne] = n_read * 4 + READ
                        ne += 1
                    n_read += 1
                if n_read == start:
                    # Empty window: the store is exhausted, so every later window is empty too.
                    break
                first = vote_buffer[start]
                unanimous = True
                for j in range(start + 1, n_read):
                    if vote_buffer[j] != first:
                        unanimous = False
                        break
                if unanimous:
                    answer = first
                    stopped = True
                    break
            if not stopped:
                answer = _majority(vote_buffer, n_read, vote_count, seen_order)
            answer_out[r, q] = answer
            cost_out[r, q] = cost
            sequential_out[r, q] = _finish(st, n_read, question_delta[q])
    event_start[R * Q] = ne
    return events


@_jit
def pp_kernel(  # type: ignore[no-untyped-def]
    store,
    orders,
    confidence,
    chains,
    T,
    warm_up,
    patience,
    burst,
    max_steps,
    record,
    answer_out,
    cost_out,
    sequential_out,
    events,
    event_start,
):
    """Parallel-Probe: lockstep chains, prune off-track ones after warm-up, stop on a stable winner."""
    probes = store.probes
    n_probes = store.n_probes
    finals = store.finals
    branch_tokens = store.branch_tokens
    question_delta = store.question_delta
    max_vocab = store.max_vocab
    order_table = orders.table
    order_length = orders.length
    order_kind = orders.kind
    R, Q = answer_out.shape
    L = order_table.shape[2]
    K = probes.shape[2]
    st = np.zeros((5, L), dtype=np.int64)
    vote_count = np.zeros(max_vocab, dtype=np.int32)
    seen_order = np.zeros(L + 1, dtype=np.int32)
    vote_buffer = np.zeros(L + 1, dtype=np.int32)
    ACTIVE = np.zeros(L + 1, dtype=np.int32)
    OFF = np.zeros(L + 1, dtype=np.int64)
    ne = 0
    for r in range(R):
        for q in range(Q):
            event_start[r * Q + q] = ne
            u = order_kind[q]
            order = order_table[u, r]
            dl = question_delta[q]
            n = min(chains, order_length[u])
            if record:
                events = _reserve(events, ne, n * (K + 3) + 1)
            cost = 0
            for i in range(n):
                # advance i: a probe at Δ, or the final answer at the remainder (session rule)
                b = order[i]
                c = st[CUR, i]
                if c < n_probes[q, b]:
                    code = probes[q, b, c]
                    st[CUR, i] = c + 1
                    charge = dl
                    done = False
                else:
                    code = finals[q, b]
                    charge = max(branch_tokens[q, b] - c * dl, 0)
                    st[EXTRA, i] = charge
                    st[FIN, i] = 1
                    done = True
                st[LATEST, i] = code
                cost += charge
                if record:
                    events[ne] = i * 4 + OPEN
                    ne += 1
                ACTIVE[i] = i
                OFF[i] = 0
            answer = -1
            if n > 0:
                na = n
                stable = 0
                prev = -1
                returned = False
                for step in range(max_steps):
                    for j in range(na):
                        k = ACTIVE[j]
                        if st[FIN, k]:
                            continue
                        for _b in range(burst):
                            # advance k: a probe at Δ, or the final answer at the remainder (session rule)
                            b = order[k]
                            c = st[CUR, k]
                            if c < n_probes[q, b]:
                                code = probes[q, b, c]
                                st[CUR, k] = c + 1
                                charge = dl
                                done = False
                            else:
                                code = finals[q, b]
                                charge = max(branch_tokens[q, b] - c * dl, 0)
                                st[EXTRA, k] = charge
                                st[FIN, k] = 1
                                done = True
                            st[LATEST, k] = code
                            cost += charge
                            if record:
                                events[ne] = k * 4 + ADVANCE
                                ne += 1
                            if done:
                                break
                    if na == 0:
                        answer = prev
                        returned = True
                        break
                    for j in range(na):
                        vote_buffer[j] = st[LATEST, ACTIVE[j]]
                    winner = _majority(vote_buffer, na, vote_count, seen_order)
                    if step >= warm_up and na > 1:
                        any_pruned = False
                        for j in range(na):
                            k = ACTIVE[j]
                            if st[FIN, k]:
                                continue
                            if st[LATEST, k] != winner:
                                OFF[k] += 1
                                if OFF[k] >= patience:
                                    st[PRUNED, k] = 1
                                    if record:
                                        events[ne] = k * 4 + PRUNE
                                        ne += 1
                                    any_pruned = True
                            else:
                                OFF[k] = 0
                        if any_pruned:
                            kept = 0
                            for j in range(na):
                                k = ACTIVE[j]
                                if not st[PRUNED, k]:
                                    ACTIVE[kept] = k
                                    kept += 1
                            na = kept
                            if na == 0:
                                answer = prev
                                returned = True
                                break
                            for j in range(na):
                                vote_buffer[j] = st[LATEST, ACTIVE[j]]
                            winner = _majority(vote_buffer, na, vote_count, seen_order)
                    if winner == prev:
                        stable += 1
                    else:
                        stable = 0
                    prev = winner
                    if stable >= T:
                        answer = winner
                        returned = True
                        break
                    all_done = True
                    for j in range(na):
                        if not st[FIN, ACTIVE[j]]:
                            all_done = False
                            break
                    if all_done:
                        break
                if not returned:
                    answer = prev
            answer_out[r, q] = answer
            cost_out[r, q] = cost
            sequential_out[r, q] = _finish(st, n, dl)
    event_start[R * Q] = ne
    return events


@_jit
def ema_step(ema, alpha, conf):  # type: ignore[no-untyped-def]
    """CMC's moving average, written exactly as the Python controller writes it (same float ops)."""
    return (1 - alpha) * ema + alpha * conf


@_jit
def _pool_add(vote_count, seen_order, ns, code):  # type: ignore[no-untyped-def]
    if vote_count[code] == 0:
        seen_order[ns] = code
        ns += 1
    vote_count[code] += 1
    return ns


@_jit
def _pool_stats(vote_count, seen_order, ns, size, confidence):  # type: ignore[no-untyped-def]
    if size == 0:
        return -1, 0.0
    winner, top1, top2 = _leader(vote_count, seen_order, ns)
    return winner, confidence[top1, top2]


@_jit
def cmc_kernel(  # type: ignore[no-untyped-def]
    store,
    orders,
    confidence,
    n_init,
    max_branches,
    warm_up,
    abandon_patience,
    window,
    alpha,
    conf_threshold,
    slack,
    aligned_burst,
    widen_burst,
    trend_threshold,
    min_complete,
    max_steps,
    record,
    answer_out,
    cost_out,
    sequential_out,
    events,
    event_start,
):
    """CMC: pool of finished answers, EMA of its beta confidence, abandon / align / widen."""
    probes = store.probes
    n_probes = store.n_probes
    finals = store.finals
    branch_tokens = store.branch_tokens
    question_delta = store.question_delta
    max_vocab = store.max_vocab
    order_table = orders.table
    order_length = orders.length
    order_kind = orders.kind
    R, Q = answer_out.shape
    L = order_table.shape[2]
    K = probes.shape[2]
    st = np.zeros((5, L), dtype=np.int64)
    vote_count = np.zeros(max_vocab, dtype=np.int32)
    seen_order = np.zeros(L + 1, dtype=np.int32)
    vote_buffer = np.zeros(L + 1, dtype=np.int32)
    ALIVE = np.zeros(L + 1, dtype=np.int32)
    STALE = np.zeros(L + 1, dtype=np.int32)
    ADV = np.zeros(L + 1, dtype=np.int64)
    DIS = np.zeros(L + 1, dtype=np.int64)
    HIST = np.zeros(max(window, 1) + 1, dtype=np.float64)
    widen_from = max(1, warm_up // 2)
    ne = 0
    for r in range(R):
        for q in range(Q):
            event_start[r * Q + q] = ne
            u = order_kind[q]
            order = order_table[u, r]
            avail = order_length[u]
            dl = question_delta[q]
            if record:
                events = _reserve(events, ne, avail * (K + 3) + 1)
            cost = 0
            n_open = 0
            ns = 0
            size = 0
            for _i in range(n_init):
                if n_open >= avail:
                    break
                i = n_open
                n_open += 1
                # advance i: a probe at Δ, or the final answer at the remainder (session rule)
                b = order[i]
                c = st[CUR, i]
                if c < n_probes[q, b]:
                    code = probes[q, b, c]
                    st[CUR, i] = c + 1
                    charge = dl
                    done = False
                else:
                    code = finals[q, b]
                    charge = max(branch_tokens[q, b] - c * dl, 0)
                    st[EXTRA, i] = charge
                    st[FIN, i] = 1
                    done = True
                st[LATEST, i] = code
                cost += charge
                if record:
                    events[ne] = i * 4 + OPEN
                    ne += 1
                ADV[i] = 0
                DIS[i] = 0
                if done:
                    ns = _pool_add(vote_count, seen_order, ns, code)
                    size += 1
            answer = -1
            if n_open > 0:
                spawned = n_open
                ema = 0.0
                hlen = 0
                returned = False
                # Pool stats are a function of the pool, which only grows: recompute them
                # only when its size changed since the last time.
                stats_size = -1
                pool_winner = -1
                pool_conf = 0.0
                for step in range(max_steps):
                    if stats_size != size:
                        pool_winner, pool_conf = _pool_stats(vote_count, seen_order, ns, size, confidence)
                        stats_size = size
                    winner = pool_winner
                    conf = pool_conf
                    warm = step >= warm_up
                    ema = ema_step(ema, alpha, conf)
                    if hlen < window:
                        HIST[hlen] = ema
                        hlen += 1
                    else:
                        for h in range(1, hlen):
                            HIST[h - 1] = HIST[h]
                        HIST[hlen - 1] = ema
                    na = 0
                    for k in range(n_open):
                        if not st[FIN, k] and not st[PRUNED, k]:
                            ALIVE[na] = k
                            na += 1
                    if warm and winner != -1:
                        for j in range(na):
                            k = ALIVE[j]
                            if st[LATEST, k] != winner:
                                DIS[k] += 1
                            else:
                                DIS[k] = 0
                        n_abandon = na - 2
                        if n_abandon > 0:
                            n_stale = 0
                            for j in range(na):
                                k = ALIVE[j]
                                if DIS[k] >= abandon_patience:
                                    STALE[n_stale] = k
                                    n_stale += 1
                            _sort_desc(STALE, n_stale, DIS)
                            for j in range(min(n_abandon, n_stale)):
                                k = STALE[j]
                                st[PRUNED, k] = 1
                                if record:
                                    events[ne] = k * 4 + PRUNE
                                    ne += 1
                            if n_stale > 0:
                                kept = 0
                                for j in range(na):
                                    k = ALIVE[j]
                                    if not st[PRUNED, k]:
                                        ALIVE[kept] = k
                                        kept += 1
                                na = kept
                    # stable sort of ALIVE[:na] by ADV descending (inline: see the module docstring)
                    for j in range(1, na):
                        x = ALIVE[j]
                        kx = ADV[x]
                        h = j - 1
                        while h >= 0 and ADV[ALIVE[h]] < kx:
                            ALIVE[h + 1] = ALIVE[h]
                            h -= 1
                        ALIVE[h + 1] = x
                    for j in range(na):
                        k = ALIVE[j]
                        aligned = warm and winner != -1 and st[LATEST, k] == winner
                        reps = aligned_burst if aligned else 1
                        for _b in range(reps):
                            # advance k: a probe at Δ, or the final answer at the remainder (session rule)
                            b = order[k]
                            c = st[CUR, k]
                            if c < n_probes[q, b]:
                                code = probes[q, b, c]
                                st[CUR, k] = c + 1
                                charge = dl
                                done = False
                            else:
                                code = finals[q, b]
                                charge = max(branch_tokens[q, b] - c * dl, 0)
                                st[EXTRA, k] = charge
                                st[FIN, k] = 1
                                done = True
                            st[LATEST, k] = code
                            cost += charge
                            if record:
                                events[ne] = k * 4 + ADVANCE
                                ne += 1
                            ADV[k] += 1
                            if done:
                                ns = _pool_add(vote_count, seen_order, ns, code)
                                size += 1
                                break
                    if stats_size != size:
                        pool_winner, pool_conf = _pool_stats(vote_count, seen_order, ns, size, confidence)
                        stats_size = size
                    winner = pool_winner
                    conf = pool_conf
                    ema = ema_step(ema, alpha, conf)
                    HIST[hlen - 1] = ema
                    delta = HIST[hlen - 1] - HIST[0] if hlen >= 2 else 0.0
                    if warm and size >= min_complete and ema >= conf_threshold and delta >= -slack:
                        answer = winner
                        returned = True
                        break
                    all_gone = True
                    for k in range(n_open):
                        if not st[FIN, k] and not st[PRUNED, k]:
                            all_gone = False
                            break
                    if all_gone:
                        break
                    if (
                        spawned < max_branches
                        and delta <= trend_threshold
                        and step >= widen_from
                        and ema < conf_threshold
                    ):
                        for _w in range(min(widen_burst, max_branches - spawned)):
                            if n_open >= avail:
                                break
                            i = n_open
                            n_open += 1
                            # advance i: a probe at Δ, or the final answer at the remainder (session rule)
                            b = order[i]
                            c = st[CUR, i]
                            if c < n_probes[q, b]:
                                code = probes[q, b, c]
                                st[CUR, i] = c + 1
                                charge = dl
                                done = False
                            else:
                                code = finals[q, b]
                                charge = max(branch_tokens[q, b] - c * dl, 0)
                                st[EXTRA, i] = charge
                                st[FIN, i] = 1
                                done = True
                            st[LATEST, i] = code
                            cost += charge
                            if record:
                                events[ne] = i * 4 + OPEN
                                ne += 1
                            ADV[i] = 0
                            DIS[i] = 0
                            if done:
                                ns = _pool_add(vote_count, seen_order, ns, code)
                                size += 1
                            spawned += 1
                if not returned:
                    if size > 0:
                        answer = _leader(vote_count, seen_order, ns)[0]
                    else:
                        m = 0
                        for k in range(n_open):
                            if not st[PRUNED, k]:
                                vote_buffer[m] = st[LATEST, k]
                                m += 1
                        answer = _majority(vote_buffer, m, vote_count, seen_order)
            _clear(vote_count, seen_order, ns)
            answer_out[r, q] = answer
            cost_out[r, q] = cost
            sequential_out[r, q] = _finish(st, n_open, dl)
    event_start[R * Q] = ne
    return events


@_jit
def cex_kernel(  # type: ignore[no-untyped-def]
    store,
    orders,
    confidence,
    chains,
    k_agree,
    cap,
    record,
    answer_out,
    cost_out,
    sequential_out,
    events,
    event_start,
):
    """Consistency-exit: deepen one chain until its last ``k`` probes agree (not ERR); repeat; vote.

    ``cap`` < 1 means no depth cap.
    """
    probes = store.probes
    n_probes = store.n_probes
    finals = store.finals
    branch_tokens = store.branch_tokens
    question_delta = store.question_delta
    err_code = store.err_code
    max_vocab = store.max_vocab
    order_table = orders.table
    order_length = orders.length
    order_kind = orders.kind
    R, Q = answer_out.shape
    L = order_table.shape[2]
    K = probes.shape[2]
    st = np.zeros((5, L), dtype=np.int64)
    vote_count = np.zeros(max_vocab, dtype=np.int32)
    seen_order = np.zeros(L + 1, dtype=np.int32)
    vote_buffer = np.zeros(L + 1, dtype=np.int32)
    ne = 0
    for r in range(R):
        for q in range(Q):
            event_start[r * Q + q] = ne
            u = order_kind[q]
            order = order_table[u, r]
            dl = question_delta[q]
            err = err_code[q]
            n = min(chains, order_length[u])
            if record:
                events = _reserve(events, ne, n * (K + 3) + 1)
            cost = 0
            m = 0
            for i in range(n):
                # advance i: a probe at Δ, or the final answer at the remainder (session rule)
                b = order[i]
                c = st[CUR, i]
                if c < n_probes[q, b]:
                    code = probes[q, b, c]
                    st[CUR, i] = c + 1
                    charge = dl
                    finished = False
                else:
                    code = finals[q, b]
                    charge = max(branch_tokens[q, b] - c * dl, 0)
                    st[EXTRA, i] = charge
                    st[FIN, i] = 1
                    finished = True
                st[LATEST, i] = code
                cost += charge
                if record:
                    events[ne] = i * 4 + OPEN
                    ne += 1
                answer = code
                run = 0
                last = -1
                last_ok = -1
                depth = 1
                result = answer
                while not finished:
                    if answer == err:
                        run = 0
                    else:
                        run = run + 1 if answer == last else 1
                        last_ok = answer
                    last = answer
                    if run >= k_agree:
                        st[PRUNED, i] = 1
                        if record:
                            events[ne] = i * 4 + PRUNE
                            ne += 1
                        result = answer
                        break
                    if cap >= 1 and depth >= cap:
                        st[PRUNED, i] = 1
                        if record:
                            events[ne] = i * 4 + PRUNE
                            ne += 1
                        result = last_ok
                        break
                    # advance i: a probe at Δ, or the final answer at the remainder (session rule)
                    b = order[i]
                    c = st[CUR, i]
                    if c < n_probes[q, b]:
                        code = probes[q, b, c]
                        st[CUR, i] = c + 1
                        charge = dl
                        finished = False
                    else:
                        code = finals[q, b]
                        charge = max(branch_tokens[q, b] - c * dl, 0)
                        st[EXTRA, i] = charge
                        st[FIN, i] = 1
                        finished = True
                    st[LATEST, i] = code
                    cost += charge
                    if record:
                        events[ne] = i * 4 + ADVANCE
                        ne += 1
                    answer = code
                    depth += 1
                    result = answer
                if result != -1:
                    vote_buffer[m] = result
                    m += 1
            answer_out[r, q] = _majority(vote_buffer, m, vote_count, seen_order)
            cost_out[r, q] = cost
            sequential_out[r, q] = _finish(st, n, dl)
    event_start[R * Q] = ne
    return events


@_jit
def wide_kernel(  # type: ignore[no-untyped-def]
    store,
    orders,
    confidence,
    width,
    depth,
    record,
    answer_out,
    cost_out,
    sequential_out,
    events,
    event_start,
):
    """Wide-then-commit: probe ``width`` branches ``depth`` intervals, keep the most agreeing one."""
    probes = store.probes
    n_probes = store.n_probes
    finals = store.finals
    branch_tokens = store.branch_tokens
    question_delta = store.question_delta
    err_code = store.err_code
    max_vocab = store.max_vocab
    order_table = orders.table
    order_length = orders.length
    order_kind = orders.kind
    R, Q = answer_out.shape
    L = order_table.shape[2]
    K = probes.shape[2]
    st = np.zeros((5, L), dtype=np.int64)
    vote_count = np.zeros(max_vocab, dtype=np.int32)
    H = np.zeros((L + 1, max(depth, 1)), dtype=np.int32)
    SCORE = np.zeros(L + 1, dtype=np.int64)
    ne = 0
    for r in range(R):
        for q in range(Q):
            event_start[r * Q + q] = ne
            u = order_kind[q]
            order = order_table[u, r]
            dl = question_delta[q]
            err = err_code[q]
            n = min(width, order_length[u])
            if record:
                events = _reserve(events, ne, n * (K + 3) + 1)
            cost = 0
            answer = -1
            for i in range(n):
                # advance i: a probe at Δ, or the final answer at the remainder (session rule)
                b = order[i]
                c = st[CUR, i]
                if c < n_probes[q, b]:
                    code = probes[q, b, c]
                    st[CUR, i] = c + 1
                    charge = dl
                    done = False
                else:
                    code = finals[q, b]
                    charge = max(branch_tokens[q, b] - c * dl, 0)
                    st[EXTRA, i] = charge
                    st[FIN, i] = 1
                    done = True
                st[LATEST, i] = code
                cost += charge
                if record:
                    events[ne] = i * 4 + OPEN
                    ne += 1
                H[i, 0] = code
            if n > 0:
                for t in range(1, depth):
                    for k in range(n):
                        if st[FIN, k]:
                            H[k, t] = H[k, t - 1]
                            continue
                        # advance k: a probe at Δ, or the final answer at the remainder (session rule)
                        b = order[k]
                        c = st[CUR, k]
                        if c < n_probes[q, b]:
                            code = probes[q, b, c]
                            st[CUR, k] = c + 1
                            charge = dl
                            done = False
                        else:
                            code = finals[q, b]
                            charge = max(branch_tokens[q, b] - c * dl, 0)
                            st[EXTRA, k] = charge
                            st[FIN, k] = 1
                            done = True
                        st[LATEST, k] = code
                        cost += charge
                        if record:
                            events[ne] = k * 4 + ADVANCE
                            ne += 1
                        H[k, t] = code
                for k in range(n):
                    SCORE[k] = 0
                for t in range(depth):
                    for k in range(n):
                        vote_count[H[k, t]] += 1
                    for k in range(n):
                        a = H[k, t]
                        if a != err:
                            SCORE[k] += vote_count[a] - 1
                    for k in range(n):
                        vote_count[H[k, t]] = 0
                best = 0
                for k in range(1, n):
                    if SCORE[k] > SCORE[best]:
                        best = k
                for k in range(n):
                    if k != best and not st[FIN, k]:
                        st[PRUNED, k] = 1
                        if record:
                            events[ne] = k * 4 + PRUNE
                            ne += 1
                answer = H[best, depth - 1]
                done = st[FIN, best] != 0
                while not done:
                    # advance best: a probe at Δ, or the final answer at the remainder (session rule)
                    b = order[best]
                    c = st[CUR, best]
                    if c < n_probes[q, b]:
                        code = probes[q, b, c]
                        st[CUR, best] = c + 1
                        charge = dl
                        done = False
                    else:
                        code = finals[q, b]
                        charge = max(branch_tokens[q, b] - c * dl, 0)
                        st[EXTRA, best] = charge
                        st[FIN, best] = 1
                        done = True
                    st[LATEST, best] = code
                    cost += charge
                    if record:
                        events[ne] = best * 4 + ADVANCE
                        ne += 1
                    answer = code
            answer_out[r, q] = answer
            cost_out[r, q] = cost
            sequential_out[r, q] = _finish(st, n, dl)
    event_start[R * Q] = ne
    return events
