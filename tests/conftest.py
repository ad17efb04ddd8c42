"""Shared fixtures: a loopback fake provider and a fake clock for retry tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from creative_services.testing.clock import FakeClock
from creative_services.testing.fake_provider import FakeProvider


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake
