"""The verdict on an LLM server's reply and the blocking retry driver, case by case.

``tests/test_llm_client.py`` drives the whole client against fake completions servers;
here each rule of :mod:`autotts.llm.retry` and :mod:`autotts.llm.secrets` is pinned on its
own: which replies are retried, what the error message says (the server's own words,
redacted), the jitter bounds of the backoff, and exactly how many attempts a budget buys.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from autotts.errors import ConfigError
from autotts.llm import LLMError, LLMRequestError, LLMUnavailableError, RetryPolicy, post_json, read_key
from autotts.llm.retry import assess_exception, assess_response, error_excerpt
from autotts.llm.secrets import redact
from autotts.testing._http import LocalJSONServer

KEY = "sk-secret-test-key-123"


class Replies(LocalJSONServer):
    """Answers every POST with the next scripted reply (status, headers, raw body); the last one repeats."""

    def __init__(self, *replies: tuple[int, dict[str, str], bytes]) -> None:
        super().__init__()
        self.replies = list(replies)
        self.hits = 0

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        self.read_body(h)
        status, headers, body = self.replies[min(self.hits, len(self.replies) - 1)]
        self.hits += 1
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def __enter__(self) -> Replies:
        self.start()
        return self


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def call(client: httpx.Client, url: str, policy: RetryPolicy, sleeps: list[float]) -> tuple[dict[str, object], int]:
    return post_json(
        client,
        url,
        headers={"Authorization": f"Bearer {KEY}"},
        body={"prompt": "hi"},
        policy=policy,
        secrets=[KEY],
        sleep=sleeps.append,
        rng=random.Random(0),
    )


def reply(status: int, payload: object = None, *, text: str | None = None, **headers: str) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    return httpx.Response(status, json=payload, headers=headers)


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/completions"  # nothing listens there any more


# ------------------------------------------------------------------------ backoff
def test_backoff_doubles_with_at_most_25_percent_jitter_either_way() -> None:
    policy = RetryPolicy(max_retries=9, backoff_seconds=2.0, max_backoff_seconds=1e9)
    rng = random.Random(1)
    for attempt in range(5):
        nominal = 2.0 * 2**attempt
        ratios = [policy.delay(attempt, None, rng) / nominal for _ in range(400)]
        assert all(0.75 <= r <= 1.25 for r in ratios)
        # the jitter really spreads the clients out over the whole band
        assert min(ratios) < 0.78 and max(ratios) > 1.22


def test_retry_after_raises_the_delay_and_the_cap_bounds_everything() -> None:
    policy = RetryPolicy(max_retries=3, backoff_seconds=1.0, max_backoff_seconds=30.0)
    assert policy.delay(0, 20.0, random.Random(0)) == 20.0
    assert policy.delay(0, 3600.0, random.Random(0)) == 30.0
    # a Retry-After shorter than the backoff does not shorten it
    assert 0.75 <= policy.delay(0, 0.0, random.Random(0)) <= 1.25


# ------------------------------------------------------------- verdict on a reply
def test_success_is_no_failure() -> None:
    assert assess_response(reply(200, {"ok": 1}), []) is None
    assert assess_response(reply(399, {"ok": 1}), []) is None


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504, 529])
def test_rate_limits_timeouts_and_server_errors_are_retried(status: int) -> None:
    failure = assess_response(reply(status, {"error": {"message": "busy"}}, **{"Retry-After": "7"}), [])
    assert failure is not None
    assert failure.retryable is True
    assert failure.retry_after == 7.0
    assert failure.status_code == status
    assert failure.message == f"HTTP {status}: busy"
    assert failure.server_fault is (status >= 500)


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (400, ""),
        (401, " — check the API key's environment variable and the base_url"),
        (403, " — check the API key's environment variable and the base_url"),
        (404, " — check base_url and model"),
        (422, ""),
    ],
)
def test_refusals_are_not_retried_and_say_what_to_check(status: int, hint: str) -> None:
    failure = assess_response(reply(status, {"error": {"message": "no"}}, **{"Retry-After": "5"}), [])
    assert failure is not None
    assert failure.retryable is False
    assert failure.retry_after is None  # a refusal has no "come back later"
    assert failure.server_fault is False
    assert failure.message == f"HTTP {status}: no{hint}"


def test_retry_after_header_values() -> None:
    def after(value: str) -> float | None:
        failure = assess_response(reply(429, {}, **{"Retry-After": value}), [])
        assert failure is not None
        return failure.retry_after

    assert after("0") == 0.0  # "retry now": the backoff schedule alone decides
    assert after("-3") == 0.0
    assert after("2.5") == 2.5
    assert after("Wed, 21 Oct 2026 07:28:00 GMT") is None  # an HTTP date: backoff applies
    failure = assess_response(reply(429, {}), [])
    assert failure is not None and failure.retry_after is None


@pytest.mark.parametrize(
    ("payload", "excerpt"),
    [
        ({"error": {"message": "rate limited", "type": "x"}}, "rate limited"),  # OpenAI, vLLM
        ({"error": "model overloaded"}, "model overloaded"),  # plain servers
        ({"error": {"code": 7}, "message": "top-level"}, "top-level"),
        ({"message": "bad prompt"}, "bad prompt"),
        ({"detail": [{"loc": ["prompt"], "msg": "field required"}]}, "[{'loc': ['prompt'], 'msg': 'field required'}]"),
        ({"status": "down"}, "{'status': 'down'}"),
        (["not", "an", "object"], "['not', 'an', 'object']"),
    ],
)
def test_the_error_message_is_the_servers_own_words(payload: object, excerpt: str) -> None:
    assert error_excerpt(reply(500, payload)) == excerpt


def test_error_excerpts_are_the_first_300_characters() -> None:
    long = "x" * 1000
    assert error_excerpt(reply(500, text="<html>" + long)) == ("<html>" + long)[:300]
    for payload in ({"error": {"message": long}}, {"error": long}, {"message": long}, {"detail": long}, [long]):
        assert len(error_excerpt(reply(500, payload))) == 300


def test_server_text_is_redacted_in_the_verdict() -> None:
    failure = assess_response(reply(400, {"error": {"message": f"bad key {KEY}"}}), [KEY])
    assert failure is not None and failure.message == "HTTP 400: bad key [REDACTED]"


def test_timeouts_and_connection_errors_are_server_faults_worth_retrying() -> None:
    timeout = assess_exception(httpx.ReadTimeout("slow"), [])
    assert timeout.message == "timed out (ReadTimeout)"
    assert (timeout.status_code, timeout.retryable, timeout.retry_after, timeout.server_fault) == (
        None,
        True,
        None,
        True,
    )
    refused = assess_exception(httpx.ConnectError(f"refused for {KEY}"), [KEY])
    assert refused.message == "connection failed (ConnectError: refused for [REDACTED])"
    assert (refused.status_code, refused.retryable, refused.retry_after, refused.server_fault) == (
        None,
        True,
        None,
        True,
    )


# ------------------------------------------------------------------ the driver
def test_a_budget_of_n_retries_makes_exactly_n_plus_1_attempts(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    busy = (503, {"Content-Type": "application/json"}, b'{"error": {"message": "busy"}}')
    sleeps: list[float] = []
    with Replies(busy) as srv, caplog.at_level(logging.WARNING, logger="autotts.llm.retry"):
        url = srv.url + "/v1/completions"
        with pytest.raises(LLMUnavailableError) as info:
            call(client, url, RetryPolicy(max_retries=2, backoff_seconds=0.5, max_backoff_seconds=0.5), sleeps)
        assert srv.hits == 3
    assert sleeps == [0.5, 0.5]  # no pointless wait after the last attempt
    assert str(info.value) == f"{url}: giving up after 3 attempts; last error: HTTP 503: busy"
    assert info.value.url == url and info.value.status_code == 503 and info.value.retryable
    assert [r.getMessage() for r in caplog.records] == [
        "LLM call failed (HTTP 503: busy); retry 1/2 in 0.5 s",
        "LLM call failed (HTTP 503: busy); retry 2/2 in 0.5 s",
    ]


def test_a_retry_that_succeeds_returns_the_reply_and_the_attempts(client: httpx.Client) -> None:
    sleeps: list[float] = []
    busy = (429, {"Retry-After": "0.25"}, b"slow down")
    ok = (200, {"Content-Type": "application/json"}, b'{"text": "fine"}')
    with Replies(busy, ok) as srv:
        data, attempts = call(client, srv.url + "/v1/completions", RetryPolicy(3, 0.01, 10.0), sleeps)
    assert (data, attempts) == ({"text": "fine"}, 2)
    assert sleeps == [0.25]


def test_a_refusal_is_raised_at_once_with_its_url(client: httpx.Client) -> None:
    sleeps: list[float] = []
    refused = (401, {"Content-Type": "application/json"}, f'{{"error": {{"message": "bad key {KEY}"}}}}'.encode())
    with Replies(refused) as srv:
        url = srv.url + "/v1/completions"
        with pytest.raises(LLMRequestError) as info:
            call(client, url, RetryPolicy(3, 0.01, 10.0), sleeps)
        assert srv.hits == 1
    assert sleeps == []
    assert info.value.url == url and info.value.status_code == 401
    assert KEY not in str(info.value) and "bad key [REDACTED]" in str(info.value)


def test_an_unreachable_server_gives_up_with_the_connection_error(client: httpx.Client) -> None:
    sleeps: list[float] = []
    url = dead_url()
    with pytest.raises(LLMUnavailableError) as info:
        call(client, url, RetryPolicy(1, 0.01, 0.01), sleeps)
    assert len(sleeps) == 1
    assert "giving up after 2 attempts; last error: connection failed (ConnectError" in str(info.value)
    assert info.value.url == url and info.value.status_code is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            f"<html>proxy error for {KEY}</html>".encode(),
            "the reply is not JSON (HTTP 200): <html>proxy error for [REDACTED]",
        ),
        (b'["a list"]', "the reply is not a JSON object"),
    ],
)
def test_a_success_that_is_not_a_json_object_is_an_error_not_a_retry(
    client: httpx.Client, body: bytes, message: str
) -> None:
    sleeps: list[float] = []
    with Replies((200, {}, body)) as srv:
        url = srv.url + "/v1/completions"
        with pytest.raises(LLMError) as info:
            call(client, url, RetryPolicy(3, 0.01, 10.0), sleeps)
        assert srv.hits == 1
    assert type(info.value) is LLMError
    assert str(info.value).startswith(f"{url}: {message}")
    assert info.value.url == url and info.value.status_code == 200
    assert KEY not in str(info.value)


def test_the_non_json_excerpt_is_the_first_200_characters(client: httpx.Client) -> None:
    with Replies((200, {}, b"y" * 500)) as srv:
        with pytest.raises(LLMError) as info:
            call(client, srv.url + "/v1/completions", RetryPolicy(0, 0.01, 10.0), [])
    assert str(info.value).endswith(": " + "y" * 200)


def test_a_policy_without_attempts_makes_none_and_says_so(client: httpx.Client) -> None:
    with Replies((200, {}, b"{}")) as srv:
        with pytest.raises(LLMUnavailableError, match="giving up after 0 attempts; last error: no attempt made"):
            call(client, srv.url + "/v1/completions", RetryPolicy(max_retries=-1), [])
        assert srv.hits == 0


# ---------------------------------------------------------------------- secrets
def test_redaction_covers_keys_of_four_or_more_characters_only() -> None:
    assert redact("key abcd in text abcd", ["abcd"]) == "key [REDACTED] in text [REDACTED]"
    assert redact("a cat sat", ["at", "cat"]) == "a cat sat"  # 1–3 characters would shred the text
    assert redact("nothing", ["", "xyz1"]) == "nothing"


def test_the_key_is_read_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTTS_TEST_KEY", "k-123")
    assert read_key("AUTOTTS_TEST_KEY") == "k-123"  # from the process environment by default
    assert read_key("K", {"K": "other"}) == "other"
    assert read_key(None) == "" and read_key("") == ""
    with pytest.raises(ConfigError) as info:
        read_key("NOPE_KEY", {})
    assert str(info.value).startswith("api_key_env names 'NOPE_KEY', but that environment variable is not set")
    assert "export NOPE_KEY=..." in str(info.value)
    with pytest.raises(ConfigError, match=r"^llm\.key_env names 'EMPTY'"):
        read_key("EMPTY", {"EMPTY": ""}, option="llm.key_env")


def test_the_async_client_waits_as_long_as_retry_after_asks_below_the_cap() -> None:
    # CompletionsClient reads replies with its own HTTP/1.1 transport (header names
    # lower-cased), not httpx: the Retry-After header must be found there too.
    import asyncio
    import time

    from autotts.llm import CompletionRequest, CompletionsClient
    from autotts.testing.completions_server import CompletionCall, CompletionsServer, Generation

    class Echo(CompletionsServer):
        def generate(self, call: CompletionCall) -> Generation:
            return Generation(self.tokenizer.encode("x" * call.max_tokens), "length")

    with Echo(model="m") as srv:
        srv.fail_next(1, 429, {"Retry-After": "0.6"})
        policy = RetryPolicy(max_retries=2, backoff_seconds=0.001, max_backoff_seconds=30.0)

        async def go() -> float:
            async with CompletionsClient([srv.openai_base_url], "m", policy=policy) as c:
                t0 = time.monotonic()
                done = await c.complete(CompletionRequest("hi", max_tokens=1))
                assert done.attempts == 2
                return time.monotonic() - t0

        assert asyncio.run(go()) >= 0.6  # the backoff alone would have waited about a millisecond
