"""What every proposer gets and returns, code extraction, and key redaction.

A proposer turns a :class:`ProposalRequest` (the rendered prompt, the workspace files,
the history) into a :class:`ProposalResult` (raw response, extracted code, usage). A
response without usable code is a normal result (``code=None`` plus a message): the
loop records the candidate as ``invalid`` and moves on. Only infrastructure failures
(bad key, retries exhausted, a missing agent command) raise
:class:`~autotts.discovery.errors.ProposerError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from autotts.discovery.records import CandidateRecord, Usage
from autotts.llm.secrets import REDACTED, redact

__all__ = ["REDACTED", "HistoryItem", "ProposalRequest", "ProposalResult", "Proposer", "extract_code", "redact"]


@dataclass(frozen=True)
class HistoryItem:
    """One earlier candidate as proposers see it."""

    record: CandidateRecord
    code: str | None
    digest: str = ""


@dataclass(frozen=True)
class ProposalRequest:
    """Everything a proposer may use to propose one candidate."""

    candidate_id: str
    round: int
    index: int
    system: str
    prompt: str
    history: Sequence[HistoryItem] = ()
    workspace_files: Mapping[str, str] = field(default_factory=dict)
    """Files of the agent workspace (relative path -> text), ``controller.py`` included."""
    starting_code: str = ""
    rng_seed: int = 0
    slot_dir: Path | None = None
    """The candidate's folder in the run directory (where a workspace snapshot goes)."""


@dataclass(frozen=True)
class ProposalResult:
    """The raw response, the extracted program (None if there is none) and what it cost."""

    response: str
    code: str | None
    usage: Usage
    message: str = ""


class Proposer(Protocol):
    """The explorer interface."""

    kind: str

    def propose(self, request: ProposalRequest) -> ProposalResult:
        """Propose one candidate."""
        ...

    def max_cost(self, request: ProposalRequest) -> float:
        """An upper bound of the money one call may cost (0 when unknown or free)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def extract_code(text: str) -> tuple[str | None, str]:
    """The controller program in an explorer's reply, and a note on how it was found.

    Prefers the last fenced ``python`` block that defines a class; falls back to the
    last fenced block of any language with a class, then to the whole reply when it
    is bare Python with a class. An unterminated final fence (a reply cut by the
    token limit) is reported as such.
    """
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    py = [b for lang, b in blocks if lang in ("python", "py", "python3") and "class " in b]
    if py:
        return py[-1].strip() + "\n", "last python code block"
    anyb = [b for _, b in blocks if "class " in b and "def solve" in b]
    if anyb:
        return anyb[-1].strip() + "\n", "last code block"
    stripped = text.strip()
    if stripped.count("```") % 2 == 1:
        return None, "the reply ends inside an unterminated code block (was it cut off by max_tokens?)"
    if "class " in stripped and "def solve" in stripped and "```" not in stripped:
        return stripped + "\n", "whole reply"
    return None, "the reply contains no Python code block defining the controller class"
