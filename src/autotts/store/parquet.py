"""The native single-file store format: one Parquet file per store (pyarrow).

Layout, one row per question::

    id      string              question id (unique, non-empty)
    text    string              problem text
    gold    string              gold answer
    delta   int64               probe interval Δ in tokens (> 0)
    vocab   list<string>        the question's distinct answers, in first-appearance order
    probes  list<list<int32>>   per branch, the probe answers as codes into ``vocab``
    tokens  list<int64>         per branch, its full length in tokens (>= 0)
    finals  list<int32>         per branch, its final answer as a code into ``vocab``

Answers are stored interned because the same few strings ("ERR", the usual answers)
repeat a million times across a benchmark: the file stays small, loading creates each
string once per question, and the reader hands the codes straight to the store's
replay views instead of interning everything again. Store metadata (model, benchmark,
source, schema version, free-form collection settings) is one JSON document under the
``autotts`` key of the Parquet key-value metadata. Settings must be JSON data; tuples
come back as lists.

The reader validates as strictly as the AutoTTS JSON reader and names the file,
question index, branch index and column of the first problem. Writes are atomic.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from itertools import chain, pairwise
from operator import itemgetter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from autotts._atomic import atomic_path
from autotts.errors import StoreError, StoreFormatError, StoreNotFoundError
from autotts.store._gc import paused_gc
from autotts.store.schema import SCHEMA_VERSION, Branch, Question, ReplayQuestion, ReplayStore, StoreMeta
from autotts.store.validate import ensure_valid

logger = logging.getLogger(__name__)

#: Key of the store metadata in the Parquet key-value metadata.
META_KEY = b"autotts"
#: Value of ``format`` in that metadata, so foreign Parquet files are recognised as such.
FORMAT_NAME = "autotts-replay-store"

_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "gold": pa.string(),
    "delta": pa.int64(),
    "vocab": pa.list_(pa.string()),
    "probes": pa.list_(pa.list_(pa.int32())),
    "tokens": pa.list_(pa.int64()),
    "finals": pa.list_(pa.int32()),
}
_SCHEMA = pa.schema([pa.field(name, dtype) for name, dtype in _COLUMNS.items()])

IntArray = npt.NDArray[np.int64]


# ---------------------------------------------------------------------------- write


def _offsets(lengths: list[int]) -> IntArray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _to_table(store: ReplayStore) -> pa.Table:
    replay = store.replay
    outer = pa.array(_offsets([r.n_branches for r in replay]), type=pa.int32())
    inner_lengths = [len(p) for r in replay for p in r.probes]
    inner = pa.array(_offsets(inner_lengths), type=pa.int32())
    codes = np.fromiter(
        chain.from_iterable(chain.from_iterable(r.probes for r in replay)), dtype=np.int32, count=sum(inner_lengths)
    )
    tokens = np.fromiter(chain.from_iterable(r.tokens for r in replay), dtype=np.int64)
    finals = np.fromiter(chain.from_iterable(r.finals for r in replay), dtype=np.int32)
    columns = [
        pa.array([q.id for q in store.questions], type=pa.string()),
        pa.array([q.text for q in store.questions], type=pa.string()),
        pa.array([q.gold for q in store.questions], type=pa.string()),
        pa.array([q.delta for q in store.questions], type=pa.int64()),
        pa.array([list(r.vocab) for r in replay], type=_COLUMNS["vocab"]),
        pa.ListArray.from_arrays(outer, pa.ListArray.from_arrays(inner, pa.array(codes))),
        pa.ListArray.from_arrays(outer, pa.array(tokens)),
        pa.ListArray.from_arrays(outer, pa.array(finals)),
    ]
    meta = store.meta
    info = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "model": meta.model,
        "benchmark": meta.benchmark,
        "source": meta.source,
        "settings": dict(meta.settings),
    }
    schema = _SCHEMA.with_metadata({META_KEY: json.dumps(info, ensure_ascii=False, allow_nan=False).encode("utf-8")})
    return pa.Table.from_arrays(columns, schema=schema)


def _unencodable(store: ReplayStore, path: str) -> StoreFormatError:
    """Locate the string that UTF-8 cannot encode (a lone surrogate from a JSON surrogate escape)."""

    def bad(s: str) -> bool:
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False

    def fail(question: int | None = None, branch: int | None = None, field: str | None = None) -> StoreFormatError:
        return StoreFormatError(
            "the string is not valid Unicode (it holds a lone surrogate such as \\ud800); fix the source text",
            path=path,
            question=question,
            branch=branch,
            field=field,
        )

    meta = store.meta
    for name in ("model", "benchmark", "source"):
        if bad(getattr(meta, name)):
            return fail(field=name)
    for qi, q in enumerate(store.questions):
        for name in ("id", "text", "gold"):
            if bad(getattr(q, name)):
                return fail(qi, field=name)
        for bi, br in enumerate(q.branches):
            if any(bad(a) for a in br.probes):
                return fail(qi, bi, "probes")
            if bad(br.final):
                return fail(qi, bi, "final")
    return fail(field="settings")


def write_parquet(store: ReplayStore, path: str | os.PathLike[str], *, compression: str = "zstd") -> Path:
    """Write ``store`` as one native Parquet file, atomically; return the path.

    The store is validated first (:func:`~autotts.store.validate.ensure_valid`), so
    every file written here reads back; on any failure no file is left at ``path``.
    """
    target = Path(path)
    where = str(target)
    ensure_valid(store, path=where)
    try:
        table = _to_table(store)
    except UnicodeEncodeError:
        raise _unencodable(store, where) from None
    except (pa.ArrowException, OverflowError, ValueError, TypeError) as exc:
        raise StoreError(f"cannot convert the store to Parquet: {exc}", path=where) from exc
    try:
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp, compression=compression)
    except (pa.ArrowException, OSError) as exc:
        raise StoreError(f"cannot write the Parquet file: {exc}", path=where) from exc
    logger.debug("wrote %s (%d questions) to %s", store.name, len(store), where)
    return target


# ----------------------------------------------------------------------------- read


class _Reader:
    """One read of one file; holds the path so that every error can name it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def fail(
        self, message: str, *, question: int | None = None, branch: int | None = None, field: str | None = None
    ) -> StoreFormatError:
        return StoreFormatError(message, path=self.where, question=question, branch=branch, field=field)

    # -- metadata ------------------------------------------------------------------

    def meta(self, kv: Mapping[bytes, bytes], model: str | None, benchmark: str | None) -> StoreMeta:
        raw = kv.get(META_KEY)
        if raw is None:
            raise self.fail(
                "not an autotts replay store: the Parquet metadata has no 'autotts' entry; "
                "write stores with autotts (autotts store import)",
                field="autotts metadata",
            )
        try:
            info = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.fail(f"the store metadata is not valid JSON ({exc})", field="autotts metadata") from None
        if not isinstance(info, dict):
            raise self.fail(
                f"the store metadata must be a JSON object, got {type(info).__name__}", field="autotts metadata"
            )
        version = info.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self.fail(f"expected a positive integer, got {version!r}", field="schema_version")
        if version > SCHEMA_VERSION:
            raise self.fail(
                f"the file uses store schema version {version} but this autotts reads versions up to "
                f"{SCHEMA_VERSION}; upgrade autotts to read it",
                field="schema_version",
            )
        for key in ("model", "benchmark", "source"):
            if not isinstance(info.get(key, ""), str):
                raise self.fail(f"expected a string, got {type(info[key]).__name__}", field=key)
        settings = info.get("settings", {})
        if not isinstance(settings, dict):
            raise self.fail(f"expected a JSON object, got {type(settings).__name__}", field="settings")
        return StoreMeta(
            model=model or info.get("model", "unknown-model"),
            benchmark=benchmark or info.get("benchmark", self.path.stem),
            source=info.get("source", ""),
            schema_version=version,
            settings=settings,
        )

    # -- columns -------------------------------------------------------------------

    def column(self, table: pa.Table, name: str) -> pa.Array:
        expected = _COLUMNS[name]
        column = table.column(name)
        if column.type != expected:
            try:
                column = column.cast(expected)
            except (pa.ArrowException, ValueError) as exc:
                raise self.fail(f"expected type {expected}, got {column.type} ({exc})", field=name) from None
        array = column.combine_chunks()
        if array.null_count:
            first = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
            raise self.fail("missing value (null)", question=first, field=name)
        return array

    def nested(self, array: pa.Array, name: str, level: str, boff: IntArray | None = None) -> tuple[IntArray, pa.Array]:
        """Offsets (from 0) and child values of a list array whose values may not be null.

        The elements of ``array`` are questions, or flat branches when ``boff`` (the
        questions' branch offsets) is given, so that a null child is reported with its
        question and branch.
        """
        offsets = array.offsets.to_numpy().astype(np.int64)
        start = int(offsets[0])
        # ``.values`` + slice rather than ``.flatten()``, which imports pyarrow.compute (~70 ms).
        values = array.values.slice(start, int(offsets[-1]) - start)
        offsets -= start
        if values.null_count:
            pos = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
            element = int(np.searchsorted(offsets, pos, side="right") - 1)
            question, branch = (element, None) if boff is None else self.locate(boff, element)
            raise self.fail(f"missing {level} (null)", question=question, branch=branch, field=name)
        return offsets, values

    def locate(self, boff: IntArray, flat_branch: int) -> tuple[int, int]:
        q = int(np.searchsorted(boff, flat_branch, side="right") - 1)
        return q, flat_branch - int(boff[q])

    def check_codes(
        self, name: str, codes: IntArray, code_branch: IntArray, branch_q: IntArray, boff: IntArray, vsize: IntArray
    ) -> None:
        """Every answer code must index its question's vocabulary."""
        out_of_range = np.flatnonzero((codes < 0) | (codes >= vsize[branch_q[code_branch]]))
        if out_of_range.size:
            i = int(out_of_range[0])
            q, b = self.locate(boff, int(code_branch[i]))
            raise self.fail(
                f"answer code {int(codes[i])} is outside the question's vocabulary (size {int(vsize[q])})",
                question=q,
                branch=b,
                field=name,
            )

    def read(self, model: str | None, benchmark: str | None) -> ReplayStore:
        if not self.path.exists():
            raise StoreNotFoundError("no such file; check the path", path=self.where)
        if self.path.is_dir():
            raise StoreNotFoundError("is a directory, expected a .parquet file", path=self.where)
        try:
            with open(self.path, "rb") as handle:
                pfile = pq.ParquetFile(handle)
                schema = pfile.schema_arrow
                meta = self.meta(schema.metadata or {}, model, benchmark)
                missing = [name for name in _COLUMNS if name not in schema.names]
                if missing:
                    raise self.fail(
                        f"required column is missing (the file has: {', '.join(schema.names) or 'no columns'})",
                        field=missing[0],
                    )
                table = pfile.read(columns=list(_COLUMNS), use_threads=False)
                # Full validation checks offsets and UTF-8, which a damaged page can break
                # without the decoder noticing.
                table.validate(full=True)
        except StoreError:
            raise
        except (pa.ArrowException, OSError, ValueError, IndexError, TypeError) as exc:
            raise self.fail(
                f"not a readable Parquet file ({type(exc).__name__}: {exc}); it may be truncated or not a store"
            ) from None
        try:
            return self.build(table, meta)
        except (pa.ArrowException, ValueError, IndexError, TypeError) as exc:  # damage the checks above missed
            raise self.fail(f"the file's data is damaged ({type(exc).__name__}: {exc})") from None

    def build(self, table: pa.Table, meta: StoreMeta) -> ReplayStore:
        n = table.num_rows
        if n == 0:
            raise self.fail("the file holds no questions")
        cols = {name: self.column(table, name) for name in _COLUMNS}
        qidx = np.arange(n, dtype=np.int64)

        ids: list[str] = cols["id"].to_pylist()
        seen: dict[str, int] = {}
        for qi, qid in enumerate(ids):
            if not qid:
                raise self.fail("expected a non-empty string", question=qi, field="id")
            if qid in seen:
                raise self.fail(
                    f"duplicate question id {qid!r} (first used by question {seen[qid]})", question=qi, field="id"
                )
            seen[qid] = qi
        deltas = cols["delta"].to_numpy()
        bad = np.flatnonzero(deltas <= 0)
        if bad.size:
            q = int(bad[0])
            raise self.fail(
                f"expected a positive integer (tokens per interval), got {int(deltas[q])}", question=q, field="delta"
            )

        voff, vvals = self.nested(cols["vocab"], "vocab", "answer")
        boff, branch_probes = self.nested(cols["probes"], "probes", "branch")
        toff, tvals = self.nested(cols["tokens"], "tokens", "token count")
        foff, fvals = self.nested(cols["finals"], "finals", "final answer")
        counts = np.diff(boff)
        for name, other in (("tokens", toff), ("finals", foff)):
            if not np.array_equal(other, boff):
                q = int(np.flatnonzero(np.diff(other) != counts)[0])
                raise self.fail(
                    f"lists {int(other[q + 1] - other[q])} branches but 'probes' lists {int(counts[q])}",
                    question=q,
                    field=name,
                )
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise self.fail(
                "the branch list is empty; a question needs at least one branch", question=int(empty[0]), field="probes"
            )
        branch_q = np.repeat(qidx, counts)
        ioff, code_vals = self.nested(branch_probes, "probes", "probe answer", boff)
        codes = code_vals.to_numpy().astype(np.int64)
        tokens = tvals.to_numpy()
        finals = fvals.to_numpy().astype(np.int64)
        vsize = np.diff(voff)

        neg = np.flatnonzero(tokens < 0)
        if neg.size:
            q, b = self.locate(boff, int(neg[0]))
            raise self.fail(f"token count is negative ({int(tokens[neg[0]])})", question=q, branch=b, field="tokens")
        code_branch = np.repeat(np.arange(len(branch_q), dtype=np.int64), np.diff(ioff))
        self.check_codes("probes", codes, code_branch, branch_q, boff, vsize)
        self.check_codes("finals", finals, np.arange(len(branch_q), dtype=np.int64), branch_q, boff, vsize)

        vocab_flat: list[str] = vvals.to_pylist()
        for qi in range(n):
            size = int(vsize[qi])
            if size > 1 and len(set(vocab_flat[int(voff[qi]) : int(voff[qi + 1])])) != size:
                raise self.fail("the answer vocabulary repeats an answer", question=qi, field="vocab")
        # Build every string tuple with C-level gathers and tuple slices: per-branch
        # Python loops over individual answers would dominate the load time.
        code_start = voff[branch_q[code_branch]]
        probe_words = _gather(vocab_flat, (codes + code_start).tolist())
        final_words = _gather(vocab_flat, (finals + voff[branch_q]).tolist())
        code_tuple = tuple(codes.tolist())
        ioff_list: list[int] = ioff.tolist()
        spans = list(pairwise(ioff_list))
        probe_codes = [code_tuple[a:b] for a, b in spans]
        branches = list(map(Branch, [probe_words[a:b] for a, b in spans], tokens.tolist(), final_words))
        token_tuple = tuple(tokens.tolist())
        final_tuple = tuple(finals.tolist())

        ids_text: list[str] = cols["text"].to_pylist()
        golds: list[str] = cols["gold"].to_pylist()
        delta_list: list[int] = deltas.tolist()
        boff_list: list[int] = boff.tolist()
        voff_list: list[int] = voff.tolist()
        questions = []
        views = []
        for qi in range(n):
            b0, b1 = boff_list[qi], boff_list[qi + 1]
            questions.append(
                Question(
                    id=ids[qi],
                    text=ids_text[qi],
                    gold=golds[qi],
                    delta=delta_list[qi],
                    branches=tuple(branches[b0:b1]),
                )
            )
            views.append(
                ReplayQuestion(
                    vocab=tuple(vocab_flat[voff_list[qi] : voff_list[qi + 1]]),
                    probes=tuple(probe_codes[b0:b1]),
                    tokens=token_tuple[b0:b1],
                    finals=final_tuple[b0:b1],
                    delta=delta_list[qi],
                )
            )
        return ReplayStore.with_replay(meta, tuple(questions), tuple(views))


def _gather(values: list[str], indices: list[int]) -> tuple[str, ...]:
    """``tuple(values[i] for i in indices)`` in one C call (itemgetter), for any length."""
    if len(indices) > 1:
        return tuple(itemgetter(*indices)(values))
    return tuple(values[i] for i in indices)


def read_parquet(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    benchmark: str | None = None,
) -> ReplayStore:
    """Read and validate a native Parquet store.

    ``model`` and ``benchmark`` override the names recorded in the file.
    """
    try:
        with paused_gc():
            return _Reader(Path(path)).read(model, benchmark)
    finally:
        # The Arrow buffers are garbage once the Python objects exist; without this the
        # allocator keeps ~2 MB per store resident for no one.
        pa.default_memory_pool().release_unused()
