"""Outputs: turned into JSON values, and checked against the task's schema."""

from __future__ import annotations

from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from podium.errors import OutputInvalid


def schema_of(spec: Any) -> dict[str, Any] | None:
    """The JSON schema of an output spec: a pydantic model class or a JSON schema dict."""
    if spec is None:
        return None
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return spec.model_json_schema()
    if isinstance(spec, dict):
        return spec
    raise TypeError(f"an output schema is a pydantic model class or a JSON schema, not {spec!r}")


def to_json(value: Any) -> Any:
    """A JSON value for any output (pydantic models, dataclasses, dates…).

    Raises:
        OutputInvalid: the value has a part that has no JSON form.
    """
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError as e:
        raise OutputInvalid(f"output is not JSON-serialisable: {e}") from None


def validate(spec: Any, value: Any) -> Any:
    """`value` as JSON, checked against `spec` (None accepts anything).

    Raises:
        OutputInvalid: it does not fit, with the reasons.
    """
    value = to_json(value)
    if spec is None:
        return value
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        try:
            return spec.model_validate(value).model_dump(mode="json")
        except ValidationError as e:
            reasons = "; ".join(f"{'.'.join(map(str, err['loc'])) or '(root)'}: {err['msg']}"
                                for err in e.errors()[:5])
            raise OutputInvalid(f"output does not fit {spec.__name__}: {reasons}") from None
    try:
        jsonschema.validate(value, spec)
    except jsonschema.ValidationError as e:
        where = ".".join(map(str, e.absolute_path)) or "(root)"
        raise OutputInvalid(f"output does not fit its schema at {where}: {e.message}") from None
    return value
