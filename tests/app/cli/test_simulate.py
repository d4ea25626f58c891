"""A small run of `feedloop simulate`: the real service, driven through its API, learns."""

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
