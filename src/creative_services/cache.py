"""Response cache: an opt-in, exact-match store of answers, keyed by what decides the answer.

The policy, in full:

* Opt-in: nothing is cached unless the client is given a cache (``DynamicLLMClient(cache=...)``);
  a call can then skip it with ``cache=False``.
* Exact match: the key is a SHA-256 over the entry's identity (provider, model, endpoint; never
  the key), the messages and every parameter that can change the answer (``max_tokens``,
  ``temperature``, ``response_format``, ``tools``, ``tool_choice``, ``seed``, ``user`` and any
  other provider parameter). The cache stores what the parameters asked for: a call at
  ``temperature=0.9`` gets the one stored answer back, not a fresh sample. Leave the cache off
  for calls that want variety.
* Only whole answers: streamed calls neither read nor write it, and an answer cut off
  (``finish_reason="length"``), filtered or empty is not stored (see :func:`cacheable`).
* A hit makes no provider call, costs 0 (``cost_source="cache"``), is recorded as usage with
  ``cache_hit=True`` and the cached answer's token counts (tokens saved, not billed), and takes
  no budget reservation.
* A failing cache backend never costs the caller an answer: :func:`cache_lookup` and
  :func:`cache_store` log it (``response_cache_failed``) and carry on as a miss.
* A slow or hung one never costs the caller its deadline: given what is left of the call's
  deadline, a lookup waits at most :func:`cache_wait` of it (a tenth, at most 1 s), then it is a
  miss (``response_cache_timeout``, logged at most once per ``SLOW_LOG_EVERY`` seconds per cache
  and operation); the store after the answer runs in the background under the same bound, and the
  caller waits for it only ``STORE_GRACE`` seconds (so a healthy cache is read back at once).

Values are JSON (:meth:`CachedAnswer.to_json`), never pickle: a shared cache cannot run code.
"""

from __future__ import annotations

import json
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from creative_services.exceptions import ConfigurationError, InvalidRequestError
from creative_services.types import EntryRef, LLMEntry, LLMResponse, ToolCall, Usage

if TYPE_CHECKING:  # asyncio loads only when a cache is used: `import creative_services` stays light
    import asyncio

__all__ = [
    "CACHE_KEY_VERSION",
    "CachedAnswer",
    "InMemoryResponseCache",
    "ResponseCache",
    "answer_params",
    "cache_key",
    "cache_lookup",
    "cache_store",
    "cache_wait",
    "cacheable",
]

CACHE_KEY_VERSION = "cs1"
"""Prefix of every key; bumped when the key's recipe changes, so old entries are never read."""

_TRANSPORT_PARAMS = frozenset(
    {
        "model",  # the entry's identity stands for it
        "messages",  # hashed on their own
        "api_key",
        "timeout",
        "num_retries",
        "max_retries",
        "stream",
        "stream_options",
        "metadata",
        "extra_headers",  # may carry Authorization
        "headers",
    }
)
# Credentials under other names (aws_secret_access_key, aws_session_token, vertex_credentials,
# azure_ad_token ...) never reach a key. "max_tokens" and friends are kept (token followed by s).
_SECRET_PARAM = re.compile(r"key|secret|password|credential|token(?!s)", re.IGNORECASE)
_NOT_STORED = frozenset({"length", "content_filter", "error"})
CACHE_SHARE = 0.1
"""The share of what is left of a call's deadline that one cache operation may take."""
CACHE_WAIT_MAX = 1.0
"""...but never more than this many seconds: a cache is a shortcut, not a dependency."""
STORE_GRACE = 0.05
"""Seconds the caller waits for the store after its answer; the rest happens in the background."""
SLOW_LOG_EVERY = 60.0
"""Seconds between two ``response_cache_timeout`` warnings of one cache and operation."""


def answer_params(
    entry: LLMEntry,
    *,
    max_tokens: int | None,
    temperature: float | None,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """The parameters a call sends to ``entry``, merged as the call merges them.

    The entry's ``max_tokens`` and ``temperature`` unless the call gives its own, then the
    entry's ``extra_params``, then the call's provider parameters (later ones win).
    """
    merged: dict[str, Any] = {
        "max_tokens": entry.max_tokens if max_tokens is None else max_tokens,
        "temperature": entry.temperature if temperature is None else temperature,
    }
    merged.update(entry.extra_params)
    merged.update(params)
    return merged


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _canonical(value: object) -> str:
    """Compact JSON with sorted keys. Raises: TypeError, ValueError (not JSON, NaN)."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    )


def _not_json(what: str, param: str, exc: Exception) -> InvalidRequestError:
    return InvalidRequestError(
        f"{what} cannot be part of a response-cache key ({exc}): pass JSON values "
        f"(str, number, bool, None, list, dict), or call with cache=False",
        param=param,
    )


def cache_key(
    entry: LLMEntry, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> str:
    """The cache key of a call to ``entry``: ``"cs1:"`` and a SHA-256 hex digest.

    ``params`` are the call's parameters (:func:`answer_params`, or LiteLLM's keyword arguments
    for the entry): transport settings (timeout, retries, stream, metadata, headers) and
    anything named like a credential are left out; everything else is in. Key order in dicts
    does not matter; values do.

    Raises:
        InvalidRequestError: a message or parameter holds a value that is not JSON.
    """
    kept = {
        name: value
        for name, value in params.items()
        if name not in _TRANSPORT_PARAMS and not _SECRET_PARAM.search(name)
    }
    for name, value in kept.items():
        try:
            _canonical(value)
        except (TypeError, ValueError) as exc:
            raise _not_json(f"parameter {name!r}", name, exc) from None
    payload = {
        "entry": {
            "provider": entry.provider,
            "model": entry.model_name,
            "endpoint": entry.api_endpoint,
        },
        "messages": list(messages),
        "params": kept,
    }
    try:
        text = _canonical(payload)
    except (TypeError, ValueError) as exc:  # the parameters passed above: the messages
        raise _not_json("messages", "messages", exc) from None
    import hashlib  # ~2 ms: paid by the first cached call, not by `import creative_services`

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{CACHE_KEY_VERSION}:{digest}"


def cacheable(response: LLMResponse) -> bool:
    """Whether ``response`` may be stored: a whole answer from a provider, with something in it.

    Not a cache hit (already stored), not cut off at ``max_tokens``, not filtered, not empty.
    """
    if response.cache_hit or response.finish_reason in _NOT_STORED:
        return False
    return bool(response.content) or bool(response.tool_calls)


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedAnswer:
    """What the cache keeps of an answer: enough to rebuild the :class:`LLMResponse`.

    ``content`` is also the source a ``response_format`` call parses again on a hit.
    ``stored_at`` is the Unix time it was stored.
    """

    content: str | None
    model: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    usage_estimated: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    entry_name: str | None = None
    stored_at: float = 0.0

    @classmethod
    def from_response(cls, response: LLMResponse, *, now: float | None = None) -> CachedAnswer:
        """The part of ``response`` worth keeping."""
        usage = response.usage
        return cls(
            content=response.content,
            model=response.model,
            finish_reason=response.finish_reason,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cached_tokens=usage.cached_tokens,
            usage_estimated=usage.estimated,
            tool_calls=tuple(ToolCall(**call) for call in response.tool_calls),
            entry_name=response.entry.name,
            stored_at=time.time() if now is None else now,
        )

    def to_response(
        self, entry: EntryRef, *, request_id: str = "", latency_ms: float = 0.0
    ) -> LLMResponse:
        """The answer as a response of ``entry``: no attempt made, cost 0, ``cache_hit=True``."""
        return LLMResponse(
            content=self.content,
            entry=entry,
            usage=Usage(
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                reasoning_tokens=self.reasoning_tokens,
                cached_tokens=self.cached_tokens,
                estimated=self.usage_estimated,
            ),
            cost=Decimal(0),
            cost_source="cache",
            model=self.model,
            finish_reason=self.finish_reason,
            latency_ms=latency_ms,
            attempts=0,
            request_id=request_id,
            tool_calls=tuple(ToolCall(**call) for call in self.tool_calls),
            cache_hit=True,
        )

    def to_json(self) -> str:
        """The answer as a JSON object (with a format version ``"v"``)."""
        return json.dumps(
            {
                "v": 1,
                "content": self.content,
                "model": self.model,
                "finish_reason": self.finish_reason,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "reasoning_tokens": self.reasoning_tokens,
                "cached_tokens": self.cached_tokens,
                "usage_estimated": self.usage_estimated,
                "tool_calls": [dict(call) for call in self.tool_calls],
                "entry_name": self.entry_name,
                "stored_at": self.stored_at,
            },
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CachedAnswer:
        """The answer stored by :meth:`to_json`.

        Raises:
            ValueError: not JSON, another format version, or a field of the wrong type.
        """
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a cached answer of format version 1")
        ints = ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens")
        for name in ints:
            value = data.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"cached answer field {name!r} is not a count: {value!r}")
        for name in ("content", "model", "finish_reason", "entry_name"):
            if not isinstance(data.get(name), str | None):
                raise ValueError(f"cached answer field {name!r} is not a string")
        calls = data.get("tool_calls", [])
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise ValueError("cached answer field 'tool_calls' is not a list of objects")
        stored_at = data.get("stored_at", 0.0)
        if isinstance(stored_at, bool) or not isinstance(stored_at, int | float):
            raise ValueError("cached answer field 'stored_at' is not a number")
        return cls(
            content=data.get("content"),
            model=data.get("model"),
            finish_reason=data.get("finish_reason"),
            usage_estimated=bool(data.get("usage_estimated", False)),
            tool_calls=tuple(calls),
            entry_name=data.get("entry_name"),
            stored_at=float(stored_at),
            **{name: data.get(name, 0) for name in ints},
        )


@runtime_checkable
class ResponseCache(Protocol):
    """Where answers are kept. ``InMemoryResponseCache`` and ``DjangoResponseCache`` are two."""

    async def aget(self, key: str) -> CachedAnswer | None:
        """The answer stored under ``key``, or None (missing, expired or unreadable)."""
        ...

    async def aset(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (None: the cache's default)."""
        ...


def _check_ttl(ttl: object, what: str) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < float("inf"):
        raise ConfigurationError(f"{what} must be seconds > 0 (or None: never), got {ttl!r}")
    return float(ttl)


class InMemoryResponseCache:
    """A bounded LRU of answers in this process, each kept ``ttl`` seconds (None: until evicted).

    Thread-safe. ``clock`` (monotonic seconds) exists so tests can move time. Entries are kept
    as JSON text, so a caller that changes a response's ``tool_calls`` cannot change the cache.
    """

    def __init__(
        self,
        maxsize: int = 1024,
        ttl: float | None = 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigurationError(f"maxsize must be an integer >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.ttl = _check_ttl(ttl, "ttl")
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[str, tuple[float | None, str]] = OrderedDict()

    def __repr__(self) -> str:
        return f"InMemoryResponseCache(maxsize={self.maxsize}, ttl={self.ttl})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def get(self, key: str) -> CachedAnswer | None:
        """The answer under ``key`` unless it expired (then it is dropped); a hit becomes the
        most recently used."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, text = item
            if expires is not None and self._clock() >= expires:
                del self._data[key]
                return None
            self._data.move_to_end(key)
        return CachedAnswer.from_json(text)

    def set(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (None: this cache's ``ttl``); past ``maxsize``
        the least recently used answer goes."""
        life = self.ttl if ttl is None else _check_ttl(ttl, "ttl")
        text = value.to_json()
        with self._lock:
            expires = None if life is None else self._clock() + life
            self._data[key] = (expires, text)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    async def aget(self, key: str) -> CachedAnswer | None:
        """Async twin of :meth:`get` (it never blocks on anything but a short lock)."""
        return self.get(key)

    async def aset(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        """Async twin of :meth:`set`."""
        self.set(key, value, ttl)

    def clear(self) -> None:
        """Forget every answer."""
        with self._lock:
            self._data.clear()


def _log() -> Any:
    from creative_services._log import get_logger

    return get_logger()


def cache_wait(remaining: float | None) -> float | None:
    """Seconds one cache operation may take when ``remaining`` seconds are left of the call's
    deadline (None: no deadline, no bound). Pure."""
    if remaining is None:
        return None
    return max(0.0, min(remaining * CACHE_SHARE, CACHE_WAIT_MAX))


_slow_logged: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()
_slow_logged_by_id: dict[tuple[int, str], float] = {}
_background: set[asyncio.Task[bool]] = set()


def _log_slow(cache: object, op: str, waited: float | None) -> None:
    """Warn ``response_cache_timeout`` unless this cache's ``op`` did in ``SLOW_LOG_EVERY`` s."""
    now = time.monotonic()
    try:
        seen = _slow_logged.setdefault(cache, {})
        last = seen.get(op)
    except TypeError:  # not weak-referenceable
        seen, last = None, _slow_logged_by_id.get((id(cache), op))
    if last is not None and now - last < SLOW_LOG_EVERY:
        return
    if seen is None:
        _slow_logged_by_id[(id(cache), op)] = now
    else:
        seen[op] = now
    _log().warning(
        "response_cache_timeout",
        op=op,
        cache=type(cache).__name__,
        waited_s=None if waited is None else round(waited, 3),
        counted_as="a miss" if op == "get" else "not stored",
        every_s=SLOW_LOG_EVERY,
    )


def _log_failed(cache: object, op: str, exc: BaseException) -> None:
    _log().warning(
        "response_cache_failed", op=op, cache=type(cache).__name__, error=type(exc).__name__
    )


async def cache_lookup(
    cache: ResponseCache, keys: Sequence[str], *, remaining: float | None = None
) -> tuple[int, CachedAnswer] | None:
    """The first hit among ``keys`` (one per candidate entry, in fallback order), with its
    index; None on a miss. A failing or corrupt cache counts as a miss and is logged; so does
    one that does not answer within :func:`cache_wait` of ``remaining`` (the seconds left of
    the call's deadline)."""
    if not keys:
        return None
    import asyncio

    bound = cache_wait(remaining)
    try:
        async with asyncio.timeout(bound):
            for index, key in enumerate(keys):
                answer = await cache.aget(key)
                if answer is not None:
                    return index, answer
    except TimeoutError:  # ours, or a cache that says it cannot answer now
        _log_slow(cache, "get", bound)
    except Exception as exc:
        _log_failed(cache, "get", exc)
    return None


async def _store(
    cache: ResponseCache, key: str, value: CachedAnswer, ttl: float | None, bound: float | None
) -> bool:
    import asyncio

    try:
        async with asyncio.timeout(bound):
            await cache.aset(key, value, ttl)
    except TimeoutError:
        _log_slow(cache, "set", bound)
        return False
    except Exception as exc:
        _log_failed(cache, "set", exc)
        return False
    return True


async def cache_store(
    cache: ResponseCache,
    key: str,
    response: LLMResponse,
    ttl: float | None = None,
    *,
    remaining: float | None = None,
) -> bool:
    """Store ``response`` under ``key`` when :func:`cacheable`; True when stored. A failing
    cache is logged, never raised.

    With ``remaining`` (seconds left of the call's deadline) the store is bounded by
    :func:`cache_wait` of it and does not hold the caller: it waits ``STORE_GRACE`` seconds at
    most, then returns False while the store goes on in the background.
    """
    if not cacheable(response):
        return False
    value = CachedAnswer.from_response(response)
    if remaining is None:
        return await _store(cache, key, value, ttl, None)
    import asyncio

    task = asyncio.ensure_future(_store(cache, key, value, ttl, cache_wait(remaining)))
    _background.add(task)
    task.add_done_callback(_background.discard)
    done, _ = await asyncio.wait({task}, timeout=STORE_GRACE)
    return bool(done) and task.result()
