"""Embeddings and Responses API calls through a client's registry, retry policy and tracker.

The drop-in's ``embeddings.create`` and ``responses.create`` come here: ``model`` selects the
entries as for chat (a tier, an entry name, or a model a configured provider serves), each
entry is tried with the client's retry policy within one deadline, the provider's answer is
returned as OpenAI's JSON, and exactly one usage record is written per call (failures too).
It uses only the client's public pieces (``registry``, ``tracker``, ``retry_policy``,
``budget``); the chat flow stays in ``client.py``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from creative_services._providers import resolve_api_key
from creative_services._request import EMBEDDING_PARAMS, RESPONSES_PARAMS, forward_params
from creative_services.budgets import Reservation, round_up
from creative_services.exceptions import (
    AllModelsFailedError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
)
from creative_services.pricing import resolve_cost
from creative_services.retry import retry_call
from creative_services.tracking._base import notify_observers
from creative_services.types import LLMEntry, Outcome, Usage, UsageRecord

if TYPE_CHECKING:
    from creative_services.client import DynamicLLMClient

__all__ = ["ENDPOINTS", "EndpointCall", "plan", "run", "usage_of"]

ENDPOINTS = frozenset({"embeddings", "responses"})


@dataclass(frozen=True, slots=True)
class EndpointCall:
    """One embeddings/responses request in our terms, checked before any network call."""

    endpoint: str
    candidates: list[LLMEntry]
    keys: list[str | None]
    params: dict[str, Any]
    """What the caller sent, ``model`` aside: forwarded to LiteLLM unchanged."""
    timeout: float
    user_id: str | None
    metadata: dict[str, Any]


def plan(
    client: DynamicLLMClient,
    endpoint: str,
    body: object,
    selected: Mapping[str, Any] | LLMEntry,
    timeout: float | None,
) -> EndpointCall:
    """The call for a request whose ``model`` selected ``selected`` (see ``resolve_model``).

    Raises: InvalidRequestError, UnknownModelError, NoActiveEntryError, MissingAPIKeyError.
    """
    if not isinstance(body, Mapping):
        raise InvalidRequestError("the request body must be a JSON object", param="body")
    known = EMBEDDING_PARAMS if endpoint == "embeddings" else RESPONSES_PARAMS
    params = forward_params({k: v for k, v in body.items() if k != "model"}, known)
    if isinstance(selected, LLMEntry):
        candidates = [selected]
    elif "llm_name" in selected:
        candidates = [client.registry.get_by_name(selected["llm_name"])]
    else:
        candidates = client.registry.candidates(selected["tier"])
    user = body.get("user")
    metadata = body.get("metadata")
    return EndpointCall(
        endpoint=endpoint,
        candidates=candidates,
        keys=[resolve_api_key(entry, os.environ) for entry in candidates],
        params=params,
        timeout=client.retry_policy.timeout if timeout is None else float(timeout),
        user_id=user if isinstance(user, str) else None,
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
    )


def usage_of(endpoint: str, body: Mapping[str, Any]) -> Usage:
    """Our Usage from an embeddings (``prompt_tokens``) or Responses (``input_tokens``,
    ``output_tokens`` with reasoning split off, as for chat) answer."""
    raw = body.get("usage") or {}
    if endpoint == "embeddings":
        return Usage(prompt_tokens=int(raw.get("prompt_tokens") or 0), completion_tokens=0)
    reasoning = int((raw.get("output_tokens_details") or {}).get("reasoning_tokens") or 0)
    return Usage(
        prompt_tokens=int(raw.get("input_tokens") or 0),
        completion_tokens=max(0, int(raw.get("output_tokens") or 0) - reasoning),
        reasoning_tokens=reasoning,
        cached_tokens=int((raw.get("input_tokens_details") or {}).get("cached_tokens") or 0),
    )


@dataclass(slots=True)
class _State:
    attempts: int = 0
    entry: LLMEntry | None = None
    usage: Usage | None = None
    cost: Decimal | None = None
    cost_source: str = "unknown"


async def run(client: DynamicLLMClient, call: EndpointCall) -> dict[str, Any]:
    """Try the candidates in order; the first answer, as OpenAI's JSON. Raises: LLMError."""
    from creative_services import _litellm

    if _litellm.needs_load():  # the first import takes seconds: off the loop
        await asyncio.to_thread(_litellm.load)
    state, started = _State(), time.perf_counter()
    request_id = os.urandom(16).hex()
    deadline = time.monotonic() + call.timeout
    failures: list[LLMError] = []
    outcome: Outcome = "error"
    error: BaseException | None = None
    reservation: Reservation | None = None
    try:
        reservation = await _reserve(client, call, request_id)
        for entry, key in zip(call.candidates, call.keys, strict=True):
            if deadline - time.monotonic() <= 0:
                break
            state.entry = entry
            kwargs = _litellm.endpoint_kwargs(entry, key, call.params, timeout=call.timeout)
            try:
                body = await _attempts(client, call, state, entry, kwargs, key, deadline)
            except LLMError as exc:
                failures.append(exc)
                continue
            _price(call, state, entry, body)
            outcome = "success"
            return body
        raise _failure(call, failures, state.attempts)
    except asyncio.CancelledError as exc:
        outcome, error = "cancelled", exc
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        await _settle(client, reservation, state.cost if outcome == "success" else None)
        await _record(client, call, state, request_id, outcome, error, started)


async def _attempts(
    client: DynamicLLMClient,
    call: EndpointCall,
    state: _State,
    entry: LLMEntry,
    kwargs: dict[str, Any],
    key: str | None,
    deadline: float,
) -> dict[str, Any]:
    """One entry, retried as the client's policy says within the deadline."""
    from creative_services import _litellm

    secrets = [key] if key else []

    async def attempt() -> dict[str, Any]:
        state.attempts += 1
        left = deadline - time.monotonic()
        if left <= 0:
            raise _deadline_error(entry, call.timeout)
        try:
            async with asyncio.timeout(left):
                return await _litellm.call_endpoint(call.endpoint, kwargs, entry, secrets)
        except TimeoutError:
            raise _deadline_error(entry, call.timeout) from None

    return await retry_call(
        attempt,
        policy=client.retry_policy,
        deadline=deadline,
        clock=time.monotonic,
        sleep=asyncio.sleep,
        rand=random.random,
    )


def _price(call: EndpointCall, state: _State, entry: LLMEntry, body: Mapping[str, Any]) -> None:
    from creative_services import _litellm

    state.usage = usage_of(call.endpoint, body)
    cost, source = resolve_cost(
        state.usage, entry, map_prices=_litellm.map_prices(entry.provider, entry.model_name)
    )
    state.cost, state.cost_source = cost, source


def _failure(call: EndpointCall, failures: Sequence[LLMError], attempts: int) -> LLMError:
    if not failures:
        return _deadline_error(call.candidates[0], call.timeout)
    if len(failures) == 1:
        return failures[0]
    return AllModelsFailedError(list(failures), attempts=attempts)


def _deadline_error(entry: LLMEntry, timeout: float) -> LLMTimeoutError:
    return LLMTimeoutError(
        f"{entry.provider}: no answer within the {timeout:g}s deadline "
        f"(the provider may still bill the call)",
        model=entry.model_name,
        provider=entry.provider,
        entry=entry.ref,
    )


async def _reserve(
    client: DynamicLLMClient, call: EndpointCall, request_id: str
) -> Reservation | None:
    """The budget's lease on the worst case: the input's size (4 characters a token, doubled)
    on the priciest candidate, plus every output token a Responses call may produce.
    Raises: BudgetExceededError."""
    if client.budget is None:
        return None
    from creative_services import _litellm

    prompt = 2 * len(repr(call.params.get("input", ""))) // 4 + 16
    output = call.params.get("max_output_tokens") if call.endpoint == "responses" else 0
    worst = Decimal(0)
    for entry in call.candidates:
        limit = output if isinstance(output, int) else entry.max_tokens
        usage = Usage(prompt_tokens=prompt, completion_tokens=limit)
        prices = _litellm.map_prices(entry.provider, entry.model_name)
        cost, _ = resolve_cost(usage, entry, map_prices=prices)
        worst = max(worst, cost or Decimal(0))
    return await client.budget.areserve(
        request_id=request_id, amount=round_up(worst), user_id=call.user_id, tenant_id=None
    )


async def _settle(
    client: DynamicLLMClient, reservation: Reservation | None, cost: Decimal | None
) -> None:
    if reservation is None or client.budget is None:
        return
    try:
        if cost is not None:
            await client.budget.asettle(reservation, cost)
        else:
            await client.budget.arelease(reservation)
    except Exception as exc:
        from creative_services._log import get_logger

        get_logger().error(
            "budget_settle_failed", request_id=reservation.request_id, error=type(exc).__name__
        )


async def _record(
    client: DynamicLLMClient,
    call: EndpointCall,
    state: _State,
    request_id: str,
    outcome: Outcome,
    error: BaseException | None,
    started: float,
) -> None:
    """Exactly one usage record; a failing tracker never costs the answer."""
    entry = state.entry or call.candidates[0]
    usage = state.usage or Usage(prompt_tokens=0, completion_tokens=0)
    record = UsageRecord(
        llm_id=entry.id,
        user_id=call.user_id,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cached_tokens=usage.cached_tokens,
        cost=state.cost,
        cost_source=state.cost_source,  # type: ignore[arg-type]
        tier=entry.tier.value,
        entry_name=entry.name,
        provider=entry.provider,
        model=entry.model_name,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        outcome=outcome,
        error_class=None if error is None else type(error).__name__,
        attempts=state.attempts,
        may_have_been_billed=isinstance(error, LLMTimeoutError),
        request_id=request_id,
        metadata={**call.metadata, "endpoint": call.endpoint},
    )
    fields = {name: getattr(record, name) for name in record.__dataclass_fields__}
    try:
        await client.tracker.arecord(**fields)
    except Exception as exc:
        client.failed_records.append(record)
        from creative_services._log import get_logger

        get_logger().error(
            "usage_record_failed", tracker=type(client.tracker).__name__, error=type(exc).__name__
        )
    notify_observers(record)
