"""Accounts: roles, argon2id password hashes, sign-in checks. No encoder, no HTTP."""

import pytest
from sqlmodel import Session

from app.db import write_session
from app.models import User
from app.services.users import AccountError, authenticate, create_user, disable_user, set_password

PASSWORD = "correct horse battery"


@pytest.fixture
def app(bare):
    return bare


def create(app, email="Reviewer@Example.org", role="reviewer", password=PASSWORD) -> int:
    with write_session(app.extensions["db_engine"]) as s:
        return create_user(s, email, role, password).id


def sign_in(app, email, password) -> User | None:
    with write_session(app.extensions["db_engine"]) as s:
        user = authenticate(s, email, password)
        return None if user is None else s.get(User, user.id)


def test_an_account_keeps_an_argon2id_hash_never_the_password(app):
    user_id = create(app)
    with Session(app.extensions["db_engine"]) as s:
        user = s.get(User, user_id)
    assert user.email == "reviewer@example.org" and user.role == "reviewer"
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and PASSWORD not in user.password_hash


def test_sign_in_with_the_right_password_records_it_and_with_a_wrong_one_fails(app):
    create(app)
    assert sign_in(app, "reviewer@example.org", "wrong password!") is None
    assert sign_in(app, "nobody@example.org", PASSWORD) is None
    user = sign_in(app, " REVIEWER@example.org ", PASSWORD)
    assert user is not None and user.last_login_at is not None


def test_a_disabled_account_cannot_sign_in(app):
    create(app)
    with write_session(app.extensions["db_engine"]) as s:
        disable_user(s, "reviewer@example.org")
    assert sign_in(app, "reviewer@example.org", PASSWORD) is None


def test_a_new_password_replaces_the_old_one(app):
    create(app)
    with write_session(app.extensions["db_engine"]) as s:
        set_password(s, "reviewer@example.org", "a completely new passphrase")
    assert sign_in(app, "reviewer@example.org", PASSWORD) is None
    assert sign_in(app, "reviewer@example.org", "a completely new passphrase") is not None


@pytest.mark.parametrize(
    "email, role, password, message",
    [
        ("not-an-email", "reviewer", PASSWORD, "not an email address"),
        ("a@example.org", "owner", PASSWORD, "role must be one of admin, reviewer"),
        ("a@example.org", "admin", "short", "12 to 1024 characters"),
        ("longer.name@example.org", "admin", "LONGER.NAME@example.org", "must not be the email"),
    ],
)
def test_bad_accounts_are_refused(app, email, role, password, message):
    with pytest.raises(AccountError, match=message), write_session(app.extensions["db_engine"]) as s:
        create_user(s, email, role, password)


def test_one_account_per_email_whatever_its_case(app):
    create(app)
    with pytest.raises(AccountError, match="already an account"):
        create(app, email="REVIEWER@example.org", role="admin")
