"""Reading the access-policy file (YAML) into a `podium.security.rbac.Policy`, every problem
named with the file, the line and the field. The file's format is drawn in `rbac`'s
docstring and in docs/rbac.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from podium.core.principal import Principal, PrincipalKind
from podium.errors import PolicyFileError, Problem, UserError
from podium.security.rbac import SECTIONS, AccessPolicy, Rule
from podium.yaml.source import YAMLSyntaxError, compose, line_of, read_text


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _names(value: Any) -> Any:
    """`[a, b]` as `{a: ["*"], b: ["*"]}`: agents and tools have one verb each."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: ["*"] for v in value}
    return value


WorkflowVerb = Literal["run", "view", "approve", "cancel", "serve", "*"]
MemoryVerb = Literal["read", "write", "forget", "trust", "*"]


def _verbs(value: Any) -> Any:
    """`keys: [status]` as `{"*": [status]}`: a kind with one resource."""
    return {"*": value} if isinstance(value, list) else value


class _RoleDoc(_Doc):
    description: str = ""
    workflows: dict[str, list[WorkflowVerb]] = {}
    agents: dict[str, list[Literal["use", "*"]]] = {}
    tools: dict[str, list[Literal["call", "*"]]] = {}
    memory: dict[str, list[MemoryVerb]] = {}
    subjects: dict[str, list[Literal["erase", "*"]]] = {}
    act_as: dict[str, list[Literal["act_as", "*"]]] = {}
    tokens: dict[str, list[Literal["issue", "revoke", "*"]]] = {}
    keys: dict[Literal["*"], list[Literal["status", "manage", "*"]]] = {}
    audit: dict[Literal["*"], list[Literal["verify", "export", "*"]]] = {}

    _lists = field_validator("agents", "tools", "subjects", "act_as", mode="before")(_names)
    _single = field_validator("keys", "audit", mode="before")(_verbs)


class _PrincipalDoc(_Doc):
    kind: PrincipalKind = "user"
    roles: list[str] = []


def _as_principal(value: Any) -> Any:
    return {"roles": value} if isinstance(value, list) else value


class _FunctionsDoc(_Doc):
    allow: list[str]


class _PolicyDoc(_Doc):
    # Each role is checked on its own (`_roles`), so that one bad role hides no problem
    # of the others, nor of the principals.
    roles: dict[str, Any] = {}
    principals: dict[str, _PrincipalDoc] = {}
    everyone: list[str] = []
    functions: _FunctionsDoc | None = None

    @field_validator("principals", mode="before")
    @classmethod
    def _principals(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _as_principal(v) for k, v in value.items()}
        return value


def _problems(e: ValidationError, lines: dict[str, int], source: str, prefix: str = ""
              ) -> list[Problem]:
    problems = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "literal"))]
        field = ".".join([prefix, *loc] if prefix else loc)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        problems.append(Problem(message=message, file=source, line=line_of(field, lines),
                                field=field or None))
    return problems


def _roles(doc: _PolicyDoc, lines: dict[str, int], source: str
           ) -> tuple[dict[str, _RoleDoc], list[Problem]]:
    roles: dict[str, _RoleDoc] = {}
    problems: list[Problem] = []
    for name, raw in doc.roles.items():
        if raw is not None and not isinstance(raw, dict):
            problems.append(Problem(
                message="a role is a mapping with workflows, agents, tools and memory",
                file=source, line=line_of(f"roles.{name}", lines), field=f"roles.{name}"))
            continue
        try:
            roles[name] = _RoleDoc.model_validate(raw or {})
        except ValidationError as e:
            problems += _problems(e, lines, source, f"roles.{name}")
    return roles, problems


def _unknown_roles(doc: _PolicyDoc, lines: dict[str, int], source: str) -> list[Problem]:
    """Principals and `everyone` may only name roles the file defines."""
    defined = ", ".join(map(repr, doc.roles)) or "none"
    places = [(f"principals.{name}.roles", p.roles) for name, p in doc.principals.items()]
    places.append(("everyone", doc.everyone))
    problems = []
    for field, roles in places:
        for i, role in enumerate(roles):
            if role not in doc.roles:
                at = f"{field}.{i}"
                # `ada: [analyst]` has no `roles` key in the file: its items sit under `ada`.
                line = lines.get(at) or lines.get(at.replace(".roles.", ".")) or line_of(
                    field, lines)
                problems.append(Problem(message=f"unknown role {role!r}; the roles are "
                                                f"{defined}", file=source, line=line,
                                        field=at))
    return problems


def _rules(roles: Mapping[str, _RoleDoc], lines: dict[str, int], source: str) -> list[Rule]:
    rules = []
    for role, grants in roles.items():
        for kind, section in SECTIONS.items():
            for pattern, verbs in getattr(grants, section).items():
                line = line_of(f"roles.{role}.{section}.{pattern}", lines)
                rules.append(Rule(role=role, kind=kind, pattern=pattern,
                                  verbs=frozenset(verbs),
                                  where=f"{source}:{line}" if line else source))
    return rules


def parse_policy(text: str, source: str = "<policy>") -> AccessPolicy:
    """A policy from the YAML text of a policy file.

    Raises:
        PolicyFileError: every problem found, each naming the file, the line and the field.
    """
    try:
        data, lines = compose(text)
    except YAMLSyntaxError as e:
        raise PolicyFileError([Problem(message=f"not valid YAML: {e.problem}", file=source,
                                       line=e.line)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyFileError([Problem(
            message="a policy file is a mapping with roles, principals and everyone",
            file=source, line=1)])
    try:
        doc = _PolicyDoc.model_validate(data)
    except ValidationError as e:
        raise PolicyFileError(_problems(e, lines, source)) from None
    roles, problems = _roles(doc, lines, source)
    problems += _unknown_roles(doc, lines, source)
    if problems:
        raise PolicyFileError(sorted(problems, key=lambda p: p.line or 0))
    principals = {name: Principal(id=name, kind=p.kind, roles=frozenset(p.roles))
                  for name, p in doc.principals.items()}
    return AccessPolicy(_rules(roles, lines, source), principals=principals,
                  everyone=doc.everyone, source=source,
                  functions=doc.functions.allow if doc.functions is not None else None)


def load_policy(path: str | Path) -> AccessPolicy:
    """A policy from a policy file.

    Raises:
        PolicyFileError: every problem found, each naming the file, the line and the field.
        UserError: the file cannot be read.
    """
    file = Path(path)
    try:
        text = read_text(file)
    except OSError as e:
        raise UserError(f"cannot read access policy {str(file)!r}: {e.strerror}") from None
    except YAMLSyntaxError as e:
        raise PolicyFileError([Problem(message=e.problem, file=str(file), line=e.line)]
                              ) from None
    return parse_policy(text, str(file))
