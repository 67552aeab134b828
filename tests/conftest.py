"""Shared fixtures: the published replay data (skipped cleanly when absent) and tiny stores."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "autotts-replay"


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
