"""vcrpy cassettes that replay provider calls offline and never store a credential.

Use :func:`use_cassette` around a call (replay only by default: a request the cassette does not
hold fails fast instead of reaching the network)::

    from creative_services.testing.cassettes import use_cassette

    with use_cassette("cassettes/openai/chat.yaml"):
        response = await client.generate("Say hi", tier="standard")

Record a new cassette with ``use_cassette(path, record_mode="once")`` and a real key: the key
headers, the ``key`` query parameter and key fields of JSON bodies are scrubbed before anything
is written, as is the value of every configured key (the provider key variables, each entry's
``api_key``/``api_key_env``; see :func:`creative_services._secrets.known_keys`) wherever it
occurs in a request or response body (an echo such as OpenAI's "Incorrect API key provided"),
and :func:`find_credentials` checks a cassette file afterwards. Requests match on
method and URL only (scheme, host, port, path, query), so a cassette keeps replaying when
LiteLLM changes how it serialises the body.

vcrpy is an optional dependency (the ``testing`` extra); it is imported only when a function
here is called.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from creative_services._secrets import KEY_SHAPES, MASK, known_keys

__all__ = [
    "MATCH_ON",
    "REDACTED",
    "SCRUBBED_BODY_FIELDS",
    "SCRUBBED_QUERY_PARAMETERS",
    "SCRUBBED_REQUEST_HEADERS",
    "SCRUBBED_RESPONSE_HEADERS",
    "CassetteContext",
    "find_credentials",
    "make_vcr",
    "scrub_request",
    "scrub_response",
    "use_cassette",
    "vcr_config",
]

F = TypeVar("F", bound=Callable[..., Any])

REDACTED = "REDACTED"
"""What a scrubbed JSON body field holds instead of the key."""

SCRUBBED_REQUEST_HEADERS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
)
"""Request headers removed before a request is stored (matched case-insensitively)."""

SCRUBBED_RESPONSE_HEADERS: tuple[str, ...] = (
    "set-cookie",
    "cookie",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
    "anthropic-workspace-id",
)
"""Response headers removed before a response is stored: session cookies and account ids."""

SCRUBBED_QUERY_PARAMETERS: tuple[str, ...] = ("key", "api_key", "apikey", "access_token")
"""Query parameters removed from stored URLs (Gemini accepts ``?key=``)."""

SCRUBBED_BODY_FIELDS: frozenset[str] = frozenset(
    {"apikey", "xapikey", "accesstoken", "authorization", "clientsecret", "secretkey"}
)
"""JSON body field names (lower-cased, ``-``/``_`` removed) whose values are replaced."""

MATCH_ON: tuple[str, ...] = ("method", "scheme", "host", "port", "path", "query")
"""How a live request finds its recorded twin: the URL and method, never the body."""


class CassetteContext(Protocol):
    """What :func:`use_cassette` returns: a ``with`` block or a (sync or async) test decorator."""

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    def __call__(self, function: F) -> F: ...


def _normalise_field(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _scrub_json(value: Any) -> tuple[Any, bool]:
    """``value`` with every key field replaced by :data:`REDACTED`, and whether any was."""
    if isinstance(value, dict):
        changed = False
        result: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and _normalise_field(key) in SCRUBBED_BODY_FIELDS:
                result[key] = REDACTED
                changed = changed or item != REDACTED
            else:
                result[key], sub = _scrub_json(item)
                changed = changed or sub
        return result, changed
    if isinstance(value, list):
        items = [_scrub_json(item) for item in value]
        return [item for item, _ in items], any(sub for _, sub in items)
    return value, False


def _scrub_known(value: Any, keys: list[str]) -> Any:
    """``value`` (text, bytes, or parsed JSON) with every value in ``keys`` masked."""
    if isinstance(value, str):
        for key in keys:
            value = value.replace(key, MASK)
        return value
    if isinstance(value, bytes):
        for key in keys:
            value = value.replace(key.encode("utf-8"), MASK.encode("utf-8"))
        return value
    if isinstance(value, dict):
        return {k: _scrub_known(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_known(item, keys) for item in value]
    return value


def scrub_request(request: Any) -> Any:
    """vcrpy ``before_record_request`` hook: replace API keys in a JSON request body, and every
    configured key's value anywhere in the body."""
    body = getattr(request, "body", None)
    if not body:
        return request
    keys = known_keys()
    if isinstance(body, dict | list):  # aiohttp's json= arrives parsed, and is stored as YAML
        scrubbed_data, changed = _scrub_json(body)
        masked = _scrub_known(scrubbed_data, keys)
        if changed or masked != body:
            request.body = masked
        return request
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        data = None
    scrubbed, changed = _scrub_json(data)
    if changed:
        request.body = json.dumps(scrubbed).encode("utf-8")
    masked = _scrub_known(request.body, keys)
    if masked != request.body:
        request.body = masked
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy ``before_record_response`` hook: drop session cookies and account id headers, and
    mask every configured key's value in the body (providers echo a wrong key in their 401)."""
    headers = response.get("headers")
    if isinstance(headers, Mapping):
        drop = set(SCRUBBED_RESPONSE_HEADERS)
        response["headers"] = {k: v for k, v in headers.items() if str(k).lower() not in drop}
    body = response.get("body")
    if isinstance(body, dict) and isinstance(body.get("string"), str | bytes):
        scrubbed = _scrub_known(body["string"], known_keys())
        if scrubbed != body["string"]:
            body["string"] = scrubbed
            _fix_length(response, scrubbed)
    return response


def _fix_length(response: dict[str, Any], body: str | bytes) -> None:
    """Keep a ``content-length`` header true to a body that masking made shorter or longer."""
    headers = response.get("headers")
    if not isinstance(headers, dict):
        return
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    for name in list(headers):
        if str(name).lower() == "content-length":
            headers[name] = [str(size)] if isinstance(headers[name], list) else str(size)


def vcr_config(**overrides: Any) -> dict[str, Any]:
    """The keyword arguments for ``vcr.VCR`` (or pytest-recording's ``vcr_config`` fixture)."""
    config: dict[str, Any] = {
        "record_mode": "none",
        "allow_playback_repeats": True,
        "match_on": list(MATCH_ON),
        "filter_headers": list(SCRUBBED_REQUEST_HEADERS),
        "filter_query_parameters": list(SCRUBBED_QUERY_PARAMETERS),
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
    }
    config.update(overrides)
    return config


def make_vcr(**overrides: Any) -> Any:
    """A ``vcr.VCR`` with :func:`vcr_config` defaults. Raises: MissingDependencyError.

    ``allow_playback_repeats`` is a per-cassette option in vcrpy: :func:`use_cassette` sets it.
    """
    try:
        import vcr
    except ImportError as exc:
        from creative_services.exceptions import MissingDependencyError

        raise MissingDependencyError(
            "cassettes need vcrpy: pip install 'creative-services[testing]'"
        ) from exc
    config = vcr_config(**overrides)
    config.pop("allow_playback_repeats", None)
    return vcr.VCR(**config)


def use_cassette(path: str | os.PathLike[str], **kw: Any) -> CassetteContext:
    """Replay (``record_mode="none"``, repeats allowed) the cassette at ``path``; ``kw`` overrides.

    Raises: MissingDependencyError when vcrpy is not installed.
    """
    return cast(CassetteContext, make_vcr().use_cassette(os.fspath(path), **vcr_config(**kw)))


def find_credentials(path: str | os.PathLike[str]) -> list[str]:
    """Problems in a cassette file: credential headers, key query parameters, key-shaped text.

    An empty list means clean. Raises: MissingDependencyError without vcrpy (it reads the YAML).
    """
    try:
        from vcr.serializers import yamlserializer
    except ImportError as exc:
        from creative_services.exceptions import MissingDependencyError

        raise MissingDependencyError(
            "cassettes need vcrpy: pip install 'creative-services[testing]'"
        ) from exc
    from urllib.parse import parse_qsl, urlsplit

    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    data: Any = yamlserializer.deserialize(text)
    problems: list[str] = []
    banned_request = set(SCRUBBED_REQUEST_HEADERS)
    banned_response = set(SCRUBBED_RESPONSE_HEADERS)
    for number, interaction in enumerate((data or {}).get("interactions") or (), start=1):
        request = interaction.get("request") or {}
        response = interaction.get("response") or {}
        for name in request.get("headers") or {}:
            if str(name).lower() in banned_request:
                problems.append(f"interaction {number}: request header {name!r}")
        for name in response.get("headers") or {}:
            if str(name).lower() in banned_response:
                problems.append(f"interaction {number}: response header {name!r}")
        query = urlsplit(str(request.get("uri", ""))).query
        for name, _ in parse_qsl(query, keep_blank_values=True):
            if name.lower() in SCRUBBED_QUERY_PARAMETERS:
                problems.append(f"interaction {number}: query parameter {name!r}")
    if KEY_SHAPES.search(text):
        problems.append("text shaped like an API key")
    return problems
