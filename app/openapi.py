"""Endpoints declare their schemas once; the same pydantic models validate requests and build /openapi.json."""
from __future__ import annotations

import functools
import re
from typing import Any, Callable

from flask import Flask, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from app.errors import invalid

REF = "#/components/schemas/{model}"


def endpoint(
    *,
    summary: str,
    responses: dict[int, type[BaseModel] | None],
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    validate_body: bool = True,
    public: bool = False,
    tag: str = "items",
) -> Callable:
    """Validate the query string (→ `query=`) and JSON body (→ `body=`) with pydantic, and record the schemas."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if query is not None:
                try:
                    kwargs["query"] = query.model_validate(request.args.to_dict())
                except ValidationError as exc:
                    raise invalid(exc, "query string") from None
            if body is not None:
                data = request.get_json()
                if validate_body:
                    try:
                        kwargs["body"] = body.model_validate(data)
                    except ValidationError as exc:
                        raise invalid(exc, "request body") from None
                else:
                    kwargs["body"] = data
            return view(*args, **kwargs)

        wrapper.openapi = dict(
            summary=summary, responses=responses, query=query, body=body, public=public, tag=tag,
            description=(view.__doc__ or "").strip(),
        )
        return wrapper

    return decorate


def build_spec(app: Flask, title: str, version: str) -> dict[str, Any]:
    from app.api.schemas import ErrorBody

    operations = []
    models: set[type[BaseModel]] = {ErrorBody}
    for rule in app.url_map.iter_rules():
        doc = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if doc is None:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operations.append((rule, method.lower(), doc))
        models |= {m for m in [doc["body"], *doc["responses"].values()] if m is not None}

    mode = {m: "validation" if any(m is op[2]["body"] for op in operations) else "serialization" for m in models}
    _, defs = models_json_schema([(m, mode[m]) for m in models], ref_template=REF)
    paths: dict[str, dict] = {}
    for rule, method, doc in operations:
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        paths.setdefault(path, {})[method] = _operation(rule, doc)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "feedloop keys create"}},
        },
    }


def _operation(rule, doc: dict) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": doc["summary"],
        "operationId": rule.endpoint.replace(".", "_"),
        "tags": [doc["tag"]],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in sorted(rule.arguments)
        ],
        "responses": {},
    }
    if doc["description"]:
        op["description"] = doc["description"]
    if doc["query"] is not None:
        schema = doc["query"].model_json_schema()
        for name, prop in schema["properties"].items():
            op["parameters"].append(
                {"name": name, "in": "query", "required": name in schema.get("required", []), "schema": prop}
            )
    if doc["body"] is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(doc["body"])}}}
    for status, model in doc["responses"].items():
        op["responses"][str(status)] = {"description": _status_text(status)}
        if model is not None:
            op["responses"][str(status)]["content"] = {"application/json": {"schema": _ref(model)}}
    errors = [401, 422] if not doc["public"] else [422]
    for status in errors:
        op["responses"].setdefault(str(status), {"description": _status_text(status), "content": {
            "application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}})
    if doc["public"]:
        op["security"] = []
    else:
        op["security"] = [{"bearer": []}]
    return op


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _status_text(status: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status).phrase
