import json

from tests.helpers import CATALOGUE


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_import_jsonl_then_search(ready, config, tmp_path):
    from tests.helpers import make_app, new_key

    result = ready("items", "import", write_jsonl(tmp_path / "items.jsonl", CATALOGUE))
    assert f"imported {len(CATALOGUE)} items" in result.output
    app = make_app(config)
    hits = app.test_client().get("/api/v1/search?q=spaghetti&k=1", headers={"Authorization": f"Bearer {new_key(app)}"})
    assert hits.json["items"][0]["id"] == "pasta"


def test_import_csv_maps_tags_and_extra_columns(ready, config, tmp_path):
    from tests.helpers import make_app, new_key

    path = tmp_path / "items.csv"
    path.write_text("id,title,category,tags,colour\nmug,Blue mug,kitchen,ceramic|blue,blue\nbowl,Bowl,,,\n")
    assert "imported 2 items" in ready("items", "import", path).output
    app = make_app(config)
    got = app.test_client().get("/api/v1/items/mug", headers={"Authorization": f"Bearer {new_key(app)}"}).json
    assert got["tags"] == ["ceramic", "blue"] and got["attributes"] == {"colour": "blue"} and got["category"] == "kitchen"


def test_import_with_bad_lines_names_them_and_stores_nothing(ready, config, tmp_path):
    from tests.helpers import make_app, new_key

    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(CATALOGUE[0]) + "\n\n" + '{"id": "x", "title": 5}\n' + "{not json\n" + "[1]\n")
    result = ready("items", "import", path, ok=False)
    assert "line 3: title:" in result.stderr
    assert "line 4: not valid JSON" in result.stderr
    assert "line 5: each line must be a JSON object" in result.stderr
    assert "nothing was imported" in result.stderr
    app = make_app(config)
    assert app.test_client().get("/api/v1/items/pasta", headers={"Authorization": f"Bearer {new_key(app)}"}).status_code == 404

    result = ready("items", "import", path, "--skip-invalid")
    assert "imported 1 items" in result.output and "3 problems skipped" in result.output


def test_import_reports_csv_line_numbers(ready, tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("id,title\nok,Fine\nbad id,Broken\n")
    assert "line 3: id:" in ready("items", "import", path, ok=False).stderr


def test_reindex_rebuilds_the_index(ready, config, tmp_path):
    ready("items", "import", write_jsonl(tmp_path / "items.jsonl", CATALOGUE))
    result = ready("items", "reindex")
    assert f"index holds {len(CATALOGUE)} items" in result.output
