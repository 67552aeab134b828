"""Exception tree of autotts.

Every error autotts raises on purpose derives from :class:`AutoTTSError`, so callers
(and the CLI) can tell "the input or the request was wrong" from a bug::

    AutoTTSError
    ├── StoreError                 replay data could not be read or is malformed
    │   ├── StoreFormatError       a field is missing, mistyped or inconsistent
    │   └── StoreNotFoundError     a path names no store
    ├── IllegalActionError         a controller asked for an action the state forbids
    │   └── BudgetExceededError    the action would spend past the budget
    ├── StoreExhaustedError        no unopened branch is left (also an IndexError)
    ├── ControllerSpecError        a ``--controller`` spec or its parameters are wrong
    ├── ControllerError            a controller raised while solving a question
    │   └── CellTimeoutError       a cell ran past its wall-clock limit
    ├── ConfigError                a configuration value is wrong
    ├── ResultsError               results cannot be read, compared or reported
    ├── DiscoveryError             the discovery loop cannot go on (autotts.discovery.errors)
    │   ├── RunDirError            a run directory is missing, corrupt or belongs to another run
    │   └── ProposerError          the explorer (LLM, agent) failed after its retries
    └── LLMError                   an LLM server call failed for good (autotts.llm.errors)
        ├── LLMRequestError        the server refused the request (model name, prompt format, key)
        └── LLMUnavailableError    no server answered within the retry budget

Subclasses carry context as attributes (``.path``, ``.question``, ``.action`` ...) and
a message that says what, where and how to fix it.
"""

from __future__ import annotations

from typing import Any


class AutoTTSError(Exception):
    """Root of every error autotts raises deliberately."""


class StoreError(AutoTTSError):
    """Replay data could not be read, written or understood."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        question: int | None = None,
        branch: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.question = question
        self.branch = branch
        self.field = field
        where = []
        if path is not None:
            where.append(str(path))
        if question is not None:
            where.append(f"question {question}")
        if branch is not None:
            where.append(f"branch {branch}")
        if field is not None:
            where.append(f"field '{field}'")
        self.message = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class StoreFormatError(StoreError):
    """A store file is malformed: missing key, wrong type, inconsistent values."""


class StoreNotFoundError(StoreError):
    """A path does not name a readable store."""


class IllegalActionError(AutoTTSError):
    """An action is not allowed in the current state."""

    def __init__(self, message: str, *, action: Any = None, state: Any = None) -> None:
        self.action = action
        self.state = state
        super().__init__(message)


class BudgetExceededError(IllegalActionError):
    """The action would spend more than the remaining budget."""


class StoreExhaustedError(AutoTTSError, IndexError):
    """Every branch of the question has been opened already.

    It is also an ``IndexError`` because controller files written for the original
    AutoTTS code base catch running off the end of the branch list as one.
    """


class ControllerSpecError(AutoTTSError):
    """A controller spec (``name:key=value`` or ``file.py:Class``) is wrong."""


class ControllerError(AutoTTSError):
    """A controller raised an exception while solving a question."""

    def __init__(
        self,
        message: str,
        *,
        controller: str | None = None,
        question: int | None = None,
        traceback_text: str | None = None,
    ) -> None:
        self.controller = controller
        self.question = question
        self.traceback_text = traceback_text
        """The controller's traceback as text (kept across processes; ``autotts --debug`` prints it)."""
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the keyword context when the error crosses a process boundary.
        return (_rebuild, (type(self), str(self), self.controller, self.question, self.traceback_text))


def _rebuild(
    cls: type[ControllerError], message: str, controller: str | None, question: int | None, text: str | None
) -> ControllerError:
    return cls(message, controller=controller, question=question, traceback_text=text)


class CellTimeoutError(ControllerError):
    """An evaluation cell ran longer than its wall-clock limit (``--cell-timeout``) and was stopped."""


class ConfigError(AutoTTSError):
    """A configuration value (CLI option, TOML file, preset) is wrong."""


class ResultsError(AutoTTSError):
    """Evaluation results cannot be read, compared or reported.

    Raised for an unreadable results file, two cells that are not paired (different
    runs, questions or stores) where a paired statistic was asked for, or curves that
    cannot be compared. ``.path`` names the file when one is involved.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
