"""What a new user reads first says what works: the index lists every page
and example, installation works before a release exists, the app is added to
INSTALLED_APPS, and the README and development pages agree on the matrix."""

from __future__ import annotations

import re

import pytest

from ..paths import ROOT

DOCS = ROOT / "docs"


def test_the_index_lists_every_page() -> None:
    index = (DOCS / "index.md").read_text()
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
    missing = [page for page in pages if f"]({page}" not in index]
    assert missing == []


def test_the_nav_lists_every_page() -> None:
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    missing = [
        page for page in pages if not re.search(rf":\s+{re.escape(page)}$", nav, re.M)
    ]
    assert missing == []


def test_the_index_lists_every_example() -> None:
    index = (DOCS / "index.md").read_text()
    examples = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    missing = [name for name in examples if f"](examples/{name})" not in index]
    assert missing == []


@pytest.mark.parametrize("page", ["README.md", "docs/installation.md"])
def test_install_instructions_work_before_a_release(page: str) -> None:
    text = (ROOT / page).read_text()
    # No bare "pip install hypermail-django": no such distribution exists yet.
    assert not re.search(r"^pip install hypermail-django\s*$", text, re.M)
    assert "pip install ./hypermail-django" in text


@pytest.mark.parametrize("page", ["README.md", "docs/installation.md"])
def test_the_app_is_added_to_installed_apps(page: str) -> None:
    text = (ROOT / page).read_text()
    assert re.search(r'INSTALLED_APPS = \[\s*# \.\.\.\s*"hypermail_django",', text)
    assert "mailcheck" in text


def _matrix(text: str) -> str:
    match = re.search(
        r"Python 3\.10/3\.11 x Django 5\.2, 3\.12 x 6\.0, 3\.13 x 6\.1", text
    )
    assert match, "the Python x Django matrix is not stated"
    return match.group(0)


def test_readme_development_and_tox_agree_on_the_matrix() -> None:
    readme = (ROOT / "README.md").read_text()
    development = (DOCS / "development.md").read_text()
    assert _matrix(readme) == _matrix(development)
    envlist = (ROOT / "tox.ini").read_text().split("envlist =", 1)[1].split("\n\n")[0]
    assert set(envlist.split()) >= {
        "py310-django52-lowest",
        "py311-django52",
        "py312-django60",
        "py313-django61",
    }
