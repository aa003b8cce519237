"""Output schemas for the monthly-report workflow."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Overview(BaseModel):
    """The overview the writer model produces (and the template fallback imitates).

    One bounded string and nothing else, so that a small model's grammar-constrained
    reply stays short and always parses.
    """

    # The docstring is for people; in the schema sent to a 135M model it was copied into the
    # reply word for word, so the schema carries the field's description alone.
    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=lambda schema: schema.pop("description", None))

    text: str = Field(
        min_length=1,
        max_length=600,
        description="Two or three sentences summarising the month's figures.",
    )
