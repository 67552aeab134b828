"""Typed reading of one TOML table with errors that name the file and the key.

Shared by every command that reads a TOML configuration (``discover``, ``collect``):
each getter checks the type and range of one key and remembers that it was read, so
that :meth:`TomlTable.check_unknown` can reject a misspelt key instead of ignoring it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autotts.errors import ConfigError


class TomlTable:
    """One TOML table being read: typed getters that remember which keys were used."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: [{where}] must be a table, got {type(data).__name__}")
        self.data = data
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self._name(key)} {message}")

    def get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def int_(self, key: str, default: int, *, minimum: int | None = None) -> int:
        value = self.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def float_(self, key: str, default: float, *, minimum: float | None = None, positive: bool = False) -> float:
        value = self.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        if positive and value <= 0:
            raise self.fail(key, f"must be positive, got {value}")
        return float(value)

    def opt_float(self, key: str, *, positive: bool = True) -> float | None:
        if self.data.get(key) is None:  # absent, or JSON null in a written config.json
            self.used.add(key)
            return None
        return self.float_(key, 0.0, positive=positive)

    def bool_(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def str_(self, key: str, default: str, *, choices: tuple[str, ...] | None = None) -> str:
        value = self.get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def opt_str(self, key: str) -> str:
        """A string that may be absent or JSON null (both read as "")."""
        if self.get(key, None) is None:
            return ""
        return self.str_(key, "")

    def str_list(self, key: str, default: list[str] | None) -> list[str] | None:
        value = self.get(key, default)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of strings, got {value!r}")
        return list(value)

    def table(self, key: str) -> TomlTable:
        self.used.add(key)
        return TomlTable(self.data.get(key, {}), self._name(key), self.source)

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            where = f"[{self.where}]" if self.where else "the top level"
            raise ConfigError(
                f"{self.source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"in {where}; allowed: {', '.join(sorted(self.used))}"
            )
