"""Error translation at the LiteLLM boundary, on LiteLLM's own exception classes."""

from __future__ import annotations

import httpx
import pytest

from creative_services import (
    AuthenticationError,
    LLMEntry,
    RateLimitError,
    ServiceUnavailableError,
)
from creative_services._litellm import load, translate_error
from creative_services._secrets import redact

GEMINI = LLMEntry(
    name="g", provider="gemini", model_name="gemini-2.5-flash", api_key="AIza" + "x" * 35
)


def test_gemini_invalid_key_keeps_the_real_400():
    litellm = load()
    body = (
        '{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", '
        '"status": "INVALID_ARGUMENT"}}'
    )
    exc = litellm.AuthenticationError(
        message=f"geminiException - {body}", llm_provider="gemini", model="gemini-2.5-flash"
    )
    err = translate_error(exc, GEMINI, [GEMINI.api_key.get_secret_value()])
    assert type(err) is AuthenticationError
    assert err.status_code == 400
    assert err.message == "gemini 400: API key not valid. Please pass a valid API key."


def test_gemini_503_reported_as_500_keeps_503():
    litellm = load()
    body = (
        '{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
    )
    exc = litellm.InternalServerError(
        message=f"geminiException - {body}", llm_provider="gemini", model="gemini-2.5-flash"
    )
    err = translate_error(exc, GEMINI, [])
    assert type(err) is ServiceUnavailableError
    assert err.status_code == 503


def test_retry_headers_are_read_whatever_their_case_and_container():
    litellm = load()
    for headers in (
        {"Retry-After": "4", "X-Should-Retry": "true"},
        httpx.Headers({"retry-after": "4", "x-should-retry": "true"}),
    ):
        exc = litellm.RateLimitError(message="slow down", llm_provider="groq", model="m")
        exc.litellm_response_headers = headers  # where LiteLLM puts the provider's headers
        err = translate_error(exc, GEMINI, [])
        assert type(err) is RateLimitError
        assert (err.retry_after, err.should_retry) == (4.0, True)


@pytest.mark.parametrize(
    "secret",
    [
        "sk-" + "proj-abcdefghijklmnop1234",
        "sk-ant-" + "api03-abcdefghijkl",
        "AIza" + "SyA1234567890abcdefghijklmnopqrs",
        "gsk_" + "abcdefghijkl1234",
    ],
)
def test_redact_masks_known_and_key_shaped_secrets(secret):
    assert secret not in redact(f"bad key {secret} given", [])
    assert "custom-secret-value" not in redact("x custom-secret-value y", ["custom-secret-value"])
