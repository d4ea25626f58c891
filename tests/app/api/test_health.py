from app import create_app


def test_ready_service_reports_each_part(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    checks = response.json["checks"]
    assert checks["database"]["status"] == checks["model"]["status"] == checks["index"]["status"] == "ok"
    assert checks["model"]["dim"] == 384


def test_not_ready_until_the_model_and_index_are_loaded(config):
    response = create_app(config).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["index"]["status"] == "loading"


def test_unreachable_database_is_503(app, tmp_path):
    from app.db import make_engine

    app.extensions["db_engine"] = make_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["checks"]["database"] == {"status": "down"}
