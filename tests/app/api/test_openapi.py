from openapi_spec_validator import validate


def test_the_document_is_valid_openapi_and_lists_every_route(client):
    spec = client.get("/api/v1/openapi.json").json
    validate(spec)
    assert {"/api/v1/items", "/api/v1/items/{item_id}", "/api/v1/items/{item_id}/similar", "/api/v1/search"} <= set(spec["paths"])
    assert set(spec["paths"]["/api/v1/items/{item_id}"]) == {"get", "delete"}


def test_the_document_uses_the_validating_schemas(client):
    spec = client.get("/api/v1/openapi.json").json
    item = spec["components"]["schemas"]["ItemIn"]
    assert item["additionalProperties"] is False
    assert item["properties"]["title"]["maxLength"] == 500
    assert set(item["required"]) == {"id", "title"}
    params = {p["name"]: p for p in spec["paths"]["/api/v1/search"]["get"]["parameters"]}
    assert params["q"]["required"] and params["k"]["schema"]["maximum"] == 1000
    assert spec["paths"]["/api/v1/search"]["get"]["security"] == [{"bearer": []}]


def test_the_docs_page_loads_its_assets_from_this_server(client):
    page = client.get("/api/v1/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page and "http" not in page.split("<body>")[1]
    for asset in (
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
        "/static/docs.js",
    ):
        assert client.get(asset).status_code == 200, asset
