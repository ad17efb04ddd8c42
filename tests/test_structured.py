"""Structured output: response_format is checked before any call, the answer after it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from creative_services import InvalidRequestError, LLMError, StructuredOutputError
from creative_services.structured import (
    OutputSpec,
    parse_output,
    parse_response,
    prepare_response_format,
    strict_name,
    strip_fences,
)
from creative_services.types import EntryRef, LLMResponse, LLMTier, Usage

ROOT = Path(__file__).resolve().parents[1]
INDEX = json.loads((ROOT / "cassettes" / "index.json").read_text("utf-8"))
RECORDED = INDEX["openai-json-schema-output"]["expect"]["content"]
"""The answer of cassettes/openai/openai-json-schema-output.yaml (a strict json_schema call)."""


class Step(BaseModel):
    explanation: str
    output: str


class MathResponse(BaseModel):
    steps: list[Step]
    final_answer: str


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")

    title: str
    score: int = 0


STEP_SCHEMA = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, "output": {"type": "string"}},
    "required": ["explanation", "output"],
    "additionalProperties": False,
}
MATH_SCHEMA: dict[str, Any] = {
    "title": "MathResponse",
    "type": "object",
    "properties": {
        "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}},
        "final_answer": {"type": "string"},
    },
    "required": ["steps", "final_answer"],
    "additionalProperties": False,
    "$defs": {"Step": STEP_SCHEMA},
}


# --- prepare_response_format -----------------------------------------------------------------


def test_pydantic_model_becomes_a_strict_openai_json_schema() -> None:
    spec = prepare_response_format(MathResponse)
    assert spec.model is MathResponse
    assert spec.name == "MathResponse"
    assert spec.strict is True
    fmt = spec.response_format
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "MathResponse"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Step"]["additionalProperties"] is False
    assert set(schema["required"]) == {"steps", "final_answer"}
    json.dumps(fmt)  # plain JSON: it goes to LiteLLM and into cache keys


def test_pydantic_model_with_optional_fields_is_sent_non_strict() -> None:
    spec = prepare_response_format(Loose)
    assert spec.strict is False
    schema = spec.response_format["json_schema"]["schema"]
    assert schema["additionalProperties"] is True  # extra="allow" is kept as the model says


def test_generic_model_name_is_made_strict_compatible() -> None:
    assert strict_name("Page[Item]") == "Page_Item"
    assert strict_name("résumé") == "r_sum"
    assert strict_name("!!!") == "response"
    assert len(strict_name("x" * 100)) == 64


def test_openai_json_schema_format_is_kept_as_given() -> None:
    given = {
        "type": "json_schema",
        "json_schema": {"name": "MathResponse", "schema": MATH_SCHEMA, "strict": True},
    }
    spec = prepare_response_format(given)
    assert spec.response_format == given
    assert spec.response_format is not given
    assert spec.schema == MATH_SCHEMA
    assert (spec.name, spec.strict, spec.model) == ("MathResponse", True, None)


def test_bare_schema_is_wrapped_and_named_after_its_title() -> None:
    spec = prepare_response_format(MATH_SCHEMA)
    assert spec.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "MathResponse", "schema": MATH_SCHEMA, "strict": True},
    }
    untitled = prepare_response_format({"type": "object", "properties": {"a": {"type": "string"}}})
    assert untitled.name == "response"
    assert untitled.strict is False  # not closed, "a" not required: strict mode would refuse it


def test_property_named_like_a_keyword_is_not_taken_for_one() -> None:
    schema = {
        "type": "object",
        "properties": {"properties": {"type": "string"}, "type": {"type": "string"}},
        "required": ["properties", "type"],
        "additionalProperties": False,
    }
    assert prepare_response_format(schema).strict is True


def test_json_object_has_no_schema() -> None:
    spec = prepare_response_format({"type": "json_object"})
    assert spec == OutputSpec(response_format={"type": "json_object"}, name=None, schema=None)
    assert prepare_response_format(spec) is spec


class NotAModel:
    pass


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        ("json", "pydantic model class or a JSON schema dict"),
        (NotAModel, "subclass pydantic.BaseModel"),
        ({"type": "text"}, "leave response_format out"),
        ({"type": "json_schema"}, '"json_schema": {"name"'),
        ({"type": "json_schema", "json_schema": {"schema": {}}}, "e.g. 'response'"),
        ({"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}, "e.g. 'a_b'"),
        ({"type": "json_schema", "json_schema": {"name": "a"}}, 'needs "schema"'),
        (
            {"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "strict": "yes"}},
            "strict must be true or false",
        ),
        ({"type": "objekt"}, "not a valid JSON schema at ['type']"),
        ([{"type": "object"}], "got list"),
        ({"type": "object", "required": "a"}, "not a valid JSON schema at ['required']"),
        ({"type": "object", "default": object()}, "only JSON values"),
        ({"type": 3}, "'type' must be a string"),
    ],
)
def test_bad_response_format_is_refused_before_any_call(value: object, fix: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        prepare_response_format(value)
    assert fix in str(info.value)
    assert info.value.param == "response_format"


# --- parse_output on the recorded answer -----------------------------------------------------


def test_recorded_answer_parses_into_the_pydantic_model() -> None:
    result = parse_output(prepare_response_format(MathResponse), RECORDED)
    assert isinstance(result, MathResponse)
    assert len(result.steps) == 3
    assert result.steps[0].output == "8x = 2 - 31"
    assert result.final_answer == "x = -\\frac{29}{8}"


@pytest.mark.parametrize(
    "fmt",
    [
        MATH_SCHEMA,
        {"type": "json_schema", "json_schema": {"name": "MathResponse", "schema": MATH_SCHEMA}},
    ],
)
def test_recorded_answer_validates_against_the_schema(fmt: dict[str, Any]) -> None:
    result = parse_output(prepare_response_format(fmt), RECORDED)
    assert result == json.loads(RECORDED)


@pytest.mark.parametrize("fence", ["```json\n{}\n```", "```\n{}\n```", "  ```JSON\r\n{}\r\n```\n"])
def test_one_code_fence_around_the_json_is_tolerated(fence: str) -> None:
    text = fence.replace("{}", RECORDED)
    assert strip_fences(text) == RECORDED
    assert isinstance(parse_output(prepare_response_format(MathResponse), text), MathResponse)


def test_json_object_accepts_any_json() -> None:
    assert parse_output(prepare_response_format({"type": "json_object"}), '{"a": [1]}') == {
        "a": [1]
    }


# --- invalid answers -------------------------------------------------------------------------


def test_truncated_answer_is_a_structured_output_error_with_the_raw_text() -> None:
    cut = RECORDED[:50]
    with pytest.raises(StructuredOutputError) as info:
        parse_output(prepare_response_format(MathResponse), cut, finish_reason="length")
    err = info.value
    assert isinstance(err, LLMError)
    assert err.raw == cut
    assert "not valid JSON" in str(err)
    assert "raise max_tokens" in str(err)
    assert cut not in str(err)  # the answer stays in .raw, out of messages and logs


@pytest.mark.parametrize("text", [None, "", "   ", "```json\n\n```"])
def test_empty_answer_is_an_error(text: str | None) -> None:
    with pytest.raises(StructuredOutputError, match="empty") as info:
        parse_output(prepare_response_format(MATH_SCHEMA), text)
    assert info.value.raw == (text or "")


def test_answer_off_the_model_names_each_field() -> None:
    bad = {"steps": [{"explanation": "x", "output": 3}], "extra": "ok"}
    with pytest.raises(StructuredOutputError) as info:
        parse_output(prepare_response_format(MathResponse), json.dumps(bad))
    err = info.value
    assert "$.steps[0].output: Input should be a valid string" in err.errors
    assert "$.final_answer: Field required" in err.errors
    assert "MathResponse" in str(err)


def test_answer_off_the_schema_names_each_rule_not_the_value() -> None:
    bad = {"steps": [{"explanation": "secret-ish text", "output": 3}], "more": 1}
    with pytest.raises(StructuredOutputError) as info:
        parse_output(prepare_response_format(MATH_SCHEMA), json.dumps(bad))
    err = info.value
    assert err.errors == (
        '$: fails \'required\': ["steps", "final_answer"]',
        "$: fails 'additionalProperties': false",
        "$.steps[0].output: fails 'type': \"string\"",
    )
    assert "secret-ish" not in str(err)


def test_structured_output_error_pickles_with_raw_and_errors() -> None:
    with pytest.raises(StructuredOutputError) as info:
        parse_output(prepare_response_format(MATH_SCHEMA), "[1, 2]")
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is StructuredOutputError
    assert (back.raw, back.errors, str(back)) == ("[1, 2]", info.value.errors, str(info.value))


def _response(content: str | None, finish_reason: str = "stop") -> LLMResponse:
    ref = EntryRef(id=4, name="gpt4o", provider="openai", model="gpt-4o", tier=LLMTier.PREMIUM)
    return LLMResponse(
        content=content, entry=ref, usage=Usage(127, 93), cost=None, cost_source="unknown",
        model="gpt-4o-2024-08-06", finish_reason=finish_reason, latency_ms=1.0, attempts=1,
        request_id="r1",
    )  # fmt: skip


def test_parse_response_names_the_entry_that_answered() -> None:
    spec = prepare_response_format(MathResponse)
    assert parse_response(spec, _response(RECORDED)).final_answer == "x = -\\frac{29}{8}"
    with pytest.raises(StructuredOutputError) as info:
        parse_response(spec, _response("{", finish_reason="length"))
    err = info.value
    assert (err.provider, err.model, err.request_id) == ("openai", "gpt-4o", "r1")
    assert err.entry is not None
    assert err.entry.name == "gpt4o"
    assert "raise max_tokens" in str(err)
