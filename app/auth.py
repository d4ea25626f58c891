"""API-key authentication of the keyed blueprints, with a per-process cache of recent lookups."""

from __future__ import annotations

import threading
import time

from flask import current_app, g, request

from app import db
from app.errors import ApiError
from app.services.keys import check_and_touch, hash_key

CACHE_SECONDS = 30  # a revoked key stops working within this long in every worker


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
        with db.write_session() as s:
            key_id = check_and_touch(s, key_hash)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key_hash] = (key_id, now)
        return key_id


def require_api_key() -> None:
    """before_request hook of the keyed blueprints: 401 JSON unless a valid bearer key is sent."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "unauthorized", "send an API key as 'Authorization: Bearer KEY' (create one with: feedloop keys create)"
        )
    key_id = current_app.extensions["api_keys"].lookup(hash_key(token.strip()))
    if key_id is None:
        raise ApiError(401, "unauthorized", "the API key is not valid or has been revoked")
    g.api_key_id = key_id
