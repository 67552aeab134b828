"""The synthetic generative model: determinism, knob effects, invariants, validation, CLI."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from autotts.cli.main import main
from autotts.env.checker import check_env, check_session
from autotts.env.process import ReplayEnv
from autotts.env.session import ReplaySession
from autotts.errors import ConfigError
from autotts.evaluation import evaluate
from autotts.store import load_store, save_store
from autotts.store.schema import ERR, ReplayStore
from autotts.store.synthetic import PROFILES, SynthConfig, get_profile, knob_names, parse_knob, synthesize
from autotts.store.validate import Severity, validate_store
from autotts.testing import tiny_store, write_tiny_store


def pass_at_1(store: ReplayStore) -> float:
    return float(np.mean([np.mean([b.final == q.gold for b in q.branches]) for q in store.questions]))


def unsettled(store: ReplayStore) -> list[str]:
    """Probes before each branch settles on its final answer."""
    out: list[str] = []
    for q in store.questions:
        for b in q.branches:
            s = len(b.probes)
            while s > 0 and b.probes[s - 1] == b.final:
                s -= 1
            out.extend(b.probes[:s])
    return out


# ------------------------------------------------------------------- determinism


def test_same_seed_same_store_and_different_seed_different_store() -> None:
    a = synthesize("large", seed=3, questions=5, branches=32)
    b = synthesize("large", seed=3, questions=5, branches=32)
    c = synthesize("large", seed=4, questions=5, branches=32)
    assert a.questions == b.questions
    assert a.meta == b.meta
    assert a.questions != c.questions


def test_question_i_does_not_depend_on_the_number_of_questions() -> None:
    few = synthesize("small", seed=11, questions=3, branches=24)
    many = synthesize("small", seed=11, questions=7, branches=24)
    assert few.questions == many.questions[:3]


def test_tiny_store_defaults_and_names() -> None:
    store = tiny_store()
    assert len(store) == 6 and all(len(q.branches) == 16 for q in store.questions)
    assert store.name == "tiny-large/seed0"
    assert tiny_store(seed=1).name == "tiny-large/seed1"
    assert tiny_store().questions == store.questions


# ------------------------------------------------------------------- metadata


def test_meta_records_profile_seed_and_every_knob() -> None:
    store = synthesize("small", seed=9, questions=2, branches=8, err_rate=0.2)
    assert store.meta.source == "synthetic:small"
    settings = dict(store.meta.settings)
    assert settings["profile"] == "small" and settings["seed"] == 9
    assert settings["err_rate"] == 0.2 and settings["questions"] == 2
    assert set(knob_names()) <= set(settings)
    # The profile's own values are recorded, not the bare defaults.
    assert settings["tokens_wrong"] == PROFILES["small"].knobs["tokens_wrong"]


def test_custom_config_is_labelled_custom() -> None:
    store = synthesize(SynthConfig(questions=2, branches=4), seed=0)
    assert store.meta.source == "synthetic:custom"


# ------------------------------------------------------------------- invariants


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_branch_invariants_hold(profile: str) -> None:
    cfg = get_profile(profile).config()
    store = synthesize(profile, seed=5, questions=10)
    for q in store.questions:
        assert q.delta == cfg.delta and len(q.branches) == cfg.branches
        assert 0 <= int(q.gold) <= cfg.answer_max
        for b in q.branches:
            k = len(b.probes)
            assert 1 <= k <= min(cfg.max_probes, math.ceil(b.tokens / q.delta))
            assert 1 <= b.tokens <= cfg.max_tokens
            assert b.probes[-1] == b.final  # as in the real data: the last probe is the final answer
            for a in (*b.probes, b.final):
                assert a == ERR or (a.isdigit() and 0 <= int(a) <= cfg.answer_max)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_synthetic_stores_pass_the_validator_like_real_ones(profile: str) -> None:
    findings = validate_store(synthesize(profile, seed=2))
    assert not [f for f in findings if f.severity is Severity.ERROR]
    # The only warning real stores raise too: some questions are never solved.
    assert {f.code for f in findings} <= {"gold-unreached"}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_synthetic_stores_pass_the_environment_checkers(profile: str) -> None:
    q = tiny_store(seed=4, profile=profile).replay[0]
    order = list(range(q.n_branches))
    random.Random(0).shuffle(order)
    check_session(lambda record: ReplaySession(q, order, record=record), episodes=5)
    check_env(lambda: ReplayEnv(q, order, budget=20_000, probe_price=0.25), episodes=5)
    check_env(lambda: ReplayEnv(q), episodes=5)


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_round_trip_through_files(tmp_path: Path, suffix: str) -> None:
    store = tiny_store(seed=8, questions=4, branches=12)
    path = write_tiny_store(tmp_path / f"tiny{suffix}", seed=8, questions=4, branches=12)
    loaded = load_store(path)
    assert loaded.questions == store.questions
    if suffix == ".parquet":  # AutoTTS JSON has no room for metadata
        assert loaded.meta.source == "synthetic:large"
        assert dict(loaded.meta.settings) == dict(store.meta.settings)
    save_store(loaded, tmp_path / f"again{suffix}")
    assert load_store(tmp_path / f"again{suffix}").questions == store.questions


# ------------------------------------------------------------------- knob effects


def test_harder_questions_have_lower_pass_at_1() -> None:
    easy = synthesize("large", seed=1, questions=20, branches=64, hard_share=0.0, easy_difficulty=-1.0)
    hard = synthesize("large", seed=1, questions=20, branches=64, hard_share=0.0, easy_difficulty=1.5)
    assert pass_at_1(hard) < pass_at_1(easy) - 0.2
    all_hard = synthesize("large", seed=1, questions=20, branches=64, hard_share=1.0, hard_difficulty=8.0)
    assert pass_at_1(all_hard) < 0.01


def test_err_rate_is_honoured() -> None:
    quiet = synthesize("large", seed=3, questions=8, branches=32, err_rate=0.0, final_err_rate=0.0, max_tokens=10**6)
    assert all(a != ERR for q in quiet.questions for b in q.branches for a in (*b.probes, b.final))
    noisy = synthesize("large", seed=3, questions=8, branches=32, err_rate=0.3, err_trend=0.0, final_err_rate=0.0)
    probes = unsettled(noisy)
    share = sum(a == ERR for a in probes) / len(probes)
    assert len(probes) > 2000 and 0.27 < share < 0.33


def test_err_trend_moves_err_to_the_start_of_the_unsettled_prefix() -> None:
    early = synthesize("large", seed=3, questions=8, branches=32, err_rate=0.2, err_trend=-1.8, final_err_rate=0.0)
    first = last = 0
    for q in early.questions:
        for b in q.branches:
            s = len(b.probes)
            while s > 0 and b.probes[s - 1] == b.final:
                s -= 1
            half = s // 2
            first += sum(a == ERR for a in b.probes[:half])
            last += sum(a == ERR for a in b.probes[s - half : s])
    assert first > 2 * last


def test_correct_branches_are_shorter_and_settle_earlier() -> None:
    store = synthesize("large", seed=6, questions=20, branches=64)
    ok_tokens, bad_tokens, ok_settle, bad_settle = [], [], [], []
    for q in store.questions:
        for b in q.branches:
            s = len(b.probes)
            while s > 0 and b.probes[s - 1] == b.final:
                s -= 1
            good = b.final == q.gold
            (ok_tokens if good else bad_tokens).append(b.tokens)
            (ok_settle if good else bad_settle).append(s / len(b.probes))
    assert np.mean(ok_tokens) < 0.8 * np.mean(bad_tokens)
    assert np.mean(ok_settle) < np.mean(bad_settle)


def test_delta_and_branches_knobs() -> None:
    store = synthesize("large", seed=0, questions=2, branches=5, delta=1000)
    assert all(q.delta == 1000 and len(q.branches) == 5 for q in store.questions)
    assert all(len(b.probes) <= math.ceil(b.tokens / 1000) for q in store.questions for b in q.branches)


def test_profiles_keep_their_calibrated_character() -> None:
    """Coarse guard on the calibration (bench/calibrate_synthetic.py holds the real comparison)."""
    large = [synthesize("large", seed=s) for s in range(3)]
    small = [synthesize("small", seed=s) for s in range(3)]
    p_large = float(np.mean([pass_at_1(s) for s in large]))
    p_small = float(np.mean([pass_at_1(s) for s in small]))
    assert 0.5 < p_large < 0.7 and 0.15 < p_small < 0.32
    sc = evaluate(large, ["sc:n=1", "sc:n=64"], runs=5, backend="serial")
    sc1 = np.mean([r.accuracy for r in sc if r.params["n"] == 1])
    sc64 = np.mean([r.accuracy for r in sc if r.params["n"] == 64])
    assert sc64 > sc1 + 3


# ------------------------------------------------------------------- bad knobs


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"questions": 0}, "questions=0"),
        ({"branches": -2}, "branches=-2"),
        ({"err_rate": 1.5}, "err_rate=1.5"),
        ({"settle_wrong": 1.0}, "settle_wrong"),
        ({"wrong_discount": 1.0}, "wrong_discount"),
        ({"probe_final_share": 0.6, "probe_distractor_share": 0.6}, "exceed 1"),
        ({"tokens_sd": float("nan")}, "tokens_sd"),
        ({"wrong_concentration": 0.0}, "wrong_concentration"),
        ({"nonsense": 1}, "unknown synthetic knob"),
    ],
)
def test_bad_knobs_raise_config_error(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        synthesize("large", seed=0, **changes)


def test_bad_profile_and_seed() -> None:
    with pytest.raises(ConfigError, match="known: small, large"):
        synthesize("huge")
    with pytest.raises(ConfigError, match="seed"):
        synthesize("large", seed=-1)


def test_parse_knob_types() -> None:
    assert parse_knob("questions", "7") == 7
    assert parse_knob("err_rate", "0.25") == 0.25
    with pytest.raises(ConfigError, match="expected an integer"):
        parse_knob("questions", "7.5")
    with pytest.raises(ConfigError, match="unknown synthetic knob"):
        parse_knob("bogus", "1")


# ------------------------------------------------------------------- CLI


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("suffix", [".parquet", ".json"])
def test_cli_synth_writes_a_loadable_store(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sub" / f"s{suffix}"
    args = ["store", "synth", "--profile", "small", "--questions", "4", "--branches", "10", "--seed", "5"]
    code, out, _ = run([*args, "--set", "err_rate=0.2", "--out", str(path)], capsys)
    assert code == 0, out
    assert "4 questions x 10 branches" in out
    store = load_store(path)
    assert store.questions == synthesize("small", seed=5, questions=4, branches=10, err_rate=0.2).questions
    if suffix == ".parquet":
        assert store.meta.settings["err_rate"] == 0.2 and store.meta.source == "synthetic:small"
    assert run(["store", "validate", str(path)], capsys)[0] == 0


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--profile", "huge"], 2, "unknown synthetic profile"),
        (["--set", "bogus=1"], 2, "unknown synthetic knob"),
        (["--set", "err_rate"], 2, "not KNOB=VALUE"),
        (["--set", "err_rate=lots"], 2, "expected a number"),
        (["--questions", "0"], 2, "questions=0"),
        (["--seed", "-3"], 2, "--seed"),
        (["--questions", "many"], 2, "questions"),
    ],
)
def test_cli_synth_rejects_bad_arguments(
    tmp_path: Path, args: list[str], code: int, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, err = run(["store", "synth", "--out", str(tmp_path / "s.parquet"), *args], capsys)
    assert got == code
    assert fragment in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "s.parquet").exists()


def test_cli_synth_needs_a_store_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["store", "synth"], capsys)
    assert code == 2 and "--out is required" in err
    code, _, err = run(["store", "synth", "--out", str(tmp_path / "s.csv")], capsys)
    assert code == 2 and ".parquet" in err
    assert not (tmp_path / "s.csv").exists()


def test_cli_synth_list_shows_profiles_and_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["store", "synth", "--list"], capsys)
    assert code == 0
    for name in (*PROFILES, *knob_names()):
        assert name in out
