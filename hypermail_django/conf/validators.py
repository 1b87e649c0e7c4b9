"""One set of validators for every setting of the app, and the loop that reads them.

Each validator takes the value and the name of the setting or option it came
from (``where``), returns the checked value, and raises a ``ConfigurationError``
that names what to fix. Each checks one kind of value, so two areas that want
different rules (any text, or non-empty text) use two validators, not one name
with two meanings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..exceptions import ConfigurationError

Check = Callable[[Any, str], Any]
Settings = TypeVar("Settings")


def from_text(value: Any, kind: type) -> Any:
    """A number written as text (``"3"`` from ``os.environ``) counts as that
    number, for every numeric setting alike; other values are left as they are."""
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            return value
    return value


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def any_text(value: Any, where: str) -> str:
    """Any value, as text (lazy translation strings, ``SettingsReference``)."""
    return value if isinstance(value, str) else str(value)


def nonempty_text(value: Any, where: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise ConfigurationError(f"{where} must be a non-empty string, got {value!r}.")


def optional_nonempty_text(value: Any, where: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ConfigurationError(
        f"{where} must be a non-empty string or None, got {value!r}."
    )


def flag(value: Any, where: str) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise ConfigurationError(
        f"{where} must be True or False, got {value!r}. "
        "(A string such as 'False' would count as true.)"
    )


def count(value: Any, where: str) -> int:
    """A whole number >= 0."""
    value = from_text(value, int)
    if _whole(value) and value >= 0:
        return int(value)
    raise ConfigurationError(f"{where} must be a whole number >= 0, got {value!r}.")


def optional_count(value: Any, where: str) -> int | None:
    """A whole number >= 0, or None for no limit."""
    if value is None:
        return None
    value = from_text(value, int)
    if _whole(value) and value >= 0:
        return int(value)
    raise ConfigurationError(
        f"{where} must be a whole number >= 0, or None for no limit; got {value!r}."
    )


def positive_count(value: Any, where: str) -> int:
    """A whole number >= 1."""
    value = from_text(value, int)
    if _whole(value) and value >= 1:
        return int(value)
    raise ConfigurationError(f"{where} must be a whole number >= 1, got {value!r}.")


def optional_positive_count(value: Any, where: str) -> int | None:
    """A whole number >= 1, or None for no limit."""
    if value is None:
        return None
    if _whole(value) and value > 0:
        return int(value)
    raise ConfigurationError(
        f"{where} must be a positive whole number (or None: no limit), got {value!r}."
    )


def seconds(
    value: Any, where: str, *, maximum: float = math.inf, maximum_label: str = ""
) -> float:
    """A finite number of seconds from 0 to ``maximum`` (``inf`` would pass a
    ``>= 0`` check, then overflow a socket timeout or a task's ``run_after``)."""
    value = from_text(value, float)
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= maximum  # False for NaN too
    ):
        return float(value)
    if math.isinf(maximum):
        raise ConfigurationError(
            f"{where} must be a finite number of seconds >= 0, got {value!r}."
        )
    raise ConfigurationError(
        f"{where} must be a finite number of seconds from 0 to {maximum:g}"
        f"{f' ({maximum_label})' if maximum_label else ''}, got {value!r}."
    )


def read_settings(
    prefix: str, defaults: Settings, checks: Mapping[str, Check]
) -> Settings:
    """Read ``<prefix><FIELD>`` for every field of ``checks`` from Django's
    settings now (the default where unset), check each, and return a new
    settings object like ``defaults``."""
    from django.conf import settings

    values = {}
    for field, check in checks.items():
        name = prefix + field.upper()
        values[field] = check(getattr(settings, name, getattr(defaults, field)), name)
    return dataclasses.replace(defaults, **values)  # type: ignore[type-var]
