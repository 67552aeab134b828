"""``validate_store``'s findings as ``autotts store validate`` shows them: code, location and words.

Each warning points at the first place to look (question, branch, field) and says what
it means for numbers computed on the store; a long list of branches is cut after twelve.
``tests/test_store_cli.py`` covers which codes fire; this file pins what each one says.
"""

from __future__ import annotations

import logging

import pytest

from autotts.errors import StoreFormatError
from autotts.store.schema import ERR, Branch, Question, ReplayStore, StoreMeta
from autotts.store.validate import Finding, Severity, ensure_valid, structural_errors, validate_store


def q(qid: str, branches: list[Branch], *, delta: int = 10, gold: str = "A", text: str = "") -> Question:
    return Question(qid, text or f"text of {qid}", gold, delta, tuple(branches))


def ok(final: str = "A", tokens: int = 25, probes: tuple[str, ...] = ("A", "B")) -> Branch:
    return Branch(probes, tokens, final)


def store(*questions: Question) -> ReplayStore:
    return ReplayStore(StoreMeta("m", "b"), tuple(questions))


def warnings(s: ReplayStore) -> list[Finding]:
    found = validate_store(s)
    assert all(f.severity is Severity.WARNING for f in found)
    return found


def test_a_finding_reads_as_severity_code_location_message() -> None:
    f = Finding(Severity.WARNING, "zero-tokens", "reading costs nothing", question=3, branch=5, field="tokens")
    assert str(f) == "warning [zero-tokens] question 3, branch 5, field 'tokens': reading costs nothing"
    assert f.location == "question 3, branch 5, field 'tokens'"
    assert not f.is_error
    store_wide = Finding(Severity.ERROR, "no-questions", "the store holds no questions")
    assert str(store_wide) == "error [no-questions] the store holds no questions"
    assert store_wide.location == "" and store_wide.is_error
    assert Finding(Severity.ERROR, "x", "m", field="gold").location == "field 'gold'"
    assert f.to_dict() == {
        "severity": "warning",
        "code": "zero-tokens",
        "message": "reading costs nothing",
        "question": 3,
        "branch": 5,
        "field": "tokens",
    }


def test_mixed_deltas_point_at_the_first_odd_question() -> None:
    s = store(q("a", [ok()]), q("b", [ok()], delta=20), q("c", [ok()]), q("d", [ok()], delta=20), q("e", [ok()]))
    assert warnings(s) == [
        Finding(
            Severity.WARNING,
            "delta-mixed",
            "the probe interval differs across questions: Δ=10 (3 questions), Δ=20 (2 questions); "
            "costs are not comparable across them",
            question=1,
            field="delta",
        )
    ]
    # the usual value is the most common one, wherever it comes first
    s2 = store(q("a", [ok()], delta=20), q("b", [ok()]), q("c", [ok()]))
    assert [(f.code, f.question) for f in warnings(s2)] == [("delta-mixed", 0)]


def test_mixed_branch_counts_point_at_the_first_odd_question() -> None:
    s = store(q("a", [ok(), ok()]), q("b", [ok(), ok()]), q("c", [ok()]), q("d", [ok(), ok(), ok()]))
    assert warnings(s) == [
        Finding(
            Severity.WARNING,
            "branches-mixed",
            "questions hold different numbers of branches: 2 branches (2 questions), 1 branches (1 questions), "
            "3 branches (1 questions); controllers needing N branches may run out",
            question=2,
            field="branches",
        )
    ]
    s2 = store(q("a", [ok()]), q("b", [ok(), ok()]), q("c", [ok(), ok()]))
    assert [(f.code, f.question) for f in warnings(s2)] == [("branches-mixed", 0)]
    s3 = store(q("a", [ok()] * 3), q("b", [ok()] * 3), q("c", [ok()]))
    assert [(f.code, f.question) for f in warnings(s3)] == [("branches-mixed", 2)]


def test_duplicate_texts_name_the_first_copy_and_empty_texts_are_not_duplicates() -> None:
    s = store(
        q("a", [ok()], text="What is 2+2?"),
        Question("b", "", "A", 10, (ok(),)),
        Question("c", "", "A", 10, (ok(),)),
        q("d", [ok()], text="Other"),
        q("e", [ok()], text="What is 2+2?"),
        q("f", [ok()], text="Other"),
    )
    assert warnings(s) == [
        Finding(
            Severity.WARNING,
            "duplicate-text",
            "same question text as question 0; a benchmark question counted twice skews accuracy",
            question=4,
            field="text",
        ),
        Finding(
            Severity.WARNING,
            "duplicate-text",
            "same question text as question 3; a benchmark question counted twice skews accuracy",
            question=5,
            field="text",
        ),
    ]


def test_more_probes_than_the_length_allows_lists_the_branches() -> None:
    # Δ = 10: 25 tokens hold at most ceil(2.5) = 3 probes; 30 tokens exactly 3.
    branches = [ok(tokens=30, probes=("A",) * 3), ok(tokens=25, probes=("A",) * 4), ok(tokens=21, probes=("A",) * 3)]
    branches += [ok(tokens=5, probes=("A", "A"))] * 14
    found = warnings(store(q("a", branches)))
    assert found == [
        Finding(
            Severity.WARNING,
            "probes-exceed-length",
            "15 branch(es) have more probes than their length allows (K > ceil(tokens / Δ)): "
            "branches 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, ...; probe or token counts may be wrong",
            question=0,
            branch=1,
            field="probes",
        )
    ]


def test_zero_token_branches_and_a_list_of_exactly_twelve() -> None:
    branches = [ok()] + [ok(tokens=0, probes=())] * 12
    assert warnings(store(q("a", branches))) == [
        Finding(
            Severity.WARNING,
            "zero-tokens",
            "12 branch(es) have 0 tokens: branches 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12; reading them costs nothing",
            question=0,
            branch=1,
            field="tokens",
        )
    ]


def test_suspicious_gold_and_all_err_finals() -> None:
    s = store(q("a", [ok(final=ERR), ok(final=ERR)], gold=ERR), q("b", [ok(), ok()], gold=""), q("c", [ok(), ok(ERR)]))
    found = [f for f in warnings(s) if f.code != "gold-unreached"]
    assert found == [
        Finding(
            Severity.WARNING,
            "gold-suspicious",
            "the gold answer is 'ERR', which looks like a missing answer rather than a real one",
            question=0,
            field="gold",
        ),
        Finding(
            Severity.WARNING,
            "all-err",
            "every branch's final answer is 'ERR'; answer extraction probably failed for this question",
            question=0,
            field="final",
        ),
        Finding(
            Severity.WARNING,
            "gold-suspicious",
            "the gold answer is '', which looks like a missing answer rather than a real one",
            question=1,
            field="gold",
        ),
    ]


def test_unreached_gold_is_one_store_wide_finding_with_probe_hints() -> None:
    s = store(
        q("a", [ok(final="B", probes=("A", "B"))]),  # gold A only among the probes
        q("b", [ok()]),
        q("c", [ok(final="C", probes=("C",))]),
    )
    assert warnings(s) == [
        Finding(
            Severity.WARNING,
            "gold-unreached",
            "no branch ends with the gold answer in 2 of 3 questions (0, 2), so answering with a branch's final "
            "answer cannot be right there; it does appear among the probes of questions 0; if that is "
            "unexpected, check how gold answers were normalised",
            field="gold",
        )
    ]
    s2 = store(q("a", [ok(final="C", probes=("C",))]), q("b", [ok()]))
    assert warnings(s2)[0].message == (
        "no branch ends with the gold answer in 1 of 2 questions (0), so answering with a branch's final answer "
        "cannot be right there; if that is unexpected, check how gold answers were normalised"
    )


def test_a_clean_store_has_no_findings() -> None:
    assert validate_store(store(q("a", [ok(), ok("B")]), q("b", [ok(), ok()]))) == []


# ------------------------------------------------------------------------ errors
# Stores built in code (synthetic generators, collection, tests) are checked like files:
# each error names what was expected, what was found and where.


def E(code: str, message: str, **where: object) -> Finding:
    return Finding(Severity.ERROR, code, message, **where)  # type: ignore[arg-type]


def errors_of(s: ReplayStore) -> list[Finding]:
    found = validate_store(s)
    assert found == structural_errors(s)  # errors first, and no warnings on a broken store
    return found


def with_meta(**kw: object) -> ReplayStore:
    meta = {"model": "m", "benchmark": "b", "source": "", "schema_version": 1, "settings": {}}
    meta.update(kw)
    return ReplayStore(StoreMeta(**meta), (q("a", [ok()]),))  # type: ignore[arg-type]


def test_meta_errors() -> None:
    assert errors_of(with_meta(model=3, source=None)) == [
        E("meta-type", "expected a string, got int", field="model"),
        E("meta-type", "expected a string, got NoneType", field="source"),
    ]
    for bad in (0, 1.5, True, "1"):
        assert errors_of(with_meta(schema_version=bad)) == [
            E("meta-type", f"expected a positive integer, got {bad!r}", field="schema_version")
        ]
    assert errors_of(with_meta(schema_version=2)) == [
        E(
            "schema-version",
            "schema version 2 is newer than this release supports (1)",
            field="schema_version",
        )
    ]
    [nan] = errors_of(with_meta(settings={"temperature": float("nan")}))
    assert (nan.code, nan.field) == ("settings-not-json", "settings")
    assert nan.message.startswith("collection settings must be JSON data (str keys, no NaN): ")


def test_store_level_errors() -> None:
    assert errors_of(ReplayStore(StoreMeta("m", "b"), [q("a", [ok()])])) == [  # type: ignore[arg-type]
        E("type", "expected a tuple, got list", field="questions")
    ]
    assert errors_of(ReplayStore(StoreMeta("m", "b"), ())) == [
        E("no-questions", "the store holds no questions", field="questions")
    ]
    assert errors_of(store(q("a", [ok()]), q("b", [ok()]), q("a", [ok()]), q("a", [ok()]))) == [
        E("duplicate-id", "duplicate question id 'a' (first used by question 0)", question=2, field="id"),
        E("duplicate-id", "duplicate question id 'a' (first used by question 0)", question=3, field="id"),
    ]


def test_question_errors() -> None:
    bad = [
        "not a question",
        Question("", 7, "A", 10, (ok(),)),  # type: ignore[arg-type]
        Question("c", "t", None, 0, [ok()]),  # type: ignore[arg-type]
        Question("d", "t", "A", True, ()),  # type: ignore[arg-type]
        Question("e", "t", "A", 2**63, (ok(),)),
    ]
    assert errors_of(store(q("ok", [ok()]), *bad)) == [  # type: ignore[arg-type]
        E("type", "expected a Question, got str", question=1),
        E("type", "expected a non-empty string, got ''", question=2, field="id"),
        E("type", "expected a string, got int", question=2, field="text"),
        E("type", "expected a string, got NoneType", question=3, field="gold"),
        E("bad-delta", "expected a positive integer (tokens per interval), got 0", question=3, field="delta"),
        E("type", "expected a tuple of branches, got list", question=3, field="branches"),
        E("bad-delta", "expected a positive integer (tokens per interval), got True", question=4, field="delta"),
        E(
            "no-branches",
            "the branch list is empty; a question needs at least one branch",
            question=4,
            field="branches",
        ),
        E(
            "bad-delta",
            f"expected a positive integer (tokens per interval), got {2**63}",
            question=5,
            field="delta",
        ),
    ]


def test_the_largest_delta_the_native_format_holds_is_valid() -> None:
    assert structural_errors(store(q("a", [ok()], delta=2**63 - 1))) == []


def test_branch_errors() -> None:
    branches = [
        ok(),
        7,
        Branch(["A"], 5, "A"),
        Branch(("A", 2, 3), "5", 7),
        Branch((), -1, "A"),
        Branch((), 2**63, "A"),
        Branch((), 2**63 - 1, "A"),  # the largest length the native format holds
    ]
    assert errors_of(store(q("a", branches))) == [  # type: ignore[arg-type]
        E("type", "expected a Branch, got int", question=0, branch=1, field="branches"),
        E("type", "expected a tuple of answers, got list", question=0, branch=2, field="probes"),
        E("type", "probe 1: expected a string, got int", question=0, branch=3, field="probes"),
        E("type", "expected an integer, got str", question=0, branch=3, field="tokens"),
        E("type", "expected a string, got int", question=0, branch=3, field="final"),
        E("negative-tokens", "token count is negative (-1)", question=0, branch=4, field="tokens"),
        E("too-large", f"token count {2**63} does not fit in 64 bits", question=0, branch=5, field="tokens"),
    ]


def test_writers_refuse_the_first_error_with_its_location() -> None:
    broken = store(q("a", [ok()]), q("b", [ok(), Branch((), -4, "A")]), q("c", [Branch((), -1, "A")]))
    with pytest.raises(StoreFormatError) as info:
        ensure_valid(broken, path="out/store.json")
    e = info.value
    assert (e.path, e.question, e.branch, e.field) == ("out/store.json", 1, 1, "tokens")
    assert e.message == "token count is negative (-4) (refusing to write an invalid store)"
    ensure_valid(store(q("a", [ok()])))  # a valid store passes silently


def test_validation_is_logged_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="autotts.store.validate"):
        validate_store(store(q("a", [ok()]), q("b", [ok()], delta=20)))
    assert [r.getMessage() for r in caplog.records] == ["validated m/b: 1 findings"]
