#!/usr/bin/env python3
"""Supply-chain guard for CI (standard library only; ``packaging`` is used when importable).

Fails (exit 1) when:

1. ``uv.lock`` pins a LiteLLM release known to be bad: 1.82.7 and 1.82.8 shipped a credential
   stealer (a ``.pth`` file run at interpreter start), 1.107.0 is no longer served;
2. the LiteLLM requirement of ``pyproject.toml`` (and the specifier/constraint recorded in
   ``uv.lock``) admits one of those versions;
3. an installed distribution ships a ``.pth`` file that is not on the allowlist, or an allowed
   one executes code it should not (``.pth`` lines starting with ``import`` run at every start);
4. ``pip-audit`` finds a known vulnerability in the locked versions.

``pip-audit`` is optional: when it is not installed the step says "skipped: pip-audit is not
installed"; when the vulnerability service cannot be reached it says "skipped: offline". Neither
fails the run (``--require-audit`` makes them fail). A found vulnerability always fails.

Usage (from the repository root, in the project's environment)::

    uv run python .ci/supply_chain.py
    uv run python .ci/supply_chain.py --lock uv.lock --pyproject pyproject.toml \\
        --site-packages .venv/lib/python3.11/site-packages --skip-audit
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

BAD_LITELLM = ("1.82.7", "1.82.8", "1.107.0")
"""Releases that must never be installed."""

ALLOWED_PTH = {
    # name: executable lines allowed in it (prefixes); an empty tuple means paths only
    "_editable_impl_creative_services.pth": (),  # hatchling's editable install of this project
    "distutils-precedence.pth": ("import os; var = 'SETUPTOOLS_USE_DISTUTILS'",),  # setuptools
    "_virtualenv.pth": ("import _virtualenv",),  # virtualenv
}
"""``.pth`` files allowed in site-packages, and the code lines each may hold."""

OFFLINE_MARKERS = (
    "connectionerror",
    "connection refused",
    "max retries exceeded",
    "name or service not known",
    "temporary failure in name resolution",
    "failed to establish a new connection",
    "network is unreachable",
    "timed out",
    "nodename nor servname",
    "no address associated",
)


class Report:
    """Collects ok / FAIL / skipped lines; any FAIL makes the exit status 1."""

    def __init__(self) -> None:
        self.failed = False

    def ok(self, text: str) -> None:
        print(f"ok: {text}")

    def fail(self, text: str) -> None:
        self.failed = True
        print(f"FAIL: {text}")

    def skip(self, text: str) -> None:
        print(f"skipped: {text}")


# --- 1 and 2: LiteLLM versions ------------------------------------------------------------------


def _admits(specifier: str, version: str) -> bool:
    """Whether ``specifier`` (PEP 440) admits ``version``."""
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # crude fallback: only an explicit exclusion counts as excluding
        clauses = [c.strip() for c in specifier.split(",") if c.strip()]
        return f"!={version}" not in clauses and f"<{version}" not in clauses
    return SpecifierSet(specifier).contains(version, prereleases=True)


def _litellm_specifier(requirements: Iterable[str]) -> str | None:
    for requirement in requirements:
        match = re.match(r"\s*litellm(\[[^\]]*\])?\s*(?P<spec>[^;]*)", requirement, re.I)
        if match and not re.match(r"\s*litellm[\w.-]", requirement, re.I):
            return match.group("spec").strip()
    return None


def check_pyproject(path: Path, report: Report) -> None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    project = data.get("project", {})
    spec = _litellm_specifier(project.get("dependencies", []))
    if spec is None:
        report.fail(f"{path}: no litellm requirement in [project].dependencies")
        return
    admitted = [v for v in BAD_LITELLM if _admits(spec, v)]
    if admitted:
        report.fail(f"{path}: 'litellm{spec}' admits bad release(s) {', '.join(admitted)}")
    else:
        report.ok(f"{path}: 'litellm{spec}' excludes {', '.join(BAD_LITELLM)}")
    constraints = data.get("tool", {}).get("uv", {}).get("constraint-dependencies", [])
    cspec = _litellm_specifier(constraints)
    if cspec is not None:
        admitted = [v for v in BAD_LITELLM if _admits(cspec, v)]
        if admitted:
            report.fail(f"{path}: uv constraint 'litellm{cspec}' admits {', '.join(admitted)}")


def check_lock(path: Path, report: Report) -> None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    packages = data.get("package", [])
    versions = [p.get("version") for p in packages if p.get("name") == "litellm"]
    if not versions:
        report.fail(f"{path}: litellm is not locked")
    for version in versions:
        if version in BAD_LITELLM:
            report.fail(f"{path}: locks litellm {version}, a known-bad release")
        else:
            report.ok(f"{path}: locks litellm {version}")
    # What the lock was resolved against: the project's specifier and the manifest constraints.
    specs: list[tuple[str, str]] = []
    for constraint in data.get("manifest", {}).get("constraints", []):
        if constraint.get("name") == "litellm" and constraint.get("specifier"):
            specs.append(("manifest constraint", constraint["specifier"]))
    for package in packages:
        for req in package.get("metadata", {}).get("requires-dist", []):
            if req.get("name") == "litellm" and req.get("specifier"):
                specs.append((f"{package.get('name')} requires-dist", req["specifier"]))
    for where, spec in specs:
        admitted = [v for v in BAD_LITELLM if _admits(spec, v)]
        if admitted:
            report.fail(f"{path}: {where} 'litellm{spec}' admits {', '.join(admitted)}")


# --- 3: .pth files ------------------------------------------------------------------------------


def _owners(site: Path) -> dict[str, str]:
    """``.pth`` file name -> the distribution whose RECORD lists it."""
    owners: dict[str, str] = {}
    for record in site.glob("*.dist-info/RECORD"):
        dist = record.parent.name.removesuffix(".dist-info")
        try:
            lines = record.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            name = line.split(",", 1)[0]
            if name.endswith(".pth") and "/" not in name:
                owners[name] = dist
    return owners


def check_pth(sites: Sequence[Path], report: Report) -> None:
    for site in dict.fromkeys(sites):
        if not site.is_dir():
            report.fail(f"{site}: not a directory")
            continue
        owners = _owners(site)
        found = sorted({p.name for p in site.glob("*.pth")} | set(owners))
        for name in found:
            owner = owners.get(name, "no distribution")
            if name not in ALLOWED_PTH:
                report.fail(
                    f"{site}: unexpected {name} (shipped by {owner}); .pth files run at every "
                    f"interpreter start: remove the distribution or allowlist the file in "
                    f".ci/supply_chain.py after review"
                )
                continue
            path = site / name
            allowed = ALLOWED_PTH[name]
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                lines = []
            code = [ln for ln in lines if ln.startswith(("import ", "import\t"))]
            bad = [ln for ln in code if not ln.startswith(allowed) or not allowed]
            if bad:
                report.fail(f"{path}: allowlisted but runs unexpected code: {bad[0][:120]!r}")
        report.ok(f"{site}: {len(found)} .pth file(s), all allowlisted: {', '.join(found)}")


# --- 4: pip-audit -------------------------------------------------------------------------------


def _pip_audit() -> list[str] | None:
    """The pip-audit command on PATH (``uv run`` puts the venv's bin first), if any."""
    exe = shutil.which("pip-audit")
    return [exe] if exe else None


def _locked_requirements(lock: Path) -> list[list[str]]:
    """``name==version`` lines of every registry package in ``uv.lock``, split into as few lists
    as possible so that no list names a package twice (a lock may hold two versions of one
    package for different Python versions; pip-audit refuses duplicates)."""
    data = tomllib.loads(lock.read_text(encoding="utf-8"))
    versions: dict[str, list[str]] = {}
    for package in data.get("package", []):
        source = package.get("source", {})
        if "registry" in source and package.get("version"):
            found = versions.setdefault(package["name"], [])
            if package["version"] not in found:
                found.append(package["version"])
    rounds = max((len(v) for v in versions.values()), default=0)
    return [
        sorted(f"{name}=={found[i]}" for name, found in versions.items() if i < len(found))
        for i in range(rounds)
    ]


def _run_audit(command: list[str], lines: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return subprocess.run(  # noqa: S603
            [*command, "-r", str(reqs), "--no-deps", "--disable-pip", "-f", "json"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


def check_audit(lock: Path, report: Report, *, require: bool) -> None:
    command = _pip_audit()
    if command is None:
        (report.fail if require else report.skip)("pip-audit is not installed")
        return
    audited = 0
    for lines in _locked_requirements(lock):
        try:
            result = _run_audit(command, lines)
        except subprocess.TimeoutExpired:
            (report.fail if require else report.skip)("offline (pip-audit timed out)")
            return
        try:
            payload = json.loads(result.stdout or "null")
        except ValueError:
            payload = None
        dependencies = payload.get("dependencies", []) if isinstance(payload, dict) else None
        if dependencies is None:
            text = (result.stderr + result.stdout).lower()
            if any(marker in text for marker in OFFLINE_MARKERS):
                (report.fail if require else report.skip)(
                    "offline (the vulnerability service is unreachable; pip-audit did not run)"
                )
            else:
                report.fail(f"pip-audit exited {result.returncode}: {result.stderr.strip()[-300:]}")
            return
        vulnerable = [d for d in dependencies if d.get("vulns")]
        for dep in vulnerable:
            ids = ", ".join(v.get("id", "?") for v in dep["vulns"])
            report.fail(f"pip-audit: {dep.get('name')} {dep.get('version')}: {ids}")
        if not vulnerable and result.returncode != 0:
            report.fail(f"pip-audit exited {result.returncode}: {result.stderr.strip()[-300:]}")
            return
        audited += len(dependencies)
    report.ok(f"pip-audit: no known vulnerability in {audited} locked package versions")


# --- main ---------------------------------------------------------------------------------------


def _default_sites() -> list[Path]:
    paths = sysconfig.get_paths()
    return [Path(paths["purelib"]), Path(paths["platlib"])]


def main(argv: Sequence[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=root / "uv.lock")
    parser.add_argument("--pyproject", type=Path, default=root / "pyproject.toml")
    parser.add_argument(
        "--site-packages",
        type=Path,
        action="append",
        help="site-packages to scan (default: this interpreter's purelib and platlib)",
    )
    parser.add_argument("--skip-audit", action="store_true", help="do not run pip-audit")
    parser.add_argument(
        "--require-audit",
        action="store_true",
        help="fail when pip-audit is missing or offline instead of skipping",
    )
    args = parser.parse_args(argv)
    report = Report()
    check_lock(args.lock, report)
    check_pyproject(args.pyproject, report)
    check_pth(args.site_packages or _default_sites(), report)
    if args.skip_audit:
        report.skip("pip-audit (--skip-audit)")
    else:
        check_audit(args.lock, report, require=args.require_audit)
    print("supply chain:", "FAILED" if report.failed else "ok")
    return 1 if report.failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
