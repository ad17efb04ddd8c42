"""Every Python example of docs/ and README.md runs, against a FakeProvider on loopback.

tests/_doc_examples.py collects the examples and their markers; tests/_run_examples.py runs one
page's examples in a fresh interpreter (``OPENAI_API_KEY=fake``, ``OPENAI_BASE_URL`` = the fake's
URL, no other host reachable), one page per subprocess. An example that cannot run carries
``.. skip-example: <reason>``; those are counted, and there may only be a few.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from _doc_examples import ROOT, code_lines, doc_pages, examples_by_page

RUNNER = ROOT / "tests" / "_run_examples.py"
MAX_SKIPPED = 12
"""Examples that may be marked ``skip-example`` (a Django project, a real key, ...)."""
WIDTH = 88

PAGES = examples_by_page()
EXAMPLES = [example for examples in PAGES.values() for example in examples]
TO_RUN = [example for example in EXAMPLES if example.skip is None]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    for name in ("DJANGO_SETTINGS_MODULE", "CREATIVE_SERVICES_MODELS", "OPENAI_API_BASE"):
        env.pop(name, None)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # Examples that record usage to SQLite write to a throwaway file, not the user's home.
    env["CREATIVE_SERVICES_USAGE_DB"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / "docs.db")
    env["PYTHONPATH"] = str(ROOT)
    return env


def _run_page(page: str, tmp: Path) -> list[dict[str, Any]]:
    examples = [dataclasses.asdict(e) for e in PAGES[page] if e.skip is None]
    if not examples:
        return []
    name = page.replace("/", "_")
    source, results = tmp / f"{name}.json", tmp / f"{name}.results.json"
    source.write_text(json.dumps(examples), encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, str(RUNNER), str(source), str(results)],
        env=_env(),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    done: list[dict[str, Any]] = json.loads(results.read_text()) if results.exists() else []
    for example in examples[len(done) :]:  # the interpreter died: say where
        done.append({"where": example["where"], "ok": False, "error": completed.stderr[-4000:]})
    return done


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The outcome of every example that is not marked ``skip-example``, by ``where``."""
    tmp = tmp_path_factory.mktemp("doc-examples")
    with ThreadPoolExecutor(max_workers=2) as pool:
        pages = list(pool.map(lambda page: _run_page(page, tmp), PAGES))
    return {result["where"]: result for page in pages for result in page}


@pytest.mark.parametrize("where", [e.where for e in TO_RUN])
def test_example_runs(where: str, results: dict[str, dict[str, Any]]) -> None:
    result = results[where]
    assert result["ok"], f"{where} does not run:\n{result['error']}"


def test_examples_run_and_few_are_marked(results: dict[str, dict[str, Any]]) -> None:
    skipped = [e for e in EXAMPLES if e.skip is not None]
    ran = [r for r in results.values() if r["ok"]]
    with_output = [e for e in TO_RUN if e.output is not None]
    print(
        f"\ndocs examples: {len(EXAMPLES)} in {len(PAGES)} pages, {len(ran)} executed "
        f"({len(with_output)} with their printed output checked), {len(skipped)} marked "
        "skip-example:"
    )
    for example in skipped:
        print(f"  {example.where}: {example.skip}")
    assert len(TO_RUN) >= 35, "examples went missing from the collection?"
    assert len(ran) == len(TO_RUN)
    assert len(skipped) <= MAX_SKIPPED, "more examples cannot run: make them runnable"
    assert with_output, "no example has its printed output checked"
    assert all(e.skip.strip() for e in skipped), "a skip-example marker needs a reason"


def test_readme_examples_are_collected() -> None:
    assert any(where.startswith("README.md:") for where in (e.where for e in EXAMPLES))


def test_code_lines_fit_the_content_width() -> None:
    too_long = [
        f"{page.relative_to(ROOT)}:{number} ({len(text)} chars)"
        for page in doc_pages()
        for number, text in code_lines(page)
        if len(text) > WIDTH
    ]
    assert not too_long, f"code lines longer than {WIDTH} characters: {too_long}"
