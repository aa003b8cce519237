"""Built-in agents: `llm` (a model, with tools), `sql`, `http`, `email`; the interceptors
around their model and tool calls (`interceptors`); prompt assembly (`context`)."""
