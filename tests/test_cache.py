"""Response cache: exact-match keys, JSON values, an LRU with TTL, hits recorded as cache hits."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from creative_services import (
    CachedAnswer,
    ConfigurationError,
    InMemoryResponseCache,
    InvalidRequestError,
    LLMEntry,
    LLMResponse,
    ResponseCache,
    SQLiteUsageTracker,
    UsageRecord,
)
from creative_services.cache import (
    CACHE_KEY_VERSION,
    answer_params,
    cache_key,
    cache_lookup,
    cache_store,
    cache_wait,
    cacheable,
)
from creative_services.structured import parse_output, prepare_response_format
from creative_services.testing.clock import FakeClock
from creative_services.types import EntryRef, LLMTier, Usage

ROOT = Path(__file__).resolve().parents[1]
RECORDED = json.loads((ROOT / "cassettes" / "index.json").read_text("utf-8"))[
    "openai-json-schema-output"
]["expect"]["content"]

ENTRY = LLMEntry(
    name="gpt4o",
    provider="openai",
    model_name="gpt-4o",
    api_key="sk-" + "test-abcdefghijklmnopqrstuvwxyz0123",
    max_tokens=512,
    temperature=0.2,
)
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
PARAMS: dict[str, Any] = {"max_tokens": 512, "temperature": 0.2}


def _key(entry: LLMEntry = ENTRY, messages: Any = MESSAGES, **params: Any) -> str:
    return cache_key(entry, messages, {**PARAMS, **params})


# --- cache_key -------------------------------------------------------------------------------


def test_key_is_versioned_sha256_hex() -> None:
    key = _key()
    prefix, digest = key.split(":")
    assert prefix == CACHE_KEY_VERSION
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert key == _key()


def test_key_ignores_dict_order() -> None:
    a = cache_key(ENTRY, [{"role": "user", "content": "hi"}], {"max_tokens": 5, "seed": 1})
    b = cache_key(ENTRY, [{"content": "hi", "role": "user"}], {"seed": 1, "max_tokens": 5})
    assert a == b


SCHEMA_FORMAT = prepare_response_format({"type": "json_object"}).response_format
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 513},
        {"temperature": 0.3},
        {"response_format": SCHEMA_FORMAT},
        {"tools": TOOLS},
        {"tool_choice": "auto"},
        {"seed": 7},
        {"top_p": 0.5},
        {"user": "u-1"},
        {"max_completion_tokens": 100},
        {"reasoning_effort": "low"},
    ],
)
def test_every_answer_changing_parameter_changes_the_key(change: dict[str, Any]) -> None:
    assert _key(**change) != _key()


@pytest.mark.parametrize(
    "change",
    [
        {"timeout": 5.0},
        {"num_retries": 0, "max_retries": 0},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"metadata": {"trace": "x"}},
        {"api_key": "sk-" + "other-key-0000000000000000000000"},
        {"extra_headers": {"Authorization": "Bearer sk-x"}},
        {"aws_secret_access_key": "abc", "aws_session_token": "t", "vertex_credentials": "{}"},
        {"model": "openai/gpt-4o"},
    ],
)
def test_transport_and_credentials_never_reach_the_key(change: dict[str, Any]) -> None:
    assert _key(**change) == _key()


def test_entry_identity_is_provider_model_and_endpoint_not_key_or_name() -> None:
    other_key = LLMEntry(
        name="renamed", provider="openai", model_name="gpt-4o", api_key="sk-another-one", id=9
    )
    assert _key(entry=other_key) == _key()
    for changed in (
        LLMEntry(name="x", provider="azure", model_name="gpt-4o"),
        LLMEntry(name="x", provider="openai", model_name="gpt-4o-mini"),
        LLMEntry(name="x", provider="openai", model_name="gpt-4o", api_endpoint="http://h/v1"),
    ):
        assert _key(entry=changed) != _key()


def test_messages_count_from_the_argument_not_from_params() -> None:
    other = {**PARAMS, "messages": [{"role": "user", "content": "other"}]}
    assert cache_key(ENTRY, MESSAGES, other) == _key()


def test_messages_change_the_key() -> None:
    assert _key(messages=[{"role": "user", "content": "hi!"}]) != _key()
    assert _key(messages=MESSAGES[1:]) != _key()


@pytest.mark.parametrize(
    ("params", "messages", "param"),
    [
        ({"response_format": object}, MESSAGES, "response_format"),
        ({"temperature": float("nan")}, MESSAGES, "temperature"),
        ({}, [{"role": "user", "content": {1, 2}}], "messages"),
    ],
)
def test_value_that_is_not_json_is_refused_naming_it(
    params: dict[str, Any], messages: Any, param: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        cache_key(ENTRY, messages, params)
    assert info.value.param == param
    assert "cache=False" in str(info.value)


def test_decimal_parameters_are_keyed_by_value() -> None:
    assert _key(top_p=Decimal("0.5")) == _key(top_p="0.5")


def test_answer_params_merge_as_the_call_does() -> None:
    entry = LLMEntry(
        name="e", provider="openai", model_name="m", max_tokens=100, extra_params={"top_p": 0.9}
    )
    assert answer_params(entry, max_tokens=None, temperature=None, params={}) == {
        "max_tokens": 100,
        "temperature": 0.7,
        "top_p": 0.9,
    }
    assert answer_params(entry, max_tokens=5, temperature=0.0, params={"top_p": 0.1}) == {
        "max_tokens": 5,
        "temperature": 0.0,
        "top_p": 0.1,
    }
    # the entry's default temperature is part of the key: changing it changes the answers
    hotter = LLMEntry(name="e", provider="openai", model_name="m", temperature=1.0)
    cold = answer_params(entry, max_tokens=5, temperature=None, params={})
    hot = answer_params(hotter, max_tokens=5, temperature=None, params={})
    assert cache_key(entry, MESSAGES, cold) != cache_key(hotter, MESSAGES, hot)


# --- CachedAnswer ----------------------------------------------------------------------------

REF = EntryRef(id=3, name="gpt4o", provider="openai", model="gpt-4o", tier=LLMTier.PREMIUM)


def _response(**fields: Any) -> LLMResponse:
    values: dict[str, Any] = {
        "content": RECORDED,
        "entry": REF,
        "usage": Usage(prompt_tokens=127, completion_tokens=93, cached_tokens=4),
        "cost": Decimal("0.0012475"),
        "cost_source": "litellm",
        "model": "gpt-4o-2024-08-06",
        "finish_reason": "stop",
        "latency_ms": 2100.0,
        "attempts": 2,
        "request_id": "r-1",
    }
    values.update(fields)
    return LLMResponse(**values)


def test_cached_answer_round_trips_through_json() -> None:
    calls = ({"id": "c1", "name": "f", "arguments": '{"a": "é"}'},)
    answer = CachedAnswer.from_response(_response(tool_calls=calls), now=1.5e9)
    text = answer.to_json()
    assert json.loads(text)["v"] == 1
    assert CachedAnswer.from_json(text) == answer
    assert CachedAnswer.from_json(text.encode()) == answer


def test_hit_rebuilds_the_response_at_no_cost() -> None:
    original = _response()
    hit = CachedAnswer.from_response(original).to_response(REF, request_id="r-2", latency_ms=0.3)
    assert hit.cache_hit is True
    assert (hit.cost, hit.cost_source, hit.attempts) == (Decimal(0), "cache", 0)
    assert (hit.content, hit.model, hit.finish_reason) == (
        original.content,
        original.model,
        original.finish_reason,
    )
    assert hit.usage == original.usage
    assert (hit.request_id, hit.latency_ms) == ("r-2", 0.3)
    # the cached text parses again on a hit
    spec = prepare_response_format({"type": "json_object"})
    assert parse_output(spec, hit.content)["final_answer"] == "x = -\\frac{29}{8}"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"v": 2, "content": "x"}',
        '{"v": 1, "content": 3}',
        '{"v": 1, "content": "x", "prompt_tokens": -1}',
        '{"v": 1, "content": "x", "prompt_tokens": true}',
        '{"v": 1, "content": "x", "tool_calls": ["a"]}',
        '{"v": 1, "content": "x", "stored_at": "yesterday"}',
    ],
)
def test_unreadable_cached_value_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r".") as info:
        CachedAnswer.from_json(text)
    assert not isinstance(info.value, ConfigurationError)


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        ({}, True),
        ({"finish_reason": "tool_calls", "content": None, "tool_calls": ({"id": "1"},)}, True),
        ({"finish_reason": "length"}, False),
        ({"finish_reason": "content_filter"}, False),
        ({"content": ""}, False),
        ({"content": None}, False),
        ({"cache_hit": True}, False),
    ],
)
def test_only_whole_answers_are_cacheable(fields: dict[str, Any], stored: bool) -> None:
    assert cacheable(_response(**fields)) is stored


# --- InMemoryResponseCache -------------------------------------------------------------------


def _answer(content: str) -> CachedAnswer:
    return CachedAnswer(content=content, model="m", finish_reason="stop")


def test_in_memory_cache_is_a_response_cache() -> None:
    assert isinstance(InMemoryResponseCache(), ResponseCache)


async def test_in_memory_cache_expires_after_ttl() -> None:
    clock = FakeClock()
    cache = InMemoryResponseCache(ttl=10, clock=clock)
    await cache.aset("k", _answer("a"))
    await cache.aset("short", _answer("b"), ttl=1)
    clock.now += 1
    assert await cache.aget("short") is None
    assert await cache.aget("k") == _answer("a")
    clock.now += 9
    assert await cache.aget("k") is None
    assert len(cache) == 0


async def test_in_memory_cache_without_ttl_keeps_until_evicted() -> None:
    clock = FakeClock()
    cache = InMemoryResponseCache(maxsize=2, ttl=None, clock=clock)
    await cache.aset("a", _answer("a"))
    clock.now += 10**9
    assert await cache.aget("a") == _answer("a")


async def test_in_memory_cache_evicts_the_least_recently_used() -> None:
    cache = InMemoryResponseCache(maxsize=2)
    await cache.aset("a", _answer("a"))
    await cache.aset("b", _answer("b"))
    assert await cache.aget("a") is not None  # "a" is now the most recent
    await cache.aset("c", _answer("c"))
    assert await cache.aget("b") is None
    assert [await cache.aget(k) for k in ("a", "c")] == [_answer("a"), _answer("c")]
    cache.clear()
    assert len(cache) == 0


def test_in_memory_cache_stores_a_copy() -> None:
    cache = InMemoryResponseCache()
    calls = ({"id": "1", "arguments": "{}"},)
    answer = CachedAnswer(content=None, tool_calls=calls)
    cache.set("k", answer)
    calls[0]["arguments"] = "changed"
    got = cache.get("k")
    assert got is not None
    assert got.tool_calls[0]["arguments"] == "{}"


def test_in_memory_cache_is_thread_safe() -> None:
    cache = InMemoryResponseCache(maxsize=50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(300):
                key = f"{(n * 7 + i) % 80}"
                cache.set(key, _answer(key))
                got = cache.get(key)
                assert got is None or got.content == key
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) <= 50


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"maxsize": 0}, "maxsize must be an integer >= 1"),
        ({"maxsize": True}, "maxsize must be an integer >= 1"),
        ({"ttl": 0}, "ttl must be seconds > 0"),
        ({"ttl": float("inf")}, "ttl must be seconds > 0"),
        ({"ttl": "60"}, "ttl must be seconds > 0"),
    ],
)
def test_bad_cache_settings_are_configuration_errors(kwargs: dict[str, Any], fix: str) -> None:
    with pytest.raises(ConfigurationError, match=fix):
        InMemoryResponseCache(**kwargs)


# --- lookup and store: a failing cache never costs the answer --------------------------------


class BrokenCache:
    """A cache whose backend is down."""

    async def aget(self, key: str) -> CachedAnswer | None:
        raise ConnectionError("redis://:hunter2@cache:6379 refused")

    async def aset(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        raise ConnectionError("redis://:hunter2@cache:6379 refused")


async def test_lookup_returns_the_first_candidate_with_a_hit() -> None:
    cache = InMemoryResponseCache()
    await cache.aset("second", _answer("b"))
    await cache.aset("third", _answer("c"))
    assert await cache_lookup(cache, ["first", "second", "third"]) == (1, _answer("b"))
    assert await cache_lookup(cache, ["first"]) is None
    assert await cache_lookup(cache, []) is None


async def test_store_keeps_only_cacheable_answers() -> None:
    cache = InMemoryResponseCache()
    assert await cache_store(cache, "k", _response()) is True
    assert await cache_store(cache, "cut", _response(finish_reason="length")) is False
    assert await cache_lookup(cache, ["cut"]) is None
    hit = await cache_lookup(cache, ["k"])
    assert hit is not None
    assert hit[1].content == RECORDED


async def test_broken_cache_is_a_logged_miss(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="creative_services"):
        assert await cache_lookup(BrokenCache(), ["k"]) is None
        assert await cache_store(BrokenCache(), "k", _response()) is False
    messages = [r.getMessage() for r in caplog.records]
    assert sum("response_cache_failed" in m for m in messages) == 2
    assert not any("hunter2" in m for m in messages)


# --- usage records of hits -------------------------------------------------------------------


def test_usage_record_says_whether_it_was_a_cache_hit() -> None:
    assert UsageRecord(llm_id=1).cache_hit is False
    assert UsageRecord(llm_id=1, cache_hit=True, cost=0, cost_source="cache").cache_hit is True


def test_sqlite_tracker_stores_cache_hit(tmp_path: Path) -> None:
    tracker = SQLiteUsageTracker(tmp_path / "usage.sqlite3")
    tracker.record(llm_id=1, prompt_tokens=127, cost=0, cost_source="cache", cache_hit=True)
    tracker.record(llm_id=1, prompt_tokens=127, cost="0.001")
    assert [(r["cache_hit"], r["cost"]) for r in tracker.rows()] == [(1, "0"), (0, "0.001")]
    tracker.close()


OLD_SCHEMA = """
CREATE TABLE usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, request_id TEXT NOT NULL,
    llm_id INTEGER, entry_name TEXT, provider TEXT, model TEXT, tier TEXT, user_id TEXT,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost TEXT,
    cost_source TEXT NOT NULL, latency_ms REAL NOT NULL, outcome TEXT NOT NULL, error_class TEXT,
    attempts INTEGER NOT NULL, usage_estimated INTEGER NOT NULL,
    may_have_been_billed INTEGER NOT NULL, metadata TEXT NOT NULL
);
INSERT INTO usage VALUES (1, '2026-01-01T00:00:00+00:00', 'old', 1, 'e', 'openai', 'm',
    'standard', NULL, 10, 20, 0, 0, '0.01', 'entry', 5.0, 'success', NULL, 1, 0, 0, '{}');
"""


def test_sqlite_file_of_an_older_version_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    tracker = SQLiteUsageTracker(path)
    tracker.record(llm_id=1, cache_hit=True, cost=0, cost_source="cache", request_id="new")
    rows = tracker.rows()
    assert [(r["request_id"], r["cache_hit"], r["cost"]) for r in rows] == [
        ("old", 0, "0.01"),
        ("new", 1, "0"),
    ]
    tracker.close()
    SQLiteUsageTracker(path).close()  # opening it again changes nothing


def test_two_trackers_upgrading_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    opened: list[SQLiteUsageTracker] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(SQLiteUsageTracker(path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for tracker in opened:
        tracker.close()


# --- a cache that does not answer (issue 14 item 3) ------------------------------------------


class SilentCache:
    """A cache whose backend accepted the request and never answers (a hung Redis)."""

    def __init__(self) -> None:
        self.never = asyncio.Event()
        self.calls = 0

    async def aget(self, key: str) -> CachedAnswer | None:
        self.calls += 1
        await self.never.wait()
        return None

    async def aset(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        self.calls += 1
        await self.never.wait()


@pytest.mark.parametrize(
    ("remaining", "wait"),
    [(None, None), (60.0, 1.0), (5.0, 0.5), (0.2, 0.02), (0.0, 0.0), (-1.0, 0.0)],
)
def test_cache_wait_is_a_small_share_of_what_is_left(
    remaining: float | None, wait: float | None
) -> None:
    assert cache_wait(remaining) == (None if wait is None else pytest.approx(wait))


async def test_silent_cache_is_a_miss_within_its_share_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = SilentCache()
    with caplog.at_level(logging.WARNING, logger="creative_services"):
        started = time.monotonic()
        for _ in range(3):
            assert await cache_lookup(cache, ["a", "b"], remaining=2.0) is None
        took = time.monotonic() - started
    assert cache.calls == 3
    assert took < 3 * 2.0 * 0.5  # each waits a tenth of 2 s, nowhere near the deadline
    slow = [r.getMessage() for r in caplog.records if "response_cache_timeout" in r.getMessage()]
    assert len(slow) == 1, slow  # once per interval, not once per call


async def test_store_on_a_silent_cache_does_not_hold_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = SilentCache()
    with caplog.at_level(logging.WARNING, logger="creative_services"):
        started = time.monotonic()
        assert await cache_store(cache, "k", _response(), remaining=20.0) is False
        held = time.monotonic() - started
        await asyncio.sleep(1.5)  # the background store gives up after its share (1 s)
    assert held < 0.5  # STORE_GRACE (0.05 s), not the store's bound (1 s)
    assert any("response_cache_timeout" in r.getMessage() for r in caplog.records)
    healthy = InMemoryResponseCache()
    assert await cache_store(healthy, "k", _response(), remaining=2.0) is True
    assert await cache_lookup(healthy, ["k"], remaining=2.0) is not None  # read back at once
