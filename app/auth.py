"""API keys: random tokens shown once, stored as SHA-256 hashes, checked on every /api/v1 request."""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import datetime

from flask import g, request
from sqlmodel import Session, select

from app import db
from app.errors import ApiError
from app.models import ApiKey, utcnow

KEY_PREFIX = "fl_"
CACHE_SECONDS = 30  # a revoked key stops working within this long in every worker


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


class KeyCache:
    """hash → (key id or None, checked at). Misses are cached too, so guessing costs no database work."""

    def __init__(self, max_entries: int = 10_000):
        self._entries: dict[str, tuple[int | None, float]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def lookup(self, key_hash: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key_hash)
        if hit is not None and now - hit[1] < CACHE_SECONDS:
            return hit[0]
        key_id = _check_and_touch(key_hash)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key_hash] = (key_id, now)
        return key_id


def _check_and_touch(key_hash: str) -> int | None:
    with db.write_session() as s:
        row = s.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
        if row is None or row.revoked_at is not None:
            return None
        row.last_used_at = utcnow()
        return row.id


def require_api_key() -> None:
    """before_request hook of the API blueprint: 401 JSON unless a valid bearer key is sent."""
    from flask import current_app

    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "openapi", {}).get("public"):
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer KEY' (create one with: feedloop keys create)")
    key_id = current_app.extensions["api_keys"].lookup(hash_key(token.strip()))
    if key_id is None:
        raise ApiError(401, "unauthorized", "the API key is not valid or has been revoked")
    g.api_key_id = key_id


def last_used(row: ApiKey) -> str:
    return row.last_used_at.isoformat(timespec="seconds") if isinstance(row.last_used_at, datetime) else "never"
