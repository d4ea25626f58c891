"""A model archive's policy settings become Vowpal Wabbit's command line: only values feedloop writes get through."""

from __future__ import annotations

import math

import pytest
import vowpalwabbit

from bandit.policy import PolicyConfig, VWPolicy

GOOD = PolicyConfig().to_dict()


def test_the_settings_feedloop_writes_are_read_back_unchanged():
    assert PolicyConfig.from_dict(GOOD) == PolicyConfig()
    for kind, parameter, cb_type in [("softmax", 10.0, "dr"), ("squarecb", 10.0, "mtr"), ("epsilon", 1, "dr")]:
        config = PolicyConfig.from_dict({**GOOD, "exploration": kind, "exploration_parameter": parameter, "cb_type": cb_type})
        assert PolicyConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "changes, setting",
    [
        ({"interactions": ["UG --invert_hash /tmp/x"]}, "interactions"),
        ({"interactions": ["U"]}, "interactions"),
        ({"interactions": ["UX"]}, "interactions"),
        ({"interactions": "UG"}, "interactions"),
        ({"cubics": ["CC --readable_model /tmp/x"]}, "cubics"),
        ({"cubics": ["CG"]}, "cubics"),
        ({"cb_type": "mtr -f /tmp/x"}, "cb_type"),
        ({"cb_type": "dm"}, "cb_type"),
        ({"exploration": "squarecb", "exploration_parameter": 10.0, "cb_type": "dr"}, "squarecb"),  # VW refuses it
        ({"exploration": "epsilon --readable_model /tmp/x"}, "exploration"),
        ({"exploration_parameter": float("nan")}, "exploration_parameter"),
        ({"exploration_parameter": 0}, "exploration_parameter"),
        ({"exploration_parameter": 1.5}, "exploration_parameter"),  # epsilon is a probability
        ({"exploration_parameter": "0.1 --readable_model /tmp/x"}, "exploration_parameter"),
        ({"exploration": "softmax", "exploration_parameter": math.inf}, "exploration_parameter"),
        ({"bits": 99}, "bits"),
        ({"bits": 0}, "bits"),
        ({"bits": "18 -f /tmp/x"}, "bits"),
        ({"bits": 18.5}, "bits"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": 1e6}, "learning_rate"),
        ({"learning_rate": "4 --readable_model /tmp/x"}, "learning_rate"),
        ({"clip_p": 1.0}, "clip_p"),
        ({"clip_p": -0.1}, "clip_p"),
        ({"clip_p": float("inf")}, "clip_p"),
        ({"extra_args": "--readable_model /tmp/x"}, "extra_args"),
    ],
)
def test_crafted_settings_are_refused_naming_the_setting(changes, setting):
    with pytest.raises(ValueError) as err:
        PolicyConfig.from_dict({**GOOD, **changes})
    assert setting in str(err.value)


@pytest.mark.parametrize("settings", [None, [], "epsilon", {k: v for k, v in GOOD.items() if k != "bits"}])
def test_settings_that_are_not_a_complete_object_are_refused(settings):
    with pytest.raises(ValueError):
        PolicyConfig.from_dict(settings)


def test_a_model_file_that_brings_options_of_its_own_is_refused(tmp_path):
    """VW keeps some options in the model file and applies them on load: a model saved with `--ignore S` would
    silently make whoever loads it ignore the similarity features."""
    args = PolicyConfig().vw_args(0)
    for extra in ["--ignore S", "--ignore_linear S"]:
        path = tmp_path / "crafted.vw"
        workspace = vowpalwabbit.Workspace(f"{args} {extra}")
        workspace.save(str(path))
        workspace.finish()
        with pytest.raises(ValueError, match="carries options of its own"):
            VWPolicy(PolicyConfig(), model=path.read_bytes())
    genuine = VWPolicy(PolicyConfig()).to_bytes()
    assert VWPolicy(PolicyConfig(), model=genuine).to_bytes() == genuine


def test_output_options_are_not_kept_in_a_model_file(tmp_path):
    """--readable_model and --invert_hash write files when the workspace finishes; VW does not store them in the
    model file, so loading such a model writes nothing."""
    readable, inverted, path = tmp_path / "readable", tmp_path / "inverted", tmp_path / "model.vw"
    workspace = vowpalwabbit.Workspace(f"{PolicyConfig().vw_args(0)} --readable_model {readable} --invert_hash {inverted}")
    workspace.save(str(path))
    workspace.finish()
    readable.unlink(), inverted.unlink()  # written by the crafting workspace itself
    policy = VWPolicy(PolicyConfig(), model=path.read_bytes())
    policy._vw.finish()
    assert not readable.exists() and not inverted.exists()
