"""Orchestration patterns, each one construct.

Shapes of the task graph (they add ordinary tasks to a workflow):

    chain        tasks in sequence, each given the last's output
    route        a classifier task picks the one branch that runs
    parallel     different subtasks at once (sectioning), joined
    orchestrate  a planner fans work out to workers; a synthesiser combines it

Composite agents (they call sub-agents, each call a durable, journaled step):

    Vote         the same task by several agents, combined by a rule or a judge
    Refine       generator and evaluator loop until accepted or `max_rounds`
    Supervisor   agents hand the conversation on (`Handoff`) until one answers
    Discussion   agents take turns on a thread (round-robin or a model's choice)

Every loop is bounded, and its output says why it stopped (`stopped`). The YAML forms,
and which pattern maps to which construct: docs/patterns.md.
"""

from podium.patterns._handoff import Handoff
from podium.patterns.dag import Collect, Step, chain, orchestrate, parallel, route
from podium.patterns.discussion import Discussion
from podium.patterns.refine import Refine
from podium.patterns.supervisor import Supervisor
from podium.patterns.vote import Vote

__all__ = [
    "Collect",
    "Discussion",
    "Handoff",
    "Refine",
    "Step",
    "Supervisor",
    "Vote",
    "chain",
    "orchestrate",
    "parallel",
    "route",
]
