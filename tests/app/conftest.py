"""Fixtures shared by the app tests."""
import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.fixture
def cli(config, monkeypatch):
    monkeypatch.setenv("FEEDLOOP_HOME", config["home"])
    monkeypatch.setenv("FEEDLOOP_DATABASE_URL", config["database_url"])
    monkeypatch.setenv("FEEDLOOP_ENV", "test")
    runner = CliRunner()

    def run(*args, ok: bool = True):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output + result.stderr
        return result

    return run


@pytest.fixture
def ready(cli):
    cli("init")
    return cli
