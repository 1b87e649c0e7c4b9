"""Run Django's own SMTP backend tests against FluxMailBackend.

Django's tests are not in its wheel, so the sdist of the installed Django
version is downloaded once (``pip download --no-binary :all:``) into a cache
directory, and its ``tests/mail/`` package is copied and pointed at
``hypermail_django.backends.FluxMailBackend``: every mention of Django's SMTP
backend (``smtp.EmailBackend``, its dotted path) becomes ours. The SMTP test
classes run with unittest; the failures must be exactly the by-design list of
``docs/compatibility.md`` (section "Django's tests that fail by design"), or
the script exits non-zero.

Usage: python scripts/django_mail_tests.py [--cache DIR] [--list]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "compatibility.md"
OURS = "hypermail_django.backends.FluxMailBackend"
#: A by-design entry: "- `Class.test_name` (5.2, 6.1): why".
ENTRY = re.compile(r"^- `(?P<test>[\w.]+)` \((?P<versions>[\d., ]+)\): ")


def by_design(version: str) -> set[str]:
    """The tests docs/compatibility.md says fail by design on ``version``."""
    text = DOC.read_text().split("## Django's tests that fail by design", 1)[1]
    text = text.split("\n## ", 1)[0]
    expected = set()
    for line in text.splitlines():
        match = ENTRY.match(line)
        if match:
            versions = {v.strip() for v in match["versions"].split(",")}
            if version in versions:
                expected.add(match["test"])
    return expected


def fetch_tests(version: str, cache: Path) -> Path:
    """tests/mail of Django ``version``'s sdist, downloaded once into ``cache``."""
    target = cache / f"django-{version}" / "tests" / "mail"
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", ":all:", f"django=={version}", "-d", str(cache),
        ],
        check=True,
    )  # fmt: skip
    (sdist,) = cache.glob(f"[Dd]jango-{version}.tar.gz")
    with tarfile.open(sdist) as archive:
        prefix = f"{sdist.name.removesuffix('.tar.gz')}/tests/mail/"
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        archive.extractall(cache, members=members, filter="data")
    extracted = cache / sdist.name.removesuffix(".tar.gz")
    if extracted != target.parent.parent:
        extracted.rename(target.parent.parent)
    return target


def point_at_ours(source: Path, work: Path) -> Path:
    """Copy tests/mail as package ``mail`` under ``work``, using our backend."""
    package = work / "mail"
    shutil.copytree(source, package)
    for module in package.glob("*.py"):
        text = module.read_text()
        text = text.replace("django.core.mail.backends.smtp.EmailBackend", OURS)
        text = re.sub(r"\bsmtp\.EmailBackend\b", "FluxMailBackend", text)
        if "FluxMailBackend" in text:
            text = "from hypermail_django.backends import FluxMailBackend\n" + text
        module.write_text(text)
    return package


def smtp_tests(package: Path) -> unittest.TestSuite:
    """Every test of a class whose name starts with SMTP (the backend's)."""
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for module in sorted(package.glob("test*.py")):
        tests = loader.loadTestsFromName(f"mail.{module.stem}")
        if loader.errors:
            # A module that cannot be imported (our package or its
            # dependencies missing) loads as one "_FailedTest": say why.
            raise SystemExit(f"cannot load mail.{module.stem}:\n{loader.errors[-1]}")
        for test in _flatten(tests):
            if type(test).__name__.startswith("SMTP"):
                suite.addTest(test)
    if not suite.countTestCases():
        raise SystemExit("no SMTP backend test found in Django's tests/mail")
    return suite


def _flatten(suite: unittest.TestSuite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=str(ROOT / ".cache" / "django-tests"))
    parser.add_argument("--list", action="store_true", help="print each outcome")
    args = parser.parse_args()

    import django
    from django.conf import settings

    version = django.get_version()
    minor = ".".join(version.split(".")[:2])
    source = fetch_tests(version, Path(args.cache))
    work = Path(tempfile.mkdtemp(prefix="django-mail-tests-"))
    try:
        point_at_ours(source, work)
        sys.path.insert(0, str(work))
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
            DATABASES={},
            EMAIL_BACKEND=OURS,
            USE_TZ=True,
            SECRET_KEY="django-mail-tests",
        )
        django.setup()
        from django.test.utils import setup_test_environment

        setup_test_environment()
        suite = smtp_tests(work / "mail")
        stream = sys.stdout if args.list else open("/dev/null", "w")  # noqa: SIM115
        result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    failed = {
        f"{type(test).__name__}.{test._testMethodName}"
        for test, _ in result.failures + result.errors + result.unexpectedSuccesses
    }
    expected = by_design(minor)
    unexpected = sorted(failed - expected)
    now_passing = sorted(expected - failed)
    print(
        f"Django {version}: {result.testsRun} SMTP backend tests, "
        f"{len(failed)} failed ({len(failed & expected)} by design), "
        f"{len(result.skipped)} skipped."
    )
    for name in now_passing:
        print(f"  listed as failing by design but passed: {name}")
    if unexpected:
        print("Failures not listed in docs/compatibility.md:")
        details = {
            f"{type(t).__name__}.{t._testMethodName}": tb
            for t, tb in result.failures + result.errors
        }
        for name in unexpected:
            print(f"\n== {name}\n{details.get(name, '(unexpected success)')}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
