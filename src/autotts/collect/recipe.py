r"""The branch recipe: prompt templates, growing a branch by Δ tokens, probing a prefix.

This is what a replay store *means*, so ``autotts collect`` and live sessions
(:mod:`autotts.online`) both call it and neither re-implements it:

* a :class:`PromptTemplate` turns a question into the prompt (presets for the common
  reasoning-model chat formats, Qwen3 included, or a custom one) and names the
  default probe suffix;
* :meth:`Brancher.grow` extends a branch by up to Δ tokens on its own prefix through
  ``/v1/completions``: token-id prompts where the server accepts them (vLLM, SGLang),
  text otherwise. The server's ``usage.completion_tokens`` is the token truth; a
  ``stop`` finish ends the branch with its true length;
* :meth:`Brancher.probe` asks what the model would answer now: prefix + probe suffix
  (default: close the reasoning and open ``\boxed{``), greedy, a few dozen tokens; the
  answer runs to the matching brace, ``ERR`` when nothing usable comes back. The
  probe's text never becomes part of the branch.

Branch states are immutable: ``grow`` returns a new :class:`BranchState`, so a
cancelled ``grow`` (a live session abandoning a branch) leaves the old state intact.
All methods are coroutines and may run concurrently for many branches.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from autotts.collect.answers import Normalization, extract_final, extract_probe
from autotts.errors import ConfigError
from autotts.llm import Completion, CompletionRequest, CompletionsClient, EncodedPrompt, LLMError, LLMRequestError

log = logging.getLogger(__name__)

_BOX_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    r"""How a question becomes a prompt, and how a prefix is closed to ask for an answer.

    ``text`` holds the single placeholder ``{question}`` (substituted literally, so LaTeX
    braces elsewhere need no escaping). ``probe_suffix`` ends with an opened
    ``\boxed{`` so that the reply *is* the answer followed by ``}``.
    """

    name: str
    text: str
    probe_suffix: str

    def __post_init__(self) -> None:
        if self.text.count("{question}") != 1:
            raise ConfigError(
                f"prompt template {self.name!r} must contain the placeholder {{question}} exactly once "
                f"(found {self.text.count('{question}')})"
            )

    def render(self, question: str) -> str:
        """The prompt for ``question``."""
        return self.text.replace("{question}", question)


#: Chat formats of common reasoning models; the model thinks inside ``<think>…</think>``.
PRESETS: dict[str, PromptTemplate] = {
    "qwen3": PromptTemplate(
        "qwen3",
        "<|im_start|>user\n{question}\n" + _BOX_INSTRUCTION + "<|im_end|>\n<|im_start|>assistant\n<think>\n",
        "\n</think>\n\n**Final Answer**\n\\boxed{",
    ),
    "deepseek-r1": PromptTemplate(
        "deepseek-r1",
        "<｜begin▁of▁sentence｜><｜User｜>{question}\n" + _BOX_INSTRUCTION + "<｜Assistant｜><think>\n",
        "\n</think>\n\n**Final Answer**\n\\boxed{",
    ),
    "chatml": PromptTemplate(
        "chatml",
        "<|im_start|>user\n{question}\n" + _BOX_INSTRUCTION + "<|im_end|>\n<|im_start|>assistant\n",
        "\n\n**Final Answer**\n\\boxed{",
    ),
    "plain": PromptTemplate(
        "plain",
        "Question: {question}\n" + _BOX_INSTRUCTION + "\nAnswer: ",
        "\n\nFinal answer: \\boxed{",
    ),
}


def template_from(
    preset: str | None = None, *, text: str | None = None, probe_suffix: str | None = None
) -> PromptTemplate:
    """A preset by name, or a custom template (``text``), optionally with its own probe suffix."""
    if text is not None:
        base = PRESETS.get(preset or "plain", PRESETS["plain"])
        return PromptTemplate("custom", text, probe_suffix if probe_suffix is not None else base.probe_suffix)
    name = preset or "qwen3"
    if name not in PRESETS:
        raise ConfigError(f"unknown prompt preset {name!r}; choose one of {', '.join(sorted(PRESETS))} or give text")
    chosen = PRESETS[name]
    return chosen if probe_suffix is None else replace(chosen, probe_suffix=probe_suffix)


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling of branch continuations (probes are always greedy)."""

    temperature: float = 0.6
    top_p: float = 0.95
    seed: int = 0
    """Base seed; each request's seed is derived from it by :func:`request_seed`."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Further request fields (``top_k``, ``min_p`` ...), sent verbatim."""


@dataclass(frozen=True, slots=True)
class ProbeRecipe:
    """How a prefix is probed: the suffix appended, and the greedy reply's length."""

    suffix: str | None = None
    """None: the template's probe suffix."""
    max_tokens: int = 32


class TokenPrompts(enum.Enum):
    """Whether to send token-id prompts: ``auto`` uses them when the server accepts them."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class Recipe:
    """Everything that fixes what a collected branch and its probes mean."""

    template: PromptTemplate = PRESETS["qwen3"]
    sampling: Sampling = Sampling()
    probe: ProbeRecipe = ProbeRecipe()
    normalization: Normalization = Normalization.LIGHT
    token_prompts: TokenPrompts = TokenPrompts.AUTO

    @property
    def probe_suffix(self) -> str:
        """The suffix appended to a prefix to probe it."""
        return self.probe.suffix if self.probe.suffix is not None else self.template.probe_suffix

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (recorded in store metadata)."""
        return {
            "template": {"name": self.template.name, "text": self.template.text},
            "probe": {"suffix": self.probe_suffix, "max_tokens": self.probe.max_tokens, "temperature": 0.0},
            "sampling": {
                "temperature": self.sampling.temperature,
                "top_p": self.sampling.top_p,
                "seed": self.sampling.seed,
                **({"extra": dict(self.sampling.extra)} if self.sampling.extra else {}),
            },
            "normalization": self.normalization.value,
        }


def request_seed(base: int, question: int, branch: int, interval: int) -> int:
    """The seed of one request, a pure function of (base seed, question, branch, interval).

    Seeds do not depend on scheduling, so where a server honours them a collection is
    reproducible whatever the concurrency, and a resumed run asks for exactly what the
    killed one would have asked for. The value fits in 31 bits (every server accepts it).
    """
    digest = hashlib.blake2b(f"{base}:{question}:{branch}:{interval}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF


@dataclass(frozen=True, slots=True)
class BranchState:
    """A branch so far: its prompt and what it generated (text, and token ids when known).

    ``ids`` is None in text mode. ``tokens`` counts generated tokens as the server
    reported them (``usage.completion_tokens``), which is the truth even in text mode.
    """

    prompt: str
    prompt_ids: tuple[int, ...] | None = None
    text: str = ""
    ids: tuple[int, ...] | None = None
    tokens: int = 0
    finished: bool = False
    finish_reason: str = ""
    wire: tuple[bytes, object, object] | None = field(default=None, compare=False, repr=False)
    """The JSON encoding of the prompt the next request sends, kept by :class:`Brancher` so that a grow encodes
    only its new tokens (see :class:`~autotts.llm.EncodedPrompt`): the comma-joined ids of ``prompt_ids + ids``
    when :attr:`uses_ids`, else the escaped text of ``prompt + text`` (no quotes), with the two objects it
    encodes. It is used only while those are *the* objects of the state (identity), so a state made with
    ``dataclasses.replace`` or by hand is encoded afresh rather than sent with a stale encoding."""

    @property
    def uses_ids(self) -> bool:
        """True when the next request can send token ids (prompt and generation both known as ids)."""
        return self.prompt_ids is not None and self.ids is not None


@dataclass(frozen=True, slots=True)
class Probe:
    """A probe's outcome: the answer (``ERR`` when unusable), the raw reply and its token count."""

    answer: str
    reply: str
    tokens: int


def _text_wire(text: str) -> bytes:
    """``text`` JSON-escaped, without quotes (escaping works per character, so pieces concatenate)."""
    return orjson.dumps(text)[1:-1]


def _ids_wire(ids: tuple[int, ...]) -> bytes:
    """Token ids as the inside of a JSON array: ``1,2,3``."""
    return orjson.dumps(ids)[1:-1]


def _join_ids(a: bytes, b: bytes) -> bytes:
    return a + b"," + b if a and b else a or b


class Brancher:
    """Grows and probes branches of one model with one :class:`Recipe` (see the module docstring).

    Build with :meth:`create`, which finds out once whether the server takes token-id
    prompts (and returns token ids), so that every later call is a single request.
    """

    def __init__(self, client: CompletionsClient, recipe: Recipe, *, suffix_ids: tuple[int, ...] | None = None) -> None:
        self.client = client
        self.recipe = recipe
        self._suffix_ids = suffix_ids
        # The probe suffix, encoded once for each kind of prompt.
        self._suffix_text_wire = _text_wire(recipe.probe_suffix)
        self._suffix_ids_wire = _ids_wire(suffix_ids or ())

    @property
    def token_ids(self) -> bool:
        """True when prompts go to the server as token ids."""
        return self._suffix_ids is not None

    @classmethod
    async def create(cls, client: CompletionsClient, recipe: Recipe) -> Brancher:
        """A brancher for ``client``; decides between token-id and text prompts.

        With ``token_prompts = always`` a server that refuses token ids (or does not
        return them) is a :class:`~autotts.llm.LLMRequestError` naming the fix; with
        ``auto`` it silently means text prompts.
        """
        mode = recipe.token_prompts
        if mode is TokenPrompts.NEVER:
            return cls(client, recipe)
        try:
            suffix_ids = await client.tokenize(recipe.probe_suffix)
            check = await client.complete(
                CompletionRequest(suffix_ids, max_tokens=1, temperature=0.0, return_token_ids=True)
            )
            if check.token_ids is None:
                raise LLMRequestError(
                    "the server accepts token-id prompts but does not return generated token ids "
                    "(vLLM needs a version with return_token_ids)",
                    url=client.base_urls[0],
                )
        except LLMRequestError as exc:
            if mode is TokenPrompts.ALWAYS:
                raise LLMRequestError(
                    f"token-id prompts were required (token_prompts = 'always') but the server refused them: {exc}; "
                    "set token_prompts = 'auto' or 'never' to use text prompts",
                    url=exc.url,
                    status_code=exc.status_code,
                ) from None
            log.info("server does not take token-id prompts (%s); using text prompts", exc)
            return cls(client, recipe)
        return cls(client, recipe, suffix_ids=suffix_ids)

    async def start(self, question: str) -> BranchState:
        """The empty branch of ``question`` (its prompt, tokenized when token ids are in use)."""
        prompt = self.recipe.template.render(question)
        if not self.token_ids:
            return BranchState(prompt, wire=(_text_wire(prompt), prompt, ""))
        prompt_ids = await self.client.tokenize(prompt)
        ids: tuple[int, ...] = ()
        return BranchState(prompt, prompt_ids=prompt_ids, ids=ids, wire=(_ids_wire(prompt_ids), prompt_ids, ids))

    @staticmethod
    def _wire(state: BranchState) -> bytes | None:
        """The state's kept encoding, if it is the encoding of this very state."""
        wire = state.wire
        if wire is None:
            return None
        if state.uses_ids:
            valid = wire[1] is state.prompt_ids and wire[2] is state.ids
        else:
            valid = wire[1] is state.prompt and wire[2] is state.text
        return wire[0] if valid else None

    def _prompt(self, state: BranchState, *, probe: bool = False) -> str | tuple[int, ...] | EncodedPrompt:
        """What the next request sends: the branch so far, plus the probe suffix for a probe."""
        wire = self._wire(state)
        if state.uses_ids and state.prompt_ids is not None and state.ids is not None:
            suffix_ids = self._suffix_ids if probe and self._suffix_ids is not None else ()
            if wire is None:
                return state.prompt_ids + state.ids + suffix_ids
            if suffix_ids:
                return EncodedPrompt(b"[" + _join_ids(wire, self._suffix_ids_wire) + b"]")
            return EncodedPrompt(b"[" + wire + b"]")
        suffix = self.recipe.probe_suffix if probe else ""
        if wire is None:
            return state.prompt + state.text + suffix
        return EncodedPrompt(b'"' + wire + (self._suffix_text_wire if probe else b"") + b'"')

    def _extend(self, state: BranchState, done: Completion) -> BranchState:
        ids: tuple[int, ...] | None = None
        if state.ids is not None and done.token_ids is not None:
            ids = state.ids + done.token_ids
        text = state.text + done.text
        # The next request's encoding: the kept one plus the new tokens' (once encoded afresh
        # if the state came without a valid one, e.g. rebuilt by a resumed collection).
        old = self._wire(state)
        wire: tuple[bytes, object, object]
        if state.prompt_ids is not None and ids is not None:
            if old is not None and state.uses_ids:
                data = _join_ids(old, _ids_wire(done.token_ids or ()))
            else:
                data = _join_ids(_ids_wire(state.prompt_ids), _ids_wire(ids))
            wire = (data, state.prompt_ids, ids)
        else:
            if old is not None and not state.uses_ids:
                data = old + _text_wire(done.text)
            else:
                data = _text_wire(state.prompt) + _text_wire(text)
            wire = (data, state.prompt, text)
        # Built directly: dataclasses.replace inspects the fields on every call, once per grow.
        return BranchState(
            state.prompt,
            state.prompt_ids,
            text,
            ids,
            state.tokens + done.completion_tokens,
            done.finish_reason == "stop",
            done.finish_reason,
            wire,
        )

    async def grow(self, state: BranchState, tokens: int, *, seed: int | None = None) -> BranchState:
        """``state`` grown by up to ``tokens`` tokens; finished when the model stopped.

        One request normally; a server that returns fewer tokens than asked without
        stopping is asked again for the rest, so that intervals end on exact token
        boundaries. The seed is sent as given (see :func:`request_seed`).
        """
        if state.finished:
            raise ValueError("cannot grow a finished branch")
        if tokens < 1:
            raise ValueError("tokens must be at least 1")
        target = state.tokens + tokens
        s = self.recipe.sampling
        while not state.finished and state.tokens < target:
            done = await self.client.complete(
                CompletionRequest(
                    self._prompt(state),
                    max_tokens=target - state.tokens,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    seed=seed,
                    return_token_ids=state.uses_ids,
                    extra=s.extra,
                )
            )
            if state.uses_ids and done.token_ids is None:
                raise LLMError("the server stopped returning token ids mid-collection", url=done.server)
            if done.completion_tokens == 0 and not done.stopped:
                raise LLMError(
                    f"the server returned no tokens (finish_reason={done.finish_reason!r}) for a branch of "
                    f"{state.tokens} tokens; is the context window (max_model_len / n_ctx) too small?",
                    url=done.server,
                )
            state = self._extend(state, done)
        return state

    def cut(self, state: BranchState, tokens: int) -> BranchState:
        """The prefix of ``state`` of exactly ``tokens`` generated tokens (needs token ids: full mode)."""
        if state.ids is None:
            raise ValueError("cutting a branch at a token count needs its token ids")
        return BranchState(state.prompt, state.prompt_ids, "", state.ids[:tokens], min(tokens, len(state.ids)))

    async def probe(self, state: BranchState) -> Probe:
        """What the model answers if made to conclude now (greedy, ``probe.max_tokens`` tokens)."""
        prompt = self._prompt(state, probe=True)
        done = await self.client.complete(
            CompletionRequest(prompt, max_tokens=self.recipe.probe.max_tokens, temperature=0.0, top_p=1.0, seed=0)
        )
        return Probe(extract_probe(done.text, self.recipe.normalization), done.text, done.completion_tokens)

    def final(self, state: BranchState) -> str:
        r"""The answer of a finished branch: its last ``\boxed{…}``, normalised (``ERR`` without one)."""
        return extract_final(state.text, self.recipe.normalization)
