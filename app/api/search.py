from flask import current_app

from app import db
from app.api import keyed
from app.api.items import found
from app.api.openapi import endpoint
from app.api.schemas.common import ItemId
from app.api.schemas.search import ScoredItem, ScoredItems, SearchQuery, SimilarQuery
from app.errors import ApiError
from app.services.catalogue import titles_of

bp = keyed("search", __name__)


def scored(hits: list[tuple[str, float]]) -> dict:
    titles = titles_of(db.session(), [i for i, _ in hits])
    return ScoredItems(items=[ScoredItem(id=i, title=titles[i], score=score) for i, score in hits if i in titles]).model_dump()


@bp.get("/search")
@endpoint(summary="Search items by meaning", query=SearchQuery, responses={200: ScoredItems})
def search(query: SearchQuery):
    catalogue = current_app.extensions["catalogue"]
    vector = catalogue.encoder.encode([query.q])[0]
    catalogue.sync()
    return scored(catalogue.search(vector, query.k))


@bp.get("/items/<item_id>/similar")
@endpoint(
    summary="Items similar to an item", query=SimilarQuery, responses={200: ScoredItems}, errors=(404,), path={"item_id": ItemId}
)
def similar(item_id: str, query: SimilarQuery):
    found(item_id)
    catalogue = current_app.extensions["catalogue"]
    catalogue.sync()
    vector = catalogue.vectors([item_id]).get(item_id)
    if vector is None:
        raise ApiError(404, "not_found", f"item {item_id!r} has no vector yet")
    return scored(catalogue.search(vector, query.k, exclude=[item_id]))
