"""Tools an LLM agent may call: typed Python functions, and MCP servers' tools."""

from podium.tools.tool import Tool, ToolArgumentsInvalid, ToolFailed, make_tool, tool

__all__ = ["Tool", "ToolArgumentsInvalid", "ToolFailed", "make_tool", "tool"]
