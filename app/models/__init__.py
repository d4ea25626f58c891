"""Database tables, by area. Everything that must not be lost lives here; the FAISS index is derived.

Importing this package registers every table on SQLModel.metadata (Alembic relies on it)."""

from app.models.access import ApiKey, User
from app.models.base import utcnow
from app.models.catalogue import CatalogueChange, Item, ItemVector
from app.models.loop import Event, LearnerState, ModelRequest, ModelVersion, QValue, Reward
from app.models.ops import JobRun

__all__ = [
    "ApiKey",
    "CatalogueChange",
    "Event",
    "Item",
    "ItemVector",
    "JobRun",
    "LearnerState",
    "ModelRequest",
    "ModelVersion",
    "QValue",
    "Reward",
    "User",
    "utcnow",
]
