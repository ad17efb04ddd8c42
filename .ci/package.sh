#!/usr/bin/env bash
# Release packaging check: build the sdist and wheel, check their metadata with twine, install
# the wheel (with its dependencies, from the package index) into a fresh virtual environment
# with the machine's Python, and import the package there, outside the project's environment.
# Usage: bash .ci/package.sh   (leaves the artifacts in dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"
PYTHON="${PACKAGE_PYTHON:-$(command -v python3.11 || command -v python3)}"

rm -rf dist
echo "== build (sdist + wheel)"
uv run --locked --group release python -m build --outdir dist . >/dev/null
ls -l dist
wheel=$(ls dist/*.whl)
sdist=$(ls dist/*.tar.gz)

echo "== twine check"
uv run --locked --group release twine check --strict dist/*

echo "== contents"
# The wheel has the package, its marker files, the Django templates and migrations; no tests.
uv run --locked python - "$wheel" "$sdist" <<'PY'
import sys, tarfile, zipfile

wheel, sdist = sys.argv[1], sys.argv[2]
names = zipfile.ZipFile(wheel).namelist()
required = [
    "creative_services/__init__.py",
    "creative_services/py.typed",
    "creative_services/adapters/__init__.py",
    "creative_services/contrib/django/migrations/0001_initial.py",
    "creative_services/contrib/django/apps.py",
]
missing = [name for name in required if name not in names]
templates = [n for n in names if "/templates/" in n]
unwanted = [n for n in names if n.startswith(("tests/", "example/", "docs/", "cassettes/"))]
assert not missing, f"missing from the wheel: {missing}"
assert templates, "the Django admin templates are missing from the wheel"
assert not unwanted, f"unexpected files in the wheel: {unwanted[:5]}"
members = tarfile.open(sdist).getnames()
assert any(m.endswith("/pyproject.toml") for m in members), "sdist without pyproject.toml"
print(f"wheel: {len(names)} files ({len(templates)} templates); sdist: {len(members)} members")
PY

echo "== install into a clean venv ($PYTHON)"
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
uv venv --quiet --python "$PYTHON" "$venv/venv"
# Dependencies come from the package index (uv's configured index/mirror), not from uv.lock.
VIRTUAL_ENV="$venv/venv" uv pip install --quiet --python "$venv/venv/bin/python" "$wheel[django]"
cd "$venv"  # not the repository: the import must come from the installed wheel
"$venv/venv/bin/python" -I - <<'PY'
import sys

import creative_services
import creative_services.adapters

assert "/site-packages/" in creative_services.__file__, creative_services.__file__
assert "litellm" not in sys.modules and "django" not in sys.modules
from creative_services import DictRegistry, DynamicLLMClient, LLMTier  # noqa: F401

print(creative_services.__version__, "from", creative_services.__file__)
PY
"$venv/venv/bin/python" -I -c "import creative_services, creative_services.adapters; print(creative_services.__version__)"
"$venv/venv/bin/creative-services" --help >/dev/null
echo "package: ok"
