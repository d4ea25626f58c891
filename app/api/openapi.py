"""Endpoints declare their schemas once; the same pydantic models validate requests and build /openapi.json.

Kept hand-written rather than spectree or flask-openapi3 (both tried on these routes, 2026-11-27): both read
bodies with `get_json(silent=True)`, so malformed JSON and wrong content types needed our own hook anyway;
flask-openapi3 re-parses a JSON string body with pydantic's parser (a NaN bypass), drops `security: []` and
JSON-Schema keywords such as `propertyNames`; spectree cannot type path parameters."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from flask import Flask, request
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema

from app.api.schemas.common import ErrorBody
from app.errors import invalid

REF = "#/components/schemas/{model}"


def endpoint(
    *,
    summary: str,
    responses: dict[int, type[BaseModel] | None],
    errors: tuple[int, ...] = (),
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    validate_body: bool = True,
    path: dict[str, Any] | None = None,
    tag: str = "items",
) -> Callable:
    """Validate the query string (→ `query=`) and JSON body (→ `body=`) with pydantic, and record the schemas.
    `errors` lists the error statuses the view itself answers; those of validation, bodies and keys are added."""

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
            summary=summary,
            responses=responses,
            errors=errors,
            query=query,
            body=body,
            path=path or {},
            tag=tag,
            description=(view.__doc__ or "").strip(),
        )
        return wrapper

    return decorate


def build_spec(app: Flask, title: str, version: str) -> dict[str, Any]:
    operations = []
    models: set[type[BaseModel]] = {ErrorBody}
    for rule in app.url_map.iter_rules():
        doc = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if doc is None:
            continue
        keyed = getattr(app.blueprints.get(rule.endpoint.split(".")[0]), "access", None) == "key"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operations.append((rule, method.lower(), doc, keyed))
        models |= {m for m in [doc["body"], *doc["responses"].values()] if m is not None}

    mode = {m: "validation" if any(m is op[2]["body"] for op in operations) else "serialization" for m in models}
    _, defs = models_json_schema([(m, mode[m]) for m in models], ref_template=REF)
    paths: dict[str, dict] = {}
    for rule, method, doc, keyed in operations:
        route = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        paths.setdefault(route, {})[method] = _operation(rule, doc, keyed)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "feedloop keys create"}},
        },
    }


def error_statuses(doc: dict, keyed: bool) -> list[int]:
    statuses = set(doc["errors"])
    if keyed:
        statuses |= {401, 503}  # 503: the key is checked in the database, which may be unreachable
    if doc["body"] is not None:
        statuses |= {400, 413, 415, 422}
    if doc["query"] is not None:
        statuses.add(422)
    return sorted(statuses - set(doc["responses"]))


def _operation(rule, doc: dict, keyed: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": doc["summary"],
        "operationId": rule.endpoint.replace(".", "_"),
        "tags": [doc["tag"]],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": _path_schema(doc["path"].get(name))}
            for name in sorted(rule.arguments)
        ],
        "responses": {},
        "security": [{"bearer": []}] if keyed else [],
    }
    if doc["description"]:
        op["description"] = doc["description"]
    if doc["query"] is not None:
        schema = doc["query"].model_json_schema()
        for name, prop in schema["properties"].items():
            op["parameters"].append({"name": name, "in": "query", "required": name in schema.get("required", []), "schema": prop})
    if doc["body"] is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(doc["body"])}}}
    for status, model in doc["responses"].items():
        op["responses"][str(status)] = {"description": HTTPStatus(status).phrase}
        if model is not None:
            op["responses"][str(status)]["content"] = {"application/json": {"schema": _ref(model)}}
    for status in error_statuses(doc, keyed):
        op["responses"][str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": _ref(ErrorBody)}},
        }
    return op


def _path_schema(annotation: Any) -> dict:
    return TypeAdapter(annotation).json_schema() if annotation is not None else {"type": "string"}


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": REF.format(model=model.__name__)}
