"""Where the repository and the test suite are, for tests in any folder."""

from __future__ import annotations

from pathlib import Path

#: The test suite's top folder (tests/), where the shared helpers live.
TESTS = Path(__file__).resolve().parent
#: The repository's root: hypermail_django/, docs/, examples/, testproject/.
ROOT = TESTS.parent
