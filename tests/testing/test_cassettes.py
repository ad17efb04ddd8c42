"""Cassette scrubbing for the body shapes vcrpy hands over (bytes, text, parsed JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from creative_services.testing.cassettes import REDACTED, scrub_request


class _Request:
    def __init__(self, body: Any) -> None:
        self.body = body


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"api_key": "secret-1"}).encode(),
        json.dumps({"api_key": "secret-1"}),
        {"api_key": "secret-1"},  # aiohttp's json= reaches vcrpy parsed
    ],
    ids=["bytes", "text", "parsed"],
)
def test_scrub_request_replaces_keys_in_every_body_shape(body: Any) -> None:
    scrubbed = scrub_request(_Request(body)).body
    data = scrubbed if isinstance(scrubbed, dict) else json.loads(scrubbed)
    assert data == {"api_key": REDACTED}


def test_scrub_request_leaves_bodies_without_keys_alone() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert scrub_request(_Request(body)).body is body
