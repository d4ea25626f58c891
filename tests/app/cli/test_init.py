def test_commands_refuse_an_uninitialised_database(cli):
    result = cli("keys", "create", "--name", "x", ok=False)
    assert "feedloop init" in result.output


def test_bad_configuration_is_a_readable_error(cli, monkeypatch):
    monkeypatch.setenv("FEEDLOOP_DATABASE_URL", "mysql://nope")
    result = cli("init", ok=False)
    assert "FEEDLOOP_DATABASE_URL" in result.output and "Traceback" not in result.output
