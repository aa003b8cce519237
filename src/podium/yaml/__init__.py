"""The YAML front end: workflow, registry and access-policy files read into the objects
the Python API builds, every problem named with the file, the line and the field.

    source     YAML text with the line of every key (`compose`, `read_text`)
    document   what every document shares: the strict base model, validation problems
    code       Python code a file names (`import_ref`), under the policy's `functions:`
    policies   `retry:`, `circuit:`, `budget:`, `checks:`, `router:`
    agents     `agents:` entries and the factories that build them
    patterns   pattern blocks (`chain:`, `vote:`, ...)
    mcp        `mcp_servers:`
    registry   registry files: agents many workflows share
    workflow   workflow files (`load_workflow`, `parse_workflow`)
    policy     the access-policy file (`load_policy`, `parse_policy`)

Imports point one way: the rest of Podium never imports this package; the command line,
`podium/__init__.py` and MCP serving do.
"""

from podium.yaml.code import functions_allowed, import_ref
from podium.yaml.policy import load_policy, parse_policy
from podium.yaml.registry import load_registry, workflow_registry
from podium.yaml.source import YAMLSyntaxError, compose, line_of, read_text
from podium.yaml.workflow import load_workflow, parse_workflow

__all__ = [
    "YAMLSyntaxError",
    "compose",
    "functions_allowed",
    "import_ref",
    "line_of",
    "load_policy",
    "load_registry",
    "load_workflow",
    "parse_policy",
    "parse_workflow",
    "read_text",
    "workflow_registry",
]
