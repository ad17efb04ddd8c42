"""Issue 14 item 1 through the gateway: a body field that would change the destination (and
carry the provider key there) is a 400 naming the field, and nothing is sent."""

from __future__ import annotations

import json
from pathlib import Path

from creative_services.testing.fake_provider import FakeProvider

from ._gateway import PROVIDER_KEY, Gateway


def test_the_gateway_refuses_a_routing_field(fake_provider: FakeProvider, tmp_path: Path) -> None:
    other_host = FakeProvider().start()
    gateway = Gateway(tmp_path, fake_provider.base_url)
    try:
        body = {
            "model": "standard",
            "messages": [{"role": "user", "content": "hi"}],
            "base_url": other_host.base_url,
        }
        status, answer = gateway.post(
            "/v1/chat/completions",
            json.dumps(body).encode(),
            {"Authorization": f"Bearer {gateway.new_key('mallory')}"},
        )
    finally:
        gateway.stop()
        other_host.stop()
    assert status == 400, answer
    assert answer["error"]["param"] == "base_url"
    assert fake_provider.requests == []
    assert other_host.requests == []
    assert PROVIDER_KEY not in json.dumps(answer)
