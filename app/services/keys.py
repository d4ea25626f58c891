"""API keys: random tokens shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, select

from app.models import ApiKey, utcnow

KEY_PREFIX = "fl_"


def hash_key(key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no salt or stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str) -> tuple[ApiKey, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:10], key_hash=hash_key(key))
    session.add(row)
    return row, key


def revoke_key(session: Session, key_id: int) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def check_and_touch(session: Session, key_hash: str) -> int | None:
    """The id of the active key with this hash (recording its use), or None."""
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
    if row is None or row.revoked_at is not None:
        return None
    row.last_used_at = utcnow()
    return row.id
