"""``client.complete()``: a chat turn in the original package's shape, over ``generate()``.

::

    response = await client.complete(messages, tools=[...], tool_choice="auto")
    if response.has_tool_calls:
        call = response.first_tool_call           # .id, .name, .arguments (a dict)
        messages += [response.to_message(), {"role": "tool", "tool_call_id": call.id,
                                              "content": json.dumps(run(call))}]
        response = await client.complete(messages, tools=[...])

Tools may be OpenAI-style (``{"type": "function", "function": {...}}``) or Anthropic-style
(``{"name", "description", "input_schema"}``); assistant messages may carry tool calls with
arguments as a dict or as these :class:`CompletionToolCall` objects. Translation only: the call
itself is :meth:`DynamicLLMClient.generate` (routing, retries, budgets, usage record).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from creative_services.exceptions import InvalidRequestError
from creative_services.types import LLMResponse, LLMTier

if TYPE_CHECKING:
    from creative_services.client import DynamicLLMClient

__all__ = [
    "CompletionResponse",
    "CompletionToolCall",
    "complete",
    "openai_messages",
    "openai_tools",
]


@dataclass(frozen=True, slots=True)
class CompletionToolCall:
    """One tool call: ``arguments`` decoded to a dict (``{}`` when the model sent none)."""

    id: str | None
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_openai(self) -> dict[str, Any]:
        """The call as an OpenAI assistant message's ``tool_calls`` item."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }


@dataclass(frozen=True, slots=True)
class CompletionResponse:
    """The answer of :meth:`DynamicLLMClient.complete`; ``response`` is the full LLMResponse."""

    content: str | None
    tool_calls: tuple[CompletionToolCall, ...]
    model: str | None
    provider: str
    usage: dict[str, int]
    response: LLMResponse

    @property
    def has_tool_calls(self) -> bool:
        """Whether the model asked for at least one tool call."""
        return bool(self.tool_calls)

    @property
    def first_tool_call(self) -> CompletionToolCall | None:
        """The first tool call, or None."""
        return self.tool_calls[0] if self.tool_calls else None

    @property
    def total_tokens(self) -> int:
        """Prompt plus output tokens."""
        return self.usage["total_tokens"]

    @property
    def raw_response(self) -> LLMResponse:
        """The original package's name for :attr:`response`."""
        return self.response

    def to_message(self) -> dict[str, Any]:
        """This answer as the assistant message to append before the tool results."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        return message


def _arguments(raw: str, name: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw": raw}  # a model that sent broken JSON: keep it visible, never raise
    return value if isinstance(value, dict) else {"_value": value}


def from_response(response: LLMResponse) -> CompletionResponse:
    """The original shape of ``response``."""
    calls = tuple(
        CompletionToolCall(c["id"], c["name"], _arguments(c["arguments"], c["name"]))
        for c in response.tool_calls
    )
    usage = response.usage
    return CompletionResponse(
        content=response.content,
        tool_calls=calls,
        model=response.model,
        provider=response.entry.provider,
        usage={
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
        response=response,
    )


def openai_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI-style tool definitions from OpenAI- or Anthropic-style ones.

    Raises: InvalidRequestError for an item that is neither.
    """
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        raise InvalidRequestError("tools must be a list of tool definitions", param="tools")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if isinstance(tool, Mapping) and tool.get("type") == "function":
            out.append(dict(tool))
        elif isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
            function = {"name": tool["name"]}
            if tool.get("description") is not None:
                function["description"] = tool["description"]
            schema = tool.get("input_schema", tool.get("parameters"))
            out.append({"type": "function", "function": {**function, "parameters": schema or {}}})
        else:
            raise InvalidRequestError(
                f"tools[{i}] must be OpenAI-style {{'type': 'function', 'function': {{...}}}} "
                "or Anthropic-style {'name': ..., 'input_schema': {...}}",
                param="tools",
            )
    return out


def _openai_call(call: Any) -> Any:
    if isinstance(call, CompletionToolCall):
        return call.to_openai()
    if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
        arguments = call["function"].get("arguments")
        if isinstance(arguments, Mapping):
            function = {**call["function"], "arguments": json.dumps(dict(arguments))}
            return {**call, "type": call.get("type", "function"), "function": function}
    return call


def openai_messages(messages: Sequence[Any]) -> list[Any]:
    """``messages`` with every assistant tool call in OpenAI's wire shape (arguments as JSON)."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        return messages  # type: ignore[return-value]  # generate() reports the bad type
    out: list[Any] = []
    for message in messages:
        if isinstance(message, Mapping) and message.get("tool_calls"):
            message = {**message, "tool_calls": [_openai_call(c) for c in message["tool_calls"]]}
        out.append(message)
    return out


async def complete(
    client: DynamicLLMClient,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    tier: LLMTier | str | None = None,
    **kwargs: Any,
) -> CompletionResponse:
    """Run ``client.generate(messages=...)`` and return the original response shape."""
    if tools is not None:
        kwargs["tools"] = openai_tools(tools)
    response = await client.generate(messages=openai_messages(messages), tier=tier, **kwargs)
    return from_response(response)
