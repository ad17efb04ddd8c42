"""Scripts written the way the openai SDK's README and examples/ use it (demo.py, async_demo.py,
parsing*.py, streaming, errors, a tool loop), run twice in a fresh interpreter: on the real SDK
pointed at the fake provider, then with only the import switched to the drop-in. Both must
print the same, send the provider the same requests and raise the same exceptions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from creative_services.testing.fake_provider import FakeProvider

SDK_IMPORT = "from openai import OpenAI, AsyncOpenAI"
DROP_IN_IMPORT = "from creative_services.openai_compat import OpenAI, AsyncOpenAI"

DEMO = """
{import_line}
client = OpenAI()
completion = client.chat.completions.create(
    model="gpt-5.5", messages=[{{"role": "user", "content": "Say this is a test"}}]
)
print(completion.choices[0].message.content)
stream = client.chat.completions.create(
    model="gpt-5.5", messages=[{{"role": "user", "content": "List files"}}], stream=True
)
for chunk in stream:
    if not chunk.choices:
        continue
    print(chunk.choices[0].delta.content, end="|")
print()
response = client.chat.completions.with_raw_response.create(
    model="gpt-5.5", messages=[{{"role": "user", "content": "Say this is a test"}}]
)
print(response.request_id, response.parse().choices[0].message.content)
"""

ASYNC_DEMO = """
import asyncio
{import_line}
client = AsyncOpenAI()
async def main():
    stream = await client.chat.completions.create(
        model="gpt-5.5", messages=[{{"role": "user", "content": "Say this is a test"}}],
        stream=True, stream_options={{"include_usage": True}},
    )
    async for chunk in stream:
        if chunk.usage:
            print("usage", chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        if chunk.choices:
            print(chunk.choices[0].delta.content, end="|")
    print()
    async with client as c:
        reply = await c.chat.completions.create(
            model="gpt-5.5", messages=[{{"role": "user", "content": "again"}}]
        )
        print(reply.choices[0].message.content, reply.usage.total_tokens)
asyncio.run(main())
"""

PARSING = """
from typing import List
from pydantic import BaseModel
{import_line}
class Step(BaseModel):
    explanation: str
    output: str
class MathResponse(BaseModel):
    steps: List[Step]
    final_answer: str
client = OpenAI()
completion = client.chat.completions.parse(
    model="gpt-4o-2024-08-06",
    messages=[{{"role": "system", "content": "You are a helpful math tutor."}},
              {{"role": "user", "content": "solve 8x + 31 = 2"}}],
    response_format=MathResponse,
)
message = completion.choices[0].message
print(message.parsed.final_answer, len(message.parsed.steps))
with client.chat.completions.stream(
    model="gpt-4o-2024-08-06", messages=[{{"role": "user", "content": "solve"}}],
    response_format=MathResponse,
) as stream:
    for event in stream:
        if event.type == "content.done":
            print("done", event.parsed.final_answer)
print(stream.get_final_completion().choices[0].message.parsed.final_answer)
"""

TOOLS = """
import json
import openai
from pydantic import BaseModel
{import_line}
class Query(BaseModel):
    table_name: str
    limit: int
client = OpenAI()
messages = [{{"role": "user", "content": "look up my orders"}}]
completion = client.chat.completions.parse(
    model="gpt-4o-2024-08-06", messages=messages, tools=[openai.pydantic_function_tool(Query)]
)
message = completion.choices[0].message
call = message.tool_calls[0]
print(call.function.name, call.function.parsed_arguments.table_name)
messages.append(message)
messages.append({{"role": "tool", "tool_call_id": call.id, "content": json.dumps({{"rows": 3}})}})
final = client.chat.completions.create(model="gpt-4o-2024-08-06", messages=messages)
print(final.choices[0].message.content, final.choices[0].finish_reason)
"""

ERRORS = """
import openai
{import_line}
client = OpenAI()
try:
    client.chat.completions.create(model="gpt-5.5", messages=[{{"role": "user", "content": "x"}}])
except openai.RateLimitError as e:
    print("rate limited", e.status_code)
try:
    client.with_options(max_retries=0).chat.completions.create(
        model="gpt-5.5", messages=[{{"role": "user", "content": "x"}}]
    )
except openai.BadRequestError as e:
    print("bad request", e.status_code, e.code)
except openai.APIError as e:
    print("other", type(e).__name__)
try:
    client.chat.completions.create(model="gpt-5.5", messages=[{{"role": "user", "content": "x"}}])
except openai.AuthenticationError as e:
    print("auth", e.status_code)
"""

CONVERSATION = """
import openai
{import_line}
client = OpenAI(max_retries=0, timeout=20.0)
messages = [{{"role": "system", "content": "Be brief."}}]
for question in ["one?", "two?"]:
    messages.append({{"role": "user", "content": question}})
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, temperature=openai.NOT_GIVEN, user="alice",
        max_completion_tokens=30, seed=1,
    )
    messages.append(reply.choices[0].message)
    print(reply.choices[0].message.content)
print(len(messages))
"""

TOOL_ANSWER = {
    "id": "chatcmpl-tool", "object": "chat.completion", "created": 1700000000,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "Query", "arguments": '{"table_name": "orders", "limit": 3}'},
        }]}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
}  # fmt: skip
MATH = json.dumps({"steps": [{"explanation": "subtract", "output": "8x=-29"}],
                   "final_answer": "x = -29/8"})  # fmt: skip


def _demo(fake: FakeProvider) -> None:
    fake.reply("This is a test.")
    fake.stream(["ls", " -la"])
    fake.reply("This is a test.", headers={"x-request-id": "req_demo"})


def _async_demo(fake: FakeProvider) -> None:
    fake.stream(["This", " is", " a test"], prompt_tokens=6, completion_tokens=3)
    fake.reply("again", prompt_tokens=2, completion_tokens=1)


def _parsing(fake: FakeProvider) -> None:
    fake.reply(MATH)
    fake.stream([MATH[:20], MATH[20:]])


def _tools(fake: FakeProvider) -> None:
    fake.fail(200, body=TOOL_ANSWER)
    fake.reply("You have 3 orders.")


def _errors(fake: FakeProvider) -> None:
    fake.fail(429, "slow down", headers={"retry-after": "0"}, times=3)  # 1 try + 2 retries
    fake.fail(400, "too long", code="context_length_exceeded")
    fake.fail(401, "bad key", code="invalid_api_key")


def _conversation(fake: FakeProvider) -> None:
    fake.reply("First.")
    fake.reply("Second.")


SCRIPTS: dict[str, tuple[str, Callable[[FakeProvider], None]]] = {
    "demo": (DEMO, _demo),
    "async_demo": (ASYNC_DEMO, _async_demo),
    "parsing": (PARSING, _parsing),
    "tools": (TOOLS, _tools),
    "errors": (ERRORS, _errors),
    "conversation": (CONVERSATION, _conversation),
}


def _run(run_python: Any, fake: FakeProvider, name: str, import_line: str, tmp: Any) -> Any:
    code, script = SCRIPTS[name]
    fake.clear()
    script(fake)
    result = run_python(
        code.format(import_line=import_line),
        {
            "OPENAI_API_KEY": "dummy",
            "OPENAI_BASE_URL": fake.base_url,
            "CREATIVE_SERVICES_USAGE_DB": str(tmp / f"{name}.db"),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert fake.pending == 0
    return result.stdout, [(r.path, r.body) for r in fake.requests]


def _same_meaning(body: Any, *, drop_in: bool) -> Any:
    """The documented differences (docs/adapters.rst): ``"stream": false`` is not sent (it is
    the default), LiteLLM leaves out a message's null fields (``"content": null``), and a
    drop-in stream always asks for the usage chunk (the usage record needs the provider's
    tokens; the chunk reaches the caller only when asked for)."""
    body = dict(body)
    body["messages"] = [
        {k: v for k, v in m.items() if v is not None} for m in body.get("messages", [])
    ]
    if body.get("stream") is False:
        del body["stream"]
    if body.get("stream"):
        options = body.pop("stream_options", None) or {}
        if drop_in:
            assert options.get("include_usage") is True
    return body


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_sdk_script_behaves_the_same_through_the_drop_in(run_python, fake_provider, name, tmp_path):
    sdk_out, sdk_requests = _run(run_python, fake_provider, name, SDK_IMPORT, tmp_path)
    ours_out, ours_requests = _run(run_python, fake_provider, name, DROP_IN_IMPORT, tmp_path)
    assert ours_out == sdk_out
    assert [(p, _same_meaning(b, drop_in=True)) for p, b in ours_requests] == [
        (p, _same_meaning(b, drop_in=False)) for p, b in sdk_requests
    ]
