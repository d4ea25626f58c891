from flask import current_app
from pydantic import ValidationError

from app import db
from app.api import keyed
from app.api.openapi import endpoint
from app.api.schemas.common import ItemId, RowError
from app.api.schemas.items import ItemBatch, ItemIn, ItemOut, UpsertResult
from app.errors import ApiError, validation_details
from app.services.catalogue import ItemData, delete_item, live_item, upsert_items

bp = keyed("items", __name__)


def validate_rows(rows: list, limit: int) -> tuple[list[ItemData], list[RowError]]:
    """Validate each row on its own so one bad row does not sink the batch; a repeated id is an error."""
    if len(rows) > limit:
        raise ApiError(413, "too_many_items", f"send at most {limit} items per request (got {len(rows)})")
    valid: dict[str, ItemData] = {}
    errors: list[RowError] = []
    for index, row in enumerate(rows):
        try:
            item = ItemIn.model_validate(row)
        except ValidationError as exc:
            errors += [RowError(index=index, **d) for d in validation_details(exc)]
            continue
        if item.id in valid:
            errors.append(RowError(index=index, field="id", message=f"id {item.id!r} appears earlier in this request"))
            continue
        valid[item.id] = ItemData(**item.model_dump())
    return list(valid.values()), errors


@bp.post("/items")
@endpoint(summary="Create or update items", body=ItemBatch, validate_body=False, responses={200: UpsertResult})
def upsert(body):
    """Upserts by `id`. Valid rows are stored even when others fail; each failure is listed in `errors`.
    Items are searchable when the call returns."""
    if not isinstance(body, dict) or set(body) != {"items"} or not isinstance(body["items"], list):
        raise ApiError(422, "validation_error", 'the body must be {"items": [...]}')
    items, errors = validate_rows(body["items"], current_app.config["FEEDLOOP"].max_items_per_request)
    if not items:
        raise ApiError(422, "validation_error", "no item in the request is valid", [e.model_dump() for e in errors])
    upserted = upsert_items(current_app.extensions["catalogue"], items)
    return UpsertResult(upserted=upserted, errors=errors).model_dump()


def found(item_id: str):
    item = live_item(db.session(), item_id)
    if item is None:
        raise ApiError(404, "not_found", f"no item with id {item_id!r}")
    return item


@bp.get("/items/<item_id>")
@endpoint(summary="Get an item", responses={200: ItemOut}, errors=(404,), path={"item_id": ItemId})
def get(item_id: str):
    return ItemOut.model_validate(found(item_id), from_attributes=True).model_dump(mode="json")


@bp.delete("/items/<item_id>")
@endpoint(summary="Delete an item", responses={204: None}, errors=(404,), path={"item_id": ItemId})
def delete(item_id: str):
    """The item leaves search and recommendations at once; its history is kept."""
    if not delete_item(current_app.extensions["catalogue"], item_id):
        raise ApiError(404, "not_found", f"no item with id {item_id!r}")
    return "", 204
