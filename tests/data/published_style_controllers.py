"""Controllers written the way the original AutoTTS code base writes them (test fixture).

This file deliberately does not import autotts: it defines its own base class, imports
only numpy/scipy/stdlib, is constructed as ``ClassName(config={...})`` and talks to the
question object through ``probe_new()``, ``probe_more(i)`` and
``get_new_branch_final_answer()`` with an entry method ``solve(question)``. The tests
check that autotts runs it unchanged and gets the built-in controllers' numbers.
"""

from collections import Counter

import numpy as np
from scipy.stats import beta as beta_dist


class BaseController:
    def __init__(self, config=None):
        self.config = dict(config or {})

    def solve(self, question):
        raise NotImplementedError

    @staticmethod
    def vote(answers):
        # Counter keeps first-insertion order, so most_common breaks ties by first seen.
        if not answers:
            return None
        return Counter(answers).most_common(1)[0][0]


class AdaptiveConsistency(BaseController):
    """ASC via full reads."""

    def solve(self, question):
        max_samples = int(self.config.get("max_samples", 64))
        threshold = float(self.config.get("threshold", 0.95))
        answers = []
        for _ in range(max_samples):
            try:
                answers.append(question.get_new_branch_final_answer())
            except IndexError:
                break
            if len(answers) >= 2:
                ranked = Counter(answers).most_common(2)
                top1 = ranked[0][1]
                top2 = ranked[1][1] if len(ranked) > 1 else 0
                confidence = 1.0 - beta_dist.cdf(0.5, top1 + 1, top2 + 1)
                if confidence > threshold:
                    return ranked[0][0]
        return self.vote(answers)


class ParallelProbe(BaseController):
    """Parallel-Probe via probe_new / probe_more, bookkeeping in numpy arrays."""

    def solve(self, question):
        chains = int(self.config.get("chains", 64))
        T = int(self.config.get("T", 40))
        warm_up = int(self.config.get("warm_up", 15))
        patience = int(self.config.get("prune_patience", 7))
        burst = int(self.config.get("burst", 1))
        max_steps = int(self.config.get("max_steps", 100))

        index, answer, finished = [], [], []
        for _ in range(chains):
            try:
                ans, idx, fin = question.probe_new()
            except IndexError:
                break
            index.append(idx)
            answer.append(ans)
            finished.append(fin)
        n = len(index)
        if n == 0:
            return None
        finished = np.array(finished, dtype=bool)
        pruned = np.zeros(n, dtype=bool)
        off = np.zeros(n, dtype=int)
        stable, prev = 0, None
        for step in range(max_steps):
            for k in range(n):
                if pruned[k] or finished[k]:
                    continue
                for _ in range(burst):
                    answer[k], fin = question.probe_more(index[k])
                    if fin:
                        finished[k] = True
                        break
            active = [k for k in range(n) if not pruned[k]]
            if not active:
                return prev
            winner = self.vote([answer[k] for k in active])
            if step >= warm_up and len(active) > 1:
                for k in active:
                    if not finished[k]:
                        off[k] = off[k] + 1 if answer[k] != winner else 0
                drop = [k for k in active if not finished[k] and off[k] >= patience]
                if drop:
                    pruned[drop] = True
                    active = [k for k in range(n) if not pruned[k]]
                    if not active:
                        return prev
                    winner = self.vote([answer[k] for k in active])
            stable = stable + 1 if winner == prev else 0
            prev = winner
            if stable >= T:
                return winner
            if all(finished[k] or pruned[k] for k in range(n)):
                break
        return prev
