"""Settings, tokens and the ``serve`` command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from api_helpers import TOKEN, TOKENS

import airpath.api
from airpath.api import ApiConfigError, ApiSettings, load_tokens
from airpath.api.cli import add_serve_parser, settings_from_args


def test_public_surface() -> None:
    assert airpath.api.__all__ == ["ApiConfigError", "ApiSettings", "create_app", "load_tokens"]


def test_tokens_from_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({TOKEN: "from-file"}))
    env = {"AIRPATH_API_TOKENS": json.dumps({TOKEN: "from-env", "e" * 20: "env-only"})}
    assert load_tokens(path, env) == {TOKEN: "from-file", "e" * 20: "env-only"}
    assert load_tokens(None, {}) == {}


@pytest.mark.parametrize(
    "text",
    ['{"short": "p"}', '{"0123456789abcdefgh": ""}', "[1]", "{", '{" 0123456789abcdefgh": "p"}'],
)
def test_bad_tokens_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(text)
    with pytest.raises(ApiConfigError):
        load_tokens(path)


def test_settings_are_checked(helsinki_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ApiConfigError, match="not a network"):
        ApiSettings.create(tmp_path)
    with pytest.raises(ApiConfigError, match="must not be inside"):
        ApiSettings.create(helsinki_dir, landing_dir=tmp_path, dead_letter_dir=tmp_path / "dead")
    with pytest.raises(ApiConfigError, match="unknown API settings"):
        ApiSettings.create(helsinki_dir, max_age=3)
    with pytest.raises(ApiConfigError, match="readings_burst"):
        ApiSettings.create(helsinki_dir, readings_burst=0)
    s = ApiSettings.create(helsinki_dir, landing_dir=tmp_path / "in")
    assert s.dead_letter_dir == tmp_path / "in-rejected"


def test_settings_round_trip_without_tokens(helsinki_dir: Path, tmp_path: Path) -> None:
    s = ApiSettings.create(
        helsinki_dir, landing_dir=tmp_path / "in", tokens=TOKENS, max_field_age_s=30.0
    )
    text = s.to_json()
    assert TOKEN not in text
    assert ApiSettings.from_json(text, TOKENS) == s


def test_serve_options(helsinki_dir: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    tokens = tmp_path / "t.json"
    tokens.write_text(json.dumps(TOKENS))
    args = parser.parse_args(
        ["serve", "--network", str(helsinki_dir), "--landing", str(tmp_path / "in"),
         "--tokens", str(tokens), "--max-field-age", "0", "--port", "9000"]
    )  # fmt: skip
    assert args.func.__name__ == "cmd_serve"
    assert args.port == 9000
    s = settings_from_args(args)
    assert s.tokens == TOKENS
    assert s.max_field_age_s == 0.0
    assert s.landing_dir == tmp_path / "in"
