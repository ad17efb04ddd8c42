"""Token counts from where each provider puts them, and local counts that stay local.

Issue 14 item 12: Groq streams put the usage in ``x_groq.usage`` of the chunk with the finish
reason; the library counted the tokens locally and flagged them estimated. The cassette is
synthetic (cassettes/synthetic/README.md): Groq's documented streaming format.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from creative_services import (
    DictRegistry,
    DynamicLLMClient,
    InMemoryUsageTracker,
    LLMEntry,
)
from creative_services.testing.cassettes import use_cassette

SYNTHETIC = Path(__file__).resolve().parent.parent / "cassettes" / "synthetic"


def groq_client() -> DynamicLLMClient:
    entry = LLMEntry(
        name="groq", provider="groq", model_name="llama-3.1-8b-instant", tier="economy",
        api_key="test-key",
    )  # fmt: skip
    return DynamicLLMClient(DictRegistry([entry]), tracker=InMemoryUsageTracker())


async def test_a_groq_stream_is_booked_with_groqs_own_token_counts() -> None:
    client = groq_client()
    with use_cassette(SYNTHETIC / "groq-stream-x-groq-usage.yaml", match_on=["method", "path"]):
        async with client.stream(prompt="Why does fast inference matter?") as stream:
            text = "".join([piece async for piece in stream])
    response = stream.response

    assert text == "Fast inference matters."
    usage = response.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.estimated) == (41, 4, False)
    tracker = client.tracker
    assert isinstance(tracker, InMemoryUsageTracker)
    (record,) = tracker.records
    assert (record.prompt_tokens, record.completion_tokens) == (41, 4)
    assert record.usage_estimated is False


COUNT_IN_A_FRESH_PROCESS = """
import socket
lookups = []
real = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    lookups.append(str(host))
    return real(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
from creative_services import _litellm
messages = [{"role": "user", "content": "hello there, friend"}]
for model in ("openai/llama-3.3-70b-versatile", "ollama_chat/mistral", "cohere/command-r"):
    assert _litellm.estimate_tokens(model, text="hello there, friend") > 0
    assert _litellm.estimate_tokens(model, messages=messages) > 0
print("LOOKUPS", lookups)
"""


def test_local_token_counts_never_reach_for_the_network() -> None:
    # LiteLLM's token_counter fetched a Hugging Face tokenizer for Llama models: offline, 24 s
    # of retries (on the event loop) before it fell back. A fresh process: LiteLLM caches the
    # tokenizer it found (or failed to find) for the life of the process.
    done = subprocess.run(
        [sys.executable, "-c", COUNT_IN_A_FRESH_PROCESS],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "LOOKUPS []" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
