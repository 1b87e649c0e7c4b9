"""What the package promises about itself: layers and the errors page.

``transport/`` and ``testing/`` import no Django (DESIGN.md: the transport
knows nothing of Django; users' test suites import the test server), and the
root package imports lazily, so a settings file can import it. Every exception
and code that ``docs/errors.md`` names exists in the code.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import hypermail_django
from hypermail_django import exceptions

from ..paths import ROOT

ERRORS_PAGE = (ROOT / "docs" / "errors.md").read_text()


@pytest.mark.parametrize(
    "module",
    ["hypermail_django", "hypermail_django.transport", "hypermail_django.testing"],
)
def test_importing_loads_no_django_module(module):
    script = (
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert result.stdout.strip() == "[]"


def _hierarchy_names() -> set[str]:
    block = ERRORS_PAGE.split("## Hierarchy", 1)[1].split("```text", 1)[1]
    block = block.split("```", 1)[0]
    return {
        match.group(1)
        for line in block.splitlines()
        if (match := re.match(r"^[\s│├└─]*([A-Z][A-Za-z0-9]+)", line))
    }


def test_every_exception_on_the_errors_page_imports_from_exceptions():
    names = _hierarchy_names()
    assert {"FluxMailException", "SendError", "DeliveryUncertain"} <= names
    missing = sorted(name for name in names if not hasattr(exceptions, name))
    assert missing == []
    for name in names:
        assert name in exceptions.__all__


def _documented_codes() -> set[str]:
    table = ERRORS_PAGE.split("## Every code", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, flags=re.M))


def test_every_documented_code_is_raised_somewhere_in_the_code():
    source = "\n".join(
        path.read_text()
        for path in (ROOT / "hypermail_django").rglob("*.py")
        if "migrations" not in path.parts
    )
    codes = _documented_codes()
    assert {"timeout", "delivery_uncertain", "connection_lost"} <= codes
    unknown = sorted(code for code in codes if f'"{code}"' not in source)
    assert unknown == []


def test_the_root_package_still_offers_every_public_name():
    for name in hypermail_django.__all__:
        assert getattr(hypermail_django, name) is not None
