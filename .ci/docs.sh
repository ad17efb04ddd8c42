#!/usr/bin/env bash
# Build the documentation with warnings as errors (the same build tests/test_docs.py makes).
# Output: docs/_build/html (ignored by git). Usage: bash .ci/docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"

rm -rf docs/_build
uv run --locked --group docs sphinx-build -W --keep-going -q -b html \
    -d docs/_build/doctrees docs docs/_build/html
echo "docs: docs/_build/html/index.html"
