"""API keys: read from an environment variable *named* in the configuration, and redacted everywhere.

The configuration never holds a key, only the variable's name (``api_key_env``), so
config files, run directories and stores can be shared. The key itself is passed to
:func:`redact` wherever server text may travel on (logs, errors, files).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from autotts.errors import ConfigError

REDACTED = "[REDACTED]"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of four or more characters) replaced by ``[REDACTED]``.

    Shorter strings are left alone: replacing a 1–3 character "secret" would shred
    ordinary text and no real key is that short.
    """
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, REDACTED)
    return text


def read_key(env_name: str | None, env: Mapping[str, str] | None = None, *, option: str = "api_key_env") -> str:
    """The key held by the environment variable ``env_name`` ('' when no variable is named).

    Raises :class:`~autotts.errors.ConfigError` (exit code 2) when the variable is named
    but unset or empty: silently calling a paid API without a key would only fail later
    with a less helpful 401.
    """
    if not env_name:
        return ""
    source = os.environ if env is None else env
    key = source.get(env_name, "")
    if not key:
        raise ConfigError(
            f"{option} names {env_name!r}, but that environment variable is not set; "
            f"export it (export {env_name}=...) or leave {option} empty for a server without keys"
        )
    return key
