"""Item 8: answers without usage and models without a price are flagged, never guessed
(tests/test_client.py covers each on its own; here they meet, under concurrency)."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from creative_services import BadRequestError, InMemoryUsageTracker

from ._helpers import entry, make_client, records


async def test_no_usage_and_no_price_flag_the_record_and_warn_once(
    fake_provider, fake_clock, caplog
):
    model = f"fault-unpriced-{os.urandom(4).hex()}"  # the warning is once per process and model
    fake_provider.reply("an answer without any usage block", usage=False, times=20)
    gateway = entry(fake_provider, provider="openai_compatible", model_name=model)
    first = make_client([gateway], fake_clock)
    second = make_client([gateway], fake_clock, tracker=InMemoryUsageTracker())

    with caplog.at_level(logging.DEBUG, logger="creative_services"):
        responses = await asyncio.gather(
            *(c.generate(prompt="say something") for c in [first, second] * 10)
        )

    for response in responses:
        assert response.cost is None
        assert response.cost_source == "unknown"
        assert response.usage.estimated
        assert response.usage.prompt_tokens > 0
        assert response.usage.completion_tokens > 0
    for record in records(first) + records(second):
        assert (record.cost, record.cost_source) == (None, "unknown")
        assert record.usage_estimated
        assert record.outcome == "success"
    warnings = [r for r in caplog.records if "llm_price_unknown" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert model in warnings[0].getMessage()


async def test_zero_usage_block_is_estimated_not_taken_as_free(fake_provider, fake_clock):
    fake_provider.reply("a real answer", prompt_tokens=0, completion_tokens=0)
    client = make_client([entry(fake_provider)], fake_clock)
    response = await client.generate(prompt="say something")
    assert response.usage.estimated
    assert response.usage.completion_tokens > 0
    assert response.cost is not None
    assert response.cost > 0
    [record] = records(client)
    assert record.usage_estimated


async def test_failed_call_record_has_no_cost_and_no_tokens(fake_provider, fake_clock):
    fake_provider.fail(400, "bad request")
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(BadRequestError):
        await client.generate(prompt="hi")
    [record] = records(client)
    assert (record.cost, record.cost_source, record.prompt_tokens) == (None, "unknown", 0)
    assert not record.usage_estimated
