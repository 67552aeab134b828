r"""A scripted completions server whose every branch, probe answer and final answer is known in advance.

The script (:func:`make_script`) fixes, per question, N branch texts. Each text opens
with a unique header (so any prefix names its branch), states intermediate answers
(``… the answer is 17 ; …``) at known character positions, and mostly ends with a
``\boxed{…}`` final. With byte tokens and ASCII text one character is one token, so
"the answer the model gives after k·Δ tokens" is known exactly:
:meth:`ScriptedQuestion.expected_branch` computes the store cell a correct collector
must produce, in either collection mode.

The server (:class:`ScriptedCompletionsServer`) plays the model:

* a *grow* request continues its branch: the first request of a branch picks the
  branch by its seed (see :func:`autotts.collect.recipe.request_seed`), later ones
  by the prefix; the reply is the next ``max_tokens`` characters, ``stop`` when the
  text ends inside them;
* a *probe* request (the prompt ends with the probe suffix) is answered with the last
  answer stated inside the prefix followed by ``}`` — or with text that never closes
  the brace (so: ``ERR``) when none was stated yet.

A prompt of no scripted question (a client's capability check) gets a one-token reply
``?`` and is recorded in ``foreign_prompts``; a prefix of a scripted question that
continues none of its branches is a 400 naming the problem, so a collector bug shows
up loudly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from autotts.collect.answers import Normalization, normalize_answer
from autotts.collect.recipe import PRESETS, PromptTemplate, request_seed
from autotts.store.schema import ERR, Branch
from autotts.testing.completions_server import CompletionCall, CompletionsServer, Generation

#: Raw answer forms the scripted model writes; the expected store holds their normalised forms.
_ANSWERS = ("17", "42", "\\dfrac{3}{4}", "x^{2}", "\\frac{1}{2}", "7", "10^\\circ")
_WORDS = ("so", "then", "we", "check", "the", "sum", "again", "and", "carry", "one", "wait", "compute", "it")

#: What a probe of a prefix without any stated answer replies: no closing brace, hence ``ERR``.
NO_ANSWER_REPLY = "hmm, not sure yet"


@dataclass(frozen=True)
class ScriptedBranch:
    """One branch: its full text and the answers it states, as (end position, normalised answer)."""

    text: str
    claims: tuple[tuple[int, str], ...]
    raw_claims: tuple[str, ...]
    boxed_end: int | None = None
    """Where the closing ``}`` of the final ``\\boxed{…}`` ends (None: the branch never boxes an answer)."""

    def final_at(self, chars: int) -> str:
        """The expected final answer when the branch is cut after ``chars`` characters."""
        if self.boxed_end is None or self.boxed_end > chars:
            return ERR
        return self.claims[-1][1]

    def answer_at(self, chars: int) -> tuple[str | None, str | None]:
        """(raw, normalised) answer of the last claim that ends within the first ``chars`` characters."""
        found: tuple[str | None, str | None] = (None, None)
        for (end, norm), raw in zip(self.claims, self.raw_claims, strict=True):
            if end <= chars:
                found = (raw, norm)
        return found


@dataclass(frozen=True)
class ScriptedQuestion:
    """A question of the script: id, text, gold answer, branches and whether each ends boxed."""

    id: str
    text: str
    gold: str
    branches: tuple[ScriptedBranch, ...]

    def expected_branch(self, b: int, delta: int, cap: int, probe_tokens: int) -> Branch:
        """The store cell a correct collector produces for branch ``b`` (Δ, token cap, probe length)."""
        br = self.branches[b]
        length = min(len(br.text), cap)
        probes = []
        for k in range(1, length // delta + 1):
            raw, norm = br.answer_at(k * delta)
            fits = raw is not None and len(raw) + 1 <= probe_tokens
            probes.append(norm if fits and norm is not None else ERR)
        return Branch(tuple(probes), length, br.final_at(length))


def make_script(
    questions: int = 3,
    branches: int = 4,
    *,
    seed: int = 0,
    min_chars: int = 60,
    max_chars: int = 200,
) -> tuple[ScriptedQuestion, ...]:
    """A deterministic script (same arguments → same script); see the module docstring."""
    rng = random.Random(seed)
    out = []
    for q in range(questions):
        gold_raw = rng.choice(_ANSWERS)
        items = []
        for b in range(branches):
            target = rng.randint(min_chars, max_chars)
            text = f"[q{q} b{b}]"
            claims: list[tuple[int, str]] = []
            raws: list[str] = []
            while len(text) < target:
                if rng.random() < 0.2:
                    raw = gold_raw if rng.random() < 0.6 else rng.choice(_ANSWERS)
                    text += f" the answer is {raw} ;"
                    claims.append((len(text), normalize_answer(raw, Normalization.LIGHT)))
                    raws.append(raw)
                else:
                    text += " " + rng.choice(_WORDS)
            boxed_end = None
            if rng.random() < 0.8:
                raw = gold_raw if rng.random() < 0.7 else rng.choice(_ANSWERS)
                text += f" Therefore \\boxed{{{raw}}}"
                boxed_end = len(text)
                claims.append((boxed_end, normalize_answer(raw, Normalization.LIGHT)))
                raws.append(raw)
                text += "."
            else:
                text += " I give up."
            items.append(ScriptedBranch(text, tuple(claims), tuple(raws), boxed_end))
        out.append(
            ScriptedQuestion(
                id=f"s{q}",
                text=f"Scripted question {q}: what is the answer?",
                gold=gold_raw,
                branches=tuple(items),
            )
        )
    return tuple(out)


class ScriptedCompletionsServer(CompletionsServer):
    """Plays the scripted model over HTTP (see the module docstring)."""

    def __init__(
        self,
        script: Sequence[ScriptedQuestion],
        *,
        template: PromptTemplate = PRESETS["qwen3"],
        probe_suffix: str | None = None,
        base_seed: int = 0,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.script = tuple(script)
        self.prompts = [template.render(q.text) for q in self.script]
        self.probe_suffix = template.probe_suffix if probe_suffix is None else probe_suffix
        self.foreign_prompts: list[str] = []
        self._by_seed = {
            request_seed(base_seed, qi, b, 0): (qi, b)
            for qi, q in enumerate(self.script)
            for b in range(len(q.branches))
        }

    def start(self) -> ScriptedCompletionsServer:
        """Bind to a free port on 127.0.0.1 and serve in a daemon thread."""
        super().start()
        return self

    def __enter__(self) -> ScriptedCompletionsServer:
        return self.start()

    def _locate(self, prompt: str) -> tuple[int, str] | None:
        for qi, p in enumerate(self.prompts):
            if prompt.startswith(p):
                return qi, prompt[len(p) :]
        return None

    def _branch_of(self, qi: int, generated: str) -> int:
        hits = [b for b, br in enumerate(self.script[qi].branches) if generated and br.text.startswith(generated)]
        if len(hits) != 1:
            raise ValueError(f"scripted server: the prefix {generated[:40]!r}… continues no scripted branch")
        return hits[0]

    def describe(self, call: CompletionCall) -> tuple[str, int, int, int] | None:
        """``(kind, question, branch, characters)`` of a call: kind ``grow`` or ``probe``; None for foreign ones.

        ``characters`` is the branch prefix the call started from (grow) or probed
        (probe) — with ASCII byte tokens, its length in tokens.
        """
        located = self._locate(call.prompt)
        if located is None:
            return None
        qi, generated = located
        if self.probe_suffix and generated.endswith(self.probe_suffix):
            prefix = generated[: len(generated) - len(self.probe_suffix)]
            return ("probe", qi, self._branch_of(qi, prefix), len(prefix))
        if generated:
            return ("grow", qi, self._branch_of(qi, generated), len(generated))
        return ("grow", qi, self._by_seed[call.seed][1], 0) if call.seed in self._by_seed else None

    def generate(self, call: CompletionCall) -> Generation:
        """Continue a branch, or answer a probe, from the script."""
        enc = self.tokenizer.encode
        located = self._locate(call.prompt)
        if located is None:
            self.foreign_prompts.append(call.prompt)
            return Generation(enc("?"), "stop")
        qi, generated = located
        if self.probe_suffix and generated.endswith(self.probe_suffix):
            prefix = generated[: len(generated) - len(self.probe_suffix)]
            br = self.script[qi].branches[self._branch_of(qi, prefix)]
            raw, _ = br.answer_at(len(prefix))
            reply = f"{raw}}} and that is final." if raw is not None else NO_ANSWER_REPLY
            ids = enc(reply)
            return Generation(ids[: call.max_tokens], "length" if len(ids) > call.max_tokens else "stop")
        if generated:
            b = self._branch_of(qi, generated)
        else:
            if call.seed not in self._by_seed:
                raise ValueError("scripted server: a branch's first request must carry its request_seed")
            q2, b = self._by_seed[call.seed]
            if q2 != qi:
                raise ValueError("scripted server: the seed belongs to another question")
        rest = self.script[qi].branches[b].text[len(generated) :]
        out = rest[: call.max_tokens]
        return Generation(enc(out), "stop" if len(rest) < call.max_tokens else "length")
