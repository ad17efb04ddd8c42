"""The cassette linter: finds credentials in recorded HTTP exchanges before they are committed.

::

    creative-services cassettes lint cassettes/   # or: python -m creative_services.testing.lint
    cassettes/openai/chat.yaml:14: auth header 'Authorization' holds a value (scrub it)

Reports, with file and line: auth headers (``authorization``, ``x-api-key``, ``api-key``, ...)
holding anything but a placeholder, cookie headers, key query parameters (``?key=``), key fields
of JSON bodies, and any string shaped like a provider key (OpenAI, Anthropic, Google, Groq, xAI,
OpenRouter, Hugging Face, Replicate, Perplexity, Fireworks, AWS, bearer tokens), and any key,
whatever its shape, echoed unmasked after "Incorrect API key provided:" (OpenAI's 401 masks an
OpenAI-shaped key itself but repeats any other key as it was sent). Works line by
line on the text, so it reads vcrpy YAML and JSON cassettes alike and needs no YAML parser.
Directories are searched for ``*.yaml``, ``*.yml`` and ``*.json`` files.

Placeholders (``REDACTED``, ``<...>``, ``***``, ``dummy``, ``fake...``, ``test...``,
``sk-test-...``) are not credentials.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from creative_services._secrets import KEY_ECHO, KEY_SHAPES_BY_KIND, echoed_raw
from creative_services.testing.cassettes import (
    SCRUBBED_BODY_FIELDS,
    SCRUBBED_QUERY_PARAMETERS,
    SCRUBBED_REQUEST_HEADERS,
)

__all__ = ["AUTH_HEADERS", "COOKIE_HEADERS", "Finding", "lint_file", "lint_paths", "lint_text"]

COOKIE_HEADERS: frozenset[str] = frozenset({"cookie", "set-cookie", "cookie2", "set-cookie2"})
"""Headers reported whatever they hold (a session cookie is a credential)."""

AUTH_HEADERS: frozenset[str] = frozenset(
    {name for name in SCRUBBED_REQUEST_HEADERS if name not in COOKIE_HEADERS}
    | {"x-auth-token", "x-goog-api-key", "ocp-apim-subscription-key"}
)
"""Headers reported when they hold anything but a placeholder."""

CASSETTE_SUFFIXES = (".yaml", ".yml", ".json")

_HEADER = re.compile(
    r"""^(?P<indent>\s*)(?:-\s+)?["']?(?P<name>[A-Za-z0-9_-]+)["']?\s*:(?:\s+(?P<rest>.*))?$"""
)
_LIST_ITEM = re.compile(r"^(?P<indent>\s*)-\s+(?P<value>.*)$")
_QUERY = re.compile(r"[?&](?P<name>[A-Za-z_]+)=(?P<value>[^&\s'\"#\\]*)")
_BODY_FIELD = re.compile(r"""["'](?P<name>[A-Za-z_-]+)\\?["']\s*:\s*\\?["'](?P<value>[^"'\\]*)""")
_SCHEME = re.compile(r"^(?:bearer|basic|token|apikey)\s+", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"^(?:|redacted|\[redacted\]|<[^>]*>|\*+|x{3,}|dummy[\w.-]*|fake[\w.-]*|test[\w.-]*"
    r"|sk-test-[\w.-]*|placeholder|none|null|not-needed|filtered|\*\*\*[\w.-]*)$",
    re.IGNORECASE,
)
_FAKE_KEY = re.compile(r"^sk-test-", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    """One credential-shaped problem: where it is and what it is (never the value itself)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def is_placeholder(value: str) -> bool:
    """Whether a header/query/body value is a stand-in rather than a credential."""
    value = value.strip().strip("[]").strip().strip("'\"").strip()
    return bool(_PLACEHOLDER.match(_SCHEME.sub("", value).strip()))


def _normalise_field(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _header_values(lines: Sequence[str], index: int, indent: int, rest: str) -> Iterator[str]:
    """The value(s) of the header key on ``lines[index]``: inline, or a YAML list below it."""
    rest = rest.strip()
    if rest:
        yield from rest.strip("[]").split(",")
        return
    for line in lines[index + 1 :]:
        item = _LIST_ITEM.match(line)
        if item is None or len(item["indent"]) < indent:
            return
        yield item["value"]


def _key_shapes(line: str) -> Iterator[str]:
    """The kind of each key-shaped string on ``line`` (the most specific kind, once per string)."""
    claimed: list[tuple[int, int]] = []
    for kind, pattern in KEY_SHAPES_BY_KIND.items():
        for match in pattern.finditer(line):
            start, end = match.span()
            if any(start < e and s < end for s, e in claimed):
                continue
            claimed.append((start, end))
            if not _FAKE_KEY.match(match.group(0)):
                yield kind


def lint_text(text: str, path: str = "<text>") -> list[Finding]:
    """The problems in one cassette's text, in line order."""
    findings: list[Finding] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        header = _HEADER.match(line)
        reported = len(findings)
        if header is not None:
            name = header["name"].lower()
            values = list(
                _header_values(lines, number - 1, len(header["indent"]), header["rest"] or "")
            )
            real = [value for value in values if not is_placeholder(value)]
            if name in COOKIE_HEADERS and real:
                findings.append(Finding(path, number, f"cookie header {header['name']!r}"))
            elif name in AUTH_HEADERS and real:
                findings.append(
                    Finding(path, number, f"auth header {header['name']!r} holds a value")
                )
            elif _normalise_field(name) in SCRUBBED_BODY_FIELDS and real:
                # a JSON body vcrpy stored as a YAML mapping (aiohttp's json=)
                findings.append(Finding(path, number, f"body field {header['name']!r}"))
        for query in _QUERY.finditer(line):
            if query["name"].lower() in SCRUBBED_QUERY_PARAMETERS and not is_placeholder(
                query["value"]
            ):
                findings.append(Finding(path, number, f"query parameter {query['name']!r}"))
        for field in _BODY_FIELD.finditer(line):
            if (
                _normalise_field(field["name"]) in SCRUBBED_BODY_FIELDS
                and not is_placeholder(field["value"])
                and len(findings) == reported  # a JSON cassette's header line: reported above
            ):
                findings.append(Finding(path, number, f"body field {field['name']!r}"))
        for kind in _key_shapes(line):
            findings.append(Finding(path, number, f"text shaped like {kind}"))
        for echo in KEY_ECHO.finditer(line):
            if echoed_raw(echo["key"]) and not is_placeholder(echo["key"]):
                findings.append(
                    Finding(path, number, "a key echoed after 'Incorrect API key provided:'")
                )
    return findings


def lint_file(path: str | os.PathLike[str]) -> list[Finding]:
    """The problems in the cassette file at ``path``. Raises: OSError when unreadable."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return lint_text(text, os.fspath(path))


def cassette_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named, and cassette files (``*.yaml``, ``*.yml``, ``*.json``) under directories.

    Raises: FileNotFoundError for a path that does not exist.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in CASSETTE_SUFFIXES)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {os.fspath(raw)}")
    return files


def lint_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Finding]:
    """The problems in every cassette file of ``paths`` (files or directories).

    Raises: FileNotFoundError for a path that does not exist.
    """
    return [finding for file in cassette_files(paths) for finding in lint_file(file)]


def main(argv: Sequence[str] | None = None) -> int:
    """``creative-services cassettes lint PATH...``: 0 clean, 1 credentials found, 2 bad path."""
    parser = argparse.ArgumentParser(
        prog="creative-services cassettes lint",
        description="Find credentials in recorded HTTP cassettes.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="cassette files or directories")
    args = parser.parse_args(argv)
    return run(args.paths)


def run(paths: Sequence[str]) -> int:
    """Lint ``paths``, print findings (stdout) and a summary (stderr); the exit code."""
    try:
        files = cassette_files(paths)
    except FileNotFoundError as exc:
        print(f"creative-services: {exc}", file=sys.stderr)
        return 2
    findings = [finding for file in files for finding in lint_file(file)]
    for finding in findings:
        print(finding)
    if findings:
        dirty = len({finding.path for finding in findings})
        print(
            f"{len(findings)} problem(s) in {dirty} of {len(files)} cassette file(s): scrub "
            "them (see creative_services.testing.cassettes) and re-record if needed",
            file=sys.stderr,
        )
        return 1
    print(f"{len(files)} cassette file(s) clean", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
