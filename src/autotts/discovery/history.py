"""The run directory: one folder per candidate, a manifest, every write atomic.

Layout::

    RUN_DIR/
      manifest.json              format, state, phase wall-clock, stop reason, error
      config.json                the resolved configuration (what --resume reads)
      config.toml                a verbatim copy of the user's file (for humans)
      seeds.json                 seed controllers' curves on the search stores
      rounds/r01/c01/
        prompt.txt | workspace/  what the explorer was shown
        response.txt             its raw answer (redacted)
        usage.json               tokens, money, time of the proposer call(s)
        controller.py            the extracted candidate program
        proposal.json            marker: the proposal is complete
        validation.json          static-check violations
        digest.txt               trace digest shown to later rounds
        traces.json.gz           the traced episodes (for reports and viewers)
        candidate.json           marker: status, findings, curves — the candidate is done
      final.json                 the final evaluation (written after selection)
      summary.json, summary.md, discovered_controller.py

A slot with ``candidate.json`` is finished; one with ``proposal.json`` only needs to
be evaluated; anything else is proposed again. Markers are written last, and every
file is replaced atomically, so ``kill -9`` at any moment loses at most the in-flight
proposer call and never leaves a half-written file that a resumed run would trust.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from autotts._atomic import atomic_path, write_text_atomic
from autotts.discovery.config import DiscoverConfig, config_from_mapping
from autotts.discovery.errors import RunDirError
from autotts.discovery.evaluate import Episode
from autotts.discovery.records import CandidateRecord, Usage, candidate_id

FORMAT = 1
MANIFEST = "manifest.json"
_EPISODE_FIELDS = fields(Episode)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _episode_json(episode: Episode) -> dict[str, Any]:
    """An episode as a JSON-ready dict, field by field.

    The same JSON as ``dataclasses.asdict`` (its nested values are tuples of scalars,
    which JSON writes as lists) without ``asdict``'s deep copy of every event tuple,
    which cost more than the rest of a candidate's bookkeeping.
    """
    return {f.name: getattr(episode, f.name) for f in _EPISODE_FIELDS}


def _gzip_json(data: Any) -> bytes:
    """``data`` as compact JSON, gzip-compressed with a fixed header (same data, same bytes).

    One ``json.dumps`` call uses the C encoder (``json.dump`` to a stream does not), and
    level 6 compresses a candidate's traces about four times faster than gzip's default 9
    for ~2 % more bytes.
    """
    return gzip.compress(json.dumps(data).encode("utf-8"), compresslevel=6, mtime=0)


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`; a damaged file is a RunDirError."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"cannot read {path.name}: {exc}", path=str(path.parent)) from None


@dataclass(frozen=True)
class Proposal:
    """A completed proposer call as stored in a slot."""

    code: str | None
    message: str
    usage: Usage


class RunDir:
    """A discovery run directory (see the module docstring for the layout)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, path: Path, config: DiscoverConfig, config_text: str | None = None) -> RunDir:
        """Start a new run directory; refuses a non-empty existing directory."""
        if path.exists() and any(path.iterdir()):
            if (path / MANIFEST).is_file():
                raise RunDirError("already holds a discovery run; continue it with --resume", path=str(path))
            raise RunDirError("exists and is not empty; choose a new run directory", path=str(path))
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        write_text_atomic(path / "config.json", config.to_json())
        if config_text is not None:
            write_text_atomic(path / "config.toml", config_text)
        write_json(
            path / MANIFEST,
            {
                "format": FORMAT,
                "name": config.name,
                "created": _now(),
                "updated": _now(),
                "state": "running",
                "phase_seconds": {},
                "stop_reason": None,
                "error": None,
            },
        )
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """Open an existing run directory for resuming."""
        if not path.is_dir():
            raise RunDirError("no such run directory", path=str(path))
        if not (path / MANIFEST).is_file():
            raise RunDirError("is not a discovery run directory (no manifest.json)", path=str(path))
        run = cls(path)
        fmt = run.manifest().get("format")
        if fmt != FORMAT:
            raise RunDirError(f"run directory format {fmt!r} is not supported (expected {FORMAT})", path=str(path))
        return run

    def config(self) -> DiscoverConfig:
        """The resolved configuration stored at creation."""
        data = read_json(self.path / "config.json")
        return config_from_mapping(data, base_dir=self.path, source=str(self.path / "config.json"))

    def cleanup_tmp(self) -> int:
        """Remove temporary files left by writes interrupted with ``kill -9``; return how many."""
        n = 0
        for p in self.path.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
        return n

    # ------------------------------------------------------------------- manifest
    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict."""
        data = read_json(self.path / MANIFEST)
        if not isinstance(data, dict):
            raise RunDirError("manifest.json is not an object", path=str(self.path))
        return data

    def update_manifest(self, **changes: Any) -> None:
        """Change manifest fields (atomically)."""
        m = self.manifest()
        m.update(changes)
        m["updated"] = _now()
        write_json(self.path / MANIFEST, m)

    def add_phase_seconds(self, phase: str, seconds: float) -> None:
        """Accumulate wall-clock time of a phase (kept across resumes)."""
        m = self.manifest()
        phases = dict(m.get("phase_seconds") or {})
        phases[phase] = round(float(phases.get(phase, 0.0)) + seconds, 3)
        self.update_manifest(phase_seconds=phases)

    # ---------------------------------------------------------------------- slots
    def slot(self, round_: int, index: int) -> Path:
        """The folder of candidate ``index`` of round ``round_``."""
        return self.path / "rounds" / f"r{round_:02d}" / f"c{index:02d}"

    def write_prompt(self, round_: int, index: int, prompt: str) -> None:
        """Store what the explorer is about to be shown (before the call)."""
        write_text_atomic(self.slot(round_, index) / "prompt.txt", prompt)

    def write_proposal(
        self, round_: int, index: int, *, response: str, code: str | None, usage: Usage, message: str = ""
    ) -> None:
        """Store a completed proposer call; ``proposal.json`` is written last (the marker)."""
        slot = self.slot(round_, index)
        write_text_atomic(slot / "response.txt", response)
        write_json(slot / "usage.json", usage.to_json())
        if code is not None:
            write_text_atomic(slot / "controller.py", code)
        write_json(
            slot / "proposal.json",
            {"id": candidate_id(round_, index), "code_found": code is not None, "message": message, "created": _now()},
        )

    def proposal(self, round_: int, index: int) -> Proposal | None:
        """The stored proposal of a slot, or None if the call never completed."""
        slot = self.slot(round_, index)
        marker = slot / "proposal.json"
        if not marker.is_file():
            return None
        meta = read_json(marker)
        code = (slot / "controller.py").read_text(encoding="utf-8") if meta.get("code_found") else None
        usage = Usage.from_json(read_json(slot / "usage.json")) if (slot / "usage.json").is_file() else Usage()
        return Proposal(code, str(meta.get("message", "")), usage)

    def write_candidate(
        self,
        record: CandidateRecord,
        *,
        digest: str = "",
        violations: list[dict[str, Any]] | None = None,
        episodes: tuple[Episode, ...] = (),
    ) -> None:
        """Store a finished candidate; ``candidate.json`` is written last (the marker)."""
        slot = self.slot(record.round, record.index)
        write_json(slot / "validation.json", {"violations": violations or []})
        write_text_atomic(slot / "digest.txt", digest)
        if episodes:
            with atomic_path(slot / "traces.json.gz") as tmp:
                tmp.write_bytes(_gzip_json([_episode_json(e) for e in episodes]))
        write_json(slot / "candidate.json", record.to_json())

    def candidate(self, round_: int, index: int) -> CandidateRecord | None:
        """The finished record of a slot, or None."""
        marker = self.slot(round_, index) / "candidate.json"
        if not marker.is_file():
            return None
        return CandidateRecord.from_json(read_json(marker))

    def candidates(self) -> list[CandidateRecord]:
        """Every finished candidate, in (round, index) order."""
        out = []
        for marker in sorted((self.path / "rounds").glob("r*/c*/candidate.json")):
            out.append(CandidateRecord.from_json(read_json(marker)))
        return sorted(out, key=lambda r: (r.round, r.index))

    def code(self, record: CandidateRecord) -> str | None:
        """The source of a candidate, if any was extracted."""
        p = self.slot(record.round, record.index) / "controller.py"
        return p.read_text(encoding="utf-8") if p.is_file() else None

    def digest(self, record: CandidateRecord) -> str:
        """The stored trace digest of a candidate ('' if none)."""
        p = self.slot(record.round, record.index) / "digest.txt"
        return p.read_text(encoding="utf-8") if p.is_file() else ""

    def usage_files(self) -> Iterator[Path]:
        """Every usage record of the run."""
        yield from sorted((self.path / "rounds").glob("r*/c*/usage.json"))

    def usage_total(self) -> Usage:
        """Explorer usage summed over every completed proposer call (survives resumes)."""
        total = Usage()
        for p in self.usage_files():
            total = total + Usage.from_json(read_json(p))
        return total

    # -------------------------------------------------------------- other results
    def write_seeds(self, data: Mapping[str, Any]) -> None:
        """Store the seed controllers' search curves."""
        write_json(self.path / "seeds.json", dict(data))

    def seeds(self) -> dict[str, Any] | None:
        """The stored seed curves, if computed."""
        p = self.path / "seeds.json"
        return read_json(p) if p.is_file() else None

    def write_final(self, data: Mapping[str, Any]) -> None:
        """Store the final evaluation."""
        write_json(self.path / "final.json", dict(data))

    def final(self) -> dict[str, Any] | None:
        """The stored final evaluation, if done."""
        p = self.path / "final.json"
        return read_json(p) if p.is_file() else None

    def relative(self, p: Path) -> str:
        """``p`` relative to the run directory (for reports)."""
        return os.path.relpath(p, self.path)
