"""Every error of the transport is built in ``transport/failures.py``.

The smtplib and aiosmtplib paths, the health probe, sign-in and the retry
bookkeeping meet the same situations; building each error in one module keeps
their messages, codes and ``transient`` flags the same. Read with ``ast``: a
call of any :class:`FluxMailException` subclass outside ``failures.py`` (and
``errors.py``, which defines them) is a failure built elsewhere.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import hypermail_django.transport
from hypermail_django.transport.errors import FluxMailException

TRANSPORT = Path(hypermail_django.transport.__file__).parent
BUILDERS = {"failures.py", "errors.py"}


def _error_classes() -> set[str]:
    """Names of every FluxMailException subclass the transport defines."""
    for info in pkgutil.iter_modules([str(TRANSPORT)]):
        importlib.import_module(f"hypermail_django.transport.{info.name}")
    names: set[str] = set()
    todo: list[type] = [FluxMailException]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


ERRORS = _error_classes()


def constructions(source: str) -> list[str]:
    """``line: Name`` for each call that builds one of the transport's errors."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ERRORS:
            found.append(f"{node.lineno}: {name}")
    return found


def test_the_error_classes_are_found():
    assert {"SendError", "ConnectionFailed", "TokenRefused", "ProbeFailed"} <= ERRORS
    assert "RecipientsDeferred" in ERRORS
    assert "TokenError" not in ERRORS  # a provider's error, not ours to build


@pytest.mark.parametrize(
    "source, expected",
    [
        ("raise ConnectionFailed('x', transient=True)\n", ["1: ConnectionFailed"]),
        ("e = errors.SendError('x')\n", ["1: SendError"]),
        ("raise failures.setup_lost(where, exc)\n", []),
        ("raise ValueError('bad timeout')\n", []),
        ("try:\n    f()\nexcept SendError:\n    raise\n", []),
    ],
)
def test_the_check_finds_what_it_claims(source, expected):
    assert constructions(source) == expected


def test_errors_are_built_only_in_failures():
    found = [
        f"{path.name}:{line}"
        for path in sorted(TRANSPORT.glob("*.py"))
        if path.name not in BUILDERS
        for line in constructions(path.read_text())
    ]
    assert found == []
