from flask import current_app
from sqlmodel import col, select

from app import db
from app.api import bp
from app.api.items import live_item
from app.api.schemas import ScoredItem, ScoredItems, SearchQuery, SimilarQuery
from app.errors import ApiError
from app.models import Item
from app.openapi import endpoint


def scored(hits: list[tuple[str, float]]) -> dict:
    titles = dict(db.session().exec(select(Item.id, Item.title).where(col(Item.id).in_([i for i, _ in hits]))).all())
    items = [ScoredItem(id=i, title=titles[i], score=score) for i, score in hits if i in titles]
    return ScoredItems(items=items).model_dump()


@bp.get("/search")
@endpoint(summary="Search items by meaning", query=SearchQuery, responses={200: ScoredItems})
def search(query: SearchQuery):
    catalogue = current_app.extensions["catalogue"]
    vector = catalogue.encoder.encode([query.q])[0]
    return scored(catalogue.search(vector, query.k))


@bp.get("/items/<item_id>/similar")
@endpoint(summary="Items similar to an item", query=SimilarQuery, responses={200: ScoredItems, 404: None})
def similar(item_id: str, query: SimilarQuery):
    live_item(item_id)
    catalogue = current_app.extensions["catalogue"]
    vector = catalogue.vectors([item_id]).get(item_id)
    if vector is None:
        raise ApiError(404, "not_found", f"item {item_id!r} has no vector yet")
    return scored(catalogue.search(vector, query.k, exclude=[item_id]))
