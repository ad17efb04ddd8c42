"""The built documentation in a real browser at 1300 px: code fits, screenshots kept.

Builds the docs (``sphinx-build -W``, as ``.ci/docs.sh``) into a temporary directory, opens the
quickstart and the Django page in headless Chromium (the driver setup of
tests/example/test_browser.py) with a 1300 px wide viewport, saves a screenshot of each to
``$CREATIVE_SERVICES_ARTIFACTS`` (default ``artifacts/``, ignored by git) and checks that no
code block on the quickstart needs horizontal scrolling (``scrollWidth <= clientWidth``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from example.test_browser import (
    _artifacts,
    _browser_binaries,
    _require_selenium,
    chromium_browser,
)

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1300
SPHINX = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]

# Every rendered code block: its width, the width of its content, and its first line.
_BLOCKS = """
return Array.from(document.querySelectorAll("div.highlight pre")).map(pre => ({
    scroll: pre.scrollWidth, client: pre.clientWidth,
    first: pre.innerText.split("\\n")[0]}));
"""


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [*SPHINX, "-d", str(out / ".doctrees"), str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stderr}"
    return out


def _open(browser: Any, page: Path, shot: Path) -> list[dict[str, Any]]:
    browser.get(page.as_uri())
    width = browser.execute_script("return window.innerWidth")
    assert width == WIDTH, f"viewport is {width} px wide, not {WIDTH}"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": min(int(height), 6000), "deviceScaleFactor": 1, "mobile": False},
    )
    browser.save_screenshot(str(shot))
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    print(f"\nscreenshot: {shot}")
    blocks: list[dict[str, Any]] = browser.execute_script(_BLOCKS)
    return blocks


def test_quickstart_and_django_pages_at_1300_px(html: Path) -> None:
    chromium, driver_path = _browser_binaries()
    _require_selenium()
    shots = _artifacts()
    with chromium_browser(chromium, driver_path) as browser:
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
        )
        quickstart = _open(browser, html / "quickstart.html", shots / "docs-quickstart.png")
        django = _open(browser, html / "django.html", shots / "docs-django.png")
        theme = browser.execute_script("return document.body.dataset.theme")
        copy_buttons = browser.execute_script(
            "return document.querySelectorAll('button.copybtn').length"
        )
    assert len(quickstart) >= 5, "no code blocks on the quickstart: did the page render?"
    assert django, "no code blocks on the Django page: did the page render?"
    scrolling = [b for b in quickstart if b["scroll"] > b["client"]]
    assert not scrolling, f"code blocks that scroll sideways at {WIDTH} px: {scrolling}"
    assert theme in ("auto", "light", "dark"), "the furo theme (light and dark) is not active"
    assert copy_buttons > 0, "sphinx-copybutton added no copy button"
