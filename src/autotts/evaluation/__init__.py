"""Replay evaluation: protocols, runner, metrics and result records."""

from autotts.evaluation.protocols import Protocol, shuffle_order, subsample_order
from autotts.evaluation.results import CellResult, QuestionTrace
from autotts.evaluation.runner import evaluate, expand_cells, records, run_cell

__all__ = [
    "CellResult",
    "Protocol",
    "QuestionTrace",
    "evaluate",
    "expand_cells",
    "records",
    "run_cell",
    "shuffle_order",
    "subsample_order",
]
