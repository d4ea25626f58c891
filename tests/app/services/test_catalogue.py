"""Items and the index survive restarts; a missing, damaged or stale index is rebuilt from the database."""

from app import create_app
from tests.helpers import item, make_app, new_key


def search_ids(app, q: str, k: int = 3) -> list[str]:
    key = new_key(app)
    response = app.test_client().get("/api/v1/search", query_string={"q": q, "k": k}, headers={"Authorization": f"Bearer {key}"})
    return [h["id"] for h in response.json["items"]]


def test_items_and_index_survive_a_restart(config, app, catalogue):
    app.extensions["catalogue"].save_index()
    restarted = make_app(config)
    assert restarted.extensions["catalogue"].index is not None
    assert len(restarted.extensions["catalogue"].index) == len(catalogue)
    assert search_ids(restarted, "spaghetti")[0] == "pasta"


def test_restart_replays_writes_made_after_the_index_was_saved(config, app, client, auth, catalogue):
    app.extensions["catalogue"].save_index()
    client.post("/api/v1/items", json={"items": [item("kayak", "Sea kayak")]}, headers=auth)
    client.delete("/api/v1/items/pasta", headers=auth)
    restarted = make_app(config)
    ids = search_ids(restarted, "spaghetti carbonara", 10)
    assert "pasta" not in ids and "kayak" in ids


def test_a_missing_index_file_is_rebuilt_without_re_encoding(config, app, catalogue, monkeypatch):
    app.extensions["catalogue"].save_index()
    path = app.config["FEEDLOOP"].index_path
    path.unlink()
    restarted = create_app(config)
    encoder = restarted.extensions["catalogue"].encoder
    monkeypatch.setattr(encoder, "encode", lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-encoded")))
    restarted.extensions["catalogue"].warm_up()
    assert path.exists()  # saved once rebuilt, so that the next start loads it
    assert len(restarted.extensions["catalogue"].index) == len(catalogue)


def test_a_damaged_index_file_is_rebuilt(config, app, catalogue):
    app.extensions["catalogue"].save_index()
    path = app.config["FEEDLOOP"].index_path
    path.write_bytes(b"not an index")
    restarted = make_app(config)
    assert search_ids(restarted, "flying camera", 1) == ["drone"]


def test_an_index_from_another_database_is_not_trusted(config, app, catalogue, tmp_path):
    other = dict(config, database_url=f"sqlite:///{tmp_path / 'other.db'}")
    fresh = make_app(other)  # same home, so it finds the saved index, but its log is empty
    assert len(fresh.extensions["catalogue"].index) == 0


def test_two_processes_on_one_database_see_each_others_writes(config, app, client, auth, catalogue):
    other = make_app(config)  # a second gunicorn worker, say
    client.post("/api/v1/items", json={"items": [item("kayak", "Inflatable sea kayak")]}, headers=auth)
    assert search_ids(other, "paddling boat", 1) == ["kayak"]
    client.delete("/api/v1/items/kayak", headers=auth)
    assert "kayak" not in search_ids(other, "paddling boat", 6)


def test_requests_never_save_the_index_however_many_changes_they_apply(app, client, auth, catalogue):
    """Only the reindex job writes the index file; a worker used to save it inside a request after 5,000 changes."""
    import numpy as np
    from sqlalchemy import insert

    from app.models import CatalogueChange, Item, ItemVector, utcnow

    path = app.config["FEEDLOOP"].index_path
    saved_at_start = path.stat().st_mtime_ns
    encoder = app.extensions["catalogue"].encoder
    ids = [f"bulk-{n}" for n in range(6_000)]
    vectors = np.random.default_rng(0).normal(size=(len(ids), encoder.dim)).astype(np.float32)
    now = utcnow()
    with app.extensions["db_engine"].begin() as conn:  # another process's bulk write, as the change log records it
        conn.execute(
            insert(Item),
            [dict(id=i, title=i, description="", tags=[], attributes={}, created_at=now, updated_at=now) for i in ids],
        )
        conn.execute(
            insert(ItemVector),
            [
                dict(item_id=i, model_id=encoder.model_id, text_hash="", vector=v.tobytes(), updated_at=now)
                for i, v in zip(ids, vectors)
            ],
        )
        conn.execute(insert(CatalogueChange), [dict(item_id=i, created_at=now) for i in ids])
    response = client.get(f"/api/v1/items/{ids[0]}/similar?k=3", headers=auth)
    assert response.status_code == 200 and len(response.json["items"]) == 3  # the request applied the changes
    assert path.stat().st_mtime_ns == saved_at_start
