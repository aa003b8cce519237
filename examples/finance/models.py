"""Output schemas for the monthly-report workflow."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Overview(BaseModel):
    """The overview the writer model produces (and the template fallback imitates).

    One bounded string and nothing else, so that a small model's grammar-constrained
    reply stays short and always parses.
    """

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=600,
        description="Two or three sentences summarising the month's figures.",
    )
