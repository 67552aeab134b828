"""`autotts serve` against a real inference engine, queried with the official openai client.

llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``) serves the tiny
generated GGUF model of the collection tests; the proxy (a real ``autotts serve``
subprocess) grows and probes branches on it with the collection recipe (text prompts:
llama.cpp refuses token ids).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest

pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (the test extra)")

from autotts.testing.llama_server import LlamaCppServer
from autotts.testing.tiny_gguf import write_tiny_llama

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def proxy_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = write_tiny_llama(tmp_path_factory.mktemp("model") / "tiny.gguf")
    with LlamaCppServer(model, alias="tiny") as llama:
        cmd = [
            sys.executable, "-m", "autotts.cli.main", "serve",
            "--controller", "sc:n=2", "--allow-controller", "parallel-probe:chains=2,T=3,warm_up=1,max_steps=4",
            "--upstream", llama.base_url, "--model", "tiny", "--port", "0", "--preset", "plain",
            "--delta", "16", "--max-branch-tokens", "48", "--max-branches", "4", "--token-budget", "2000",
            "--timeout", "240", "--upstream-timeout", "120",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stderr is not None
        line = proc.stderr.readline()
        try:
            if " on http://" not in line:
                proc.kill()
                raise AssertionError(f"serve did not start: {line}{proc.stderr.read()}")
            yield line.split(" on ")[1].split()[0]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(timeout=60) == 143  # drained and stopped by SIGTERM
            finally:
                proc.kill()
                proc.wait()
                proc.stderr.close()


def test_non_streaming_through_llama_cpp(proxy_url: str) -> None:
    client = openai.OpenAI(base_url=proxy_url, api_key="unused", max_retries=0, timeout=300)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "What is 3 + 4?"}], seed=7)
    assert r.object == "chat.completion" and r.choices[0].finish_reason == "stop"
    assert isinstance(r.choices[0].message.content, str)
    info = r.model_extra["autotts"]  # type: ignore[index]
    assert info["controller"] == "sc(n=2)" and info["branches"] == 2
    assert info["stop_reason"] == "answered"
    # Two full reads of at most 48 tokens each, counted by the engine's own usage.
    assert r.usage is not None and 0 < r.usage.completion_tokens <= 96
    assert r.usage.completion_tokens == info["trace"]["tokens"]
    assert r.usage.prompt_tokens > 0


def test_streaming_through_llama_cpp(proxy_url: str) -> None:
    client = openai.OpenAI(base_url=proxy_url, api_key="unused", max_retries=0, timeout=300)
    chunks = list(
        client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "What is 70 + 7?"}],
            seed=3,
            stream=True,
            extra_body={"controller": "parallel-probe"},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    info = last.model_extra["autotts"]  # type: ignore[index]
    assert info["controller"].startswith("parallel-probe(") and info["branches"] >= 2
    actions = info["trace"]["actions"]
    assert actions.get("open", 0) >= 2 and actions.get("advance", 0) >= 1  # grown and probed on the engine
    assert last.usage is not None
    assert last.usage.completion_tokens == info["trace"]["tokens"] + info["trace"]["probe_tokens"] > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert isinstance(text, str)
