"""A seeded generative model of replay data, with profiles calibrated on the shared stores.

Why: a new user has no replay data and no API key, and most tests need a store whose
shape is realistic but whose size and knobs they control. A synthetic store is an
ordinary :class:`~autotts.store.schema.ReplayStore` (same validator, same session, same
controllers), so everything downstream runs on it unchanged. Its numbers are *not*
evidence about any real model; they only resemble the published stores statistically
(see ``docs/synthetic.md`` and ``bench/calibrate_synthetic.py`` for how closely).

The model, per question ``i`` (every question draws from its own child of the seed, so
question ``i`` is the same whatever the number of questions; same seed -> same store):

1. *Difficulty.* ``d`` comes from a two-component normal mixture (a ``hard_share`` of
   questions around ``hard_difficulty``, the rest around ``easy_difficulty``, both with
   spread ``difficulty_sd``); the question's pass@1 is ``p = 1 / (1 + exp(d))``, and every
   branch is correct independently with probability ``p``. The real pass@1 distribution
   is bimodal (many questions nearly always or nearly never solved), hence the mixture.
2. *Answers* are AIME-like integers ``0..answer_max``. A wrong branch ends on ``ERR``
   (``final_err_rate``) or on a wrong answer drawn i.i.d. from the question's own
   distribution over wrong answers: a Pitman-Yor random distribution (stick-breaking
   with discount ``wrong_discount`` and a concentration drawn log-normally around
   ``wrong_concentration``, times ``exp(wrong_scatter_trend * p)``). That gives what the
   real stores show: a few strong distractors of very uneven weight, a long tail of
   one-off answers, questions ranging from one systematic error to pure scatter, and
   wrong answers more systematic on questions the model rarely solves. A new wrong answer is a
   plausible slip near the gold answer (off by one, doubled, digits reversed, ...) with
   probability ``near_miss_share``, else any number.
3. *Length.* Wrong branches run to about ``tokens_wrong``; correct ones are shorter the
   easier the question (log-length is linear in ``d``, from ``tokens_easy`` at ``d = -5``
   to ``tokens_hard`` at ``d = +5``, flat beyond), as in the real data; each question
   and each branch add log-normal noise. Lengths are capped like the real data
   (``max_tokens``; a capped branch ends on ``ERR`` one time in ten), and a branch holds
   ``K ~ floor(tokens / delta)`` probes (jittered like the real data, at least 1, at most
   ``max_probes`` and ``ceil(tokens / delta)``).
4. *Probes.* A branch *settles* at depth ``s = floor(r * K)`` with ``r ~ Beta`` of mean
   ``settle_correct`` or ``settle_wrong`` (correct branches settle earlier); from depth
   ``s`` on every probe is the final answer (so the last probe always equals it, as in
   the real data). Before ``s`` the branch wanders: it keeps its current answer with a
   per-branch probability around ``stickiness``, or jumps to its final answer, the gold
   answer, the final answer of a random wrong branch (so strong distractors show up
   most) or a fresh number (``probe_*_share``). An unsettled probe is ``ERR`` with
   probability ``err_rate``, tilted along the unsettled prefix by ``err_trend``; settled
   probes never are (unless the final answer is ``ERR``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autotts.errors import ConfigError
from autotts.store.schema import ERR, Branch, Question, ReplayStore, StoreMeta

log = logging.getLogger(__name__)

#: Version of the generative model; bumped whenever the same seed would give other data.
GENERATOR_VERSION = 1

#: ``K - floor(tokens / delta)`` in the shared stores (uncapped branches) and its frequency.
_PROBE_JITTER = np.array([1, 0, -1, -2, -3, -4])
_PROBE_JITTER_P = np.array([0.158, 0.458, 0.236, 0.104, 0.034, 0.010])

#: Shortest branch the model produces (the shared stores' shortest is 1,130 tokens).
MIN_TOKENS = 1000

#: Correct-branch log-length moves linearly from tokens_easy at d = -5 to tokens_hard at d = +5.
_LENGTH_D = 5.0

#: Sticks of the truncated stick-breaking answer distribution (the rest gives one-off answers).
_STICKS = 256

#: A branch that hits the length cap ends without an answer this often (real data: 7-10 %).
_CAPPED_ERR = 0.1


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generative model (see the module docstring for how they act).

    The defaults are the calibrated ``large`` profile.
    """

    questions: int = _knob(30, "number of questions")
    branches: int = _knob(128, "branches per question")
    delta: int = _knob(500, "probe interval Δ in tokens")
    hard_share: float = _knob(0.3, "share of questions drawn from the hard difficulty cluster")
    hard_difficulty: float = _knob(6.4, "mean logit difficulty of hard questions (pass@1 = 1/(1+e^d))")
    easy_difficulty: float = _knob(-3.35, "mean logit difficulty of the other questions")
    difficulty_sd: float = _knob(3.05, "spread of the logit difficulty within a cluster")
    answer_max: int = _knob(999, "answers are integers 0..answer_max (AIME-like)")
    wrong_discount: float = _knob(0.43, "Pitman-Yor discount of wrong answers in [0, 1) (larger = longer one-off tail)")
    wrong_concentration: float = _knob(1.24, "Pitman-Yor concentration of wrong answers (larger = more scattered)")
    wrong_concentration_sd: float = _knob(0.48, "log-normal spread of that concentration across questions")
    wrong_scatter_trend: float = _knob(1.18, "log-change of it from pass@1 0 to 1 (>0: easier = more scattered)")
    near_miss_share: float = _knob(0.6, "share of new wrong answers that are slips near the gold answer")
    final_err_rate: float = _knob(0.02, "share of wrong branches ending without an answer (ERR)")
    tokens_easy: float = _knob(9000.0, "typical length of a correct branch at difficulty -5 (pass@1 99.3 %)")
    tokens_hard: float = _knob(22000.0, "typical length of a correct branch at difficulty +5 (pass@1 0.7 %)")
    tokens_wrong: float = _knob(23000.0, "typical length of a wrong branch")
    tokens_sd: float = _knob(0.28, "log-normal spread of branch length within a question")
    question_tokens_sd: float = _knob(0.15, "log-normal spread of typical length across questions")
    max_tokens: int = _knob(41500, "length cap in tokens (capped branches land in the last ~600 tokens)")
    max_probes: int = _knob(80, "most probes a branch holds")
    settle_correct: float = _knob(0.65, "mean relative depth at which a correct branch settles on its answer")
    settle_wrong: float = _knob(0.8, "mean relative depth at which a wrong branch settles")
    settle_concentration: float = _knob(2.7, "Beta concentration of the settle depth (smaller = more spread)")
    stickiness: float = _knob(0.45, "mean chance an unsettled probe repeats the previous answer")
    err_rate: float = _knob(0.095, "chance an unsettled probe is ERR")
    err_trend: float = _knob(1.4, "tilt of the ERR chance along the unsettled prefix (<0: more ERR early)")
    probe_final_share: float = _knob(0.1, "share of wandering answers equal to the branch's final answer")
    probe_gold_share: float = _knob(0.01, "share of wandering answers equal to the gold answer")
    probe_distractor_share: float = _knob(0.43, "share of wandering answers taken from the wrong branches' finals")

    def __post_init__(self) -> None:
        # Accept numpy scalars and ints for float knobs, but store plain Python numbers so
        # that the knobs stay JSON data in the store's metadata.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if isinstance(f.default, int) and isinstance(value, numbers.Integral):
                object.__setattr__(self, f.name, int(value))
            elif isinstance(f.default, float) and isinstance(value, numbers.Real):
                object.__setattr__(self, f.name, float(value))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first knob out of range and its allowed range."""

        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(f"synthetic knob {name}={getattr(self, name)!r}: must be {rule}")

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, float) and (isinstance(value, bool) or not isinstance(value, float)):
                raise bad(f.name, "a number")

        for name in ("questions", "branches", "delta", "answer_max", "max_tokens", "max_probes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, "a positive integer")
        if self.answer_max < 9:
            raise bad("answer_max", "at least 9 (wrong answers need room)")
        if self.max_tokens < MIN_TOKENS + 600:
            raise bad("max_tokens", f"at least {MIN_TOKENS + 600}")
        for name in (
            "hard_share", "near_miss_share", "final_err_rate", "stickiness", "err_rate",
            "probe_final_share", "probe_gold_share", "probe_distractor_share",
        ):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "a probability in [0, 1]")
        if not 0.0 <= self.wrong_discount < 1.0:
            raise bad("wrong_discount", "in [0, 1)")
        for name in ("settle_correct", "settle_wrong"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise bad(name, "strictly between 0 and 1")
        for name in ("hard_difficulty", "easy_difficulty", "err_trend", "wrong_scatter_trend"):
            if not math.isfinite(getattr(self, name)):
                raise bad(name, "a finite number")
        for name in (
            "difficulty_sd", "tokens_sd", "question_tokens_sd", "wrong_concentration_sd",
        ):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise bad(name, "a finite number >= 0")
        for name in ("wrong_concentration", "settle_concentration"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise bad(name, "a finite number > 0")
        for name in ("tokens_easy", "tokens_hard", "tokens_wrong"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 1.0):
                raise bad(name, "a number of tokens >= 1")
        shares = self.probe_final_share + self.probe_gold_share + self.probe_distractor_share
        if shares > 1.0 + 1e-12:
            raise ConfigError(
                f"synthetic knobs probe_final_share + probe_gold_share + probe_distractor_share = {shares:g} "
                "exceed 1; the rest is the share of fresh numbers"
            )

    def replace(self, **changes: Any) -> SynthConfig:
        """A copy with some knobs changed (validated); unknown names raise ConfigError."""
        unknown = sorted(set(changes) - set(knob_names()))
        if unknown:
            raise ConfigError(f"unknown synthetic knob(s) {', '.join(unknown)}; known: {', '.join(knob_names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every knob by name (JSON-ready)."""
        return dataclasses.asdict(self)


def knob_names() -> tuple[str, ...]:
    """Names of all knobs, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(SynthConfig))


def knob_help() -> dict[str, str]:
    """One line of help per knob (shown by ``autotts store synth --list``)."""
    return {f.name: str(f.metadata.get("help", "")) for f in dataclasses.fields(SynthConfig)}


def parse_knob(name: str, text: str) -> Any:
    """Convert a ``--set name=value`` string to the knob's type, or raise ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(SynthConfig)}
    if name not in fields:
        raise ConfigError(f"unknown synthetic knob {name!r}; known: {', '.join(fields)}")
    kind = type(fields[name].default)
    try:
        if kind is int:
            return int(text)
        return float(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"synthetic knob {name}={text!r}: expected {what}") from None


@dataclass(frozen=True)
class Profile:
    """A named set of knob values resembling a family of real stores."""

    name: str
    description: str
    knobs: Mapping[str, Any]

    def config(self, **overrides: Any) -> SynthConfig:
        """The profile's configuration with ``overrides`` applied on top."""
        return SynthConfig().replace(**{**self.knobs, **overrides})


# Calibrated with bench/calibrate_synthetic.py against the shared stores (pooled over
# aime24, aime25 and hmmt25 of both models of each family); figures in docs/synthetic.md.
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "small",
            "resembles Qwen3-0.6B / Qwen3-1.7B on AIME/HMMT (pass@1 ~23 %, SC@64 ~35 %)",
            {
                "hard_share": 0.75,
                "hard_difficulty": 4.8,
                "easy_difficulty": -1.15,
                "difficulty_sd": 3.0,
                "wrong_discount": 0.51,
                "wrong_concentration": 2.7,
                "wrong_concentration_sd": 2.0,
                "wrong_scatter_trend": 2.5,
                "final_err_rate": 0.006,
                "tokens_easy": 6000.0,
                "tokens_hard": 15000.0,
                "tokens_wrong": 16000.0,
                "tokens_sd": 0.42,
                "settle_correct": 0.63,
                "settle_wrong": 0.8,
                "stickiness": 0.42,
                "err_rate": 0.055,
                "err_trend": 0.3,
            },
        ),
        Profile(
            "large",
            "resembles Qwen3-4B / Qwen3-8B on AIME/HMMT (pass@1 ~60 %, SC@64 ~68 %)",
            {},  # the defaults of SynthConfig are this profile
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name raises ConfigError listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown synthetic profile {name!r}; known: {', '.join(PROFILES)}") from None


# ----------------------------------------------------------------------------- model


def _near_miss(gold: int, rng: np.random.Generator, answer_max: int) -> int:
    """A plausible slip: off by a little, doubled/halved, digits swapped or a sign-like flip."""
    kind = int(rng.integers(0, 6))
    if kind == 0:
        return gold + int(rng.choice((-1, 1)))
    if kind == 1:
        return gold + int(rng.integers(-12, 13))
    if kind == 2:
        return gold * 2 if rng.random() < 0.5 else gold // 2
    if kind == 3:
        return int(str(gold)[::-1])
    if kind == 4:
        return answer_max - gold
    return gold + int(rng.choice((-100, -10, 10, 100)))


def _new_wrong(gold: int, taken: set[int], cfg: SynthConfig, rng: np.random.Generator) -> int:
    """A wrong answer not used yet: a near miss where the draw says so, else any number."""
    for _ in range(64):
        if rng.random() < cfg.near_miss_share:
            value = _near_miss(gold, rng, cfg.answer_max)
        else:
            value = int(rng.integers(0, cfg.answer_max + 1))
        if 0 <= value <= cfg.answer_max and value != gold and value not in taken:
            return value
    # Practically unreachable (answer_max >= 9 and at most `branches` answers taken): scan.
    return next(v for v in range(cfg.answer_max + 1) if v != gold and v not in taken)


def _wrong_answers(n: int, gold: int, p: float, cfg: SynthConfig, rng: np.random.Generator) -> NDArray[np.int64]:
    """``n`` wrong final answers, i.i.d. from the question's Pitman-Yor answer distribution.

    The distribution is built by stick-breaking (GEM(discount, concentration), truncated at
    ``_STICKS`` sticks; the little mass left over yields one-off answers), so the share of
    the strongest distractor among wrong branches does not depend on how many branches
    happen to be wrong.
    """
    d = cfg.wrong_discount
    spread = rng.normal(0.0, cfg.wrong_concentration_sd)
    theta = cfg.wrong_concentration * math.exp(spread + cfg.wrong_scatter_trend * p)
    k = np.arange(1, _STICKS + 1)
    v = rng.beta(1.0 - d, theta + k * d)
    weights = v * np.concatenate(([1.0], np.cumprod(1.0 - v)[:-1]))
    sticks = np.searchsorted(np.cumsum(weights), rng.random(n), side="right").tolist()
    values: dict[int, int] = {}
    taken: set[int] = set()
    out = np.empty(n, dtype=np.int64)
    for i, stick in enumerate(sticks):
        value = values.get(stick) if stick < _STICKS else None
        if value is None:
            value = _new_wrong(gold, taken, cfg, rng)
            taken.add(value)
            if stick < _STICKS:
                values[stick] = value
        out[i] = value
    return out


def _beta_mean(rng: np.random.Generator, mean: float, concentration: float, size: int | None = None) -> Any:
    """Beta draw(s) parametrised by mean and concentration; degenerate means give the mean."""
    if mean <= 0.0 or mean >= 1.0:
        return mean if size is None else np.full(size, mean)
    return rng.beta(mean * concentration, (1.0 - mean) * concentration, size=size)


def _fresh(rng: np.random.Generator, n: int, gold: int, answer_max: int) -> NDArray[np.int64]:
    """``n`` uniform answers that are never the gold answer."""
    values = rng.integers(0, answer_max, size=n)  # one short of the range: shift past gold
    return np.where(values >= gold, values + 1, values).astype(np.int64)


def _question(index: int, cfg: SynthConfig, rng: np.random.Generator, strings: list[str], label: str) -> Question:
    """Generate one question (see the module docstring for the model)."""
    B = cfg.branches
    hard = rng.random() < cfg.hard_share
    d = rng.normal(cfg.hard_difficulty if hard else cfg.easy_difficulty, cfg.difficulty_sd)
    p = 1.0 / (1.0 + math.exp(min(d, 700.0)))
    gold = int(rng.integers(0, cfg.answer_max + 1))

    # Finals: -1 stands for ERR throughout.
    correct = rng.random(B) < p
    err_final = ~correct & (rng.random(B) < cfg.final_err_rate)
    finals = np.full(B, gold, dtype=np.int64)
    finals[err_final] = -1
    wrong = ~correct & ~err_final
    finals[wrong] = _wrong_answers(int(wrong.sum()), gold, p, cfg, rng)

    # Lengths.
    hardness = (min(max(d, -_LENGTH_D), _LENGTH_D) + _LENGTH_D) / (2 * _LENGTH_D)
    log_ok = math.log(cfg.tokens_easy) + hardness * (math.log(cfg.tokens_hard) - math.log(cfg.tokens_easy))
    log_len = np.where(correct, log_ok, math.log(cfg.tokens_wrong))
    log_len = log_len + rng.normal(0.0, cfg.question_tokens_sd) + rng.normal(0.0, cfg.tokens_sd, size=B)
    raw = np.maximum(np.rint(np.exp(np.minimum(log_len, 40.0))), MIN_TOKENS).astype(np.int64)
    cap = cfg.max_tokens - rng.integers(0, 600, size=B)
    capped = raw > cap
    tokens = np.where(capped, cap, raw)
    finals = np.where(capped & (rng.random(B) < _CAPPED_ERR), -1, finals)
    jitter = rng.choice(_PROBE_JITTER, size=B, p=_PROBE_JITTER_P / _PROBE_JITTER_P.sum())
    ceil_k = -(-tokens // cfg.delta)
    K = np.clip(tokens // cfg.delta + jitter, 1, np.minimum(cfg.max_probes, ceil_k))

    # Settle depth s in [0, K-1]: probes from s on equal the final answer.
    mean_s = np.where(correct, cfg.settle_correct, cfg.settle_wrong)
    r = rng.beta(mean_s * cfg.settle_concentration, (1.0 - mean_s) * cfg.settle_concentration)
    s = np.minimum(np.floor(r * K).astype(np.int64), K - 1)

    # The unsettled prefixes of all branches, flattened branch-major.
    total = int(s.sum())
    owner = np.repeat(np.arange(B), s)
    starts = np.concatenate(([0], np.cumsum(s)[:-1]))
    pos = np.arange(total) - starts[owner]
    stick_b = _beta_mean(rng, cfg.stickiness, 2.0, size=B)
    change = (pos == 0) | (rng.random(total) >= stick_b[owner])
    where_change = np.flatnonzero(change)
    n_draw = len(where_change)
    src = rng.random(n_draw)
    draw_owner = owner[where_change]
    a = cfg.probe_final_share
    b = a + cfg.probe_gold_share
    c = b + cfg.probe_distractor_share
    # "Another wrong branch's final" picks a wrong branch at random, so big distractors come up most.
    pool = finals[wrong]
    fresh = _fresh(rng, n_draw, gold, cfg.answer_max)
    others = pool[rng.integers(0, len(pool), size=n_draw)] if len(pool) else fresh
    drawn = np.where(src < a, finals[draw_owner], np.where(src < b, gold, np.where(src < c, others, fresh)))
    # Forward-fill each draw until the next one (every prefix starts with a draw).
    last_draw = np.maximum.accumulate(np.where(change, np.arange(total), 0))
    value_at = np.empty(total, dtype=np.int64)
    value_at[where_change] = drawn
    prefix = value_at[last_draw]
    # The probe just before settling must differ from the final answer, else it settled earlier.
    ends = (starts + s - 1)[s > 0]
    clash = prefix[ends] == finals[s > 0]
    prefix[ends[clash]] = _fresh(rng, int(clash.sum()), gold, cfg.answer_max)
    clash = prefix[ends] == finals[s > 0]  # a fresh number can still equal a wrong final: take its neighbour
    prefix[ends[clash]] = (prefix[ends[clash]] + 1) % (cfg.answer_max + 1)
    x = (pos + 0.5) / np.maximum(s[owner], 1)
    p_err = np.clip(cfg.err_rate * (1.0 + cfg.err_trend * (x - 0.5)), 0.0, 1.0)
    prefix = np.where(rng.random(total) < p_err, -1, prefix)

    # Full probe sequences: prefix, then the final answer repeated to depth K.
    full = np.repeat(finals, K)
    k_owner = np.repeat(np.arange(B), K)
    k_pos = np.arange(int(K.sum())) - np.concatenate(([0], np.cumsum(K)[:-1]))[k_owner]
    full[k_pos < s[k_owner]] = prefix
    codes = (full + 1).tolist()  # index into strings: 0 is ERR
    bounds = np.concatenate(([0], np.cumsum(K))).tolist()
    final_codes = (finals + 1).tolist()
    tokens_list = tokens.tolist()
    branches = tuple(
        Branch(
            probes=tuple(strings[c] for c in codes[bounds[i] : bounds[i + 1]]),
            tokens=tokens_list[i],
            final=strings[final_codes[i]],
        )
        for i in range(B)
    )
    # No latent figure (pass@1) goes into the text: it must not leak the answer's odds.
    text = f"[{label} #{index}] Synthetic question; its answer is an integer from 0 to {cfg.answer_max}."

    return Question(id=str(index), text=text, gold=str(gold), delta=cfg.delta, branches=branches)


def synthesize(
    config: SynthConfig | str = "large",
    *,
    seed: int = 0,
    model: str | None = None,
    benchmark: str | None = None,
    **overrides: Any,
) -> ReplayStore:
    """Generate a synthetic replay store.

    ``config`` is a :class:`SynthConfig` or a profile name (``small``, ``large``);
    ``overrides`` change single knobs (``questions=6, branches=16``). The same seed and
    knobs always give the same store. ``meta.source`` is ``synthetic:<profile>`` and
    ``meta.settings`` records the profile, the seed, the generator version and every knob.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synthetic seed must be a non-negative integer, got {seed!r}")
    if isinstance(config, str):
        profile_name = config
        cfg = get_profile(config).config(**overrides)
    else:
        profile_name = "custom"
        cfg = config.replace(**overrides) if overrides else config
    strings = [ERR, *(str(v) for v in range(cfg.answer_max + 1))]
    label = f"synthetic:{profile_name}:seed{seed}"
    children = np.random.SeedSequence(int(seed)).spawn(cfg.questions)
    questions = tuple(
        _question(i, cfg, np.random.Generator(np.random.PCG64(child)), strings, label)
        for i, child in enumerate(children)
    )
    meta = StoreMeta(
        model=model or f"synthetic-{profile_name}",
        benchmark=benchmark or f"seed{seed}",
        source=f"synthetic:{profile_name}",
        settings={"profile": profile_name, "seed": int(seed), "generator_version": GENERATOR_VERSION, **cfg.to_dict()},
    )
    log.debug("synthesized %s: %d questions x %d branches", label, cfg.questions, cfg.branches)
    return ReplayStore(meta=meta, questions=questions)
