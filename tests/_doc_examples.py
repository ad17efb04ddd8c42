"""The Python examples of docs/*.rst and README.md, with the markers that say how each one runs.

Conventions (docs/testing.rst, "The documentation's examples"):

* Every ``.. code-block:: python`` (``pycon``) in docs/ and every ```` ```python ```` fence in
  README.md runs in the test suite (tests/test_docs_examples.py), against a FakeProvider.
* RST comments right before a block (only comments and blank lines in between) change that:

  - ``.. skip-example: <reason>`` -- the block does not run (it needs a real key, a Django
    project, ...). README.md: ``<!-- skip-example: <reason> -->``.
  - ``.. fake-reply: <text>`` -- the FakeProvider answers the block's next call with ``text``
    (repeat the comment for several calls); otherwise it answers ``"fake answer"``.
  - ``.. continues-example`` -- the block runs in the namespace the previous block of the page
    left (a fragment that uses the ``client`` made above); otherwise each block starts fresh.

* A ``.. code-block:: text`` with ``:caption: Output`` right after a block is its printed output,
  compared like a doctest (``...`` matches anything, whitespace is normalised).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block:: (?P<lang>\w+)[ \t]*$")
_MARK = re.compile(r"^\.\. (skip-example|fake-reply|continues-example)(?::\s*(.*))?$")
_MD_MARK = re.compile(r"^<!--\s*(skip-example|fake-reply|continues-example)(?::\s*(.*?))?\s*-->$")


@dataclass
class Example:
    """One Python code block of the documentation."""

    where: str
    """``path:line`` of the block's first line."""
    source: str
    lang: str = "python"
    skip: str | None = None
    replies: list[str] = field(default_factory=list)
    continues: bool = False
    output: str | None = None


@dataclass
class _Block:
    line: int
    lang: str
    options: list[str]
    body: str
    marks: list[tuple[str, str]]


def _marks_before(lines: list[str], i: int, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """The markers in the comments and blank lines just above line ``i``, top to bottom."""
    marks: list[tuple[str, str]] = []
    j = i - 1
    while j >= 0 and (not lines[j].strip() or pattern.match(lines[j].strip())):
        match = pattern.match(lines[j].strip())
        if match:
            marks.append((match.group(1), (match.group(2) or "").strip()))
        j -= 1
    return marks[::-1]


def _rst_blocks(path: Path) -> list[_Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = _BLOCK.match(lines[i])
        if not match:
            i += 1
            continue
        indent = len(match.group("indent"))
        j, options = i + 1, []
        while j < len(lines) and lines[j].strip().startswith(":"):
            options.append(lines[j].strip())
            j += 1
        body: list[str] = []
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            body.append(lines[j])
            j += 1
        text = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        marks = _marks_before(lines, i, _MARK)
        blocks.append(_Block(i + 1, match.group("lang"), options, text, marks))
        i = j
    return blocks


def _md_blocks(path: Path) -> list[_Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        lang = lines[i][3:].strip() or "text"
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        body = "\n".join(lines[i + 1 : j]) + "\n"
        blocks.append(_Block(i + 1, lang, [], body, _marks_before(lines, i, _MD_MARK)))
        i = j + 1
    return blocks


def _examples(path: Path, blocks: list[_Block]) -> list[Example]:
    examples: list[Example] = []
    previous_python = False
    for block in blocks:
        if block.lang == "text" and ":caption: Output" in block.options and previous_python:
            examples[-1].output = block.body
        previous_python = block.lang in ("python", "pycon")
        if not previous_python:
            continue
        example = Example(f"{path.relative_to(ROOT)}:{block.line + 1}", block.body, block.lang)
        for kind, value in block.marks:
            if kind == "skip-example":
                example.skip = value or "no reason given"
            elif kind == "fake-reply":
                example.replies.append(value)
            else:
                example.continues = True
        examples.append(example)
    return examples


def doc_pages() -> list[Path]:
    """README.md and the .rst pages of docs/, sorted."""
    pages = [p for p in sorted(DOCS.rglob("*.rst")) if "_build" not in p.parts]
    return [README, *pages]


def examples_by_page() -> dict[str, list[Example]]:
    """Every Python example, by page (repository-relative path)."""
    found = {}
    for path in doc_pages():
        blocks = _md_blocks(path) if path.suffix == ".md" else _rst_blocks(path)
        found[str(path.relative_to(ROOT))] = _examples(path, blocks)
    return found


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every line inside a code block or literal block of ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".md":
        inside, found = False, []
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                inside = not inside
            elif inside:
                found.append((number, line))
        return found
    found, i = [], 0
    while i < len(lines):
        stripped = lines[i].strip()
        literal = stripped.endswith("::") and not stripped.startswith(".. ")
        if not (_BLOCK.match(lines[i]) or literal):
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith(":") and not literal:
            j += 1  # directive options
        body = []
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            body.append((j + 1, lines[j]))
            j += 1
        text = textwrap.dedent("\n".join(line for _, line in body)).split("\n")
        found += [(n, t) for (n, _), t in zip(body, text, strict=True) if t.strip()]
        i = j
    return found
