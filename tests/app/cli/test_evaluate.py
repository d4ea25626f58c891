"""`feedloop evaluate`: estimates on an imported log, for uniform, the live model and an exported archive."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.services.model_store import policy_config
from app.settings import Settings
from bandit.model import ServedModel

MEANS = {"a": 0.2, "b": 0.5, "c": 0.8}
LOGGING = {"a": 0.6, "b": 0.3, "c": 0.1}  # skewed towards the worst action; the uniform policy earns 0.5


@pytest.fixture
def dataset(bare, cli, tmp_path) -> str:
    rng = np.random.default_rng(5)
    lines = ["timestamp,user_id,action,position,reward,propensity,ctx_device"]
    for i in range(3000):
        action = str(rng.choice(list(LOGGING), p=list(LOGGING.values())))
        reward = int(rng.random() < MEANS[action])
        lines.append(f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z,u{i % 40},{action},1,{reward},{LOGGING[action]},web")
    path = tmp_path / "logged.csv"
    path.write_text("\n".join(lines) + "\n")
    cli("logs", "import", path, "--name", "old")
    return "old"


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_uniform_policy_value_is_recovered_and_the_json_line_has_its_shape(cli, dataset):
    result = cli("evaluate", "--dataset", dataset, "--policy", "uniform", "--json", "--resamples", "300")
    assert "IPS" in result.output and "SNIPS" in result.output and "DR" in result.output
    out = last_json(result.output)
    assert list(out) == ["dataset", "policy", "n", "ips", "snips", "dr"]
    assert (out["dataset"], out["policy"], out["n"]) == ("old", "uniform", 3000)
    for name in ("ips", "snips", "dr"):
        assert list(out[name]) == ["value", "ci"]
        low, high = out[name]["ci"]
        assert low <= 0.5 <= high and low <= out[name]["value"] <= high, (name, out[name])


def test_the_same_seed_gives_the_same_answer(cli, dataset):
    runs = [last_json(cli("evaluate", "--dataset", dataset, "--policy", "uniform", "--json", "--seed", "4").output) for _ in "ab"]
    assert runs[0] == runs[1]


def test_a_model_archive_and_the_live_model_are_evaluated(cli, dataset, tmp_path):
    model = ServedModel.fresh(policy_config(Settings(env="test")), alpha=0.1)
    archive = tmp_path / "model.fla"
    archive.write_bytes(model.to_snapshot("v7", {}).to_bytes())
    result = cli("evaluate", "--dataset", dataset, "--policy", archive, "--json", "--resamples", "200")
    assert "policy model.fla (v7)" in result.output
    out = last_json(result.output)
    assert out["policy"] == str(archive) and out["n"] == 3000
    # an untrained model spreads its choices evenly: it is worth about what the uniform policy is
    assert out["snips"]["value"] == pytest.approx(0.5, abs=0.06)
    live = cli("evaluate", "--dataset", dataset, "--policy", "live", "--json", "--resamples", "200")
    assert "policy live (v0)" in live.output  # nothing published yet: the initial model
    assert last_json(live.output)["policy"] == "live"


def test_unknown_datasets_policies_and_damaged_archives_are_refused(cli, dataset, tmp_path):
    assert "no dataset named 'nope'" in cli("evaluate", "--dataset", "nope", "--policy", "uniform", ok=False).stderr
    assert (
        "neither uniform, live, candidate nor a model archive"
        in cli("evaluate", "--dataset", dataset, "--policy", "best", ok=False).stderr
    )
    damaged = tmp_path / "damaged.fla"
    damaged.write_bytes(b"not an archive")
    assert "damaged.fla" in cli("evaluate", "--dataset", dataset, "--policy", damaged, ok=False).stderr


def test_a_candidate_trained_on_the_dataset_is_kept_judged_and_evaluated(cli, dataset):
    assert "no retrained candidate yet" in cli("evaluate", "--dataset", dataset, "--policy", "candidate", ok=False).stderr

    trained = cli("train", "--dataset", dataset).output

    assert "model card 1: trained" in trained and "feedloop models promote r1" in trained
    # The logging policy earned about 0.6 * 0.2 + 0.3 * 0.5 + 0.1 * 0.8 = 0.35; "c" alone earns 0.8.
    candidate = last_json(cli("evaluate", "--dataset", dataset, "--policy", "candidate", "--json", "--resamples", "200").output)
    assert candidate["policy"] == "candidate" and candidate["snips"]["value"] > 0.7
    assert "promote to r1 requested" in cli("models", "promote", "r1", "--wait", "0").output
    assert "no model version 'nope'" in cli("models", "promote", "nope", ok=False).stderr


def test_training_on_an_unknown_dataset_is_refused(cli, bare):
    assert "no dataset named 'nope'" in cli("train", "--dataset", "nope", ok=False).stderr
