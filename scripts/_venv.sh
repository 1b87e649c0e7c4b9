# Sourced by scripts/test and scripts/demo: make .venv with the [dev] extra.
# Idempotent and quick when everything is already installed.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
