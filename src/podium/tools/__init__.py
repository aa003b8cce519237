"""Tools an LLM agent may call: typed Python functions, and MCP servers' tools."""

from podium.tools.calls import DEFAULT_MAX_RESULT_BYTES
from podium.tools.tool import Tool, ToolArgumentsInvalid, ToolFailed, make_tool, tool

__all__ = ["DEFAULT_MAX_RESULT_BYTES", "Tool", "ToolArgumentsInvalid", "ToolFailed",
           "make_tool", "tool"]
