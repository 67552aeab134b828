"""Public fakes and conformance checks for testing code built on autotts.

Tests of controllers, evaluation, discovery or reports rarely need the published
replay data; they need a small store that looks real and is the same on every run.
:func:`tiny_store` builds one from the synthetic generative model
(:mod:`autotts.store.synthetic`), and :func:`write_tiny_store` puts it in a file for
command-line tests. The environment conformance checks are re-exported so that users
can run them on their own backends, and the scripted LLM server of the discovery tests
(:class:`FakeLLMServer`, a real HTTP server on 127.0.0.1 speaking the OpenAI and
Anthropic protocols) is available here too (:mod:`autotts.testing.fake_llm`), beside the
completions servers of collection and live-session tests: the protocol base
(:class:`CompletionsServer`) and the scripted model with known answers at known depths
(:class:`ScriptedCompletionsServer`, :func:`make_script`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from autotts.env.checker import EnvCheckError, check_env, check_session
from autotts.store.io import save_store
from autotts.store.schema import ReplayStore
from autotts.store.synthetic import synthesize
from autotts.testing.completions_server import ByteTokenizer, CompletionCall, CompletionsServer, Generation
from autotts.testing.fake_llm import FakeLLMServer, Reply
from autotts.testing.scripted_completions import ScriptedCompletionsServer, ScriptedQuestion, make_script

__all__ = [
    "ByteTokenizer",
    "CompletionCall",
    "CompletionsServer",
    "EnvCheckError",
    "FakeLLMServer",
    "Generation",
    "Reply",
    "ScriptedCompletionsServer",
    "ScriptedQuestion",
    "check_env",
    "check_session",
    "make_script",
    "tiny_store",
    "write_tiny_store",
]


def tiny_store(
    seed: int = 0,
    questions: int = 6,
    branches: int = 16,
    *,
    profile: str = "large",
    model: str | None = None,
    benchmark: str | None = None,
    **knobs: Any,
) -> ReplayStore:
    """A small synthetic store (default 6 questions x 16 branches of profile ``large``).

    Same arguments -> identical store. ``knobs`` override any knob of the generative
    model (``err_rate=0.0``, ``delta=1000``, ...); ``model``/``benchmark`` default to
    ``tiny-<profile>`` and ``seed<seed>`` so that stores from different seeds have
    different names in results.
    """
    return synthesize(
        profile,
        seed=seed,
        model=model or f"tiny-{profile}",
        benchmark=benchmark or f"seed{seed}",
        questions=questions,
        branches=branches,
        **knobs,
    )


def write_tiny_store(path: str | os.PathLike[str], seed: int = 0, **kwargs: Any) -> Path:
    """Write :func:`tiny_store` (same arguments) to ``path`` (``.parquet`` or ``.json``); return the path."""
    return save_store(tiny_store(seed, **kwargs), path)
