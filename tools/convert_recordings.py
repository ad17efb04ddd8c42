"""Turn the provider-neutral recordings into vcrpy cassettes and an index the tests read.

Usage (from the project root)::

    uv run python tools/convert_recordings.py [--recordings DIR] [--out cassettes]

For every ``<provider>-<name>.json`` recording it writes ``<out>/<provider>/<stem>.yaml``, a
vcrpy YAML cassette (version 1) holding one interaction: the request at the provider's real
public URL (the one LiteLLM 1.110.2 calls when no ``api_base`` is given) and the recorded
response (status, headers as lists, body text). ``<out>/index.json`` maps each recording name
to its provider, model, ``expect`` block, whether it is a stream and where the cassette is;
vcrpy has no place for ``expect``, so it lives there. The output is deterministic: running the
script twice gives the same bytes. Credentials are refused, never written.
"""

from __future__ import annotations

import argparse
import http
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from creative_services._secrets import KEY_SHAPES
from creative_services.testing.cassettes import (
    SCRUBBED_QUERY_PARAMETERS,
    SCRUBBED_REQUEST_HEADERS,
    SCRUBBED_RESPONSE_HEADERS,
)

DEFAULT_RECORDINGS = Path("/work/shared/recordings")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "cassettes"

# scheme://host[:port] LiteLLM 1.110.2 sends to when no api_base is set; the recorded path
# (which already carries /v1, /openai/v1, /v1beta/models/<m>:generateContent, ...) follows.
# Checked by replaying an empty cassette with record_mode="none" and logging the request.
ORIGINS = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "groq": "https://api.groq.com",
    "mistral": "https://api.mistral.ai",
    "gemini": "https://generativelanguage.googleapis.com",
    "ollama": "http://localhost:11434",
    "cohere": "https://api.cohere.com",
    "openrouter": "https://openrouter.ai",
}

# Lower-case header names that carry or identify a credential or account: exactly what the
# cassette helpers scrub, so a converted cassette passes the same check as a recorded one.
CREDENTIAL_HEADERS = frozenset(SCRUBBED_REQUEST_HEADERS) | frozenset(SCRUBBED_RESPONSE_HEADERS)
CREDENTIAL_QUERY = frozenset(SCRUBBED_QUERY_PARAMETERS)
# Headers a replayed body no longer matches (the recordings already dropped them).
TRANSPORT_HEADERS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}
)


class RecordingError(ValueError):
    """A recording this script refuses to convert."""


def _model(recording: dict[str, Any]) -> str:
    body = recording["request"].get("json") or {}
    model = body.get("model")
    if isinstance(model, str) and model:
        return model
    # Gemini names the model in the path: /v1beta/models/<model>:generateContent
    match = re.search(r"/models/([^/:?]+)", recording["request"]["path"])
    if match:
        return match.group(1)
    raise RecordingError("no model in the request body or path")


def _streamed(recording: dict[str, Any]) -> bool:
    body = recording["request"].get("json") or {}
    path = recording["request"]["path"]
    content_type = recording["response"]["headers"].get("content-type", "")
    return (
        body.get("stream") is True
        or ":streamGenerateContent" in path
        or content_type.startswith(("text/event-stream", "application/x-ndjson"))
    )


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        # 529 (Anthropic "overloaded") has no standard phrase; clients read the status only.
        return ""


def _check_clean(name: str, where: str, headers: dict[str, str]) -> None:
    bad = sorted(h for h in headers if h.lower() in CREDENTIAL_HEADERS)
    if bad:
        raise RecordingError(f"{name}: {where} has credential headers {bad}")


def _check_no_keys(name: str, where: str, text: str) -> None:
    found = KEY_SHAPES.search(text)
    if found:
        raise RecordingError(f"{name}: {where} holds something shaped like a key")


def convert(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """One recording -> (cassette dict, index entry)."""
    name = path.stem
    recording = json.loads(path.read_text(encoding="utf-8"))
    provider = recording["provider"]
    if provider not in ORIGINS:
        raise RecordingError(f"{name}: no public URL known for provider {provider!r}")
    request, response = recording["request"], recording["response"]
    request_path = request["path"]
    query = urlsplit(request_path).query
    if any(p.split("=", 1)[0].lower() in CREDENTIAL_QUERY for p in query.split("&") if p):
        raise RecordingError(f"{name}: the request query carries a credential")
    uri = ORIGINS[provider] + request_path
    request_headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
    response_headers = {
        k.lower(): v for k, v in response["headers"].items() if k.lower() not in TRANSPORT_HEADERS
    }
    _check_clean(name, "request", request_headers)
    _check_clean(name, "response", response_headers)
    request_body = json.dumps(request["json"], ensure_ascii=False, indent=2)
    _check_no_keys(name, "request body", request_body)
    _check_no_keys(name, "response body", response["body_text"])
    _check_no_keys(name, "response headers", json.dumps(response_headers))

    cassette = {
        "interactions": [
            {
                "request": {
                    "body": request_body,
                    "headers": {k: [v] for k, v in request_headers.items()},
                    "method": request["method"].upper(),
                    "uri": uri,
                },
                "response": {
                    "status": {"code": response["status"], "message": _reason(response["status"])},
                    "headers": {k: [v] for k, v in response_headers.items()},
                    "body": {"string": response["body_text"]},
                },
            }
        ],
        "version": 1,
    }
    entry = {
        "provider": provider,
        "model": _model(recording),
        "streamed": _streamed(recording),
        "status": response["status"],
        "method": request["method"].upper(),
        "request_path": request_path,
        "uri": uri,
        "cassette": f"{provider}/{name}.yaml",
        "expect": recording["expect"],
        "description": recording.get("description", ""),
        "source": recording.get("source", {}),
    }
    return cassette, entry


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so bodies diff line by line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted style by itself when a literal block cannot hold the text
    # exactly (trailing spaces, control characters); the round-trip check below proves it.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_cassette(cassette: dict[str, Any]) -> str:
    """The cassette as vcrpy-readable YAML, checked to load back to the same data."""
    text = yaml.dump(cassette, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    if yaml.safe_load(text) != cassette:
        raise RecordingError("the YAML does not load back to the same cassette")
    return text


def main(argv: list[str] | None = None) -> int:
    """Convert every recording; print one line per cassette written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=Path, default=DEFAULT_RECORDINGS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    files = sorted(args.recordings.glob("*.json"))
    if not files:
        print(f"no recordings in {args.recordings}", file=sys.stderr)
        return 1
    index: dict[str, Any] = {}
    for path in files:
        cassette, entry = convert(path)
        target = args.out / entry["cassette"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump_cassette(cassette), encoding="utf-8")
        index[path.stem] = entry
        print(f"{path.name} -> {target}")
    (args.out / "index.json").write_text(
        json.dumps(index, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"{len(index)} cassettes, index at {args.out / 'index.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
