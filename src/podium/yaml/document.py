"""What every YAML document of a workflow or registry file shares: the strict configuration
of its models, its text parsed with the line of every key, and the problems a validation error
makes, each naming the file, the line and the dotted field."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, ValidationError

from podium.errors import Problem, WorkflowError
from podium.yaml.source import YAMLSyntaxError, compose

DOC_CONFIG = ConfigDict(extra="forbid", populate_by_name=True)
"""The configuration of every document model: unknown fields are problems; aliased fields
(`with`) may be written by either name. (Each module's `_Doc(BaseModel)` base takes it,
so that linters see the models as pydantic models.)"""


def listify(value: Any) -> Any:
    """A lone string as a one-item list (`needs: a` for `needs: [a]`)."""
    return [value] if isinstance(value, str) else value


def compose_document(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """Parse YAML into plain data, and the line of every mapping key by dotted path.

    Raises:
        WorkflowError: the text is not valid YAML, with the line.
    """
    try:
        return compose(text)
    except YAMLSyntaxError as e:
        raise WorkflowError([Problem(message=f"not valid YAML: {e.problem}", file=source,
                                     line=e.line)]) from None


def validation_problems(e: ValidationError, prefix: str, lines: dict[str, int], source: str
                        ) -> list[Problem]:
    """The problems of a document's validation error; `prefix` is the document's dotted
    place in the file (`agents.writer`), and lines come from `compose_document`."""
    problems = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "literal"))]
        field = ".".join([prefix, *loc] if prefix else loc).replace(".with_", ".with")
        path = field
        while path and path not in lines:
            path = path.rpartition(".")[0]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        problems.append(Problem(message=message, file=source, line=lines.get(path),
                                field=field))
    return problems
