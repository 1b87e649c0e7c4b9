"""No module of the package reaches into another one's private names.

A name with one leading underscore is its module's own business: when a second
module needs it, it is shared and gets a public name (or the code moves).
Read from the source with ``ast``, so it also covers modules no test imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ..paths import ROOT

PACKAGE = ROOT / "hypermail_django"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package of ours."""
    if dotted.split(".")[0] != PACKAGE.name:
        return False
    base = PACKAGE.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """The module an ``import from`` in ``package`` reads, made absolute."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def violations(source: str, package: str) -> list[str]:
    """``from ours import _name`` and ``our_module._name`` in the source of a
    module of ``package``."""
    tree = ast.parse(source)
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> one of our modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, package)
            for alias in node.names:
                target = f"{source}.{alias.name}"
                if _is_module(source) and _private(alias.name):
                    found.append(f"{node.lineno}: from {source} import {alias.name}")
                elif _is_module(target):
                    modules[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and _is_module(alias.name):
                    modules[alias.asname] = alias.name
                elif alias.name.split(".")[0] == PACKAGE.name:
                    modules[PACKAGE.name] = PACKAGE.name
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        chain: list[str] = []
        value: ast.expr = node.value
        while isinstance(value, ast.Attribute):
            chain.insert(0, value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in modules:
            module = ".".join([modules[value.id], *chain])
            if _is_module(module):
                found.append(f"{node.lineno}: {module}.{node.attr}")
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_check_sees_the_package():
    assert len(SOURCES) > 100
    names = {path.name for path in SOURCES}
    assert {"failures.py", "smtpd.py", "probe.py"} <= names


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .failures import _helper\n", ["1: from {pkg}.failures import _helper"]),
        ("from . import failures\nfailures._helper()\n", ["2: {pkg}.failures._helper"]),
        (
            "import hypermail_django.transport.failures as f\nf._x\n",
            ["2: hypermail_django.transport.failures._x"],
        ),
        (
            "import hypermail_django\nhypermail_django.transport.failures._x\n",
            ["2: hypermail_django.transport.failures._x"],
        ),
        # Not ours, or not private: allowed.
        ("import sys\nsys._getframe()\n", []),
        ("from .failures import text, __all__\n", []),
        ("from .errors import SendError\nSendError._rebuild\n", []),
        ("from . import failures\nfailures.__name__\n", []),
    ],
)
def test_the_check_finds_what_it_claims(source, expected):
    pkg = "hypermail_django.transport"
    assert violations(source, pkg) == [e.format(pkg=pkg) for e in expected]


def _package_of(path: Path) -> str:
    module = _module_name(path)
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def test_no_module_imports_another_modules_private_names():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in SOURCES
        for line in violations(path.read_text(), _package_of(path))
    ]
    assert found == []
