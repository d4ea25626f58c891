import pytest

from tests.helpers import item


def search(client, auth, q: str, k: int = 3) -> list[dict]:
    response = client.get("/api/v1/search", query_string={"q": q, "k": k}, headers=auth)
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_search_finds_items_by_meaning_best_first(client, auth, catalogue):
    hits = search(client, auth, "italian pasta dinner")
    assert hits[0]["id"] == "pasta"
    assert set(hits[0]) == {"id", "title", "score"} and hits[0]["title"] == "Spaghetti carbonara"
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert search(client, auth, "flying camera", 1)[0]["id"] == "drone"
    assert search(client, auth, "science fiction book about space", 1)[0]["id"] == "novel"


def test_k_limits_the_results(client, auth, catalogue):
    assert len(search(client, auth, "food", 2)) == 2
    assert len(search(client, auth, "food", 100)) == len(catalogue)


def test_items_are_searchable_as_soon_as_the_upsert_returns(client, auth, catalogue):
    client.post("/api/v1/items", json={"items": [item("kayak", "Inflatable sea kayak for two paddlers")]}, headers=auth)
    assert search(client, auth, "paddling boat", 1)[0]["id"] == "kayak"


def test_updated_text_moves_the_item_in_search(client, auth, catalogue):
    client.post("/api/v1/items", json={"items": [item("novel", "Mountain bike with hydraulic brakes")]}, headers=auth)
    assert search(client, auth, "bicycle", 1)[0]["id"] == "novel"
    assert all(h["id"] != "novel" for h in search(client, auth, "space station crew story", 2))


def test_deleted_items_never_appear(client, auth, catalogue):
    client.delete("/api/v1/items/pasta", headers=auth)
    assert all(h["id"] != "pasta" for h in search(client, auth, "spaghetti carbonara", 10))


def test_similar_items_exclude_the_item_itself(client, auth, catalogue):
    response = client.get("/api/v1/items/pasta/similar?k=2", headers=auth)
    assert response.status_code == 200
    ids = [h["id"] for h in response.json["items"]]
    assert "pasta" not in ids and ids[0] == "pizza" and len(ids) == 2


def test_similar_for_unknown_or_deleted_item_is_404(client, auth, catalogue):
    assert client.get("/api/v1/items/nope/similar", headers=auth).status_code == 404
    client.delete("/api/v1/items/pasta", headers=auth)
    assert client.get("/api/v1/items/pasta/similar", headers=auth).status_code == 404


@pytest.mark.parametrize(
    "query, field",
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 1001}, "q"),
        ({"q": "pasta", "k": 0}, "k"),
        ({"q": "pasta", "k": -3}, "k"),
        ({"q": "pasta", "k": 1001}, "k"),
        ({"q": "pasta", "k": "ten"}, "k"),
        ({"q": "pasta", "sort": "price"}, "sort"),
    ],
)
def test_bad_search_parameters_are_422(client, auth, catalogue, query, field):
    response = client.get("/api/v1/search", query_string=query, headers=auth)
    assert response.status_code == 422
    assert response.json["details"][0]["field"] == field


def test_search_on_an_empty_catalogue_is_empty(client, auth):
    assert search(client, auth, "anything") == []
