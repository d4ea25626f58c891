"""One error shape everywhere: {"error": code, "message": text, "details"?: [...]}."""
from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import Flask, Request, jsonify
from flask.json.provider import DefaultJSONProvider
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


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
        elif exc.code == 415:
            message = "send the body as JSON with Content-Type: application/json"
        response, status = error_response(exc.code or 500, _snake(exc.name), message)
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side; it has been logged")


class StrictJSONProvider(DefaultJSONProvider):
    """Refuses NaN and ±Infinity, which Python's json accepts and which slip past range checks."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _refuse_constant)
        return json.loads(s, **kwargs)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class StrictJSONRequest(Request):
    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            return super().on_json_loading_failed(e)  # wrong Content-Type: 415
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {e}")
