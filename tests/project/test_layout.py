"""The package laid out by role: unique module names, a docstring per module,
and every path a user writes (settings, urls, entry points, queued tasks) intact.

Module paths may move (no release yet); what users type may not. Each test below
names the promise it keeps, so a reorganisation that breaks one says which.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import get_commands
from django.template.loader import get_template
from django.test import override_settings
from django.utils.module_loading import import_string

import hypermail_django

from ..paths import ROOT

PACKAGE = ROOT / "hypermail_django"

#: Django's conventional module names, which every app may repeat.
CONVENTIONAL = {
    "__init__",
    "admin",
    "apps",
    "checks",
    "forms",
    "models",
    "tasks",
    "urls",
    "views",
}


def _modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and "__pycache__" not in path.parts
    )


def _is_command(path: Path) -> bool:
    return path.parent.name == "commands" and path.parent.parent.name == "management"


def test_no_two_modules_or_packages_share_a_name():
    places: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        if _is_command(path) or path.stem in CONVENTIONAL:
            continue
        places[path.stem].append(path.relative_to(PACKAGE).as_posix())
    for folder in (path for path in PACKAGE.rglob("*") if path.is_dir()):
        if (folder / "__init__.py").exists() and folder.name not in {
            "management",
            "commands",
            "migrations",
        }:
            places[folder.name].append(folder.relative_to(PACKAGE).as_posix() + "/")
    repeated = {name: where for name, where in places.items() if len(where) > 1}
    assert repeated == {}


def test_every_module_says_what_it_is_in_its_first_line():
    silent = []
    for path in _modules():
        source = path.read_text()
        if not source.strip():
            continue  # an empty __init__.py (management/, commands/) says nothing
        docstring = ast.get_docstring(ast.parse(source))
        if not docstring or not docstring.splitlines()[0].strip():
            silent.append(path.relative_to(PACKAGE).as_posix())
    assert silent == []


def test_the_package_root_holds_only_public_api_and_django_conventions():
    # The root is read first: configuration, serialization and test tools
    # live in conf/, serialization/ and testing/.
    root_modules = {path.name for path in PACKAGE.glob("*.py")}
    assert root_modules == {
        "__init__.py",
        "apps.py",
        "async_mail.py",
        "batching.py",
        "checks.py",
        "compat.py",
        "exceptions.py",
        "health.py",
        "mail_previews.py",
        "signals.py",
    }


PUBLIC = {
    "hypermail_django": [
        "DeliveryStatus",
        "EmailTemplate",
        "FluxMailException",
        "HypermailMessage",
        "RecipientStatus",
        "TemplatedEmail",
        "aenqueue_messages",
        "asend_bulk",
        "asend_mail",
        "asend_mail_later",
        "asend_messages",
        "clear_outbox",
        "enqueue_messages",
        "generate_reset_token",
        "get_mailer",
        "get_outbox",
        "options_from_env",
        "send_bulk",
        "send_mail_later",
        "send_password_reset_email",
        "send_templated_mail",
        "settings_from_env",
        "test_connection",
    ],
    "hypermail_django.backends": [
        "ConsoleBackend",
        "FluxMailBackend",
        "MemoryBackend",
        "RoutingBackend",
    ],
    "hypermail_django.testing": [
        "AuthAttempt",
        "OAuthTestServer",
        "ReceivedCommand",
        "ReceivedMessage",
        "SMTPTestServer",
        "TLSCertificates",
        "TokenRequest",
    ],
    "hypermail_django.transport": [
        "DeliveryStatus",
        "Envelope",
        "Lease",
        "RecipientStatus",
        "TransportConfig",
        "close_all_pools",
        "get_pool",
        "send_envelope",
    ],
    "hypermail_django.oauth": [
        "AccessToken",
        "GoogleServiceAccount",
        "MicrosoftClientCredentials",
        "RefreshToken",
    ],
    "hypermail_django.exceptions": [
        "ConfigurationError",
        "FluxMailException",
        "InvalidEmail",
        "SendError",
        "TemplateNotFound",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_public_name_still_imports(module):
    package = import_module(module)
    missing = [name for name in PUBLIC[module] if not hasattr(package, name)]
    assert missing == []
    if module != "hypermail_django.exceptions":
        assert set(PUBLIC[module]) <= set(package.__all__)


def test_the_root_package_resolves_the_same_objects_as_their_home_modules():
    from hypermail_django.compose.message import HypermailMessage
    from hypermail_django.testing.outbox import get_outbox

    assert hypermail_django.HypermailMessage is HypermailMessage
    assert hypermail_django.get_outbox is get_outbox


@pytest.mark.parametrize(
    "path",
    [
        "hypermail_django.backends.FluxMailBackend",
        "hypermail_django.backends.MemoryBackend",
        "hypermail_django.backends.ConsoleBackend",
        "hypermail_django.backends.RoutingBackend",
    ],
)
def test_backend_paths_written_in_settings_import(path):
    # EMAIL_BACKEND and MAILERS[...]["BACKEND"] values.
    assert isinstance(import_string(path), type)


def test_installed_apps_entries_are_apps():
    assert apps.get_app_config("hypermail_django").name == "hypermail_django"
    assert apps.get_app_config("hypermail_log").name == "hypermail_django.log"


@pytest.mark.parametrize(
    "urlconf",
    [
        "hypermail_django.auth.urls",
        "hypermail_django.auth.api_urls",
        "hypermail_django.previews.urls",
    ],
)
def test_url_modules_users_include_exist(urlconf):
    assert import_module(urlconf).urlpatterns


def test_task_paths_stored_in_queues_still_import():
    # A queued task holds its function's dotted path; tasks enqueued before an
    # upgrade must still run after it, so these literals never change.
    from hypermail_django.auth.delivery import TASK_PATH as RESET_TASK
    from hypermail_django.background.payload import TASK_PATH as EMAIL_TASK

    assert EMAIL_TASK == "hypermail_django.background.tasks.deliver_email"
    assert RESET_TASK == "hypermail_django.auth.tasks.send_password_reset"
    for path in (EMAIL_TASK, RESET_TASK):
        task = import_string(path)  # a Django Tasks ``Task`` where available
        assert callable(getattr(task, "func", task))


def test_the_pytest_plugin_entry_point_names_an_importable_module():
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = pyproject.split("[project.entry-points.pytest11]", 1)[1]
    match = re.search(r'^hypermail_django = "([\w.]+)"', section, flags=re.M)
    assert match, "the pytest11 entry point is missing from pyproject.toml"
    plugin = import_module(match.group(1))
    assert hasattr(plugin, "mail_outbox")
    assert hasattr(plugin, "smtp_server")


def test_management_command_names_stay():
    commands = get_commands()
    assert commands["mailcheck"] == "hypermail_django"
    assert commands["hypermail_requeue_stale"] == "hypermail_django"
    assert commands["hypermail_prune"] == "hypermail_django.log"


@pytest.mark.parametrize(
    "name",
    [
        "hypermail_django/email/base.html",
        "hypermail_django/email/base.txt",
        "hypermail_django/password_reset/email/body.html",
        "hypermail_django/password_reset/email/body.txt",
        "hypermail_django/password_reset/email/subject.txt",
        "hypermail_django/password_reset/form.html",
        "hypermail_django/password_reset/confirm.html",
        "hypermail_django/previews/index.html",
    ],
)
def test_template_paths_projects_override_stay(name):
    # A project overrides a template by putting a file at the same path.
    engine = {"BACKEND": "django.template.backends.django.DjangoTemplates"}
    with override_settings(TEMPLATES=[{**engine, "APP_DIRS": True}]):
        assert get_template(name)


def _drawn_paths() -> set[str]:
    page = (ROOT / "docs" / "development.md").read_text()
    block = page.split("## Layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    drawn: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = re.match(r"^( *)([^\s,]+(?:, [^\s,]+)*)", line)
        if not match:
            continue
        depth = len(match.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        for name in match.group(2).split(", "):
            drawn.add(parent + name)
        if match.group(2).endswith("/"):
            stack.append((depth, parent + match.group(2)))
    return {path for path in drawn if path.startswith("hypermail_django/")}


def test_the_architecture_page_draws_the_package_as_it_is():
    drawn = _drawn_paths()
    stale = sorted(path for path in drawn if not (ROOT / path).exists())
    assert stale == []
    packages = {
        folder.relative_to(ROOT).as_posix() + "/"
        for folder in PACKAGE.iterdir()
        if (folder / "__init__.py").exists()
    }
    undrawn = sorted(
        package
        for package in packages
        if not any(path.startswith(package) for path in drawn)
    )
    assert undrawn == []


# -- the tests mirror the package ---------------------------------------------

#: The one test room with no package room: tests of the project as a whole
#: (docs, layout, lower bounds, the example project).
PROJECT_ROOM = "project"


def _package_rooms() -> set[str]:
    return {
        path.parent.name
        for path in PACKAGE.glob("*/__init__.py")
        if path.parent.name != "migrations"
    }


def test_every_test_module_sits_in_the_room_of_the_code_it_tests() -> None:
    """tests/ mirrors hypermail_django/: a test module lives in
    tests/<room>/, named after a package room (tests/transport/ for
    hypermail_django/transport/), or in tests/project/; none at the top, none
    deeper. A new test goes where the next engineer looks for it."""
    tests = ROOT / "tests"
    at_the_top = sorted(path.name for path in tests.glob("test_*.py"))
    assert at_the_top == [], f"move into the room they test: {at_the_top}"
    rooms = {path.parent.name for path in tests.glob("*/test_*.py")}
    assert rooms - _package_rooms() == {PROJECT_ROOM}
    deeper = sorted(
        str(path.relative_to(tests))
        for path in tests.glob("*/*/**/test_*.py")
        if "__pycache__" not in path.parts
    )
    assert deeper == [], f"one level of rooms only: {deeper}"


def test_every_package_room_has_its_tests() -> None:
    """Each room of the package has a test room of the same name."""
    tests = ROOT / "tests"
    missing = sorted(
        room for room in _package_rooms() if not any((tests / room).glob("test_*.py"))
    )
    assert missing == []
