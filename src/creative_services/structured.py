"""Structured output: ``response_format=`` as a pydantic model or a JSON schema, checked twice.

:func:`prepare_response_format` turns what the caller gave into an :class:`OutputSpec` before any
network call (a bad value is an :class:`~creative_services.exceptions.InvalidRequestError`);
:func:`parse_output` validates the model's answer against it (a bad answer is a
:class:`~creative_services.exceptions.StructuredOutputError` carrying the raw text).

Accepted values:

* a pydantic v2 model class: sent as OpenAI's ``json_schema`` format built from
  ``model_json_schema()``; the answer comes back as an instance of the class;
* OpenAI's ``{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}``;
* OpenAI's ``{"type": "json_object"}``: any JSON, no schema;
* a bare JSON schema (``{"type": "object", "properties": ...}``): wrapped in the ``json_schema``
  format, named after its ``title``.

LiteLLM translates the OpenAI format for the other providers. pydantic and jsonschema (both
LiteLLM dependencies) are imported only when a call uses them.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from creative_services.exceptions import InvalidRequestError, StructuredOutputError

if TYPE_CHECKING:
    from creative_services.types import LLMResponse

__all__ = ["OutputSpec", "parse_output", "parse_response", "prepare_response_format"]

_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\r?\n(?P<body>.*?)\r?\n?[ \t]*```\s*$", re.DOTALL)
_MAX_ERRORS = 10
_PARAM = "response_format"


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """What a ``response_format`` call sends, and how its answer is validated.

    ``response_format`` is the OpenAI-format value passed to LiteLLM (a plain JSON dict, also
    part of the cache key); ``schema`` is the JSON schema the answer must fit (``None`` for
    ``json_object``); ``model`` is the pydantic class to build, when one was given.
    """

    response_format: Mapping[str, Any]
    name: str | None
    schema: Mapping[str, Any] | None
    model: type[Any] | None = None
    strict: bool = False


def strict_name(name: str) -> str:
    """``name`` made acceptable as an OpenAI schema name: ``[A-Za-z0-9_-]{1,64}``."""
    cleaned = _NAME_BAD_CHARS.sub("_", name).strip("_")[:64]
    return cleaned or "response"


def _is_pydantic_model(value: object) -> bool:
    if not isinstance(value, type):
        return False
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic comes with LiteLLM
        return False
    return issubclass(value, BaseModel)


def _jsonschema(module: str) -> Any:
    """``jsonschema.<module>``, imported on first use (it ships no type information)."""
    import importlib

    return importlib.import_module(f"jsonschema.{module}")


def _check_schema(schema: object, where: str) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise InvalidRequestError(
            f"{where} must be a JSON schema dict, got {type(schema).__name__}", param=_PARAM
        )
    try:
        plain = json.loads(json.dumps(schema))
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"{where} must hold only JSON values (str, number, bool, None, list, dict): {exc}",
            param=_PARAM,
        ) from None
    validators = _jsonschema("validators")
    try:
        validators.validator_for(plain).check_schema(plain)
    except _jsonschema("exceptions").SchemaError as exc:
        path = "".join(f"[{p!r}]" for p in exc.path)
        raise InvalidRequestError(
            f"{where} is not a valid JSON schema at {path or 'its root'}: {exc.message}; "
            f"fix the schema (or pass a pydantic model class)",
            param=_PARAM,
        ) from None
    return dict(plain)


_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


def _subschemas(node: Mapping[str, Any]) -> list[Any]:
    """The schemas directly inside ``node`` (by keyword, so a property named "properties" is a
    name, not a keyword)."""
    found: list[Any] = []
    for key in _SCHEMA_MAPS:
        value = node.get(key)
        if isinstance(value, Mapping):
            found.extend(value.values())
    for key in _SCHEMA_LISTS:
        value = node.get(key)
        if isinstance(value, list):
            found.extend(value)
    for key in _SCHEMA_ONE:
        value = node.get(key)
        if isinstance(value, list):  # draft-4 style tuple "items"
            found.extend(value)
        elif isinstance(value, Mapping):
            found.append(value)
    return found


def _is_object(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" or isinstance(node.get("properties"), Mapping)


def _strictable(schema: Mapping[str, Any]) -> bool:
    """Whether OpenAI's strict mode accepts ``schema``: every object closes its properties
    (``additionalProperties: false``) and requires all of them."""
    if _is_object(schema):
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if not isinstance(props, Mapping) or set(schema.get("required", [])) != set(props):
            return False
    return all(_strictable(sub) for sub in _subschemas(schema) if isinstance(sub, Mapping))


def _close_objects(node: dict[str, Any]) -> None:
    """Make every object schema in ``node`` that says nothing about extra keys refuse them (in
    place): what pydantic's default ``extra="ignore"`` drops anyway, and what strict mode needs."""
    if _is_object(node) and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for sub in _subschemas(node):
        if isinstance(sub, dict):
            _close_objects(sub)


def _json_schema_format(name: str, schema: dict[str, Any], strict: bool) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": strict},
    }


def prepare_response_format(value: object) -> OutputSpec:
    """The :class:`OutputSpec` of a ``response_format=`` value (see the module docstring).

    Pure apart from lazy imports; call it while validating a call, before any network call.

    Raises:
        InvalidRequestError: not a pydantic model class, an OpenAI ``response_format`` dict or
            a JSON schema; or a schema that is not valid.
    """
    if isinstance(value, OutputSpec):
        return value
    if _is_pydantic_model(value):
        assert isinstance(value, type)
        try:
            raw_schema = value.model_json_schema()  # type: ignore[attr-defined]
        except Exception as exc:  # pydantic refuses types it cannot express in JSON schema
            raise InvalidRequestError(
                f"response_format model {value.__name__} has no JSON schema ({exc}); use "
                f"JSON-compatible field types",
                param=_PARAM,
            ) from None
        schema = _check_schema(raw_schema, f"{value.__name__}.model_json_schema()")
        _close_objects(schema)
        name = strict_name(value.__name__)
        strict = _strictable(schema)
        return OutputSpec(
            response_format=_json_schema_format(name, schema, strict),
            name=name,
            schema=schema,
            model=value,
            strict=strict,
        )
    if isinstance(value, type):
        raise InvalidRequestError(
            f"response_format class {value.__name__} is not a pydantic model: subclass "
            f"pydantic.BaseModel, or pass a JSON schema dict",
            param=_PARAM,
        )
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"response_format must be a pydantic model class or a JSON schema dict, got "
            f"{type(value).__name__}",
            param=_PARAM,
        )
    kind = value.get("type")
    if kind == "json_object":
        return OutputSpec(response_format={"type": "json_object"}, name=None, schema=None)
    if kind == "text":
        raise InvalidRequestError(
            'response_format {"type": "text"} asks for plain text: leave response_format out',
            param=_PARAM,
        )
    if kind == "json_schema":
        inner = value.get("json_schema")
        if not isinstance(inner, Mapping):
            raise InvalidRequestError(
                'response_format {"type": "json_schema"} needs "json_schema": '
                '{"name": ..., "schema": {...}}',
                param=_PARAM,
            )
        given = inner.get("name")
        if not isinstance(given, str) or not _NAME_OK.match(given):
            raise InvalidRequestError(
                f"response_format json_schema.name must match [A-Za-z0-9_-]{{1,64}}, got "
                f"{given!r}; e.g. {strict_name(str(given or 'response'))!r}",
                param=_PARAM,
            )
        if "schema" not in inner:
            raise InvalidRequestError(
                'response_format json_schema needs "schema": the JSON schema of the answer',
                param=_PARAM,
            )
        schema = _check_schema(inner["schema"], "response_format json_schema.schema")
        strict = inner.get("strict", False)
        if not isinstance(strict, bool):
            raise InvalidRequestError(
                f"response_format json_schema.strict must be true or false, got {strict!r}",
                param=_PARAM,
            )
        sent = json.loads(json.dumps(dict(value)))  # a plain copy the caller cannot change
        return OutputSpec(response_format=sent, name=given, schema=schema, strict=strict)
    if kind is not None and not isinstance(kind, str | list):
        raise InvalidRequestError(
            f"response_format 'type' must be a string, got {kind!r}", param=_PARAM
        )
    # A bare JSON schema ({"type": "object", ...}, {"properties": ...}, {"anyOf": ...}).
    schema = _check_schema(value, "response_format")
    title = schema.get("title")
    name = strict_name(title) if isinstance(title, str) else "response"
    strict = _strictable(schema)
    return OutputSpec(
        response_format=_json_schema_format(name, copy.deepcopy(schema), strict),
        name=name,
        schema=schema,
        strict=strict,
    )


def strip_fences(text: str) -> str:
    """``text`` without one surrounding Markdown code fence (```` ```json ... ``` ````)."""
    match = _FENCE.match(text)
    return match.group("body") if match else text


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def parse_output(spec: OutputSpec, text: str | None, *, finish_reason: str | None = None) -> Any:
    """The model's answer ``text`` decoded and validated against ``spec``.

    Returns an instance of ``spec.model`` when a pydantic model was given, else the decoded
    JSON (checked against ``spec.schema`` when there is one). One Markdown code fence around
    the JSON is tolerated. ``finish_reason="length"`` makes the error say the answer was cut.

    Raises:
        StructuredOutputError: the text is empty, not JSON, or does not fit the schema; its
            ``raw`` is the text and ``errors`` each problem (paths and rules, not the values).
    """
    raw = text or ""
    cut = (
        " (the answer was cut off at max_tokens: raise max_tokens)"
        if finish_reason == "length"
        else ""
    )
    body = strip_fences(raw).strip()
    if not body:
        raise StructuredOutputError(f"the model's answer is empty, not JSON{cut}", raw=raw)
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        problem = f"not valid JSON: {getattr(exc, 'msg', str(exc))}"
        if isinstance(exc, json.JSONDecodeError):
            problem += f" at line {exc.lineno} column {exc.colno}"
        raise StructuredOutputError(
            f"the model's answer is {problem}{cut}", raw=raw, errors=[problem]
        ) from None
    if spec.model is not None:
        from pydantic import ValidationError

        try:
            return spec.model.model_validate_json(body)
        except ValidationError as exc:
            errors = [f"{_path(e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)]
            raise _invalid(spec, raw, errors, cut) from None
    if spec.schema is not None:
        validators = _jsonschema("validators")
        validator = validators.validator_for(spec.schema)(spec.schema)
        found = sorted(validator.iter_errors(decoded), key=lambda e: list(e.absolute_path))
        if found:
            errors = [
                f"{_path(e.absolute_path)}: fails {e.validator!r}: {_rule(e.validator_value)}"
                for e in found
            ]
            raise _invalid(spec, raw, errors, cut)
    return decoded


def _rule(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _invalid(spec: OutputSpec, raw: str, errors: list[str], cut: str) -> StructuredOutputError:
    shown = errors[:_MAX_ERRORS]
    more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
    return StructuredOutputError(
        f"the model's answer does not fit the schema {spec.name or ''!s}{cut}: "
        + "; ".join(shown)
        + more,
        raw=raw,
        errors=errors,
    )


def parse_response(spec: OutputSpec, response: LLMResponse) -> Any:
    """:func:`parse_output` on ``response.content``; an error names the entry that answered.

    Raises:
        StructuredOutputError: as :func:`parse_output`, with ``entry``, ``model``, ``provider``
            and ``request_id`` filled from ``response``.
    """
    try:
        return parse_output(spec, response.content, finish_reason=response.finish_reason)
    except StructuredOutputError as exc:
        exc.entry = response.entry
        exc.model = response.entry.model
        exc.provider = response.entry.provider
        exc.request_id = response.request_id or None
        raise
