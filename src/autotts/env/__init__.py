"""The replay decision process and the controller-facing session."""

from autotts.env.checker import EnvCheckError, check_env, check_session
from autotts.env.process import Action, ActionKind, Observation, Probe, ReplayEnv, StepResult
from autotts.env.session import BranchView, QuestionTrace, ReplaySession, Reveal, TraceEvent

__all__ = [
    "Action",
    "ActionKind",
    "BranchView",
    "EnvCheckError",
    "Observation",
    "Probe",
    "QuestionTrace",
    "ReplayEnv",
    "ReplaySession",
    "Reveal",
    "StepResult",
    "TraceEvent",
    "check_env",
    "check_session",
]
