"""`feedloop models import` checks an archive before anything in it reaches Vowpal Wabbit; `serve --dev` stays on
loopback."""

from __future__ import annotations

import numpy as np
from sqlmodel import Session, select

from app.models import ModelVersion
from app.services.model_store import ModelStore
from bandit.features import Candidate, Shared
from bandit.model import ServedModel
from bandit.policy import PolicyConfig, VWPolicy
from bandit.qvalues import QTable
from bandit.snapshots import Snapshot

SHARED = Shared("alice", {"device": "mobile"}, hour=9, weekday=2)
CANDIDATES = [Candidate("pasta", "recipes", ("italian",)), Candidate("drone", "gadgets"), Candidate("novel", "books")]


def kept_versions(app) -> list[str]:
    with Session(app.extensions["db_engine"]) as s:
        return list(s.exec(select(ModelVersion.version)).all())


def trained_archive(version: str = "elsewhere-7") -> tuple[bytes, np.ndarray]:
    policy = VWPolicy(PolicyConfig())
    for _ in range(50):
        policy.learn(SHARED, CANDIDATES, 1, 1.0, 0.5)
    model = ServedModel(version, policy, QTable(0.1))
    return model.to_snapshot(version, {}).to_bytes(), policy.predict(SHARED, CANDIDATES).scores


def test_an_archive_whose_settings_carry_vw_options_is_refused_and_writes_nothing(ready, app, tmp_path):
    pwned = tmp_path / "pwned"
    settings = {"policy": {**PolicyConfig().to_dict(), "interactions": [f"UG --readable_model {pwned}"]}, "q_alpha": 0.1}
    crafted = tmp_path / "crafted.zip"
    crafted.write_bytes(Snapshot("crafted", VWPolicy(PolicyConfig()).to_bytes(), settings).to_bytes())

    result = ready("models", "import", crafted, ok=False)

    assert result.exit_code != 0
    assert "interactions" in result.output and "nothing was imported" in result.output
    assert "Traceback" not in result.output
    assert kept_versions(app) == []
    assert not pwned.exists()


def test_an_archive_whose_model_file_carries_vw_options_is_refused(ready, app, tmp_path):
    model_path = tmp_path / "model.vw"
    import vowpalwabbit

    workspace = vowpalwabbit.Workspace(f"{PolicyConfig().vw_args(0)} --ignore S")
    workspace.save(str(model_path))
    workspace.finish()
    settings = {"policy": PolicyConfig().to_dict(), "q_alpha": 0.1}
    crafted = tmp_path / "crafted.zip"
    crafted.write_bytes(Snapshot("crafted", model_path.read_bytes(), settings).to_bytes())

    result = ready("models", "import", crafted, ok=False)

    assert "options of its own" in result.output and "--ignore S" in result.output
    assert kept_versions(app) == []


def test_a_genuine_archive_imports_and_serves_after_a_rollback(ready, app, learner, tmp_path):
    data, scores = trained_archive()
    archive = tmp_path / "genuine.zip"
    archive.write_bytes(data)

    imported = ready("models", "import", archive)
    (version,) = kept_versions(app)
    assert version.startswith("import-") and version in imported.output

    ready("models", "rollback", version, "--wait", "0")
    learner.step()

    served = ModelStore(app.config["FEEDLOOP"]).current()
    assert served.version == version
    np.testing.assert_allclose(served.policy.predict(SHARED, CANDIDATES).scores, scores)
    assert not np.allclose(scores, 0.0)  # a trained model, not the untrained one a failed load would leave
