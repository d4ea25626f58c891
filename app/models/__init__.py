"""Database tables, by area. Everything that must not be lost lives here; the FAISS index is derived.

Importing this package registers every table on SQLModel.metadata (Alembic relies on it)."""

from app.models.access import ApiKey, User
from app.models.base import utcnow
from app.models.catalogue import CatalogueChange, Item, ItemVector
from app.models.datasets import Dataset, DatasetRow
from app.models.interactions import ActivityMinute, Interaction
from app.models.loop import Event, LearnerState, ModelRequest, ModelVersion, QValue, Reward
from app.models.monitoring import Alert, DriftReport, KpiSnapshot
from app.models.ops import JobRun, RateLimit
from app.models.polls import Poll, PollAsk, PollResponse
from app.models.retraining import ModelCard, ModelRelease, ShadowDecision
from app.models.review import AuditEntry, ExcludedUser, ReviewDecision, ReviewQueue, ReviewTask
from app.models.webhooks import Webhook, WebhookDelivery

__all__ = [
    "ActivityMinute",
    "Alert",
    "ApiKey",
    "AuditEntry",
    "CatalogueChange",
    "Dataset",
    "DatasetRow",
    "DriftReport",
    "Event",
    "ExcludedUser",
    "Interaction",
    "Item",
    "ItemVector",
    "JobRun",
    "KpiSnapshot",
    "LearnerState",
    "ModelCard",
    "ModelRelease",
    "ModelRequest",
    "ModelVersion",
    "Poll",
    "PollAsk",
    "PollResponse",
    "QValue",
    "RateLimit",
    "ReviewDecision",
    "ReviewQueue",
    "ReviewTask",
    "Reward",
    "ShadowDecision",
    "User",
    "Webhook",
    "WebhookDelivery",
    "utcnow",
]
