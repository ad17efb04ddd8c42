"""The gateway mounted in another ASGI application (a Django project's, in practice)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker, LLMEntry
from creative_services.gateway import GatewayApp, VirtualKeyStore, mount
from creative_services.testing import FakeProvider


async def project(scope: dict[str, Any], receive: Any, send: Callable[..., Awaitable[None]]):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"the project's page"})


async def test_mounted_under_a_prefix(fake_provider: FakeProvider, tmp_path: Path) -> None:
    entry = LLMEntry(name="main", provider="openai", model_name="gpt-4.1-mini", tier="standard",
                     api_key="sk-p", api_endpoint=fake_provider.base_url)  # fmt: skip
    tracker = InMemoryUsageTracker()
    keys = VirtualKeyStore(tmp_path / "keys.sqlite3")
    key, _ = keys.create("gina")
    gateway = GatewayApp(DynamicLLMClient(DictRegistry([entry]), tracker=tracker), keys)
    app = mount(project, gateway, "/llm")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/shop")).text == "the project's page"
        answer = await http.post(
            "/llm/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
            json={"model": "standard", "messages": [{"role": "user", "content": "hi"}]},
        )  # fmt: skip
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"] == "fake answer"
        assert (await http.get("/llm/healthz")).json() == {"status": "ok"}
        assert (await http.get("/llmx")).text == "the project's page"
    assert [r.user_id for r in tracker.records] == ["gina"]
