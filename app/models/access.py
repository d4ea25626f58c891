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


class User(SQLModel, table=True):
    """A person who signs in to the pages: an admin (everything) or a reviewer (the queues and their own decisions).
    Apps do not sign in; they use API keys."""

    __tablename__ = "users"

    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)  # stored lower-case
    role: str = Field(max_length=16)  # admin, reviewer
    password_hash: str = Field(max_length=255)  # argon2id, with its parameters and salt
    created_at: datetime = Field(default_factory=utcnow, sa_type=Timestamp())
    last_login_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
    disabled_at: Optional[datetime] = Field(default=None, sa_type=Timestamp())
