"""Replay evaluation: protocols, runner, metrics and result records."""

from autotts.env.protocols import Protocol, shuffle_order, subsample_order
from autotts.env.session import QuestionTrace
from autotts.evaluation.results import CellResult, Summary, cell_label, grade, grade_cell, summarize
from autotts.evaluation.runner import evaluate, expand_cells, records, run_cell

__all__ = [
    "CellResult",
    "Protocol",
    "QuestionTrace",
    "Summary",
    "cell_label",
    "evaluate",
    "expand_cells",
    "grade",
    "grade_cell",
    "records",
    "run_cell",
    "shuffle_order",
    "subsample_order",
    "summarize",
]
