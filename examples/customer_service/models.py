"""Output schemas of the customer-service workflow."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Intent = Literal["faq", "account_change", "complaint", "other"]
Complexity = Literal["simple", "complex"]


class Triage(BaseModel):
    """What the triage model makes of one ticket.

    Small on purpose, and without field descriptions (the agent's instructions define
    the values, and the schema is sent with every call): two enums and a customer number
    whose pattern the grammar enforces, so that a 135M-parameter model's reply stays a
    few dozen tokens long and always parses.
    """

    model_config = ConfigDict(extra="forbid")

    intent: Intent
    complexity: Complexity
    customer_id: str | None = Field(default=None, pattern=r"^C-[0-9]{5}$")


class Handled(BaseModel):
    """How a ticket was handled: by the workflow, or by the person it was escalated to.

    A person approving an escalated ticket gives just the reply
    (`--data '{"reply": "..."}'`); the other fields then keep their defaults, which is
    how the summary tells the two apart.
    """

    model_config = ConfigDict(extra="forbid")

    reply: str = Field(min_length=1, description="The reply sent to the customer.")
    handled_by: Literal["workflow", "human"] = "human"
    resolution: str = Field(default="answered by a person", description=(
        "What was done, e.g. 'faq:returns' or 'crm:email'."))
