"""Item 14: .ci/supply_chain.py fails on a bad LiteLLM in the lock or the specifier, on an
unexpected .pth file and on a vulnerability pip-audit reports; it only skips when offline."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "supply_chain.py"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Copies of the real lock and pyproject, and a site-packages like the project's venv."""
    shutil.copy(ROOT / "uv.lock", tmp_path / "uv.lock")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "_editable_impl_creative_services.pth").write_text(str(ROOT / "src") + "\n")
    return tmp_path


def run(tree: Path, *extra: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *("--lock", str(tree / "uv.lock")),
            *("--pyproject", str(tree / "pyproject.toml")),
            *("--site-packages", str(tree / "site-packages")),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_real_tree_passes(tree):
    result = run(tree, "--skip-audit")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "supply chain: ok" in result.stdout


def test_the_script_uses_only_the_standard_library():
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("version", ["1.82.7", "1.82.8", "1.107.0"])
def test_a_lock_with_a_bad_litellm_fails(tree, version):
    lock = tree / "uv.lock"
    text = lock.read_text()
    assert 'name = "litellm"\nversion = "1.110.2"' in text
    lock.write_text(
        text.replace(
            'name = "litellm"\nversion = "1.110.2"', f'name = "litellm"\nversion = "{version}"'
        )
    )
    result = run(tree, "--skip-audit")
    assert result.returncode == 1
    assert f"locks litellm {version}, a known-bad release" in result.stdout


@pytest.mark.parametrize(
    "specifier",
    [
        ">=1.80,<1.111",  # admits all three
        ">=1.82,<1.111,!=1.82.7",  # forgets 1.82.8
        ">=1.100,<2,!=1.82.7,!=1.82.8",  # admits 1.107.0
    ],
)
def test_a_specifier_admitting_a_bad_litellm_fails(tree, specifier):
    pyproject = tree / "pyproject.toml"
    text = pyproject.read_text()
    real = '"litellm>=1.110.2,<1.111,!=1.82.7,!=1.82.8,!=1.107.0"'
    assert real in text
    pyproject.write_text(text.replace(real, f'"litellm{specifier}"'))
    result = run(tree, "--skip-audit")
    assert result.returncode == 1
    assert f"'litellm{specifier}' admits bad release" in result.stdout


def test_a_lock_resolved_against_a_loose_specifier_fails(tree):
    lock = tree / "uv.lock"
    text = lock.read_text()
    real = 'specifier = "!=1.82.7,!=1.82.8,!=1.107.0,>=1.110.2,<1.111"'
    assert real in text
    lock.write_text(text.replace(real, 'specifier = ">=1.80"'))
    result = run(tree, "--skip-audit")
    assert result.returncode == 1
    assert "requires-dist 'litellm>=1.80' admits" in result.stdout


def test_an_unexpected_pth_file_fails_and_names_its_distribution(tree):
    site = tree / "site-packages"
    (site / "litellm_init.pth").write_text(
        "import os, base64; exec(base64.b64decode('cHJpbnQoMSk='))\n"
    )
    dist = site / "litellm-1.82.8.dist-info"
    dist.mkdir()
    (dist / "RECORD").write_text("litellm_init.pth,sha256=abc,57\nlitellm/__init__.py,,\n")
    result = run(tree, "--skip-audit")
    assert result.returncode == 1
    assert "unexpected litellm_init.pth (shipped by litellm-1.82.8)" in result.stdout


def test_an_allowlisted_pth_that_runs_code_fails(tree):
    site = tree / "site-packages"
    (site / "_editable_impl_creative_services.pth").write_text("import evil; evil.run()\n")
    result = run(tree, "--skip-audit")
    assert result.returncode == 1
    assert "allowlisted but runs unexpected code" in result.stdout


def fake_pip_audit(tmp_path: Path, stdout: str, stderr: str, code: int) -> str:
    """A ``pip-audit`` executable on a PATH of its own that answers as scripted."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pip-audit"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({code})\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def test_a_vulnerability_found_by_pip_audit_fails(tree):
    report = (
        '{"dependencies": [{"name": "litellm", "version": "1.110.2", "vulns": '
        '[{"id": "GHSA-fake-0000-0000", "fix_versions": ["1.110.3"]}]}, '
        '{"name": "structlog", "version": "25.1.0", "vulns": []}], "fixes": []}'
    )
    result = run(tree, path=fake_pip_audit(tree, report, "Found 1 known vulnerability", 1))
    assert result.returncode == 1
    assert "FAIL: pip-audit: litellm 1.110.2: GHSA-fake-0000-0000" in result.stdout


def test_no_vulnerability_passes(tree):
    report = '{"dependencies": [{"name": "litellm", "version": "1.110.2", "vulns": []}]}'
    result = run(tree, path=fake_pip_audit(tree, report, "", 0))
    assert result.returncode == 0, result.stdout
    assert "ok: pip-audit: no known vulnerability" in result.stdout


def test_an_unreachable_vulnerability_service_is_skipped_not_failed(tree):
    error = (
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443): "
        "Max retries exceeded (Failed to establish a new connection: [Errno -3] Temporary "
        "failure in name resolution)"
    )
    path = fake_pip_audit(tree, "", error, 1)
    result = run(tree, path=path)
    assert result.returncode == 0, result.stdout
    assert "skipped: offline" in result.stdout
    strict = run(tree, "--require-audit", path=path)
    assert strict.returncode == 1


def test_missing_pip_audit_is_reported_as_skipped(tree):
    empty = tree / "empty-bin"
    empty.mkdir()
    result = run(tree, path=str(empty))
    assert "skipped: pip-audit is not installed" in result.stdout
    assert result.returncode == 0
