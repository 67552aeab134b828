"""Shared fixtures: the published replay data (skipped cleanly when absent) and tiny stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "autotts-replay"

# Property tests are deterministic by default: the same examples on every run and every
# machine, so CI's verdict depends on the code alone and a kernel edge case is not caught
# on one seed and missed on the next. Timing-based checks (deadline, too_slow) are off
# because the shared CI machine's speed varies. Set AUTOTTS_HYPOTHESIS=explore to draw
# fresh random examples (and keep failures in the local example database) while
# hunting for new edge cases; a failure found that way belongs in an explicit test.
settings.register_profile(
    "deterministic",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "explore",
    derandomize=False,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# bench/mutation.py runs the selected tests once per mutant, hundreds of times: the
# ``mutation`` profile keeps them deterministic but caps every property test (including
# those that ask for more with their own @settings) at MUTATION_EXAMPLES examples. A
# mutant that survives this profile is re-checked with the full suite before it is
# reported as a survivor (docs/testing.md, "Mutation score").
MUTATION_EXAMPLES = 25
settings.register_profile(
    "mutation",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=MUTATION_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
PROFILES = ("deterministic", "explore", "mutation")
HYPOTHESIS_PROFILE = os.environ.get("AUTOTTS_HYPOTHESIS", "deterministic")
if HYPOTHESIS_PROFILE not in PROFILES:
    raise pytest.UsageError(
        f"AUTOTTS_HYPOTHESIS must be one of {', '.join(repr(p) for p in PROFILES)}, got {HYPOTHESIS_PROFILE!r}"
    )
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under the ``mutation`` profile, cap the examples of tests that set their own count."""
    if HYPOTHESIS_PROFILE != "mutation":
        return
    for item in items:
        test = getattr(item, "obj", None)
        if not getattr(test, "is_hypothesis_test", False):
            continue
        # @given reads the settings from this attribute when the test runs (hypothesis has
        # no public hook to override an explicit @settings(max_examples=...)).
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if not isinstance(own, settings):
            raise pytest.UsageError(f"cannot apply the mutation profile to {item.nodeid}: hypothesis changed")
        if own.max_examples > MUTATION_EXAMPLES:
            test._hypothesis_internal_use_settings = settings(
                own, max_examples=MUTATION_EXAMPLES, derandomize=True, database=None
            )


def shared_store_path(model: str, benchmark: str) -> Path:
    """Path of a shared store, or skip the test with the reason when the data is absent."""
    path = SHARED_DATA / model / f"{benchmark}.json"
    if not path.is_file():
        pytest.skip(f"shared replay data not found at {path} (it lives in ../shared/data beside the repository)")
    return path


@pytest.fixture(scope="session")
def qwen4b_aime24():  # type: ignore[no-untyped-def]
    """The self-check store Qwen3-4B/aime24, loaded once per session."""
    from autotts.store import load_store

    return load_store(shared_store_path("Qwen3-4B", "aime24"))
