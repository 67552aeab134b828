"""Run protocols: in which order a run hands out a question's branches.

* ``shuffle`` (reference, produced the published tables): run ``r`` uses the
  permutation ``random.Random(r).shuffle(list(range(N)))`` for every question.
* ``subsample`` (the paper's prose): run ``r`` draws a random subset of ``size``
  branches, in random order, with ``random.Random(r).sample(range(N), size)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from autotts.errors import ConfigError

PROTOCOLS = ("shuffle", "subsample")


@lru_cache(maxsize=4096)
def shuffle_order(n_branches: int, run: int) -> tuple[int, ...]:
    """Branch order of run ``run`` under the reference shuffle protocol."""
    order = list(range(n_branches))
    random.Random(run).shuffle(order)
    return tuple(order)


@lru_cache(maxsize=4096)
def subsample_order(n_branches: int, run: int, size: int) -> tuple[int, ...]:
    """Branch order of run ``run`` under the subsample protocol (``size`` of ``n_branches``)."""
    return tuple(random.Random(run).sample(range(n_branches), min(size, n_branches)))


@dataclass(frozen=True)
class Protocol:
    """A named run protocol with its parameters."""

    name: str = "shuffle"
    size: int = 64
    """Subset size for ``subsample``."""

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.name!r}; choose one of: {', '.join(PROTOCOLS)}")
        if self.size < 1:
            raise ConfigError(f"subsample size must be at least 1, got {self.size}")

    def order(self, n_branches: int, run: int) -> tuple[int, ...]:
        """The branch order for one question with ``n_branches`` branches in run ``run``."""
        if self.name == "shuffle":
            return shuffle_order(n_branches, run)
        return subsample_order(n_branches, run, self.size)

    @property
    def label(self) -> str:
        """Name as shown in records (``subsample:64``)."""
        return self.name if self.name == "shuffle" else f"{self.name}:{self.size}"
