"""constraints/lowest.txt pins what pyproject.toml's lower bounds say.

Tox env ``py310-django52-lowest`` installs with those pins, so the bounds are
tested only while the two agree; this keeps them from drifting apart.
"""

from __future__ import annotations

import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..paths import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10, where pytest itself needs tomli
    import tomli as tomllib

CONSTRAINTS = ROOT / "constraints" / "lowest.txt"
TOX_ENV = "py310-django52-lowest"
#: Extras that only gather others or hold tools, not what the code runs with.
UNTESTED_EXTRAS = {"dev"}


def _requirements() -> list[Requirement]:
    """Every requirement of the package and of its tested extras, ours aside."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra, extra_lines in project["optional-dependencies"].items():
        if extra not in UNTESTED_EXTRAS:
            lines.extend(extra_lines)
    requirements = [Requirement(line) for line in lines]
    own = canonicalize_name(project["name"])
    return [r for r in requirements if canonicalize_name(r.name) != own]


def lower_bounds() -> dict[str, Version]:
    """Name -> the version after ``>=``, for every direct dependency.

    A requirement with extras (``psycopg[binary]``) also bounds the package
    each extra names (``psycopg-binary``), which releases in step with it.
    """
    bounds: dict[str, Version] = {}
    for requirement in _requirements():
        specs = [s for s in requirement.specifier if s.operator == ">="]
        assert len(specs) == 1, f"{requirement}: give it one '>=' lower bound"
        version = Version(specs[0].version)
        names = [requirement.name]
        names += [f"{requirement.name}-{extra}" for extra in requirement.extras]
        for name in map(canonicalize_name, names):
            assert bounds.get(name, version) == version, (
                f"{name} has two lower bounds in pyproject.toml"
            )
            bounds[name] = version
    return bounds


def pins(text: str) -> dict[str, Version]:
    """Name -> pinned version, from a pip constraints file (``name==version``)."""
    pinned: dict[str, Version] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert not requirement.extras, f"{line}: constraints cannot have extras"
        assert len(specs) == 1 and specs[0].operator == "==", (
            f"{line}: pin it with '=='"
        )
        pinned[canonicalize_name(requirement.name)] = Version(specs[0].version)
    return pinned


def test_every_lower_bound_is_pinned_in_the_constraints() -> None:
    bounds = lower_bounds()
    pinned = pins(CONSTRAINTS.read_text())
    assert {n: bounds[n] for n in bounds if pinned.get(n) != bounds[n]} == {}, (
        "pyproject.toml's lower bounds differ from constraints/lowest.txt "
        "(or are missing there): change both together"
    )
    assert sorted(set(pinned) - set(bounds)) == [], (
        "constraints/lowest.txt pins packages that are not direct dependencies"
    )


def test_the_constraints_cover_the_core_dependencies() -> None:
    pinned = pins(CONSTRAINTS.read_text())
    for name in ("django", "aiosmtplib", "tenacity", "css-inline"):
        assert name in pinned


def test_pins_reject_what_pip_would_not_hold_to_one_version() -> None:
    assert pins("Django==5.2.0  # comment\n\n# only a comment\n") == {
        "django": Version("5.2")
    }
    with pytest.raises(AssertionError, match="pin it with '=='"):
        pins("tenacity>=8.2\n")
    with pytest.raises(AssertionError, match="cannot have extras"):
        pins("psycopg[binary]==3.1.8\n")


def test_the_lowest_env_installs_with_the_constraints() -> None:
    tox = (ROOT / "tox.ini").read_text()
    envlist = tox.split("envlist =", 1)[1].split("\n\n")[0].split()
    assert TOX_ENV in envlist
    section = tox.split(f"[testenv:{TOX_ENV}]", 1)[1].split("\n[", 1)[0]
    assert "-c {toxinidir}/constraints/lowest.txt" in section
