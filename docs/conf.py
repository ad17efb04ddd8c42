"""Sphinx configuration for the creative-services documentation.

Build: ``uv run --group docs sphinx-build -W --keep-going -b html docs docs/_build/html``
(``bash .ci/docs.sh`` does exactly that).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))

# autodoc imports creative_services.contrib.django.*, which needs configured Django settings and
# a populated app registry. Minimal settings, an in-memory SQLite database, nothing is migrated.
import django  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        SECRET_KEY="sphinx-docs-build-only",  # noqa: S106
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "creative_services.contrib.django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
    )
    django.setup()

import creative_services  # noqa: E402

project = "creative-services"
author = "creative-services developers"
copyright = "2026, creative-services developers"
release = creative_services.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# furo: a wide content column, light and dark (follows the reader's system setting, with a
# toggle). Code examples are wrapped to 88 columns, which fit it at 1300 px without scrolling
# (tests/test_docs_examples.py checks the width; tests/test_docs_browser.py the rendering).
html_theme = "furo"
html_title = f"creative-services {release}"
html_static_path: list[str] = []
pygments_style = "friendly"
pygments_dark_style = "monokai"
# The copy button copies the code only: no "$ " prompts or console output.
copybutton_prompt_text = r"\$ |>>> |\.\.\. "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = False

# No network during the build: intersphinx targets are not fetched (no mapping configured).
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "fully-qualified"
autodoc_default_options = {"show-inheritance": True}
autodoc_inherit_docstrings = True
# Type names in signatures that cannot be resolved to a documented object are not errors: the
# reference documents the public names, not every type from the standard library or Django.
nitpicky = False
suppress_warnings = [
    # "more than one target found": a re-exported name (creative_services.LLMRegistry) is also
    # registered under its defining module (autodoc's canonical name). Either target is right.
    "ref.python",
]

# --- the public surface, kept complete automatically -----------------------------------------

# (module, names) whose every public name must have an entry in the API reference.
# tests/test_docs.py checks the built inventory against the same list.
PUBLIC_MODULES: dict[str, list[str] | None] = {
    "creative_services": None,  # None: the module's __all__
    "creative_services.adapters": None,
    "creative_services.registry": None,
    "creative_services.tracking": None,
    "creative_services.openai_compat": None,
    "creative_services.bridges": None,
    "creative_services.testing": None,
    "creative_services.testing.cassettes": None,
    "creative_services.contrib.django.registry": None,
    "creative_services.contrib.django.tracking": None,
    "creative_services.contrib.django.budgets": None,
    "creative_services.contrib.django.models": None,
    "creative_services.contrib.django.budget_models": None,
    "creative_services.contrib.django.triggers": [
        "InstallVersionTriggers",
        "UpgradeVersionTriggers",
    ],
    "creative_services.contrib.django.crypto": ["EncryptedTextField", "UndecryptableKey"],
    "creative_services.contrib.django.cache": None,
}

_DIRECTIVE = re.compile(r"^\.\.\s+(?:auto\w+|py:\w+)::\s+([\w.]+)", re.MULTILINE)
_AUTOMODULE = re.compile(
    r"^\.\.\s+automodule::\s+([\w.]+)[ \t]*\n((?:[ \t]+:[^\n]*\n)*)", re.MULTILINE
)
_CURRENT = re.compile(
    r"^\.\.\s+(?:(?:py:)?(?:current)?module|automodule)::\s+([\w.]+)", re.MULTILINE
)


def public_names(module_name: str) -> list[str]:
    """The names of ``module_name`` that need a reference entry."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # a module being written on another branch: nothing yet
            return []
        raise
    explicit = PUBLIC_MODULES[module_name]
    if explicit is not None:
        return list(explicit)
    return list(getattr(module, "__all__", []))


def _documented() -> set[str]:
    """Fully qualified names that some page documents with an explicit directive."""
    found: set[str] = set()
    for path in DOCS.rglob("*.rst"):
        if "_build" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        # Walk directives in order, remembering the current module.
        current = ""
        events = sorted(
            [(m.start(), "mod", m.group(1)) for m in _CURRENT.finditer(text)]
            + [(m.start(), "obj", m.group(1)) for m in _DIRECTIVE.finditer(text)]
        )
        for _, kind, name in events:
            if kind == "mod":
                current = name
            elif name.startswith("creative_services"):
                found.add(name)
            elif current:
                found.add(f"{current}.{name}")
        # ``.. automodule:: M`` with ``:members:`` documents M's public names (or those listed).
        for match in _AUTOMODULE.finditer(text):
            module_name, options = match.group(1), match.group(2) or ""
            members = re.search(r"^\s+:members:(.*)$", options, re.MULTILINE)
            if not members:
                continue
            listed = [m.strip() for m in members.group(1).split(",") if m.strip()]
            if not listed:
                module = importlib.import_module(module_name)
                listed = list(getattr(module, "__all__", []))
            found.update(f"{module_name}.{member}" for member in listed)
    return found


def _resolve(qualified: str) -> object:
    module_name, _, name = qualified.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return None


def _directive_for(module_name: str, name: str, canonical: dict[int, str]) -> str:
    qualified = f"{module_name}.{name}"
    if name == "__version__":
        return (
            f".. py:data:: {qualified}\n   :type: str\n\n"
            "   The installed distribution's version (read from package metadata on first "
            "access).\n"
        )
    obj = getattr(importlib.import_module(module_name), name)
    kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "data"
    home = canonical.get(id(obj))
    if home is not None and home != qualified:
        # A re-export of a name documented elsewhere: a short entry pointing there.
        role = {"class": "class", "function": "func", "data": "data"}[kind]
        return f".. py:{kind}:: {name}\n   :no-index-entry:\n\n   See :{role}:`{home}`.\n"
    canonical.setdefault(id(obj), qualified)
    if kind == "class":
        members = "" if _is_django_model(obj) else "   :members:\n"
        return f".. autoclass:: {qualified}\n{members}"
    if kind == "function":
        return f".. autofunction:: {qualified}\n"
    return f".. autodata:: {qualified}\n   :no-value:\n"


def _is_django_model(obj: type) -> bool:
    return any(base.__module__.startswith("django.db.models") for base in obj.__mro__[1:])


def missing_entries() -> tuple[dict[str, list[str]], dict[int, str]]:
    """Public names no page documents explicitly (by module), and where each object lives."""
    documented = _documented()
    canonical: dict[int, str] = {}
    for qualified in sorted(documented):
        obj = _resolve(qualified)
        if obj is not None and not isinstance(obj, (str, int, float)):
            canonical.setdefault(id(obj), qualified)
    missing: dict[str, list[str]] = {}
    for module_name in PUBLIC_MODULES:
        for name in public_names(module_name):
            if f"{module_name}.{name}" not in documented:
                missing.setdefault(module_name, []).append(name)
    return missing, canonical


def _append_generated(app: object, docname: str, source: list[str]) -> None:
    """Complete ``api.rst`` with every public name not documented by hand somewhere."""
    if docname != "api":
        return
    missing, canonical = missing_entries()
    if not missing:
        return
    parts = ["\n\nOther public names\n------------------\n\n"]
    parts.append(
        "Entries generated from each module's ``__all__`` for names that no section above "
        "documents.\n\n"
    )
    for module_name, names in missing.items():
        parts.append(f"``{module_name}``\n{'~' * (len(module_name) + 4)}\n\n")
        parts.append(f".. py:currentmodule:: {module_name}\n\n")
        for name in names:
            parts.append(_directive_for(module_name, name, canonical) + "\n")
    source[0] += "".join(parts)


def setup(app: object) -> None:
    app.connect("source-read", _append_generated)  # type: ignore[attr-defined]
