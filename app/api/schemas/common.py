from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StringConstraints

ITEM_ID_PATTERN = r"^[A-Za-z0-9_:@.\-]+$"
EVENT_ID_PATTERN = r"^[A-Za-z0-9]{1,32}$"  # the recommender issues uuid4 hex; the pages check ids with it too
# Numbers an app may send as context or attributes: far beyond any price, count or coordinate, and small enough
# that no product of a few of them overflows the model's float arithmetic.
NUMBER_BOUND = 1e9

ItemId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=ITEM_ID_PATTERN)]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=EVENT_ID_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
BoundedInt = Annotated[StrictInt, Field(ge=-NUMBER_BOUND, le=NUMBER_BOUND)]
BoundedFloat = Annotated[StrictFloat, Field(ge=-NUMBER_BOUND, le=NUMBER_BOUND, allow_inf_nan=False)]


def _integral(value: Any) -> Any:
    """JSON Schema's "integer" is a number with no fractional part, so 63.0 is one: take it as 63."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def integer(ge: int, le: int, **field: Any) -> Any:
    """An integer as JSON Schema means it (63 or 63.0; not 63.5, "63" or true), for counts such as `k` in bodies."""
    return Annotated[StrictInt, Field(ge=ge, le=le, **field), BeforeValidator(_integral)]


Scalar = Union[Annotated[str, StringConstraints(max_length=1000)], StrictBool, BoundedInt, BoundedFloat]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Query strings arrive as text: numbers are parsed, unknown parameters refused."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. validation_error")
    message: str
    details: Optional[list[dict[str, Any]]] = None


class RowError(BaseModel):
    index: int = Field(description="position of the row in the request")
    field: str
    message: str
