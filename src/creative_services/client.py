"""DynamicLLMClient: validate, pick candidates, call with retries and fallbacks, price, record.

Every call runs on the library's background loop (``_sync.py``), so the async API, the sync twin
and the bridges share one LiteLLM loop and its connection pools.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from creative_services._log import debug_enabled, info_enabled
from creative_services._providers import resolve_api_key
from creative_services._request import (
    build_messages,
    check_max_tokens,
    check_member_id,
    check_metadata,
    check_provider_params,
    check_temperature,
    check_timeout,
    check_tools,
)
from creative_services.budgets import (
    BudgetBackend,
    Reservation,
    estimate_prompt_tokens,
    round_up,
    takes_timeout,
)
from creative_services.cache import (
    ResponseCache,
    answer_params,
    cache_key,
    cache_lookup,
    cache_store,
)
from creative_services.exceptions import (
    AllModelsFailedError,
    AuthenticationError,
    BudgetExceededError,
    ConfigurationError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
)
from creative_services.pricing import resolve_cost
from creative_services.registry import BaseRegistry, LLMRegistry
from creative_services.retry import Decision, RetryPolicy, retry_call
from creative_services.routing import escalation_candidates, escalation_path, should_escalate
from creative_services.streaming import (
    LLMStream,
    SyncLLMStream,
    _Pipe,
    run_on_loop,
    stream_bounds,
)
from creative_services.structured import OutputSpec, parse_response, prepare_response_format
from creative_services.tracking import InMemoryUsageTracker, UsageTracker
from creative_services.tracking._base import notify_observers
from creative_services.types import (
    LLMEntry,
    LLMResponse,
    LLMTier,
    Outcome,
    Usage,
    UsageRecord,
)

if TYPE_CHECKING:
    from creative_services import _litellm as _litellm_types
    from creative_services._litellm import ProviderResult
    from creative_services.completion import CompletionResponse

__all__ = ["DynamicLLMClient"]

Escalate = bool | LLMTier | str | Sequence[LLMTier | str]
"""``escalate=``: False, True (up economy -> standard -> premium), or the tiers to try next."""

_warned_unpriced: set[tuple[str, str]] = set()
_books_in_flight: set[Any] = set()
"""Books tasks still running after their caller was cancelled (a strong reference keeps them)."""


@dataclass(slots=True)
class _CallState:
    """What one generate() call has done so far: the source of its usage record."""

    request_id: str = field(default_factory=lambda: os.urandom(16).hex())
    attempts: int = 0
    failures: list[LLMError] = field(default_factory=list)
    entry: LLMEntry | None = None
    partial: tuple[LLMEntry, ProviderResult] | None = None
    """A stream cut short: what arrived before the failure or cancellation."""


class DynamicLLMClient:
    """Call any LLM by tier, id or name, with retries, fallbacks, cost and a usage record.

    ``tracker`` receives exactly one record per call (default: an :class:`InMemoryUsageTracker`,
    available as :attr:`tracker`). ``budget`` (optional) reserves each call's worst-case cost
    before any HTTP request and settles the real cost after. ``retry_policy`` sets retries,
    backoff and the total deadline (``timeout``, 60 s by default). ``clock``/``sleep`` exist so
    tests can run retries on a fake clock; ``environ`` is where keys named by ``*_API_KEY``
    variables are read at call time.
    """

    def __init__(
        self,
        registry: LLMRegistry,
        *,
        tracker: UsageTracker | None = None,
        budget: BudgetBackend | None = None,
        retry_policy: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        if not isinstance(registry, LLMRegistry):
            from creative_services.registry._relaxed import accept_registry

            registry = accept_registry(registry)
        self.registry = registry
        self.tracker: UsageTracker = tracker if tracker is not None else InMemoryUsageTracker()
        self.budget = budget
        self.retry_policy = retry_policy or RetryPolicy()
        if cache is not None and not isinstance(cache, ResponseCache):
            raise ConfigurationError(
                f"cache must implement ResponseCache (async aget/aset), got {type(cache).__name__}"
            )
        self.cache = cache
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._sleep = sleep
        self._closed = False
        self.failed_records: deque[UsageRecord] = deque(maxlen=1000)
        """Usage records the tracker refused (also logged as ``usage_record_failed``)."""

    def __repr__(self) -> str:
        return f"DynamicLLMClient(registry={self.registry!r}, tracker={self.tracker!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> DynamicLLMClient:
        """A client over ``DictRegistry.from_env(environ)``; ``kwargs`` go to the constructor.

        Raises: ConfigurationError when the environment configures no LLM.
        """
        from creative_services.registry import DictRegistry

        return cls(DictRegistry.from_env(environ), **kwargs)

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        tier: LLMTier | str | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """A chat turn in the original package's shape (``has_tool_calls``, dict arguments).

        ``tools`` may be OpenAI-style or Anthropic-style; ``kwargs`` are those of
        :meth:`generate`. Raises: the errors of :meth:`generate`.
        """
        from creative_services.completion import complete

        return await complete(self, messages, tools, tier, **kwargs)

    def for_entry(self, entry: LLMEntry) -> DynamicLLMClient:
        """A client for exactly ``entry`` that shares this one's tracker, budget and policy.

        ``entry`` is used as it is: an entry without an id keeps none (its usage records have
        ``llm_id=None``), so it is never booked on a registry row it does not belong to.
        """
        twin = DynamicLLMClient(
            _OneEntry(entry),
            tracker=self.tracker,
            budget=self.budget,
            retry_policy=self.retry_policy,
            environ=self._environ,
            clock=self._clock,
            sleep=self._sleep,
            cache=self.cache,
        )
        twin.failed_records = self.failed_records
        return twin

    async def __aenter__(self) -> DynamicLLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop accepting calls. The shared HTTP pools close at interpreter exit."""
        self._closed = True

    def close(self) -> None:
        """Sync twin of :meth:`aclose`."""
        self._closed = True

    async def generate(
        self,
        prompt: str | None = None,
        system_prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        tier: LLMTier | str | None = None,
        llm_id: int | None = None,
        llm_name: str | None = None,
        user_id: int | str | None = None,
        tenant_id: int | str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        response_format: Any = None,
        cache: bool = True,
        escalate: Escalate = False,
        entry_defaults: bool = True,
        **provider_params: Any,
    ) -> LLMResponse:
        """Generate an answer.

        Pick at most one of ``tier``, ``llm_id`` and ``llm_name``; with none, the registry's
        default tier is used. A tier falls back through its active entries in order; an id or
        name means exactly that entry. ``provider_params`` are generation parameters
        (``_request.CHAT_PARAMS``, or names the entry's ``extra_params`` sets) and go to LiteLLM
        unchanged; a destination, key, price or mock parameter is an InvalidRequestError.
        The entry's ``max_tokens``/``temperature`` fill in what the call leaves unset (adapted to
        what the model accepts); ``entry_defaults=False`` sends neither unless passed.

        Raises:
            InvalidRequestError: bad arguments (before any network call).
            UnknownModelError, NoActiveEntryError, MissingAPIKeyError: configuration problems.
            LLMError: the call failed; AllModelsFailedError when several entries were tried.
        """
        ensure_loaded = getattr(self.registry, "aensure_loaded", None)
        if ensure_loaded is not None:  # a registry that loads lazily (Django): off the loop
            await ensure_loaded()
        call = self._prepare(
            prompt, messages, system_prompt, tier, llm_id, llm_name, max_tokens, temperature,
            timeout, metadata, user_id, tenant_id, provider_params,
            response_format=response_format, cache=cache, escalate=escalate,
            entry_defaults=entry_defaults,
        )  # fmt: skip
        from creative_services import _sync

        return await _sync.run_async(self._run(call))

    def generate_sync(
        self,
        prompt: str | None = None,
        system_prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        tier: LLMTier | str | None = None,
        llm_id: int | None = None,
        llm_name: str | None = None,
        user_id: int | str | None = None,
        tenant_id: int | str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        response_format: Any = None,
        cache: bool = True,
        escalate: Escalate = False,
        entry_defaults: bool = True,
        **provider_params: Any,
    ) -> LLMResponse:
        """Blocking twin of :meth:`generate`, run on the library's one background loop.

        Safe in scripts, threads, Celery tasks and while an event loop runs in this thread.
        """
        call = self._prepare(
            prompt, messages, system_prompt, tier, llm_id, llm_name, max_tokens, temperature,
            timeout, metadata, user_id, tenant_id, provider_params,
            response_format=response_format, cache=cache, escalate=escalate,
            entry_defaults=entry_defaults,
        )  # fmt: skip
        from creative_services import _sync

        # The record is written here, on the caller's thread, so that a tracker can join the
        # caller's context (Django: written when the caller's transaction.atomic commits).
        handoff = _Handoff()
        try:
            return _sync.run_sync(self._run(call, handoff))
        finally:
            for record in handoff.collect():
                try:
                    self.tracker.record(**_fields(record))
                except Exception as exc:
                    self._record_failed(record, exc)
                notify_observers(record)

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        system_prompt: str | None = None,
        tier: LLMTier | str | None = None,
        llm_id: int | None = None,
        llm_name: str | None = None,
        user_id: int | str | None = None,
        tenant_id: int | str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        response_format: Any = None,
        cache: bool = False,
        escalate: Escalate = False,
        entry_defaults: bool = True,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
        **provider_params: Any,
    ) -> LLMStream:
        """Stream an answer: ``async for text in client.stream(...)``, then ``stream.response``.

        Same arguments as :meth:`generate`. The call starts when iteration (or ``async with``)
        starts; argument and configuration errors are raised there, before any network call.
        Retries and fallbacks happen only before the first text (or tool call) reaches you.
        ``timeout`` bounds the wait for it, over every retry and fallback. After it, each chunk
        must arrive within ``idle_timeout`` seconds of the one before (default: ``timeout``),
        and with ``total_timeout`` the whole stream must end within that many seconds of its
        start (default: no bound); past either, ``LLMTimeoutError`` (``code``
        ``"stream_idle_timeout"`` / ``"stream_total_timeout"``) and the response is closed.

        Raises (while iterating): the errors of :meth:`generate`.
        """

        def start(pipe: _Pipe) -> None:
            bounds = stream_bounds(
                timeout, idle_timeout, total_timeout, default_timeout=self.retry_policy.timeout
            )
            call = self._prepare(
                prompt, messages, system_prompt, tier, llm_id, llm_name, max_tokens,
                temperature, bounds.first_output, metadata, user_id, tenant_id, provider_params,
                response_format=response_format, cache=cache, escalate=escalate, stream=True,
                entry_defaults=entry_defaults,
            )  # fmt: skip
            run_on_loop(self._run(call, sink=pipe), pipe, bounds)

        return LLMStream(start, getattr(self.registry, "aensure_loaded", None))

    def stream_sync(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        system_prompt: str | None = None,
        tier: LLMTier | str | None = None,
        llm_id: int | None = None,
        llm_name: str | None = None,
        user_id: int | str | None = None,
        tenant_id: int | str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        response_format: Any = None,
        cache: bool = False,
        escalate: Escalate = False,
        entry_defaults: bool = True,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
        **provider_params: Any,
    ) -> SyncLLMStream:
        """Blocking twin of :meth:`stream`: ``for text in client.stream_sync(...)``.

        Arguments are checked here, before any network call.
        """
        from creative_services import _sync

        _sync.refuse_in_loop_thread()
        bounds = stream_bounds(
            timeout, idle_timeout, total_timeout, default_timeout=self.retry_policy.timeout
        )
        call = self._prepare(
            prompt, messages, system_prompt, tier, llm_id, llm_name, max_tokens, temperature,
            bounds.first_output, metadata, user_id, tenant_id, provider_params,
            response_format=response_format, cache=cache, escalate=escalate, stream=True,
            entry_defaults=entry_defaults,
        )  # fmt: skip
        return SyncLLMStream(lambda pipe: run_on_loop(self._run(call, sink=pipe), pipe, bounds))

    # --- the flow ------------------------------------------------------------------------------

    def _prepare(
        self,
        prompt: str | None,
        messages: Sequence[Mapping[str, Any]] | None,
        system_prompt: str | None,
        tier: LLMTier | str | None,
        llm_id: int | None,
        llm_name: str | None,
        max_tokens: int | None,
        temperature: float | None,
        timeout: float | None,
        metadata: Mapping[str, Any] | None,
        user_id: int | str | None,
        tenant_id: int | str | None,
        provider_params: dict[str, Any],
        *,
        response_format: Any = None,
        cache: bool = True,
        escalate: Escalate = False,
        stream: bool = False,
        entry_defaults: bool = True,
    ) -> _Call:
        """Step 1: validate everything and pick the candidates, before any network call."""
        if stream and cache:
            raise InvalidRequestError(
                "streams are not cached: call generate() to use the response cache",
                param="cache",
            )
        if self._closed:
            raise ConfigurationError("this DynamicLLMClient is closed; create a new one")
        chosen = [
            n
            for n, v in (("tier", tier), ("llm_id", llm_id), ("llm_name", llm_name))
            if v is not None
        ]
        if len(chosen) > 1:
            raise InvalidRequestError(f"give at most one of tier, llm_id, llm_name; got {chosen}")
        if escalate is not False and (llm_id is not None or llm_name is not None):
            raise InvalidRequestError(
                "escalate= climbs tiers: use it with tier=, not with llm_id or llm_name",
                param="escalate",
            )
        built = build_messages(prompt, messages, system_prompt)
        metadata = check_metadata(metadata)
        user_id = check_member_id(user_id, "user_id")
        tenant_id = check_member_id(tenant_id, "tenant_id")
        output = None if response_format is None else prepare_response_format(response_format)
        if output is not None:
            provider_params["response_format"] = dict(output.response_format)
        if "stream" in provider_params or "stream_options" in provider_params:
            raise InvalidRequestError(
                "to stream, call client.stream() / stream_sync() instead of passing stream=",
                param="stream",
            )
        if "tools" in provider_params or "tool_choice" in provider_params:
            check_tools(provider_params.get("tools"), provider_params.get("tool_choice"))
        if llm_id is not None:
            candidates = [self.registry.get_by_id(llm_id)]
        elif llm_name is not None:
            candidates = [self.registry.get_by_name(llm_name)]
        else:
            wanted = LLMTier.parse(tier) if tier is not None else self.registry.get_default().tier
            path = escalation_path(wanted, escalate=escalate)
            candidates = escalation_candidates(self.registry.candidates, path)
        check_provider_params(provider_params, candidates)
        keys = [resolve_api_key(entry, self._environ) for entry in candidates]
        cache_keys: list[str] = []
        if self.cache is not None and cache:
            cache_keys = [
                cache_key(
                    e,
                    built,
                    answer_params(
                        e, max_tokens=max_tokens, temperature=temperature, params=provider_params
                    ),
                )
                for e in candidates
            ]
        return _Call(
            messages=built,
            candidates=candidates,
            keys=keys,
            max_tokens=None if max_tokens is None else check_max_tokens(max_tokens),
            temperature=None if temperature is None else check_temperature(temperature),
            timeout=self.retry_policy.timeout if timeout is None else check_timeout(timeout),
            metadata=metadata,  # check_metadata made it a dict of its own
            user_id=user_id,
            tenant_id=tenant_id,
            params=provider_params,
            output=output,
            cache_keys=cache_keys,
            entry_defaults=entry_defaults,
        )

    async def _run(
        self, call: _Call, handoff: _Handoff | None = None, sink: _Pipe | None = None
    ) -> LLMResponse:
        """Steps 4-7 on the background loop: call, price, record, return.

        With a ``sink`` the call is streamed: text deltas go to the sink as they arrive; retries
        and fallbacks happen only before the first output (text, tool call) arrives.
        """
        import asyncio
        import random

        from creative_services import _litellm

        if _litellm.needs_load():
            # The first imports take seconds: do them off the loop so other calls keep flowing.
            await asyncio.to_thread(_import_dependencies)
        log = _log()
        state = _CallState()
        started = time.perf_counter()
        deadline = self._clock() + call.timeout
        outcome: Outcome = "error"
        response: LLMResponse | None = None
        error: BaseException | None = None
        refused_keys: set[str] = set()
        if debug_enabled():  # prompts are logged at DEBUG only, never with keys
            log.debug(
                "llm_request",
                request_id=state.request_id,
                candidates=[e.name for e in call.candidates],
                messages=call.messages,
                stream=sink is not None,
            )
        reservations: list[Reservation] = []
        reserved_tiers: set[LLMTier] = set()
        budget_stop: BudgetExceededError | None = None
        try:
            cache = self.cache if call.cache_keys else None  # keys exist only for generate()
            if cache is not None:
                hit = await cache_lookup(cache, call.cache_keys, remaining=deadline - self._clock())
                if hit is not None:  # no provider call, no reservation, cost 0
                    state.entry = call.candidates[hit[0]]
                    response = hit[1].to_response(
                        state.entry.ref,
                        request_id=state.request_id,
                        latency_ms=(time.perf_counter() - started) * 1000.0,
                    )
                    response = _with_parsed(call, response)
                    outcome = "success"
                    return response
            for index, (entry, key) in enumerate(zip(call.candidates, call.keys, strict=True)):
                if (
                    state.entry is not None
                    and entry.tier is not state.entry.tier
                    and state.failures
                    and not should_escalate(state.failures[-1])
                ):
                    break  # a higher tier would not fix this failure (budget, content policy)
                if self.budget is not None and entry.tier not in reserved_tiers:
                    reserved_tiers.add(entry.tier)
                    try:
                        await self._reserve_through(
                            call, state, index, reservations, deadline - self._clock()
                        )
                    except BudgetExceededError as exc:
                        if not state.failures:
                            raise
                        budget_stop = exc  # no budget left to escalate into this tier
                        break
                if key is not None and key in refused_keys:
                    continue  # a 401 on this key will not go away on another entry using it
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                state.entry = entry
                kwargs = _litellm.build_kwargs(
                    entry,
                    key,
                    call.messages,
                    max_tokens=call.max_tokens,
                    temperature=call.temperature,
                    entry_defaults=call.entry_defaults,
                    # LiteLLM caches one HTTP client per distinct timeout: pass the call's
                    # constant budget, and enforce the shrinking deadline ourselves below.
                    timeout=call.timeout,
                    params=call.params,
                )
                if sink is not None:
                    kwargs = _litellm.stream_kwargs(kwargs)
                secrets = [key] if key else []

                async def attempt(
                    entry: LLMEntry = entry,
                    kwargs: dict[str, Any] = kwargs,
                    secrets: list[str] = secrets,
                ) -> Any:
                    state.attempts += 1
                    left = deadline - self._clock()
                    if left <= 0:
                        raise _deadline_error(entry, call.timeout)
                    try:
                        async with asyncio.timeout(left):
                            if sink is not None:  # opened = the first output has arrived
                                return await _litellm.open_stream(kwargs, entry, secrets)
                            return await _litellm.complete(kwargs, entry, secrets)
                    except TimeoutError:
                        raise _deadline_error(entry, call.timeout) from None

                def on_retry(err: LLMError, decision: Decision, entry: LLMEntry = entry) -> None:
                    log.info(
                        "llm_retry",
                        entry=entry.name,
                        error=type(err).__name__,
                        status=err.status_code,
                        delay=round(decision.delay, 3),
                    )

                try:
                    result = await retry_call(
                        attempt,
                        policy=self.retry_policy,
                        deadline=deadline,
                        clock=self._clock,
                        sleep=self._sleep or asyncio.sleep,
                        rand=random.random,
                        on_retry=on_retry,
                    )
                except LLMError as exc:
                    state.failures.append(exc)
                    if isinstance(exc, AuthenticationError) and key:
                        refused_keys.add(key)
                    continue
                if sink is not None:
                    result = await self._drain(result, sink, state, call, entry, kwargs, secrets)
                response = self._response(call, state, entry, result, started)
                # StructuredOutputError: `response` (tokens, cost) stays for the books.
                response = _with_parsed(call, response)
                if cache is not None:
                    await cache_store(
                        cache, call.cache_keys[index], response, remaining=deadline - self._clock()
                    )
                outcome = "success"
                return response
            failure = self._failure(call, state)
            if budget_stop is not None:
                failure.add_note(f"not escalated further: {budget_stop}")
            raise failure
        except asyncio.CancelledError as exc:
            outcome, error = "cancelled", exc
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            response_for_books: LLMResponse | None = response
            if response is None and state.partial is not None:  # a stream cut short
                response_for_books = self._response(
                    call, state, state.partial[0], state.partial[1], started
                )
            # Settle and record in a task of their own, shielded: a cancellation that arrives
            # while they run (the caller gave up) must not cut the books short.
            books = asyncio.ensure_future(
                self._books(
                    reservations, call, state, response_for_books, outcome, error, started, handoff
                )
            )
            _books_in_flight.add(books)
            books.add_done_callback(_books_in_flight.discard)
            await asyncio.shield(books)

    async def _books(
        self,
        reservations: list[Reservation],
        call: _Call,
        state: _CallState,
        response: LLMResponse | None,
        outcome: Outcome,
        error: BaseException | None,
        started: float,
        handoff: _Handoff | None,
    ) -> None:
        """Settle the reservations and write the usage record (neither ever raises)."""
        for i, reservation in enumerate(reservations):  # the first takes the cost, others go
            await self._settle(reservation, response if i == 0 else None)
        await self._record(call, state, response, outcome, error, started, handoff)

    async def _drain(
        self,
        opened: _litellm_types.OpenedStream,
        sink: _Pipe,
        state: _CallState,
        call: _Call,
        entry: LLMEntry,
        kwargs: dict[str, Any],
        secrets: list[str],
    ) -> ProviderResult:
        """Pass a stream's text to ``sink`` chunk by chunk; return the whole answer.

        On a failure or cancellation midway, what arrived so far is kept in ``state.partial``
        (tokens counted locally) so that the usage record and the budget still see it.
        """
        from creative_services import _litellm

        stream = opened.stream
        acc = _litellm.StreamAccumulator(kwargs)
        finished = False
        read = functools.partial(_litellm.next_chunk, stream, entry, secrets)
        try:
            for chunk in opened.chunks:
                text = acc.feed(chunk)
                if text:
                    sink.put(text)
            chunk = None if opened.exhausted else await sink.pace.read(read, entry)
            while chunk is not None:
                text = acc.feed(chunk)
                if text:
                    sink.put(text)
                chunk = await sink.pace.read(read, entry)  # idle/total bounds: streaming.py
            finished = True
            return acc.result(_litellm.provider_usage(stream))
        finally:
            if not finished:
                state.partial = (entry, acc.result(None))
                await _litellm.close_stream(stream)

    async def _reserve_through(
        self,
        call: _Call,
        state: _CallState,
        index: int,
        reservations: list[Reservation],
        remaining: float,
    ) -> None:
        """Top ``reservations`` up to the worst case of every tier reached, through the tier of
        ``candidates[index]``: a call that may escalate holds what the tiers it reached may
        cost, not the priciest one it might reach. Raises: BudgetExceededError."""
        assert self.budget is not None
        need = self._worst_case_cost(call, _through_tier(call.candidates, index))
        extra = need - sum((r.amount for r in reservations), Decimal(0))
        if reservations and extra <= 0:
            return
        suffix = f":{len(reservations)}" if reservations else ""
        # What is left of the deadline bounds the backend's wait and its lease, where it takes it.
        bound = {"timeout": max(remaining, 0.0)} if takes_timeout(type(self.budget)) else {}
        reservations.append(
            await self.budget.areserve(
                request_id=state.request_id + suffix,
                amount=max(extra, Decimal(0)),
                user_id=call.user_id,
                tenant_id=call.tenant_id,
                **bound,
            )
        )

    def _worst_case_cost(self, call: _Call, entries: Sequence[LLMEntry]) -> Decimal:
        """The most this call can cost on ``entries``: the priciest, a generous prompt size and
        every output token allowed. Unknown prices count as 0 (they cannot be enforced)."""
        from creative_services import _litellm

        prompt = estimate_prompt_tokens(call.messages)
        worst = Decimal(0)
        for entry in entries:
            usage = Usage(
                prompt_tokens=prompt, completion_tokens=call.max_tokens or entry.max_tokens
            )
            cost, _ = resolve_cost(
                usage, entry, map_prices=_litellm.map_prices(entry.provider, entry.model_name)
            )
            worst = max(worst, cost or Decimal(0))
        return round_up(worst)

    async def _settle(self, reservation: Reservation, response: LLMResponse | None) -> None:
        """Settle the real cost, or release on failure; a failing backend never costs the answer."""
        assert self.budget is not None
        try:
            if response is not None:
                await self.budget.asettle(reservation, response.cost or Decimal(0))
            else:
                await self.budget.arelease(reservation)
        except Exception as exc:
            _log().error(
                "budget_settle_failed",
                request_id=reservation.request_id,
                amount=str(reservation.amount),
                error=type(exc).__name__,
            )

    def _response(
        self,
        call: _Call,
        state: _CallState,
        entry: LLMEntry,
        result: ProviderResult,
        started: float,
    ) -> LLMResponse:
        from creative_services import _litellm

        prices = None
        entry_priced = entry.cost_per_1k_input is not None and entry.cost_per_1k_output is not None
        if result.provider_cost is None and not entry_priced:
            prices = _litellm.map_prices(entry.provider, entry.model_name)
            if prices is None and result.model and result.model != entry.model_name:
                prices = _litellm.map_prices(entry.provider, result.model)
        cost, source = resolve_cost(
            result.usage, entry, provider_cost=result.provider_cost, map_prices=prices
        )
        if cost is None and (entry.provider, entry.model_name) not in _warned_unpriced:
            _warned_unpriced.add((entry.provider, entry.model_name))
            _log().warning(
                "llm_price_unknown",
                entry=entry.name,
                provider=entry.provider,
                model=entry.model_name,
                fix="set cost_per_1k_input and cost_per_1k_output on the entry",
            )
        return LLMResponse(
            content=result.content,
            entry=entry.ref,
            usage=result.usage,
            cost=cost,
            cost_source=source,
            model=result.model,
            finish_reason=result.finish_reason,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            attempts=state.attempts,
            tried=tuple(f.entry for f in state.failures if f.entry is not None),
            request_id=state.request_id,
            tool_calls=result.tool_calls,
            raw=result.raw,
        )

    def _failure(self, call: _Call, state: _CallState) -> LLMError:
        if not state.failures:  # the deadline ran out before any attempt
            entry = call.candidates[0]
            return _deadline_error(entry, call.timeout)
        if len(state.failures) == 1:
            only = state.failures[0]
            only.attempts = state.attempts
            return only
        return AllModelsFailedError(state.failures, attempts=state.attempts)

    async def _record(
        self,
        call: _Call,
        state: _CallState,
        response: LLMResponse | None,
        outcome: Outcome,
        error: BaseException | None,
        started: float,
        handoff: _Handoff | None,
    ) -> None:
        """Step 6: exactly one usage record per call; a failing tracker never costs the answer.

        With a ``handoff`` the record goes back to the sync caller to write in its own thread,
        unless that caller has already left (interrupted): then it is written here.
        """
        entry = state.entry or call.candidates[0]
        usage = response.usage if response is not None else None
        record = UsageRecord(
            llm_id=entry.id,
            user_id=call.user_id,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            reasoning_tokens=usage.reasoning_tokens if usage else 0,
            cached_tokens=usage.cached_tokens if usage else 0,
            cost=response.cost if response else None,
            cost_source=response.cost_source if response else "unknown",
            tier=entry.tier.value,
            entry_name=entry.name,
            provider=entry.provider,
            model=entry.model_name,  # the registry's model: the same for successes and failures
            latency_ms=(time.perf_counter() - started) * 1000.0,
            outcome=outcome,
            error_class=None if error is None else type(error).__name__,
            attempts=state.attempts,
            usage_estimated=bool(usage and usage.estimated),
            may_have_been_billed=any(isinstance(f, LLMTimeoutError) for f in state.failures)
            or (outcome == "cancelled" and state.attempts > 0)
            or state.partial is not None,
            request_id=state.request_id,
            metadata=call.metadata,
            cache_hit=response is not None and response.cache_hit,
        )
        log = _log()
        if info_enabled():
            log.info(
                "llm_call",
                request_id=record.request_id,
                entry=record.entry_name,
                provider=record.provider,
                model=record.model,
                tier=record.tier,
                outcome=outcome,
                error=record.error_class,
                attempts=record.attempts,
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                cost=None if record.cost is None else str(record.cost),
                latency_ms=round(record.latency_ms, 1),
            )
        if handoff is not None and handoff.give(record):
            return
        try:
            await self.tracker.arecord(**_fields(record))
        except Exception as exc:
            self._record_failed(record, exc)
        notify_observers(record)

    def _record_failed(self, record: UsageRecord, exc: Exception) -> None:
        """Keep and log a record the tracker refused: nothing disappears silently."""
        self.failed_records.append(record)
        _log().error(
            "usage_record_failed",
            tracker=type(self.tracker).__name__,
            error=type(exc).__name__,
            record=_fields(record),
        )


class _Handoff:
    """Passes a sync call's usage record back to the caller's thread, without a race: a record
    that arrives after the caller left (KeyboardInterrupt) is refused and written by the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[UsageRecord] = []
        self._closed = False

    def give(self, record: UsageRecord) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._records.append(record)
            return True

    def collect(self) -> list[UsageRecord]:
        with self._lock:
            self._closed = True
            return self._records


@dataclass(frozen=True, slots=True)
class _Call:
    messages: list[dict[str, Any]]
    candidates: list[LLMEntry]
    keys: list[str | None]
    max_tokens: int | None
    temperature: float | None
    timeout: float
    metadata: dict[str, Any]
    user_id: int | str | None
    tenant_id: int | str | None
    params: dict[str, Any]
    output: OutputSpec | None = None
    cache_keys: list[str] = field(default_factory=list)
    entry_defaults: bool = True


class _OneEntry(BaseRegistry):
    """A registry of exactly one entry, kept as given (no id assigned)."""

    def __init__(self, entry: LLMEntry) -> None:
        self._entries = (entry,)

    def all_entries(self) -> Sequence[LLMEntry]:
        return self._entries


def _with_parsed(call: _Call, response: LLMResponse) -> LLMResponse:
    """``response`` with ``parsed`` set when the call asked for structured output.

    Raises: StructuredOutputError."""
    if call.output is None:
        return response
    return dataclasses.replace(response, parsed=parse_response(call.output, response))


def _through_tier(candidates: Sequence[LLMEntry], index: int) -> Sequence[LLMEntry]:
    """The candidates up to the last one of ``candidates[index]``'s tier (tiers come grouped)."""
    tier = candidates[index].tier
    end = index
    while end + 1 < len(candidates) and candidates[end + 1].tier is tier:
        end += 1
    return candidates[: end + 1]


def _deadline_error(entry: LLMEntry, timeout: float) -> LLMTimeoutError:
    return LLMTimeoutError(
        f"{entry.provider}: no answer within the {timeout:g}s deadline "
        f"(the provider may still bill the call)",
        model=entry.model_name,
        provider=entry.provider,
        entry=entry.ref,
    )


def _fields(record: UsageRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def _import_dependencies() -> None:
    from creative_services import _litellm

    _log()
    _litellm.load()


def _log() -> Any:
    from creative_services._log import get_logger

    return get_logger()
