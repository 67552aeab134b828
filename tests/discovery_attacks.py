"""Adversarial candidates: each tries one way to score better than it honestly could.

Every attacker is built on the same honest controller (``HONEST``: read ``1 + round(3β)``
branches in full, majority vote). Its trick, when it works, returns an answer or lowers the
recorded cost; when the trick fails (raises, finds nothing) the attacker behaves exactly
like ``HONEST``. So a correct judge gives each attacker either a failing status or the very
curves of ``HONEST`` — and a broken judge gives a better score than ``HONEST``.

All attackers pass the static checks unless their docstring says otherwise: the static
checks are a teaching filter, not the security boundary, and the judge must hold anyway.
"""

from __future__ import annotations

HONEST_BODY = """
def honest(session, beta):
    answers = []
    for _ in range(1 + round(3 * beta)):
        r = session.read()
        if r is None:
            break
        answers.append(r.answer)
    if not answers:
        return None
    best = answers[0]
    for a in answers:
        if answers.count(a) > answers.count(best):
            best = a
    return best


def majority_of(finals):
    best = None
    for a in finals:
        if best is None or finals.count(a) > finals.count(best):
            best = a
    return best
"""

_CLASS = """

class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta

    @staticmethod
    def schedule(beta):
        return {{"n": 1 + round(3 * beta)}}

    def solve(self, session):
{body}
"""


def attacker(helpers: str, body: str, header: str = "") -> str:
    """A candidate: ``header`` (imports), the honest helpers, ``helpers``, and ``solve``'s body."""
    indented = "\n".join("        " + line if line.strip() else "" for line in body.strip("\n").splitlines())
    return header + HONEST_BODY + helpers + _CLASS.format(body=indented)


HONEST = attacker("", "return honest(session, self.beta)")

_DUNDER = '"_" * 2'

# 1. Frame walking: a running generator's frame links back to the harness's frames. Today's
#    harness keeps the unperturbed question list and the question index in its locals.
FRAME_WALK = attacker(
    f"""
def harness_question():
    us = {_DUNDER}
    me = []

    def walk():
        f = me[0].gi_frame.f_back
        found = None
        while f is not None:
            loc = f.f_locals
            if "questions" in loc and "qi" in loc:
                found = loc["questions"][loc["qi"]]
            f = f.f_back
        yield found

    g = walk()
    me.append(g)
    return next(g)
""",
    """
try:
    q = harness_question()
except Exception:
    q = None
if q is not None:
    return majority_of([q.vocab[c] for c in q.finals])
return honest(session, self.beta)
""",
)

# 1b. Frame walking to the harness's globals: switch today's lock off, then read a file by path
#     with the real builtins (the attacker is told the path and the golds to look for).
FRAME_GLOBALS_OPEN = attacker(
    """
def harness_globals():
    me = []

    def walk():
        f = me[0].gi_frame.f_back
        out = []
        while f is not None:
            out.append(f.f_globals)
            f = f.f_back
        yield out

    g = walk()
    me.append(g)
    return next(g)


def read_by_path(path):
    for glob in harness_globals():
        if "_LOCKED" in glob:
            glob["_LOCKED"] = False
    for glob in harness_globals():
        b = glob.get("builtins")
        if b is not None:
            return b.open(path).read()
    return ""
""",
    """
try:
    text = read_by_path(STORE_PATH)
except Exception:
    text = ""
for gold in GOLDS:
    if ('"' + gold + '"') in text:
        return gold
return honest(session, self.beta)
""",
)


def with_store(code: str, path: str, golds: list[str]) -> str:
    """``code`` with ``STORE_PATH`` and ``GOLDS`` defined (the worst case: the attacker knows both)."""
    return f"STORE_PATH = {path!r}\nGOLDS = {golds!r}\n" + code


# 2. Accounting in reach: the session's class attribute ``cost`` replaced through a local name.
COST_PATCH = attacker(
    "",
    """
a = honest(session, self.beta)
T = type(session)
T.cost = 0
T.sequential_tokens = 0
return a
""",
)

# 2b. Patching a session method so that it resets the session's own running total.
METHOD_PATCH = attacker(
    """
def cheapen(session):
    T = type(session)
    orig = T.read

    def read(self):
        r = orig(self)
        self._cost = 0
        self._extra = [0] * len(self._extra)
        return r

    T.read = read
""",
    """
try:
    cheapen(session)
except Exception:
    pass
return honest(session, self.beta)
""",
)

# 3. Private data through a ``self``-named parameter of a free function, and undoing the leak
#    perturbation of today's leak test (every unopened branch's last probe equals its final).
SELF_PARAM = attacker(
    """
def hidden_finals(self):
    vocab = self._vocab
    finals = list(self._finals)
    probes = self._probes
    with_probes = [b for b in range(len(finals)) if probes[b]]
    if with_probes and all(probes[b][-1] == finals[b] for b in with_probes):
        finals = [(c - 1) % len(vocab) for c in finals]
    return [vocab[c] for c in finals]
""",
    """
try:
    finals = hidden_finals(session)
except Exception:
    finals = None
if finals:
    return majority_of(finals)
return honest(session, self.beta)
""",
)

# 4. Module-global memory: later runs of the same question answered from memory, cheaply.
MEMO = attacker(
    """
MEMORY = {}
""",
    """
first = session.read()
if first is None:
    return None
key = (session.n_total, first.answer)
if key in MEMORY:
    return MEMORY[key]
rest = honest(session, self.beta)
answer = rest if rest is not None else first.answer
MEMORY[key] = answer
return answer
""",
)

# 4b. Module-global episode counter: cheap on every other episode.
COUNTER = attacker(
    """
SEEN = [0]
""",
    """
SEEN[0] += 1
if SEEN[0] % 2 == 0:
    r = session.read()
    return None if r is None else r.answer
return honest(session, self.beta)
""",
)

# 5. id(): addresses of fresh objects differ between processes and episodes.
ID_RANDOM = attacker(
    "",
    """
n = 1 + (id(object()) // 16) % 4
answers = []
for _ in range(n):
    r = session.read()
    if r is None:
        break
    answers.append(r.answer)
return majority_of(answers)
""",
)

# 5b. Hash randomisation of a string built at run time (stable under PYTHONHASHSEED=0 in the child).
HASH_RANDOM = attacker(
    "",
    """
n = 1 + hash(str(session.n_total) + "salt") % 4
answers = []
for _ in range(n):
    r = session.read()
    if r is None:
        break
    answers.append(r.answer)
return majority_of(answers)
""",
)

# 5c. Wall-clock time: refused statically (``time`` is not an allowed import) — status invalid.
TIME_IMPORT = attacker(
    "",
    """
n = 1 + int(time.time() * 1000) % 4
answers = [session.read().answer for _ in range(n)]
return majority_of(answers)
""",
    header="import time\n",
)

# 6. Heap walks. ``gc.get_objects()`` and friends are refused by the audit hook (that is
#    what ``GC_WALK`` meets); ``GC_REACH`` walks the heap without ``gc``: from every harness
#    frame's globals and locals and from ``sys.modules``, through containers and instance
#    dictionaries. It crashes on purpose with what it saw, so that a test can check the walk
#    really ran and found no replay object (run below the static checks, which refuse
#    ``.getattr``).
_GC_HELPERS = """
def harness_frames():
    me = []

    def walk():
        f = me[0].gi_frame.f_back
        out = []
        while f is not None:
            out.append(f)
            f = f.f_back
        yield out

    g = walk()
    me.append(g)
    return next(g)


def harness_builtins():
    real = None
    for f in harness_frames():
        real = f.f_globals.get("builtins", real)
    return real


def gc_objects():
    real = harness_builtins()
    us = "_" * 2
    gc = real.getattr(real, us + "import" + us)("gc")
    return gc.get_objects()


def heap_walk(limit):
    real = harness_builtins()
    us = "_" * 2
    stack = []
    for f in harness_frames():
        stack.append(f.f_globals)
        stack.append(f.f_locals)
        s = f.f_globals.get("sys")
        if s is not None:
            stack.append(real.getattr(s, "modules"))
    seen = set()
    found = []
    while stack and len(seen) < limit:
        o = stack.pop()
        if real.id(o) in seen:
            continue
        seen.add(real.id(o))
        if "Replay" in real.repr(real.type(o)):
            found.append(o)
        if real.isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif real.isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        else:
            d = real.getattr(o, us + "dict" + us, None)
            if real.isinstance(d, dict):
                stack.append(d)
    return len(seen), found
"""

GC_WALK = attacker(
    _GC_HELPERS
    + """

def gc_finals(session):
    real = harness_builtins()
    for obj in gc_objects():
        finals = real.getattr(obj, "finals", None)
        if "Replay" in real.repr(real.type(obj)) and finals is not None and len(finals) == session.n_total:
            return majority_of([obj.vocab[c] for c in finals])
    return None
""",
    """
try:
    a = gc_finals(session)
except Exception:
    a = None
if a is not None:
    return a
return honest(session, self.beta)
""",
)

GC_REACH = attacker(
    _GC_HELPERS,
    """
try:
    gc_objects()
    gc_note = "gc walk allowed"
except Exception as exc:
    gc_note = "gc refused: " + str(exc)
n, found = heap_walk(300000)
names = sorted({repr(type(o)) for o in found})
summary = "; heap walk: " + str(n) + " objects; replay objects: " + str(len(found)) + " " + str(names)
raise RuntimeError(gc_note + summary)
""",
)

# 7. The judged session's link, reached through the harness's ``builtins`` module: answer for
#    the episode before acting (nothing charged yet), then act on as if nothing happened. The
#    judge records the forged answer at the cost so far, and the next request of an episode
#    that has answered breaks the protocol.
LINK_FORGE = attacker(
    """
def forge(session):
    me = []

    def walk():
        f = me[0].gi_frame.f_back
        real = None
        while f is not None:
            real = f.f_globals.get("builtins", real)
            f = f.f_back
        yield real

    g = walk()
    me.append(g)
    real = next(g)
    link = real.getattr(session, "_" + "link")
    guess = majority_of(["0", "1", "2"])
    link((ord("A"), len(guess), guess.encode()))
""",
    """
try:
    forge(session)
except Exception:
    pass
return honest(session, self.beta)
""",
)
