from app import create_app


def test_ready_service_reports_each_part(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    checks = response.json["checks"]
    assert checks["database"]["status"] == checks["model"]["status"] == checks["index"]["status"] == "ok"
    assert checks["model"]["dim"] == 384
    assert checks["learner"]["status"] == "not_started"  # no learner yet and nothing waiting: still ready


def test_not_ready_until_the_model_and_index_are_loaded(config):
    response = create_app(config).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["index"]["status"] == "loading"


def test_unreachable_database_is_503(app, tmp_path):
    from app.db import make_engine

    app.extensions["db_engine"] = make_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["checks"]["database"] == {"status": "down"}
    assert "learner" not in response.json["checks"]  # nothing to ask without a database
    # Anyone may ask: the driver's message (paths, hosts, users) is never in the answer.
    text = response.get_data(as_text=True).lower()
    assert "unable to open" not in text and "sqlite" not in text and str(tmp_path).lower() not in text


def test_an_unavailable_learner_status_is_503_without_the_error(app, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("no such table: learner_state at /secret/path")

    monkeypatch.setattr("app.api.health.learner_status", broken)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["checks"]["learner"] == {"status": "unavailable"}
    assert "secret" not in response.get_data(as_text=True)
