"""A fallback agent with no imports: a function agent with a timeout runs in a worker
process that imports its module, and that import counts against the attempt's timeout
(importing `test_local_worker` itself, with pytest and the local model, takes seconds on a
loaded machine)."""


def template() -> str:
    """The writer's fallback: no model at all."""
    return "Hello from the template."
