"""The example Django project, end to end in a real browser (headless Chromium + Selenium).

The test migrates a fresh SQLite database, creates a superuser, starts the example server
(``manage.py runserver``, in a subprocess, on a free port) and a loopback ``FakeProvider``, then
in the browser: logs into the admin, adds an LLM entry that points at the fake provider through
the admin's add form, asks a question on the example page with that entry, and finds the call's
usage row in the admin. Screenshots go to ``$CREATIVE_SERVICES_ARTIFACTS`` (default:
``artifacts/`` at the repository root, ignored by git).

Needs Chromium and its driver from Debian: ``apt-get install -y chromium chromium-driver``. When
they are missing the test fails (it does not skip) and says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from creative_services.testing.fake_provider import FakeProvider

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example"
APT = "apt-get install -y chromium chromium-driver"
USER, PASSWORD = "admin", "example-admin-password"
ENTRY = "browser-test-entry"


def _artifacts() -> Path:
    path = Path(os.environ.get("CREATIVE_SERVICES_ARTIFACTS") or ROOT / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail(
            f"headless Chromium is needed for the browser test (chromium: {chromium}, "
            f"chromedriver: {driver}); install it with: {APT}",
            pytrace=False,
        )
    return chromium, driver


def _server_env(db_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py sets the example's settings
    env.pop("CREATIVE_SERVICES_MODELS", None)
    env.update(
        EXAMPLE_DB_PATH=str(db_path),
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextlib.contextmanager
def example_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The example project served on a free port, with a migrated database and a superuser."""
    db_path = tmp_path / "example.sqlite3"
    env = _server_env(db_path)
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(env, "createsuperuser", "--noinput", "--username", USER, "--email", "a@example.com")
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE / "manage.py"),
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if server.poll() is not None:
                pytest.fail(f"runserver exited: {(tmp_path / 'server.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    log_text = (tmp_path / "server.log").read_text()
                    pytest.fail(f"runserver did not listen: {log_text}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", db_path
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()
        shutil.copyfile(tmp_path / "server.log", _artifacts() / "example-server.log")


def _require_selenium() -> None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail(
            "selenium is needed for the browser test: uv sync --group browser "
            "(or add the 'browser' group to the default groups)",
            pytrace=False,
        )


@contextlib.contextmanager
def chromium_browser(chromium: str, driver_path: str) -> Iterator[Any]:
    """Headless Chromium driven through the Debian chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1600,1100",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    # An explicit driver path: Selenium Manager (which may download drivers) is not used.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_admin_entry_page_answer_and_usage_row_in_a_real_browser(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Checked first, so that a machine without them fails at once, saying what to install.
    chromium, driver_path = _browser_binaries()
    _require_selenium()
    with (
        example_server(tmp_path) as (base_url, db_path),
        chromium_browser(chromium, driver_path) as browser,
    ):
        _admin_page_and_usage(base_url, db_path, browser, request.node.name)


def _admin_page_and_usage(base_url: str, db_path: Path, browser: Any, test_name: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20)
    shots = _artifacts()

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"example-{name}.png"))

    with FakeProvider() as fake:
        fake.reply("Bonjour from the fake provider", prompt_tokens=10, completion_tokens=5)
        try:
            # 1. Log into the admin.
            browser.get(f"{base_url}/admin/login/")
            browser.find_element(By.NAME, "username").send_keys(USER)
            browser.find_element(By.NAME, "password").send_keys(PASSWORD)
            browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
            wait.until(ec.presence_of_element_located((By.ID, "user-tools")))

            # 2. Add an entry through the admin's add form.
            browser.get(f"{base_url}/admin/creative_services/llmmodel/add/")
            fields = {
                "name": ENTRY,
                "provider": "openai",
                "model_name": "fake-model",
                "api_key": "fake-key-typed-in-the-admin",
                "api_endpoint": fake.base_url,
                "cost_per_1k_input": "0.5",
                "cost_per_1k_output": "1.5",
            }
            for name, value in fields.items():
                element = browser.find_element(By.NAME, name)
                element.clear()
                element.send_keys(value)
            Select(browser.find_element(By.NAME, "tier")).select_by_value("economy")
            browser.find_element(By.NAME, "_save").click()
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist")))
            assert ENTRY in browser.find_element(By.ID, "result_list").text
            shot("1-admin-entry-added")

            # 3. Ask on the example page, with the new entry.
            browser.get(f"{base_url}/")
            browser.find_element(By.NAME, "prompt").send_keys("Say hello in French")
            Select(browser.find_element(By.NAME, "llm_name")).select_by_value(ENTRY)
            browser.find_element(By.ID, "ask").click()
            answer = wait.until(ec.presence_of_element_located((By.ID, "answer")))
            assert answer.text == "Bonjour from the fake provider"
            assert ENTRY in browser.find_element(By.ID, "entry").text
            assert browser.find_element(By.ID, "cost").text.startswith("0.0125")
            shot("2-page-answer")

            # 4. The call's usage row, in the admin.
            browser.get(f"{base_url}/admin/creative_services/llmusage/")
            table = wait.until(ec.presence_of_element_located((By.ID, "result_list")))
            assert ENTRY in table.text
            assert "success" in table.text
            shot("3-admin-usage")
        except Exception:
            shot(f"failure-{test_name}")
            raise

        # The provider saw exactly the page's prompt, with the key typed into the admin.
        assert len(fake.requests) == 1
        sent = fake.requests[0]
        assert sent.body["messages"][-1]["content"] == "Say hello in French"
        assert sent.headers["authorization"] == "Bearer " + "fake-key-typed-in-the-admin"

    # And the row is what the server wrote: one call, priced from the entry (10 and 5 tokens).
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT entry_name, outcome, prompt_tokens, completion_tokens, cost, user_id "
            "FROM creative_services_llmusage"
        ).fetchall()
    assert len(rows) == 1
    entry_name, outcome, prompt_tokens, completion_tokens, cost, user_id = rows[0]
    assert (entry_name, outcome, prompt_tokens, completion_tokens) == (ENTRY, "success", 10, 5)
    assert Decimal(str(cost)) == Decimal("0.0125")
    assert user_id == "1"
