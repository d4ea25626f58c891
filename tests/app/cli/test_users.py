from app.db import write_session
from app.services.users import authenticate


def can_sign_in(app_config_env, email, password) -> bool:
    from tests.helpers import bare_app

    app = bare_app(app_config_env)
    try:
        with write_session(app.extensions["db_engine"]) as s:
            return authenticate(s, email, password) is not None
    finally:
        app.extensions["db_engine"].dispose()


def test_users_create_asks_for_the_password_twice(ready, config):
    created = ready("users", "create", "ana@example.org", "--role", "admin", input="a long passphrase\na long passphrase\n")
    assert "created admin ana@example.org" in created.output
    assert can_sign_in(config, "ana@example.org", "a long passphrase")
    mismatch = ready(
        "users", "create", "bo@example.org", "--role", "reviewer", ok=False, input="one passphrase!!\nanother one!!!!\n"
    )
    assert "do not match" in mismatch.output or "don't match" in mismatch.output.lower()


def test_users_create_can_generate_a_password_printed_once_on_the_last_line(ready, config):
    created = ready("users", "create", "cy@example.org", "--role", "reviewer", "--generate")
    password = created.stdout.strip().splitlines()[-1]
    assert len(password) >= 20 and can_sign_in(config, "cy@example.org", password)
    listing = ready("users", "list").output
    assert "cy@example.org\treviewer\tactive\tlast sign-in" in listing and password not in listing


def test_a_refused_account_says_why_and_creates_nothing(ready):
    refused = ready("users", "create", "dee@example.org", "--role", "reviewer", ok=False, input="short\nshort\n")
    assert "12 to 1024 characters" in refused.output and "no account was created" in refused.output
    assert "dee@example.org" not in ready("users", "list").output


def test_disable_and_set_password(ready, config):
    ready("users", "create", "eve@example.org", "--role", "reviewer", input="first passphrase\nfirst passphrase\n")
    ready("users", "set-password", "eve@example.org", input="second passphrase\nsecond passphrase\n")
    assert can_sign_in(config, "eve@example.org", "second passphrase")
    assert not can_sign_in(config, "eve@example.org", "first passphrase")
    assert "can no longer sign in" in ready("users", "disable", "eve@example.org").output
    assert "disabled" in ready("users", "list").output and not can_sign_in(config, "eve@example.org", "second passphrase")
    assert "no account for nobody@example.org" in ready("users", "disable", "nobody@example.org", ok=False).output
