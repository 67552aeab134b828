r"""Building replay stores from a live model server, and the branch recipe live sessions share.

* :mod:`autotts.collect.answers` — ``\boxed{}`` extraction and answer normalisation
  (one recipe for gold answers, probes and finals);
* :mod:`autotts.collect.recipe` — prompt templates, growing a branch by Δ tokens,
  probing a prefix (:class:`Brancher`);
* :mod:`autotts.collect.config`, :mod:`~autotts.collect.benchmark` — the TOML config
  and the benchmark file of ``autotts collect``;
* :mod:`autotts.collect.checkpoint` — the crash-safe SQLite (WAL) record of a run;
* :mod:`autotts.collect.runner` — the collector (:func:`collect`, :func:`plan_collection`);
* :mod:`autotts.collect.canonical` — opt-in math-verify answer canonicalisation.

The runner and its config are imported from their modules (``from
autotts.collect.runner import collect``) so that live sessions importing the recipe do
not load them.
"""

from __future__ import annotations

from autotts.collect.answers import (
    Normalization,
    boxed_answers,
    extract_final,
    extract_probe,
    last_boxed,
    normalize_answer,
    normalize_gold,
    take_braced,
)
from autotts.collect.recipe import (
    PRESETS,
    Brancher,
    BranchState,
    Probe,
    ProbeRecipe,
    PromptTemplate,
    Recipe,
    Sampling,
    TokenPrompts,
    request_seed,
    template_from,
)

__all__ = [
    "PRESETS",
    "BranchState",
    "Brancher",
    "Normalization",
    "Probe",
    "ProbeRecipe",
    "PromptTemplate",
    "Recipe",
    "Sampling",
    "TokenPrompts",
    "boxed_answers",
    "extract_final",
    "extract_probe",
    "last_boxed",
    "normalize_answer",
    "normalize_gold",
    "request_seed",
    "take_braced",
    "template_from",
]
