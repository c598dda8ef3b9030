"""Typed, error-collecting access to a parsed TOML document.

Every accessor records a problem (with the file and the dotted key) instead of raising,
and returns a usable default, so one pass over a config finds every mistake in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Problems:
    def __init__(self, where: str) -> None:
        self.where = where
        self.errors: list[str] = []
        self.warnings: list[str] = []


class Section:
    def __init__(self, data: Any, path: str, problems: Problems) -> None:
        self.problems = problems
        self.path = path
        self.seen: set[str] = set()
        if isinstance(data, Mapping):
            self.data: Mapping[str, Any] = data
        else:
            self.data = {}
            self.error("", "must be a table")

    def _key(self, key: str) -> str:
        return ".".join(part for part in (self.path, key) if part) or "(top level)"

    def error(self, key: str, message: str) -> None:
        self.problems.errors.append(f"{self.problems.where}: {self._key(key)}: {message}")

    def warn(self, message: str) -> None:
        self.problems.warnings.append(f"{self.problems.where}: {self._key('')}: {message}")

    def names(self) -> list[str]:
        self.seen.update(self.data)
        return list(self.data)

    def _get(self, key: str) -> Any:
        self.seen.add(key)
        return self.data.get(key)

    def section(self, key: str) -> Section:
        value = self._get(key)
        return Section({} if value is None else value, self._key(key), self.problems)

    def tables(self, key: str) -> list[Section]:
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, "must be an array of tables")
            return []
        return [Section(v, f"{self._key(key)}[{i}]", self.problems) for i, v in enumerate(value)]

    def string(self, key: str, default: str) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(key, f"must be a string, not {_kind(value)}")
            return default
        return value

    def string_table(self, key: str) -> dict[str, str]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            self.error(key, "must be a table of strings")
            return {}
        return dict(value)

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = self._get(key)
        if value is None:
            if default is None:
                self.error(key, f"is required (one of {', '.join(allowed)})")
            return default
        if value not in allowed:
            self.error(key, f"must be one of {', '.join(allowed)}, not {value!r}")
            return default
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, f"must be true or false, not {_kind(value)}")
            return default
        return value

    def number(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self._get(key)
        if value is None:
            return float(default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(key, f"must be a number, not {_kind(value)}")
            return float(default)
        if minimum is not None and value < minimum:
            self.error(key, f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            self.error(key, f"must be at most {maximum}, not {value}")
        return float(value)

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.error(key, f"must be a whole number, not {_kind(value)}")
            return default
        return int(self.number(key, default, minimum=minimum, maximum=maximum))

    def number_list(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            self.error(key, "must be an array of numbers")
            return default
        return tuple(float(v) for v in value)

    def reject_unknown(self) -> None:
        for key in self.data:
            if key not in self.seen:
                self.error(key, "unknown key")


def _kind(value: object) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "an array",
    }
    return names.get(type(value), "a table")
