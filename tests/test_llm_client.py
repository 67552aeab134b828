"""The one LLM HTTP layer: retries, the Retry-After cap, failover between servers, redaction, token truth."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import httpx
import pytest

from autotts.errors import ConfigError
from autotts.llm import (
    CompletionRequest,
    CompletionsClient,
    LLMRequestError,
    LLMUnavailableError,
    RetryPolicy,
    post_json,
    read_key,
)
from autotts.testing import ScriptedCompletionsServer, make_script
from autotts.testing.completions_server import CompletionCall, CompletionsServer, Generation

KEY = "sk-secret-test-key-123"


class Echo(CompletionsServer):
    """Writes ``ok`` plus as many ``x`` as asked, then stops."""

    def generate(self, call: CompletionCall) -> Generation:
        return Generation(self.tokenizer.encode("x" * call.max_tokens), "length")


def free_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_completion_returns_text_usage_finish_and_token_ids() -> None:
    with Echo(model="m") as srv:

        async def go() -> None:
            async with CompletionsClient([srv.openai_base_url], "m") as c:
                done = await c.complete(CompletionRequest((65, 66), max_tokens=3, return_token_ids=True))
                assert done.text == "xxx" and done.completion_tokens == 3 and done.finish_reason == "length"
                assert done.token_ids == (120, 120, 120) and done.prompt_tokens == 2
                assert c.stats.completion_tokens == 3 and c.stats.requests == 1

        run(go())


def test_retry_after_is_capped_so_a_server_cannot_stall_a_run() -> None:
    # Issue 15, gap 4: a server answering `Retry-After: 3600` must cost at most max_backoff_seconds.
    with Echo(model="m") as srv:
        srv.fail_next(1, 429, {"Retry-After": "3600"})
        policy = RetryPolicy(max_retries=2, backoff_seconds=0.01, max_backoff_seconds=0.2)

        async def go() -> float:
            async with CompletionsClient([srv.openai_base_url], "m", policy=policy) as c:
                t0 = time.monotonic()
                done = await asyncio.wait_for(c.complete(CompletionRequest("hi", max_tokens=2)), timeout=20)
                assert done.text == "xx" and done.attempts == 2
                return time.monotonic() - t0

        assert run(go()) < 5.0


def test_retry_after_cap_in_the_blocking_driver() -> None:
    with Echo(model="m") as srv:
        srv.fail_next(1, 503, {"Retry-After": "3600"})
        sleeps: list[float] = []
        with httpx.Client() as client:
            data, attempts = post_json(
                client,
                srv.openai_base_url + "/completions",
                headers={},
                body={"model": "m", "prompt": "a", "max_tokens": 1},
                policy=RetryPolicy(max_retries=1, backoff_seconds=0.01, max_backoff_seconds=0.5),
                secrets=[],
                sleep=sleeps.append,
            )
        assert attempts == 2 and data["choices"][0]["text"] == "x"
        assert sleeps == [0.5]


def test_retry_after_is_honoured_below_the_cap() -> None:
    assert RetryPolicy(3, 0.01, 60.0).delay(0, 7.0, random.Random(0)) == 7.0
    assert RetryPolicy(3, 1.0, 60.0).delay(10, None, random.Random(0)) == 60.0


def test_wrong_model_is_refused_at_once_without_retries() -> None:
    with Echo(model="right") as srv:

        async def go() -> None:
            async with CompletionsClient([srv.openai_base_url], "wrong", policy=RetryPolicy(5, 0.01, 0.02)) as c:
                with pytest.raises(LLMRequestError, match=r"does not exist.*check base_url and model"):
                    await c.complete(CompletionRequest("hi", max_tokens=2))
                assert c.stats.attempts == 1

        run(go())


def test_unreachable_server_exhausts_the_budget_with_a_clear_error() -> None:
    async def go() -> None:
        async with CompletionsClient([free_port_url()], "m", policy=RetryPolicy(2, 0.01, 0.02)) as c:
            with pytest.raises(LLMUnavailableError, match=r"giving up after 3 attempts.*connection failed"):
                await c.complete(CompletionRequest("hi", max_tokens=2))

    run(go())


def test_dead_server_is_taken_out_and_requests_go_to_the_live_one() -> None:
    with Echo(model="m") as srv:
        dead = free_port_url()

        async def go() -> None:
            policy = RetryPolicy(max_retries=3, backoff_seconds=30.0, max_backoff_seconds=30.0)
            async with CompletionsClient([dead, srv.openai_base_url], "m", policy=policy, max_in_flight=2) as c:
                t0 = time.monotonic()
                results = await asyncio.gather(*(c.complete(CompletionRequest("a", max_tokens=1)) for _ in range(12)))
                # the dead server failed at most a few times, then was out for 30 s: nobody waited for it
                assert time.monotonic() - t0 < 10
                assert all(r.server == srv.openai_base_url for r in results)
                assert c.stats.failures <= 2

        run(go())


def test_in_flight_requests_are_bounded_per_server() -> None:
    class Slow(Echo):
        def __init__(self) -> None:
            super().__init__(model="m", latency=0.05)
            self.now = 0
            self.peak = 0

        def generate(self, call: CompletionCall) -> Generation:
            with self._lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            time.sleep(0.05)
            with self._lock:
                self.now -= 1
            return super().generate(call)

    with Slow() as srv:

        async def go() -> None:
            async with CompletionsClient([srv.openai_base_url], "m", max_in_flight=3) as c:
                await asyncio.gather(*(c.complete(CompletionRequest("a", max_tokens=1)) for _ in range(12)))

        run(go())
        assert srv.peak == 3


def test_key_is_sent_but_never_shown() -> None:
    class Leaky(Echo):
        def generate(self, call: CompletionCall) -> Generation:
            raise ValueError(f"bad request from key {KEY}")

    with Leaky(model="m") as srv:

        async def go() -> None:
            c = CompletionsClient.from_env([srv.openai_base_url], "m", api_key_env="K", env={"K": KEY})
            assert KEY not in repr(c)
            with pytest.raises(LLMRequestError) as info:
                await c.complete(CompletionRequest("a", max_tokens=1))
            assert KEY not in str(info.value) and "[REDACTED]" in str(info.value)
            await c.aclose()

        run(go())
    with pytest.raises(ConfigError, match="NOPE_KEY"):
        read_key("NOPE_KEY", {})


def test_cancelling_a_request_frees_its_slot() -> None:
    script = make_script(1, 1)
    with ScriptedCompletionsServer(script, latency=0.5) as srv:

        async def go() -> None:
            async with CompletionsClient([srv.openai_base_url], "scripted", max_in_flight=1) as c:
                task = asyncio.create_task(c.complete(CompletionRequest("?", max_tokens=1)))
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                done = await asyncio.wait_for(c.complete(CompletionRequest("?", max_tokens=1)), timeout=5)
                assert done.text == "?"

        run(go())


def test_request_slots_are_handed_out_in_order_and_never_lost_to_cancelled_waiters() -> None:
    from autotts.llm.completions import _Slots

    async def go() -> None:
        slots = _Slots(1, asyncio.get_running_loop())
        assert slots.take_now() and not slots.take_now()
        order: list[str] = []

        async def wait(name: str) -> None:
            await slots.take()
            order.append(name)

        a, b, c = (asyncio.create_task(wait(n)) for n in "abc")
        await asyncio.sleep(0)
        b.cancel()  # cancelled while queued: must not keep a place or take a slot
        await asyncio.sleep(0)
        slots.give()  # -> a
        await asyncio.sleep(0)
        assert order == ["a"] and not slots.take_now()
        slots.give()  # -> c (b is gone)
        await asyncio.gather(a, c)
        assert order == ["a", "c"] and slots.free == 0
        # Handed a slot, then cancelled before it ran: the slot goes back, nothing is lost.
        d = asyncio.create_task(wait("d"))
        await asyncio.sleep(0)
        slots.give()
        d.cancel()
        with pytest.raises(asyncio.CancelledError):
            await d
        assert order == ["a", "c"] and slots.free == 1 and slots.take_now()

    run(go())
