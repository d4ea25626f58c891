"""One error shape everywhere: {"error": code, "message": text, "details"?: [...]}."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from typing import Any

from flask import Flask, Request, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
MAX_DEPTH = 32  # nesting of arrays and objects in a request body; the deepest valid body has 4
RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def field_path(loc: tuple) -> str:
    """('tags', 3) → 'tags[3]', ('attributes', 'colour') → 'attributes.colour'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_details(exc: ValidationError, skip: int = 0) -> list[dict[str, str]]:
    details = []
    for err in exc.errors(include_url=False):
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        details.append({"field": field_path(tuple(err["loc"])[skip:]) or "body", "message": message})
    return details


def invalid(exc: ValidationError, what: str = "request") -> ApiError:
    return ApiError(422, "validation_error", f"the {what} is not valid", validation_details(exc))


def error_response(status: int, code: str, message: str, details: list[dict] | None = None):
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    return jsonify(body), status


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        elif exc.code == 429:
            message = f"too many requests (the limit is {message}); wait a moment and try again"
        elif exc.code == 415:
            message = "send the body as JSON with Content-Type: application/json"
        if _wants_page():
            return render_template("error.html", code=exc.code, title=exc.name, message=message), exc.code
        response, status = error_response(exc.code or 500, _snake(exc.name), message)
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status

    outage = OutageLog()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if database_unavailable(exc):
            outage.seen(exc)
            response, status = error_response(
                503, "database_unavailable", "the database is not reachable right now; try again shortly"
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response, status
        log.exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side; it has been logged")

    @app.after_request
    def _database_back(response):
        if response.status_code < 500:
            outage.cleared()
        return response


def _wants_page() -> bool:
    """People on pages get an error page; the API and its clients always JSON."""
    return not request.path.startswith(("/api/", "/healthz"))


def database_unavailable(exc: BaseException) -> bool:
    """A lost or refused connection, a pool that gave none, a locked SQLite file: not a bug, and not for ever."""
    return isinstance(exc, (OperationalError, PoolTimeout)) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class OutageLog:
    """One log line when the database becomes unreachable and one when it is back, not a traceback per request."""

    def __init__(self):
        self._down_since: float | None = None
        self._lock = threading.Lock()

    def seen(self, exc: BaseException) -> None:
        with self._lock:
            first, self._down_since = self._down_since is None, self._down_since or time.monotonic()
        if first:
            log.error("database unavailable (%s); answering 503 until it is back", type(exc.__cause__ or exc).__name__)

    def cleared(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning("database reachable again after %.0f s", time.monotonic() - since)


class StrictJSONProvider(DefaultJSONProvider):
    """Refuses NaN and ±Infinity, which Python's json accepts and which slip past range checks, numbers too large
    to be finite (1e999), and nesting deeper than MAX_DEPTH; never writes a non-finite number either."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _refuse_constant)
        kwargs.setdefault("parse_float", _finite_float)
        try:
            value = json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError(f"nesting deeper than {MAX_DEPTH} levels") from None
        _check_depth(value)
        return value

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:30]} is too large")
    return value


def _check_depth(value: Any) -> None:
    """Refuse more than MAX_DEPTH arrays and objects inside one another ([[]] is 2 levels; scalars add none)."""
    level = [value] if isinstance(value, (list, dict)) else []
    for _ in range(MAX_DEPTH):
        level = [v for node in level for v in (node.values() if isinstance(node, dict) else node) if isinstance(v, (list, dict))]
        if not level:
            return
    raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")


class StrictJSONRequest(Request):
    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            return super().on_json_loading_failed(e)  # wrong Content-Type: 415
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {e}")
