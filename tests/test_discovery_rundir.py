"""The run directory survives a write that fails half-way: old file or none, never a torn one.

``candidate.json`` and ``proposal.json`` are the markers ``--resume`` trusts, and the
manifest, seeds and final results are read back on every resume, so each writer is
driven into a real short write: the process's file-size limit (``RLIMIT_FSIZE``, what a
full disk quota looks like to a writer) is lowered below the size of the new content.
A writer that wrote in place would leave a truncated file behind; an atomic one leaves
the previous content (or nothing) and no temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from autotts.discovery.config import config_from_mapping
from autotts.discovery.history import RunDir
from autotts.discovery.records import CandidateRecord, CurvePoint, Status, Usage

LIMIT = 64 * 1024
BIG = "x" * (4 * LIMIT)


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG (instead of killing the process) inside the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def make_run(tmp_path: Path) -> RunDir:
    cfg = config_from_mapping({"stores": {"search": ["s.json"]}}, base_dir=tmp_path, source="t")
    return RunDir.create(tmp_path / "run", cfg, "# config\n")


def record(cid: str, message: str = "fine") -> CandidateRecord:
    curve = (CurvePoint(0.0, 70.0, 1000.0), CurvePoint(1.0, 80.0, 5000.0))
    return CandidateRecord(
        cid,
        int(cid[1:3]),
        int(cid[4:6]),
        Status.OK,
        message=message,
        curves={"m/b": curve},
        search_curve=curve,
        eval_seconds=1.25,
    )


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# Each case: what to write first (normally), and the write that runs into the limit.
Write = Callable[[RunDir], None]
CASES: dict[str, tuple[Write, Write]] = {
    "candidate.json (new)": (
        lambda run: run.write_proposal(1, 1, response="r", code="class C: pass\n", usage=Usage(calls=1)),
        lambda run: run.write_candidate(record("r01c01", BIG)),
    ),
    "candidate.json (rewritten)": (
        lambda run: run.write_candidate(record("r01c01")),
        lambda run: run.write_candidate(record("r01c01", BIG)),
    ),
    "proposal.json": (
        lambda run: None,
        lambda run: run.write_proposal(1, 1, response="r", code=None, usage=Usage(calls=1), message=BIG),
    ),
    "manifest.json": (
        lambda run: run.update_manifest(stop_reason="cap"),
        lambda run: run.update_manifest(error=BIG),
    ),
    "seeds.json": (
        lambda run: run.write_seeds({"specs": ["sc"], "evaluated": {}}),
        lambda run: run.write_seeds({"specs": ["sc"], "evaluated": {"sc": BIG}}),
    ),
    "final.json": (
        lambda run: run.write_final({"rows": []}),
        lambda run: run.write_final({"rows": [BIG]}),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_write_that_fails_half_way_leaves_the_previous_file(case: str, tmp_path: Path) -> None:
    setup, write = CASES[case]
    run = make_run(tmp_path)
    setup(run)
    before = files(run.path)
    with file_size_limit(LIMIT), pytest.raises(OSError) as info:
        write(run)
    assert info.value.errno == errno.EFBIG
    after = files(run.path)
    # The file being written still holds its previous content (or is still absent), files
    # that existed are unchanged, and no temporary file is left behind. Files a writer
    # stores before its marker may have appeared, but whole.
    target = {
        "candidate.json (new)": "rounds/r01/c01/candidate.json",
        "candidate.json (rewritten)": "rounds/r01/c01/candidate.json",
        "proposal.json": "rounds/r01/c01/proposal.json",
    }.get(case, case)
    assert after.get(target) == before.get(target)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not [k for k in after if k.endswith(".tmp")]
    for name, data in after.items():
        if name.endswith(".json"):
            json.loads(data)
    # And a resumed run reads the directory as it was.
    reopened = RunDir.open(run.path)
    assert reopened.manifest()["format"] == 1
    assert [r.id for r in reopened.candidates()] == [r.id for r in run.candidates()]
    assert reopened.proposal(1, 1) == run.proposal(1, 1)


def test_without_the_limit_the_same_writes_succeed(tmp_path: Path) -> None:
    # The cases above fail because of the limit, not because the content cannot be written.
    run = make_run(tmp_path)
    for setup, write in CASES.values():
        setup(run)
        write(run)
    assert run.candidate(1, 1) == record("r01c01", BIG)
    assert run.manifest()["error"] == BIG
    assert run.final() == {"rows": [BIG]}
    assert json.loads((run.path / "seeds.json").read_text())["evaluated"]["sc"] == BIG


def test_a_torn_marker_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    # What an in-place writer would have left: the reader names the file instead of crashing.
    from autotts.discovery.errors import RunDirError

    run = make_run(tmp_path)
    run.write_candidate(record("r01c01"))
    marker = run.slot(1, 1) / "candidate.json"
    marker.write_text(marker.read_text()[:40])
    with pytest.raises(RunDirError, match=r"cannot read candidate\.json"):
        run.candidates()
