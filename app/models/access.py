from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlmodel import Field, SQLModel

from app.models.base import Timestamp, utcnow


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16)  # shown in listings so a key can be recognised
    key_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    last_used_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
    revoked_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
