"""Secrets never show themselves; references resolve or fail naming the reference only."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pydantic
import pytest

from podium.errors import UserError
from podium.secrets import MASK, Secret, as_secret, is_secret_ref, resolve_secret, scrub

VALUE = "hunter2-Zq9!/x y"


def test_a_secret_shows_only_a_mask() -> None:
    secret = Secret(VALUE)
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('***')"
    assert VALUE not in repr([secret, {"k": secret}])
    assert secret.reveal() == VALUE
    assert "%s %r" % (secret, secret) == "Secret('***') Secret('***')"  # noqa: UP031


def test_secrets_compare_and_hash_by_value() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret("other")
    assert Secret(VALUE) != VALUE  # a secret is not its value, so it never leaks by ==
    assert len({Secret(VALUE), Secret(VALUE)}) == 1
    assert not Secret("") and Secret("x")


def test_a_secret_wraps_only_strings() -> None:
    with pytest.raises(TypeError, match="wraps a str"):
        Secret(1234)  # type: ignore[arg-type]


def test_a_secret_survives_pickling_for_worker_processes() -> None:
    assert pickle.loads(pickle.dumps(Secret(VALUE))).reveal() == VALUE


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_TOKEN", VALUE)
    assert resolve_secret("env:PODIUM_TEST_TOKEN").reveal() == VALUE


def test_missing_env_reference_names_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_TEST_MISSING", raising=False)
    with pytest.raises(UserError, match=r"'env:PODIUM_TEST_MISSING'.*is not set"):
        resolve_secret("env:PODIUM_TEST_MISSING")


def test_file_reference_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"  {VALUE}\n", encoding="utf-8")
    assert resolve_secret(f"file:{path}").reveal() == VALUE


def test_missing_file_reference_names_the_reference(tmp_path: Path) -> None:
    ref = f"file:{tmp_path / 'absent'}"
    with pytest.raises(UserError) as info:
        resolve_secret(ref)
    assert repr(ref) in str(info.value)


def test_placeholders_make_the_whole_text_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_TOKEN", VALUE)
    secret = resolve_secret("Bearer ${env:PODIUM_TEST_TOKEN}")
    assert secret.reveal() == f"Bearer {VALUE}"
    assert secret == Secret(f"Bearer {VALUE}")
    # Each filled-in value is masked on its own too: a server may quote the bare token.
    assert scrub(f"token {VALUE} or Bearer {VALUE}", secret) == f"token {MASK} or {MASK}"


def test_empty_reference_is_refused() -> None:
    with pytest.raises(UserError, match="names nothing"):
        resolve_secret("env:")


def test_a_non_reference_is_refused_without_echoing_it() -> None:
    with pytest.raises(UserError) as info:
        resolve_secret(VALUE)
    assert VALUE not in str(info.value)


def test_is_secret_ref() -> None:
    assert is_secret_ref("env:X") and is_secret_ref("file:/x") and is_secret_ref("a ${env:X}")
    assert not is_secret_ref("application/json") and not is_secret_ref(None)
    assert not is_secret_ref("$env:X")


def test_as_secret_takes_secrets_references_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_TOKEN", VALUE)
    secret = Secret("x")
    assert as_secret(secret) is secret
    assert as_secret("env:PODIUM_TEST_TOKEN").reveal() == VALUE
    assert as_secret("plain value").reveal() == "plain value"


def test_scrub_masks_values_and_their_url_encodings() -> None:
    secret = Secret(VALUE)
    text = f"a {VALUE} b hunter2-Zq9%21%2Fx%20y c hunter2-Zq9%21%2Fx+y d"
    assert scrub(text, secret) == f"a {MASK} b {MASK} c {MASK} d"
    assert scrub("nothing here", secret, None, Secret("")) == "nothing here"


def test_scrub_masks_the_longest_secret_whole() -> None:
    assert scrub("abcdef", Secret("abc"), Secret("abcdef")) == MASK


class _Config(pydantic.BaseModel):
    password: Secret
    token: Secret | None = None


def test_pydantic_fields_resolve_and_serialise_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_TOKEN", VALUE)
    config = _Config.model_validate({"password": "env:PODIUM_TEST_TOKEN", "token": "literal"})
    assert config.password.reveal() == VALUE
    assert config.token is not None and config.token.reveal() == "literal"
    dumped = config.model_dump_json()
    assert VALUE not in dumped and "literal" not in dumped
    assert json.loads(dumped) == {"password": MASK, "token": MASK}
    assert VALUE not in repr(config)
    assert config.model_dump()["password"] == Secret(VALUE)


def test_pydantic_reports_a_missing_reference_as_a_validation_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_TEST_MISSING", raising=False)
    with pytest.raises(pydantic.ValidationError) as info:
        _Config.model_validate({"password": "env:PODIUM_TEST_MISSING"})
    (error,) = info.value.errors()
    assert error["loc"] == ("password",)
    assert "PODIUM_TEST_MISSING" in error["msg"]
    with pytest.raises(pydantic.ValidationError, match="expected a string"):
        _Config.model_validate({"password": 1234})


def test_pydantic_json_schema_marks_a_password() -> None:
    schema = _Config.model_json_schema()
    assert schema["properties"]["password"] == {
        "type": "string", "format": "password", "writeOnly": True, "title": "Password"}
