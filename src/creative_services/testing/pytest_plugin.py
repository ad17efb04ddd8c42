"""pytest plugin: offline LLM tests, cassettes that never hold a key, and ready fixtures.

Opt in from your top-level ``conftest.py``::

    pytest_plugins = ["creative_services.testing.pytest_plugin"]

What you get:

- **Real network calls are blocked.** A test connecting anywhere but loopback (127.0.0.1,
  ``localhost``, ``::1``) or a Unix socket fails with a message saying how to record a
  cassette. Allow it with ``@pytest.mark.allow_network``, ``--cs-allow-network`` or
  ``CREATIVE_SERVICES_ALLOW_NETWORK=1``.
- **Cassettes**: ``@pytest.mark.llm_cassette("openai/chat.yaml")`` (or the ``llm_cassette``
  fixture) replays the test's HTTP calls, httpx and aiohttp alike, from a vcrpy cassette. A
  relative path is resolved against the ``llm_cassette_dir`` ini option (default
  ``cassettes`` under the rootdir); without a path the cassette is
  ``<llm_cassette_dir>/<test module>/<test name>.yaml``. Marker keyword arguments are vcrpy
  cassette options (``match_on=...``).
- **Recording**: ``pytest --cs-record=once`` records cassettes that do not exist yet (and lets
  cassette tests reach the network), ``--cs-record=all`` re-records all of them,
  ``new_episodes`` adds new requests to existing ones. ``CREATIVE_SERVICES_RECORD=<mode>`` does
  the same. Keys are scrubbed before anything is written (headers, ``?key=``, JSON body
  fields; see :mod:`creative_services.testing.cassettes`), and a freshly recorded cassette is
  linted: the test fails if anything key-shaped is left.
- **Fixtures**: ``vcr_config`` (the scrubbing vcrpy options; override it in your conftest to
  change them), ``llm_cassette``, ``fake_llm`` (a running :class:`FakeLLM`), ``fake_provider``
  (the raw loopback server), ``fake_clock`` (retry waits without waiting), ``llm_usage`` (the
  usage records made during the test, see :func:`capture_usage`).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from creative_services.testing.cassettes import vcr_config as _vcr_defaults

__all__ = ["NetworkBlockedError"]

RECORD_MODES = ("none", "once", "new_episodes", "all")
RECORD_ENV = "CREATIVE_SERVICES_RECORD"
ALLOW_NETWORK_ENV = "CREATIVE_SERVICES_ALLOW_NETWORK"

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a real host while the creative-services plugin blocks the network."""


class _Guard:
    """Process-wide socket guard (the library calls providers from a background thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.installed = 0
        self.allow_all = False
        self.allow_test = False
        self.test_id = ""
        self.blocked: list[str] = []
        self.originals: dict[str, Any] = {}

    def allowed(self) -> bool:
        return self.allow_all or self.allow_test

    def refuse(self, host: str, port: object) -> None:
        where = f"{host}:{port}" if port is not None else host
        message = (
            f"creative-services blocked a real network call to {where}"
            + (f" in {self.test_id}" if self.test_id else "")
            + ". Tests run offline: serve the call from a FakeLLM (fixture fake_llm), or replay "
            "a cassette (@pytest.mark.llm_cassette). To record cassettes from the real "
            "provider, set the provider key and run pytest --cs-record=once (new cassettes) "
            "or --cs-record=all (re-record); to allow the network anyway, mark the test "
            "@pytest.mark.allow_network or pass --cs-allow-network."
        )
        with self.lock:
            if message not in self.blocked:  # retries repeat the same attempt
                self.blocked.append(message)
        raise NetworkBlockedError(message)


_guard = _Guard()


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True  # not an internet address (e.g. AF_UNIX path handled elsewhere)
    name = host.strip("[]").split("%", 1)[0].lower()
    if name in ("",) or name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _never_resolves(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).rstrip(".").lower()
    return name == "invalid" or name.endswith(".invalid")


def _guarded_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            self.family in (socket.AF_INET, socket.AF_INET6)
            and isinstance(address, tuple)
            and not _guard.allowed()
            and not _is_local(address[0])
        ):
            _guard.refuse(str(address[0]), address[1] if len(address) > 1 else None)
        return original(self, address, *args, **kwargs)

    return connect


def _guarded_getaddrinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not _guard.allowed() and not _is_local(host):
            if _never_resolves(host):
                # RFC 6761: ``.invalid`` never resolves; answer as DNS would, without asking it
                # (fault-injection tests use such names for "DNS failure")
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            _guard.refuse(str(host), port)
        return original(host, port, *args, **kwargs)

    return getaddrinfo


def _install() -> None:
    with _guard.lock:
        _guard.installed += 1
        if _guard.installed > 1:
            return
        _guard.originals = {
            "connect": socket.socket.connect,
            "connect_ex": socket.socket.connect_ex,
            "getaddrinfo": socket.getaddrinfo,
        }
    socket.socket.connect = _guarded_connect(_guard.originals["connect"])  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect(_guard.originals["connect_ex"])  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo(_guard.originals["getaddrinfo"])


def _uninstall() -> None:
    with _guard.lock:
        _guard.installed -= 1
        if _guard.installed > 0 or not _guard.originals:
            return
        originals, _guard.originals = _guard.originals, {}
    socket.socket.connect = originals["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = originals["connect_ex"]  # type: ignore[method-assign]
    socket.getaddrinfo = originals["getaddrinfo"]


# --- hooks -------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--cs-record``, ``--cs-allow-network`` and the ``llm_cassette_dir`` ini option."""
    group = parser.getgroup("creative-services", "creative-services LLM testing")
    group.addoption(
        "--cs-record",
        choices=RECORD_MODES,
        default=None,
        metavar="MODE",
        help="record LLM cassettes: once (only missing ones), new_episodes, all (re-record "
        f"everything); default none (replay only), or ${RECORD_ENV}",
    )
    group.addoption(
        "--cs-allow-network",
        action="store_true",
        default=False,
        help=f"do not block real network calls (or ${ALLOW_NETWORK_ENV}=1)",
    )
    parser.addini(
        "llm_cassette_dir",
        default="cassettes",
        help="directory for llm_cassette paths, relative to the rootdir (default: cassettes)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and start blocking the network."""
    config.addinivalue_line(
        "markers",
        "llm_cassette(path=None, **vcr_options): replay the test's HTTP calls from a cassette "
        "(record with --cs-record=once|all)",
    )
    config.addinivalue_line("markers", "allow_network: let this test reach real hosts")
    mode = config.getoption("--cs-record") or os.environ.get(RECORD_ENV, "").strip() or "none"
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"{RECORD_ENV}={mode!r}: use one of {', '.join(RECORD_MODES)}")
    config.stash[_RECORD_MODE] = mode
    allow = bool(config.getoption("--cs-allow-network")) or os.environ.get(
        ALLOW_NETWORK_ENV, ""
    ).strip().lower() in ("1", "true", "yes")
    config.stash[_ALLOW_ALL] = allow
    _install()
    _guard.allow_all = allow


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop blocking the network."""
    if _ALLOW_ALL in config.stash:
        _uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Per test: who is calling (for the message), and the ``allow_network`` marker."""
    _guard.test_id = item.nodeid
    _guard.allow_test = item.get_closest_marker("allow_network") is not None
    with _guard.lock:
        _guard.blocked.clear()
    try:
        return (yield)
    finally:
        _guard.test_id = ""
        _guard.allow_test = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test that tried the network fails, with the message, even if it swallowed the error
    (a library may have wrapped it as a connection error)."""
    report = yield
    with _guard.lock:
        blocked, _guard.blocked = list(_guard.blocked), []
    if blocked:
        report.sections.append(("creative-services: network blocked", "\n".join(blocked)))
        if report.passed:
            report.outcome = "failed"
            report.longrepr = blocked[0]
    return report


_RECORD_MODE = pytest.StashKey[str]()
_ALLOW_ALL = pytest.StashKey[bool]()


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def vcr_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """vcrpy options with credentials scrubbed; ``record_mode`` from ``--cs-record``.

    Override this fixture to change options for a module or directory, e.g.
    ``return {**creative_services.testing.cassettes.vcr_config(), "match_on": [...]}``.
    """
    return _vcr_defaults(record_mode=request.config.stash.get(_RECORD_MODE, "none"))


def _cassette_path(request: pytest.FixtureRequest, given: str | os.PathLike[str] | None) -> Path:
    base = Path(str(request.config.rootpath)) / str(request.config.getini("llm_cassette_dir"))
    if given is None:
        module = Path(str(request.node.path)).stem
        name = request.node.name.replace("/", "_").replace(os.sep, "_")
        return base / module / f"{name}.yaml"
    path = Path(given)
    return path if path.is_absolute() else base / path


@pytest.fixture
def llm_cassette(request: pytest.FixtureRequest, vcr_config: dict[str, Any]) -> Iterator[Any]:
    """Replay (or, with ``--cs-record``, record) the test's HTTP calls; yields the vcrpy cassette.

    The path comes from ``@pytest.mark.llm_cassette(path)``; see the module docstring.
    """
    from creative_services.testing.cassettes import use_cassette

    marker = request.node.get_closest_marker("llm_cassette")
    args = marker.args if marker is not None else ()
    options = {**vcr_config, **(marker.kwargs if marker is not None else {})}
    path = _cassette_path(request, args[0] if args else None)
    mode = str(options.get("record_mode", "none"))
    if mode == "none" and not path.exists():
        pytest.fail(
            f"cassette {path} does not exist: record it with pytest --cs-record=once "
            "(with the provider's key set)",
            pytrace=False,
        )
    if mode != "none":
        path.parent.mkdir(parents=True, exist_ok=True)
        _guard.allow_test = True  # recording reaches the real provider
    with use_cassette(path, **options) as cassette:
        yield cassette
    if mode != "none" and path.exists():
        from creative_services.testing.lint import lint_file

        findings = lint_file(path)
        if findings:
            pytest.fail(
                "the recorded cassette still holds credentials, do not commit it:\n"
                + "\n".join(str(finding) for finding in findings),
                pytrace=False,
            )


@pytest.fixture(autouse=True)
def _llm_cassette_marker(request: pytest.FixtureRequest) -> None:
    """``@pytest.mark.llm_cassette`` turns the ``llm_cassette`` fixture on."""
    if request.node.get_closest_marker("llm_cassette") is not None:
        request.getfixturevalue("llm_cassette")


@pytest.fixture
def fake_llm() -> Iterator[Any]:
    """A running :class:`~creative_services.testing.FakeLLM` (stopped after the test)."""
    from creative_services.testing.fake_llm import FakeLLM

    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def fake_provider() -> Iterator[Any]:
    """A running :class:`~creative_services.testing.FakeProvider` (the raw loopback server)."""
    from creative_services.testing.fake_provider import FakeProvider

    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake_clock() -> Any:
    """A :class:`~creative_services.testing.FakeClock`: pass ``clock=fake_clock,
    sleep=fake_clock.sleep`` to a client and retries wait no real time."""
    from creative_services.testing.clock import FakeClock

    return FakeClock()


@pytest.fixture
def llm_usage() -> Iterator[Any]:
    """The usage records every client makes during the test (a :class:`UsageCapture`)."""
    from creative_services.testing.overrides import capture_usage

    with capture_usage() as usage:
        yield usage
