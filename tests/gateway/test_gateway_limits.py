"""The gateway's limits and refusals: revocation across workers, budgets, body size, and a
fuzz of request bodies that must only ever give 4xx in OpenAI's error shape."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creative_services.testing import FakeProvider

from ._gateway import Gateway, models_json


@pytest.fixture
def two_workers(fake_provider: FakeProvider, tmp_path: Path) -> Iterator[Gateway]:
    server = Gateway(tmp_path, fake_provider.base_url, workers=2)
    yield server
    server.stop()


def models_status(gateway: Gateway, key: str) -> int:
    client = openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    with client:
        try:
            client.models.list()
        except openai.AuthenticationError:
            return 401
    return 200


def test_a_revoked_key_is_refused_by_every_worker_within_a_second(two_workers: Gateway) -> None:
    key = two_workers.new_key("dave")
    assert {models_status(two_workers, key) for _ in range(20)} == {200}
    key_id = two_workers.keys("list").stdout.split()[0]
    done = two_workers.keys("revoke", key_id)
    assert done.returncode == 0, done.stderr
    revoked_at = time.monotonic()
    time.sleep(max(0.0, 1.0 - (time.monotonic() - revoked_at)))
    assert {models_status(two_workers, key) for _ in range(20)} == {401}
    assert "revoked" in two_workers.keys("list").stdout


def test_budget_exhaustion_is_the_sdks_rate_limit_error(
    fake_provider: FakeProvider, tmp_path: Path
) -> None:
    priced = models_json(fake_provider.base_url, cost_per_1k_input="1", cost_per_1k_output="1")
    gateway = Gateway(
        tmp_path, fake_provider.base_url,
        CREATIVE_SERVICES_MODELS=priced, CREATIVE_SERVICES_GATEWAY_USER_DAY_BUDGET="0.03",
    )  # fmt: skip
    try:
        key = gateway.new_key("erin")
        with openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0) as client:
            first = client.chat.completions.create(
                model="standard", messages=[{"role": "user", "content": "hi"}], max_tokens=5
            )  # costs 10 + 5 tokens at $1/1k: $0.015 of $0.03
            assert first.choices[0].message.content == "fake answer"
            refusal = None
            for _ in range(3):  # the 2nd brings spent to $0.03; the 3rd cannot fit
                try:
                    client.chat.completions.create(
                        model="standard", messages=[{"role": "user", "content": "hi"}],
                        max_tokens=5,
                    )  # fmt: skip
                except openai.RateLimitError as exc:
                    refusal = exc
                    break
        assert refusal is not None
        assert refusal.code == "budget_exceeded"
        assert len(fake_provider.requests) <= 2
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def small_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    with FakeProvider() as fake:
        folder = tmp_path_factory.mktemp("gateway")
        gateway = Gateway(folder, fake.base_url, CREATIVE_SERVICES_GATEWAY_MAX_BODY="2000")
        try:
            yield gateway, gateway.new_key("fuzz")
        finally:
            gateway.stop()


def test_oversized_body_health_and_wrong_method(small_gateway: tuple[Gateway, str]) -> None:
    gateway, key = small_gateway
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    big = json.dumps({"model": "standard", "messages": [{"role": "user", "content": "x" * 3000}]})
    status, body = gateway.post("/v1/chat/completions", big.encode(), auth)
    assert status == 413
    assert "over 2000 bytes" in body["error"]["message"]
    status, body = gateway.post("/healthz", b"", {})
    assert status == 404  # /healthz answers GET only; POST is not a route
    status, body = gateway.post("/v1/models", b"{}", auth)
    assert status == 405
    assert body["error"]["code"] == "method_not_allowed"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_bodies = st.one_of(
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {}, optional={"model": _json | st.sampled_from(["standard", "economy", "nope"]),
                      "messages": _json, "stream": _json, "max_tokens": _json,
                      "temperature": _json, "tools": _json, "n": _json}
    ).map(lambda v: json.dumps(v).encode()),
)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_bodies)
def test_fuzzed_bodies_get_only_openai_shaped_4xx(
    small_gateway: tuple[Gateway, str], body: bytes
) -> None:
    gateway, key = small_gateway
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    status, answer = gateway.post("/v1/chat/completions", body, headers)
    assert status == 200 or 400 <= status < 500, (status, answer)
    if status != 200:
        assert set(answer["error"]) >= {"message", "type", "code"}
