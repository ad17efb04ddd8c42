"""DjangoResponseCache: answers as JSON text in Django's caches, shared across processes (Redis)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.cache import caches

from creative_services.cache import CachedAnswer, ResponseCache, cache_key
from creative_services.contrib.django.cache import DjangoResponseCache
from creative_services.exceptions import ConfigurationError
from creative_services.types import LLMEntry

TESTS_DIR = Path(__file__).resolve().parents[2]
ENTRY = LLMEntry(name="gpt4o", provider="openai", model_name="gpt-4o", api_key="sk-test-123")
KEY = cache_key(ENTRY, [{"role": "user", "content": "hi"}], {"max_tokens": 5, "temperature": 0})
ANSWER = CachedAnswer(
    content='{"final_answer": "x = -29/8"}',
    model="gpt-4o-2024-08-06",
    finish_reason="stop",
    prompt_tokens=127,
    completion_tokens=93,
    tool_calls=({"id": "c1", "name": "f", "arguments": "{}"},),
    entry_name="gpt4o",
    stored_at=1.76e9,
)


def _redis_reachable() -> bool:
    url = urlparse(settings.REDIS_URL)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), 1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_alias() -> Iterator[str]:
    """The "redis" cache alias, emptied of this run's keys afterwards."""
    if not _redis_reachable():
        message = f"Redis is not reachable at {settings.REDIS_URL}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield "redis"
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}:*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _empty_locmem() -> Iterator[None]:
    caches["default"].clear()
    yield
    caches["default"].clear()


def test_is_a_response_cache() -> None:
    assert isinstance(DjangoResponseCache(), ResponseCache)
    assert repr(DjangoResponseCache("redis", ttl=60)) == "DjangoResponseCache('redis', ttl=60.0)"


@pytest.mark.parametrize("ttl", [0, -1, "60", float("nan")])
def test_bad_ttl_is_a_configuration_error(ttl: object) -> None:
    with pytest.raises(ConfigurationError, match="ttl must be seconds > 0"):
        DjangoResponseCache(ttl=ttl)  # type: ignore[arg-type]


async def test_round_trip_on_the_default_cache_as_json_text() -> None:
    cache = DjangoResponseCache()
    assert await cache.aget(KEY) is None
    await cache.aset(KEY, ANSWER)
    assert await cache.aget(KEY) == ANSWER
    stored = caches["default"].get("llm:" + KEY)
    assert isinstance(stored, str)
    assert json.loads(stored)["content"] == ANSWER.content


def test_sync_twins_share_the_entries() -> None:
    cache = DjangoResponseCache(key_prefix="other:")
    cache.set(KEY, ANSWER)
    assert cache.get(KEY) == ANSWER
    assert DjangoResponseCache().get(KEY) is None  # another prefix, another entry


@pytest.mark.parametrize("stored", ["not json", '{"v": 99}', 42, b'{"v": 1, "content": 3}'])
async def test_unreadable_entry_is_a_miss(stored: object) -> None:
    caches["default"].set("llm:" + KEY, stored)
    cache = DjangoResponseCache()
    assert await cache.aget(KEY) is None
    assert cache.get(KEY) is None


async def test_redis_round_trip_with_ttl(redis_alias: str) -> None:
    import redis

    cache = DjangoResponseCache(redis_alias, ttl=120)
    await cache.aset(KEY, ANSWER)
    await cache.aset(KEY + "-short", ANSWER, ttl=30)
    assert await cache.aget(KEY) == ANSWER
    backend = caches[redis_alias]
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert 100 < client.ttl(backend.make_key("llm:" + KEY)) <= 120
        assert 0 < client.ttl(backend.make_key("llm:" + KEY + "-short")) <= 30
        await DjangoResponseCache(redis_alias, ttl=None).aset(KEY, ANSWER)
        assert client.ttl(backend.make_key("llm:" + KEY)) == -1  # kept until evicted
    finally:
        client.close()
    await cache.adelete(KEY)
    assert await cache.aget(KEY) is None


CHILD = """
import asyncio, sys
import django
from django.conf import settings
from contrib.django import settings as test_settings
settings.configure(**{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()})
django.setup()
from creative_services.cache import CachedAnswer
from creative_services.contrib.django.cache import DjangoResponseCache

cache = DjangoResponseCache("redis", ttl=60)
mode, key = sys.argv[1], sys.argv[2]
if mode == "write":
    asyncio.run(cache.aset(key, CachedAnswer.from_json(sys.stdin.read())))
    print("WROTE", flush=True)
else:
    answer = asyncio.run(cache.aget(key))
    print("MISS" if answer is None else answer.to_json(), flush=True)
"""


def _child(mode: str, key: str, stdin: str = "") -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
        "CS_TEST_REDIS_PREFIX": settings.REDIS_KEY_PREFIX,  # this run's keys
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), mode, key],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_an_answer_written_by_one_process_is_a_hit_in_another(redis_alias: str) -> None:
    key = KEY + "-cross"
    assert _child("read", key) == "MISS"
    assert _child("write", key, ANSWER.to_json()) == "WROTE"
    assert CachedAnswer.from_json(_child("read", key)) == ANSWER
    assert DjangoResponseCache(redis_alias).get(key) == ANSWER  # and in this one


# --- issue 14 item 3: a hung Redis (our own redis-server, SIGSTOP) --------------------------


@pytest.fixture
def hung_alias(settings: Any) -> Iterator[tuple[str, Any]]:
    """A cache alias on a redis-server of this test's own, which the test pauses."""
    from faults._servers import OwnRedis, have_redis

    if not have_redis():
        pytest.skip("redis-server is not installed")
    with OwnRedis() as server:
        settings.CACHES = {
            **settings.CACHES,
            "hung": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                     "LOCATION": server.url},
        }  # fmt: skip
        try:
            yield "hung", server
        finally:
            server.resume()


async def test_hung_redis_is_a_logged_miss_and_calls_do_not_queue(
    hung_alias: tuple[str, Any], fake_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio
    import logging
    import time

    from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker

    alias, server = hung_alias
    entry = LLMEntry(
        name="fake",
        provider="openai",
        model_name="gpt-4o-mini",
        api_key="sk-" + "hung-redis-test",
        api_endpoint=fake_provider.base_url,
    )
    client = DynamicLLMClient(
        DictRegistry([entry]), cache=DjangoResponseCache(alias), tracker=InMemoryUsageTracker()
    )
    warm = await client.generate(prompt="warm", timeout=5)
    assert (await client.generate(prompt="warm", timeout=5)).cache_hit  # Redis answers
    assert not warm.cache_hit
    server.pause()
    with caplog.at_level(logging.WARNING, logger="creative_services"):
        started = time.monotonic()
        calls = [client.generate(prompt=f"question {i}", timeout=5) for i in range(10)]
        responses = await asyncio.wait_for(asyncio.gather(*calls), 30)
        took = time.monotonic() - started
    print(f"10 concurrent calls, timeout=5, Redis hung: {took:.2f} s")
    assert [r.cache_hit for r in responses] == [False] * 10
    assert len(fake_provider.requests) == 1 + 10  # all of them reached the provider
    assert took < 5.0  # well under 10 s: a share of each deadline, not 5 s per cache call
    gets = [
        r
        for r in caplog.records
        if "response_cache" in r.getMessage() and "op='get'" in r.getMessage()
    ]
    assert len(gets) == 1, caplog.text  # logged once per interval, not once per call
