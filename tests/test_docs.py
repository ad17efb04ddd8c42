"""The documentation: builds without a warning, documents every public name, its code compiles.

The build runs ``sphinx-build -W --keep-going`` in a subprocess (``docs/conf.py`` configures
Django for autodoc, which must not happen in this process) into a temporary directory, then reads
the inventory Sphinx writes (``objects.inv``) to check the API reference.
"""

from __future__ import annotations

import ast
import doctest
import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from _doc_examples import examples_by_page

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Modules whose every public name (``__all__``, or the listed names) needs an API entry.
PUBLIC: dict[str, list[str] | None] = {
    "creative_services": None,
    "creative_services.adapters": None,
    "creative_services.testing": None,
    "creative_services.tracking": None,
    "creative_services.registry": None,
    "creative_services.openai_compat": None,
    "creative_services.contrib.django.registry": ["DjangoLLMRegistry"],
    "creative_services.contrib.django.tracking": ["DjangoUsageTracker"],
    "creative_services.contrib.django.legacy_log": ["LegacyLogTracker"],
    "creative_services.completion": ["CompletionResponse", "CompletionToolCall"],
    "creative_services.tier_map": ["derive_tier"],
    "creative_services.contrib.django.budgets": ["DjangoBudget"],
    "creative_services.contrib.django.models": ["LLMModel", "LLMUsage"],
    "creative_services.contrib.django.budget_models": [
        "BudgetRule",
        "BudgetCounter",
        "BudgetLease",
    ],
    "creative_services.contrib.django.triggers": ["InstallVersionTriggers"],
    "creative_services.contrib.django.crypto": ["EncryptedTextField"],
}

# Run in a subprocess: the names of each module, with Django configured as the docs build does.
_NAMES_SCRIPT = """
import importlib, json, runpy, sys
runpy.run_path(sys.argv[1])  # docs/conf.py: configures Django for the contrib modules
public = json.loads(sys.argv[2])
print(json.dumps({
    module: names if names is not None else list(importlib.import_module(module).__all__)
    for module, names in public.items()
}))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    for name in ("DJANGO_SETTINGS_MODULE", "CREATIVE_SERVICES_MODELS"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML build of docs/, made with warnings as errors."""
    try:
        import sphinx  # noqa: F401
    except ImportError:
        pytest.fail(
            "Sphinx is needed to build the docs: uv sync --group docs "
            "(or add the 'docs' group to the default groups)",
            pytrace=False,
        )
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    result = subprocess.run(
        [*command, "-d", str(doctrees), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stderr}\n{result.stdout}"
    return out


def _inventory(path: Path) -> set[str]:
    """Python object names in a Sphinx ``objects.inv`` (format version 2)."""
    data = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    assert data.startswith(b"# Sphinx inventory version 2"), data[:40]
    names = set()
    for line in zlib.decompress(data[header_end:]).decode().splitlines():
        match = re.match(r"(\S+)\s+(py:\w+)\s", line)
        if match:
            names.add(match.group(1))
    return names


def test_docs_build_without_warnings(built_docs: Path) -> None:
    for page in ("index", "quickstart", "concepts", "adapters", "configuration", "scaling"):
        assert (built_docs / f"{page}.html").is_file(), page
    assert (built_docs / "testing.html").is_file(), "docs/testing.rst is in the toctree"


def test_every_public_name_has_an_api_entry(built_docs: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _NAMES_SCRIPT, str(DOCS / "conf.py"), json.dumps(PUBLIC)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=True,
    )
    public: dict[str, list[str]] = json.loads(result.stdout)
    assert public["creative_services"], "creative_services.__all__ is empty?"
    inventory = _inventory(built_docs / "objects.inv")
    missing = [
        f"{module}.{name}"
        for module, names in public.items()
        for name in names
        if f"{module}.{name}" not in inventory
    ]
    assert not missing, f"public names without an API reference entry: {missing}"
    # The reference is rendered from docstrings, not just listed.
    api = (built_docs / "api.html").read_text(encoding="utf-8")
    assert "Call any LLM by tier, id or name" in api  # DynamicLLMClient's docstring


# --- code examples ----------------------------------------------------------------------------


def _code_blocks() -> list[tuple[str, str]]:
    """(``file:line``, source) of every Python example of docs/ and README.md."""
    return [(e.where, e.source) for page in examples_by_page().values() for e in page]


CODE_BLOCKS = _code_blocks()


def test_docs_have_python_examples() -> None:
    assert len(CODE_BLOCKS) >= 20


@pytest.mark.parametrize(("where", "source"), CODE_BLOCKS, ids=[w for w, _ in CODE_BLOCKS])
def test_python_code_block_compiles(where: str, source: str) -> None:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # examples may ``await`` at top level (asyncio REPL)
    if source.lstrip().startswith(">>>"):
        examples = doctest.DocTestParser().get_examples(source)
        assert examples, where
        for example in examples:
            compile(example.source, where, "single", flags=flags)
        return
    compile(source, where, "exec", flags=flags)


_IMPORT_SCRIPT = """
import importlib, json, runpy, sys
runpy.run_path(sys.argv[1])  # docs/conf.py: configures Django, as for the contrib modules
bad = []
for where, module, name in json.loads(sys.argv[2]):
    try:
        obj = importlib.import_module(module)
        if name is not None:
            getattr(obj, name)
    except Exception as exc:
        bad.append(f"{where}: {module}.{name or ''}: {type(exc).__name__}: {exc}")
print(json.dumps(bad))
"""


def test_code_blocks_import_only_names_that_exist() -> None:
    wanted = []
    for where, source in CODE_BLOCKS:
        if source.lstrip().startswith(">>>"):
            source = "\n".join(e.source for e in doctest.DocTestParser().get_examples(source))
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "creative_services"
            ):
                wanted += [(where, node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                wanted += [
                    (where, alias.name, None)
                    for alias in node.names
                    if alias.name.startswith("creative_services")
                ]
    assert wanted
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_SCRIPT, str(DOCS / "conf.py"), json.dumps(wanted)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout) == []
