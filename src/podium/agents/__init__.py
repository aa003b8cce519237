"""Built-in agents (`llm`, `sql`, `http`, `email`, `function`), and where blocking calls
run: `DaemonExecutor`, an event loop's default executor that never keeps the process
alive for a call that does not return."""

from podium.agents._isolate import DaemonExecutor

__all__ = ["DaemonExecutor"]
