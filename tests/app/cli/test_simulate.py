"""A small run of `feedloop simulate`: the real service, driven through its API, learns."""

import sqlite3

import pytest
from click.testing import CliRunner

from app.cli import main
from app.cli.simulation import run_simulation


def test_feedloop_learns_in_a_small_simulation(tmp_path):
    result = run_simulation(tmp_path, rounds=1200, users=15, items=120, seed=2)
    curve = result.curves["feedloop"]
    assert result.last_quarter["feedloop"] > result.last_quarter["uniform"] + 0.1
    assert sum(curve[-5:]) > sum(curve[:5])  # it gets better as rewards come in
    assert result.last_quarter["oracle"] > result.last_quarter["feedloop"]


def test_simulate_command_prints_the_comparison_and_plots(tmp_path):
    plot = tmp_path / "ctr.png"
    result = CliRunner().invoke(main, ["simulate", "--rounds", "200", "--users", "5", "--items", "40", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "feedloop closes" in result.output and "oracle" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_feedloop_learns_through_the_http_service(tmp_path):
    """The real `feedloop serve` on loopback, with its learner sidecar learning asynchronously, paced."""
    result = run_simulation(tmp_path, rounds=1500, users=15, items=120, seed=2, http=True, pace=100)
    assert result.last_quarter["feedloop"] > result.last_quarter["uniform"] + 0.1
    assert result.last_quarter["oracle"] > result.last_quarter["feedloop"]


def test_a_confirmed_fraud_bot_is_excluded_and_its_clicks_are_no_longer_learned(tmp_path):
    """A reviewer confirms the bot a quarter of the way in, through the review queue: from then on the learner
    learns none of its rewards, though it keeps clicking."""
    result = run_simulation(tmp_path, rounds=600, users=10, items=60, seed=1, world="fraud", baselines=())
    fraud = result.fraud
    before, after = fraud.bot_learned
    assert fraud.confirmed_at == 150 and before > 5 and after == 0
    assert sum(fraud.bot_clicks[5:]) > 20  # it went on clicking
    with sqlite3.connect(tmp_path / "simulation.db") as db:
        assert db.execute("select user_id from excluded_users").fetchall() == [("bot-0",)]
        marked = db.execute("select count(*), sum(excluded) from rewards where user_id = 'bot-0'").fetchone()
    assert marked[0] == marked[1] > 0  # all its rewards, those before the confirmation too, marked for retraining


def test_simulate_command_runs_another_world_and_refuses_an_unknown_one():
    result = CliRunner().invoke(main, ["simulate", "--world", "contextflip", "--rounds", "200", "--users", "5", "--items", "40"])
    assert result.exit_code == 0, result.output
    assert "world contextflip" in result.output and "plain VW (tutorial set-up) closes" in result.output
    assert "the ceiling of a run this long" in result.output
    refused = CliRunner().invoke(main, ["simulate", "--world", "moon"])
    assert refused.exit_code == 2 and "'moon' is not one of" in refused.output
