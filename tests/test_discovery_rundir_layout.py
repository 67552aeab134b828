"""The run directory's documented layout, manifest and read-back, file by file.

``autotts discover`` users (and ``--resume``, reports, viewers) read these files: their
names, the manifest's fields, what each reader returns for a missing or damaged file,
and that the JSON is indented UTF-8 a human can read, are all part of the contract
(see :mod:`autotts.discovery.history`). The half-write behaviour is in
``tests/test_discovery_rundir.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import os
import stat
from pathlib import Path

import pytest

from autotts.discovery.config import config_from_mapping
from autotts.discovery.errors import RunDirError
from autotts.discovery.evaluate import Episode
from autotts.discovery.history import FORMAT, MANIFEST, Proposal, RunDir, read_json, write_json
from autotts.discovery.records import CandidateRecord, CurvePoint, Status, Usage
from autotts.errors import ConfigError


def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    return config_from_mapping(
        {"name": "nightly", "stores": {"search": ["s.json"]}}, base_dir=tmp_path, source="discover.toml"
    )


def record(round_: int, index: int, accuracy: float = 70.0) -> CandidateRecord:
    curve = (CurvePoint(0.0, accuracy, 1000.0), CurvePoint(1.0, accuracy + 5, 5000.0))
    return CandidateRecord(
        f"r{round_:02d}c{index:02d}",
        round_,
        index,
        Status.OK,
        message="fine",
        curves={"m/b": curve},
        search_curve=curve,
        eval_seconds=1.25,
    )


def episode(question: int) -> Episode:
    return Episode(
        "m/b", 0.5, 0, question, "42", True, 300, (("open", 0, 0, None, 100, 100),), ((1, True, False),), 1, 1
    )


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_new_run_directory_holds_config_copy_and_a_running_manifest(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run = RunDir.create(tmp_path / "run", cfg, "# my settings\nname = 'nightly'\n")
    assert run.path == tmp_path / "run"
    assert tree(run.path) == ["config.json", "config.toml", "manifest.json"]
    assert (run.path / "config.toml").read_text(encoding="utf-8") == "# my settings\nname = 'nightly'\n"
    assert (run.path / "config.json").read_text(encoding="utf-8") == cfg.to_json()
    assert run.config().name == "nightly"
    m = run.manifest()
    assert m == {
        "format": FORMAT,
        "name": "nightly",
        "created": m["created"],
        "updated": m["updated"],
        "state": "running",
        "phase_seconds": {},
        "stop_reason": None,
        "error": None,
    }
    for key in ("created", "updated"):
        stamp = dt.datetime.fromisoformat(m[key])
        assert stamp.tzinfo is not None and stamp.microsecond == 0  # UTC, to the second
        assert before <= stamp <= dt.datetime.now(dt.UTC)
    # Without the user's file (a run started from the Python API) there is no config.toml.
    bare = RunDir.create(tmp_path / "bare", cfg)
    assert tree(bare.path) == ["config.json", "manifest.json"]


def test_run_directory_files_are_readable_like_any_other_file(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    run.write_proposal(1, 1, response="r", code="class C: pass\n", usage=Usage(calls=1))
    mask = os.umask(0)
    os.umask(mask)
    for name in tree(run.path):
        assert stat.S_IMODE((run.path / name).stat().st_mode) == 0o666 & ~mask, name


def test_json_files_are_indented_utf8_for_humans(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "x.json"
    write_json(path, {"name": "Größe ≥ 2", "n": [1]})
    assert path.read_bytes() == '{\n  "name": "Größe ≥ 2",\n  "n": [\n    1\n  ]\n}\n'.encode()
    assert read_json(path) == {"name": "Größe ≥ 2", "n": [1]}


def test_a_damaged_or_missing_json_file_is_a_run_dir_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"cut', encoding="utf-8")
    with pytest.raises(RunDirError, match=r"cannot read bad\.json: ") as info:
        read_json(tmp_path / "bad.json")
    assert info.value.path == str(tmp_path)
    with pytest.raises(RunDirError, match=r"cannot read gone\.json: "):
        read_json(tmp_path / "gone.json")


def test_create_refuses_a_used_directory_and_says_what_to_do(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    RunDir.create(tmp_path / "run", cfg)
    with pytest.raises(RunDirError) as info:
        RunDir.create(tmp_path / "run", cfg)
    assert str(info.value) == f"{tmp_path / 'run'}: already holds a discovery run; continue it with --resume"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(RunDirError) as info:
        RunDir.create(other, cfg)
    assert str(info.value) == f"{other}: exists and is not empty; choose a new run directory"
    assert tree(other) == ["notes.txt"]
    nested = RunDir.create(tmp_path / "runs" / "2026" / "nightly", cfg)  # parents are made as needed
    assert tree(nested.path) == ["config.json", "manifest.json"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert tree(RunDir.create(empty, cfg).path) == ["config.json", "manifest.json"]


def test_open_checks_the_directory_the_manifest_and_its_format(tmp_path: Path) -> None:
    with pytest.raises(RunDirError) as info:
        RunDir.open(tmp_path / "nowhere")
    assert str(info.value) == f"{tmp_path / 'nowhere'}: no such run directory"
    with pytest.raises(RunDirError) as info:
        RunDir.open(tmp_path)
    assert str(info.value) == f"{tmp_path}: is not a discovery run directory (no manifest.json)"
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    assert RunDir.open(run.path).manifest() == run.manifest()
    run.update_manifest(format=FORMAT + 1)
    with pytest.raises(RunDirError) as info:
        RunDir.open(run.path)
    assert str(info.value) == f"{run.path}: run directory format {FORMAT + 1} is not supported (expected {FORMAT})"
    (run.path / MANIFEST).write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(RunDirError) as info:
        run.manifest()
    assert str(info.value) == f"{run.path}: manifest.json is not an object"


def test_manifest_updates_keep_other_fields_and_phase_time_accumulates(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    created = run.manifest()["created"]
    run.update_manifest(state="stopped", stop_reason="budget")
    run.add_phase_seconds("propose", 1.25)
    run.add_phase_seconds("evaluate", 0.5)
    run.add_phase_seconds("propose", 2.0004)
    m = RunDir.open(run.path).manifest()
    assert m["state"] == "stopped" and m["stop_reason"] == "budget" and m["created"] == created
    assert m["phase_seconds"] == {"propose": 3.25, "evaluate": 0.5}
    # a manifest from an older run without the field starts from zero
    run.update_manifest(phase_seconds=None)
    run.add_phase_seconds("final", 4.0)
    assert run.manifest()["phase_seconds"] == {"final": 4.0}


def test_a_slot_holds_the_documented_files_and_markers(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    assert run.slot(3, 12) == run.path / "rounds" / "r03" / "c12"
    run.write_prompt(3, 12, "show this")
    usage = Usage(calls=1, input_tokens=10, output_tokens=20, money=0.5, seconds=2.0, attempts=2)
    assert run.proposal(3, 12) is None  # the call never completed
    run.write_proposal(3, 12, response="raw answer", code="class C: ...\n", usage=usage, message="one block")
    slot = run.slot(3, 12)
    assert tree(slot) == ["controller.py", "prompt.txt", "proposal.json", "response.txt", "usage.json"]
    assert (slot / "prompt.txt").read_text(encoding="utf-8") == "show this"
    assert (slot / "response.txt").read_text(encoding="utf-8") == "raw answer"
    marker = read_json(slot / "proposal.json")
    assert marker == {"id": "r03c12", "code_found": True, "message": "one block", "created": marker["created"]}
    assert run.proposal(3, 12) == Proposal("class C: ...\n", "one block", usage)
    assert run.candidate(3, 12) is None  # proposed, not evaluated yet
    done = record(3, 12)
    episodes = (episode(0), episode(1))
    run.write_candidate(done, digest="q0: A A B", violations=[{"rule": "import"}], episodes=episodes)
    assert tree(slot) == [
        "candidate.json",
        "controller.py",
        "digest.txt",
        "prompt.txt",
        "proposal.json",
        "response.txt",
        "traces.json.gz",
        "usage.json",
        "validation.json",
    ]
    assert read_json(slot / "validation.json") == {"violations": [{"rule": "import"}]}
    with gzip.open(slot / "traces.json.gz", "rt", encoding="utf-8") as fh:
        traces = json.load(fh)
    assert [t["question"] for t in traces] == [0, 1] and traces[0]["answer"] == "42"
    assert run.candidate(3, 12) == done
    assert run.code(done) == "class C: ...\n"
    assert run.digest(done) == "q0: A A B"


def test_traces_hold_every_episode_field_as_json_and_the_same_episodes_give_the_same_bytes(tmp_path: Path) -> None:
    # The file is what ``asdict`` of each episode reads as JSON (tuples become lists, notes
    # and the non-default fields included), and its gzip header carries no time or name.
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    rich = Episode(
        "m/b",
        None,
        3,
        7,
        None,
        False,
        1234,
        (("open", 0, 0, None, 100, 100), ("advance", 0, 1, "7", 50, 150)),
        ((1, False, True), (2, True, False)),
        9,
        2,
        notes=((1, "switch to branch 0"),),
        gold_seen=True,
    )
    episodes = (episode(0), rich)
    run.write_candidate(record(1, 1), episodes=episodes)
    first = (run.slot(1, 1) / "traces.json.gz").read_bytes()
    assert json.loads(gzip.decompress(first)) == json.loads(json.dumps([dataclasses.asdict(e) for e in episodes]))
    run.write_candidate(record(1, 2), episodes=episodes)
    assert (run.slot(1, 2) / "traces.json.gz").read_bytes() == first


def test_a_proposal_without_code_or_usage_reads_back_as_such(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    run.write_proposal(1, 1, response="no code here", code=None, usage=Usage(calls=1), message="no code block")
    slot = run.slot(1, 1)
    assert "controller.py" not in tree(slot)
    assert read_json(slot / "proposal.json")["code_found"] is False
    assert run.proposal(1, 1) == Proposal(None, "no code block", Usage(calls=1))
    (slot / "usage.json").unlink()  # a run from before usage was recorded
    got = run.proposal(1, 1)
    assert got is not None and got.usage == Usage()
    run.write_candidate(record(1, 1))
    done = run.candidate(1, 1)
    assert done is not None
    assert run.code(done) is None and run.digest(done) == ""
    assert read_json(slot / "validation.json") == {"violations": []}
    assert "traces.json.gz" not in tree(slot)  # no episodes, no file


def test_candidates_and_usage_cover_every_finished_slot_in_order(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    for r, i in ((2, 1), (1, 10), (1, 2)):
        run.write_proposal(r, i, response="", code=None, usage=Usage(calls=1, input_tokens=r * 100 + i))
        run.write_candidate(record(r, i))
    run.write_proposal(3, 1, response="", code=None, usage=Usage(calls=2, input_tokens=5, reported=False))
    assert [c.id for c in run.candidates()] == ["r01c02", "r01c10", "r02c01"]
    got = run.proposal(2, 1)
    assert got is not None and got.message == ""  # no message given
    assert [run.relative(p) for p in run.usage_files()] == [
        os.path.join("rounds", "r01", "c02", "usage.json"),
        os.path.join("rounds", "r01", "c10", "usage.json"),
        os.path.join("rounds", "r02", "c01", "usage.json"),
        os.path.join("rounds", "r03", "c01", "usage.json"),
    ]
    assert run.usage_total() == Usage(calls=5, input_tokens=102 + 110 + 201 + 5, reported=False)


def test_seeds_and_final_results_read_back_and_are_none_before(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    assert run.seeds() is None and run.final() is None
    run.write_seeds({"specs": ["sc"], "evaluated": {"sc": [1, 2]}})
    run.write_final({"rows": [{"label": "C", "accuracy": 80.0}]})
    assert tree(run.path) == ["config.json", "final.json", "manifest.json", "seeds.json"]
    assert run.seeds() == {"specs": ["sc"], "evaluated": {"sc": [1, 2]}}
    assert run.final() == {"rows": [{"label": "C", "accuracy": 80.0}]}
    assert run.relative(run.path / "final.json") == "final.json"


def test_cleanup_removes_only_the_leftovers_of_interrupted_writes(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    run.write_prompt(1, 1, "p")
    leftovers = [run.path / ".manifest.json.abc.tmp", run.slot(1, 1) / ".candidate.json.x1.tmp"]
    for p in leftovers:
        p.write_text("half", encoding="utf-8")
    (run.path / "notes.tmp").write_text("mine", encoding="utf-8")
    assert run.cleanup_tmp() == 2
    assert not any(p.exists() for p in leftovers)
    assert (run.path / "notes.tmp").is_file() and (run.slot(1, 1) / "prompt.txt").is_file()
    assert run.cleanup_tmp() == 0


def test_a_damaged_stored_configuration_names_its_file(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    (run.path / "config.json").write_text('{"stores": {"search": []}}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        run.config()
    assert str(info.value) == (
        f"{run.path / 'config.json'}: stores.search must name at least one store file or directory"
    )


def test_every_manifest_update_stamps_the_time(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    run.update_manifest(updated="2000-01-01T00:00:00+00:00", state="stopped")
    m = run.manifest()
    assert m["state"] == "stopped"
    assert dt.datetime.fromisoformat(m["updated"]).year >= 2026


def test_slots_written_by_older_runs_read_back_with_defaults(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    run.write_proposal(1, 1, response="r", code="pass\n", usage=Usage(calls=1), message="m")
    slot = run.slot(1, 1)
    write_json(slot / "proposal.json", {"id": "r01c01", "code_found": True})  # no message recorded
    got = run.proposal(1, 1)
    assert got is not None and got.message == "" and got.code == "pass\n"
    done = record(1, 1)
    run.write_candidate(done, digest="d")
    (slot / "digest.txt").unlink()
    assert run.digest(done) == ""


def test_a_leftover_that_cannot_be_removed_does_not_stop_the_cleanup(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", config(tmp_path))
    (run.path / ".odd.tmp").mkdir()  # a directory: unlink fails
    (run.path / ".manifest.json.x.tmp").write_text("half", encoding="utf-8")
    assert run.cleanup_tmp() == 1
    assert (run.path / ".odd.tmp").is_dir() and not (run.path / ".manifest.json.x.tmp").exists()


def test_run_directories_are_utf8_whatever_the_locale(tmp_path: Path) -> None:
    # A resumed run on a machine with an ASCII locale reads what a UTF-8 one wrote.
    import subprocess
    import sys

    run = RunDir.create(tmp_path / "run", config(tmp_path))
    code = "# Größe ≥ 2 → mehr Zweige\nclass C: ...\n"
    run.write_proposal(1, 1, response="r", code=code, usage=Usage(calls=1), message="Größe")
    run.write_candidate(record(1, 1), digest="q0: ≥ ≤")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from autotts.discovery.evaluate import Episode\n"
        "from autotts.discovery.history import RunDir\n"
        "run = RunDir.open(Path(sys.argv[1]))\n"
        "rec = run.candidate(1, 1)\n"
        "p = run.proposal(1, 1)\n"
        "print(ascii([p.code, p.message, run.code(rec), run.digest(rec)]))\n"
        "e = Episode('m/b', 0.5, 0, 0, '\\u2265', True, 10, (), (), 0, 0)\n"  # the script itself is ASCII
        "run.write_candidate(rec, digest='d', episodes=(e,))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONUTF8", "PYTHONIOENCODING"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    out = subprocess.run(
        [sys.executable, "-c", script, str(run.path)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ascii([code, "Größe", code, "q0: ≥ ≤"])
    with gzip.open(run.slot(1, 1) / "traces.json.gz", "rt", encoding="utf-8") as fh:
        assert json.load(fh)[0]["answer"] == "≥"
