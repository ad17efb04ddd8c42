"""The cassette linter names file and line for every credential shape, and passes clean files."""

from __future__ import annotations

from pathlib import Path

import pytest

from creative_services._secrets import KEY_SHAPES, KEY_SHAPES_BY_KIND, key_kind, redact
from creative_services.testing.lint import (
    AUTH_HEADERS,
    COOKIE_HEADERS,
    is_placeholder,
    lint_paths,
    lint_text,
    main,
)

REPO_CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"

KEYS = {
    "an Anthropic key": "sk-ant-api03-" + "a1B2c3D4" * 6,
    "an OpenRouter key": "sk-or-v1-" + "0123456789abcdef" * 4,
    "an OpenAI-style key": "sk-proj-" + "Ab1Cd2Ef3Gh4Ij5K" * 3,
    "a Google API key": "AIza" + "Sy0123456789abcdefghijklmnopqrs",
    "a Groq key": "gsk_" + "abcdefghijklmnop0123456789",
    "an xAI key": "xai-" + "abcdefghijklmnop0123456789",
    "a Hugging Face token": "hf_" + "abcdefghijklmnopqrstuvwxyz012345",
    "a Replicate token": "r8_" + "abcdefghijklmnopqrstuvwxyz012345",
    "a Perplexity key": "pplx-" + "abcdefghijklmnopqrstuvwxyz0123456789",
    "a Fireworks key": "fw_" + "abcdefghijklmnopqrstuvwx",
    "an AWS access key id": "AKIA" + "ABCDEFGHIJKLMNOP",
    "a Google OAuth token": "ya29." + "a0AfH6SMBx0123456789abcdef",
    "a bearer token": "Bearer " + "eyJhbGciOiJIUzI1NiJ9.payload",
}


def test_every_key_kind_is_tested() -> None:
    assert set(KEYS) == set(KEY_SHAPES_BY_KIND)


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_key_shaped_text_is_reported_with_its_kind_and_line(kind: str) -> None:
    text = "interactions:\n- response:\n    body:\n      string: 'token " + KEYS[kind] + "'\n"
    findings = lint_text(text, "c.yaml")
    assert [str(f) for f in findings] == [f"c.yaml:4: text shaped like {kind}"]
    assert key_kind(KEYS[kind]) == kind


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_redaction_masks_what_the_original_shapes_cover(kind: str) -> None:
    if KEY_SHAPES.search(KEYS[kind]):  # the shapes redaction always knew stay masked
        assert KEYS[kind] not in redact(f"error: {KEYS[kind]}")


@pytest.mark.parametrize("header", sorted(AUTH_HEADERS))
def test_auth_header_with_a_value_is_reported(header: str) -> None:
    text = f"    headers:\n      {header}:\n      - opaque-value-123\n    method: POST\n"
    assert [str(f) for f in lint_text(text, "c.yaml")] == [
        f"c.yaml:2: auth header {header!r} holds a value"
    ]


@pytest.mark.parametrize("value", ["REDACTED", "Bearer REDACTED", "<API_KEY>", "'***'", "dummy"])
def test_auth_header_with_a_placeholder_is_fine(value: str) -> None:
    assert lint_text(f"      Authorization:\n      - {value}\n") == []
    assert is_placeholder(value)


@pytest.mark.parametrize("header", sorted(COOKIE_HEADERS))
def test_cookie_headers_are_reported(header: str) -> None:
    findings = lint_text(f"    headers:\n      {header.title()}:\n      - session=abc\n", "c.yaml")
    assert [str(f) for f in findings] == [f"c.yaml:2: cookie header {header.title()!r}"]


def test_inline_and_json_headers_are_reported() -> None:
    assert len(lint_text("      x-api-key: [opaque-value-123]\n")) == 1
    assert len(lint_text('        "Authorization": ["opaque-value-123"],\n')) == 1


@pytest.mark.parametrize("name", ["key", "api_key", "apikey", "access_token"])
def test_key_query_parameters_are_reported(name: str) -> None:
    line = f"    uri: https://example.test/v1beta/models/m:generateContent?alt=sse&{name}=abc123\n"
    assert [str(f) for f in lint_text(line, "c.yaml")] == [f"c.yaml:1: query parameter {name!r}"]
    assert lint_text(line.replace("abc123", "REDACTED")) == []


@pytest.mark.parametrize("field", ["api_key", "apiKey", "x-api-key", "access_token", "secretKey"])
def test_key_fields_of_json_bodies_are_reported(field: str) -> None:
    line = f"""    body: '{{"model": "m", "{field}": "opaque-value-123"}}'\n"""
    assert [str(f) for f in lint_text(line, "c.yaml")] == [f"c.yaml:1: body field {field!r}"]
    escaped = f'    body: "{{\\"{field}\\": \\"opaque-value-123\\"}}"\n'
    assert len(lint_text(escaped)) == 1
    assert lint_text(line.replace("opaque-value-123", "REDACTED")) == []


def test_fake_test_keys_and_ordinary_text_are_clean() -> None:
    text = (
        "      content-type:\n      - application/json\n"
        '      string: \'{"key": "value", "message": "sk-' + "test-abcdefghijklmnopqrstuv\"}'\n"
        "    uri: https://api.openai.com/v1/chat/completions?stream=true\n"
    )
    assert lint_text(text) == []


def test_the_repositorys_cassettes_are_clean() -> None:
    assert lint_paths([REPO_CASSETTES]) == []


def test_main_names_file_and_line_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.yaml").write_text("interactions: []\n", encoding="utf-8")
    bad = tmp_path / "sub" / "bad.yml"
    bad.parent.mkdir()
    bad.write_text("a: 1\n      Authorization:\n      - Bearer opaque\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text(KEYS["a Groq key"], encoding="utf-8")  # not a cassette
    assert main([str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{bad}:2: auth header 'Authorization' holds a value\n"
    assert "1 problem(s) in 1 of 2 cassette file(s)" in err
    assert main([str(tmp_path / "ok.yaml")]) == 0
    assert main([str(tmp_path / "missing")]) == 2


def test_key_fields_of_bodies_stored_as_yaml_mappings_are_reported() -> None:
    text = "    body:\n      apiKey: opaque-value-123\n      messages: []\n"
    assert [str(f) for f in lint_text(text, "c.yaml")] == ["c.yaml:2: body field 'apiKey'"]
    assert lint_text(text.replace("opaque-value-123", "REDACTED")) == []
